#!/usr/bin/env python3
"""Golden vectors: CLKs computed by clkhash 0.18.3 for several schemas and CSV files.

Run from the repository root (needs Python 3 and network once):

    python3 -m venv /tmp/venv-clkhash
    /tmp/venv-clkhash/bin/pip install clkhash==0.18.3
    /tmp/venv-clkhash/bin/python scripts/clkhash_vectors.py

For every case NAME it writes into tests/data/clkhash/:
  NAME.schema.json   the clkhash linkage schema (v3)
  NAME.csv           the input, with a header row
  NAME.expected.json {"clks": [base64 or null, ...], "rejected_columns": [null or column]}:
                     one entry per data row, null where clkhash rejects the row (each row is
                     hashed on its own, with validation), with the column clkhash blamed
The secret is tests/data/clkhash/secret.key, handed to clkhash as its exact bytes.
The Rust test crates/encoding/tests/clkhash_vectors.rs checks byte equality for every entry.
"""
import csv
import io
import json
import os
import random

import clkhash
from clkhash import clk, randomnames
from clkhash.schema import from_json_dict
from clkhash.serialization import serialize_bitarray
from clkhash.validate_data import EntryError

assert clkhash.__version__ == "0.18.3", clkhash.__version__

OUT = os.path.join("tests", "data", "clkhash")
SECRET = "blindlink test secret \u2014 do not use\n".encode("utf-8")

KDF = {"type": "HKDF", "hash": "SHA256",
       "salt": "SCbL2zHNnmsckfzchsNkZY9XoHk96P/G5nUBrM7ybymlEFsMV6PAeDZCNp3rfNUPCtLDMOGQHG4pCQpfhiHCyA==",
       "info": "c2NoZW1hX2V4YW1wbGU=", "keySize": 64}


def feature(identifier, fmt, comparison, strategy, hash_=None, missing=None):
    hashing = {"comparison": comparison, "strategy": strategy}
    if hash_ is not None:
        hashing["hash"] = hash_
    if missing is not None:
        hashing["missingValue"] = missing
    return {"identifier": identifier, "format": fmt, "hashing": hashing}


def ignored(identifier):
    return {"identifier": identifier, "ignored": True}


def schema(l, features, kdf=KDF, **extra):
    config = {"l": l, "kdf": kdf}
    config.update(extra)
    return {"version": 3, "clkConfig": config, "features": features}


JAPANESE = [
    ("1", "髙橋", "一郎", "1985/04/01", "M"), ("2", "渡邊", "花子", "1990/12/31", "F"),
    ("3", "たかはし", "イチロウ", "1985/4/1", "M"), ("4", "ﾀｶﾊｼ", "ｲﾁﾛｳ", "2000/02/29", "M"),
    ("5", "齋藤", "美穂", "1977/07/07", "F"), ("6", "𠮷田", "さくら", "2001/01/01", "F"),
    ("7", "Müller", "Zoë", "1960/03/15", "F"), ("8", "García-Márquez", "José", "1927/03/06", "M"),
    ("9", "O'Brien", "Seán", "1999/09/09", "M"), ("10", "", "", "1999/09/09", "F"),
    ("11", "Nguyễn", "Thị", "1980/02/30", "F"), ("12", "Smith", "John", "1980-02-03", "M"),
    ("13", "Lee", "Al", "1980/02/03", "X"), ("14", "N/A", "Ann", "1970/10/10", "F"),
]


def randomnames_rows(n, seed):
    random.seed(seed)
    pii = randomnames.NameList(n)
    rows = list(pii.names)
    return [[str(r[0]), r[1], r[2], r[3]] for r in rows]


def cases():
    rn_schema = json.load(open(os.path.join(os.path.dirname(clkhash.__file__), "data", "randomnames-schema.json")))
    header_rn = [f["identifier"] for f in rn_schema["features"]]
    rn_rows = randomnames_rows(120, 7)
    rn_rows += [["900", "髙橋 一郎", "1985/04/01", "M"], ["901", "Zoë Müller", "1960/3/5", "F"],
                ["902", "Al", "1960/03/05", "F"], ["903", "Bob Ray", "1960/02/30", "M"],
                ["904", "Bob Ray", "1960/02/03", "m"]]
    yield "randomnames", rn_schema, header_rn, rn_rows

    # blakeHash, SHA512 HKDF, smaller keys, missing values, ignored feature, accents and kana.
    kdf512 = {"type": "HKDF", "hash": "SHA512", "salt": "c2FsdA==", "info": "aW5mbw==", "keySize": 32}
    s = schema(2048, [
        ignored("id"),
        feature("surname", {"type": "string", "encoding": "utf-8"}, {"type": "ngram", "n": 2},
                {"bitsPerToken": 20}, missing={"sentinel": "N/A", "replaceWith": ""}),
        feature("given", {"type": "string", "encoding": "utf-8", "maxLength": 6},
                {"type": "ngram", "n": 2, "positional": True}, {"bitsPerFeature": 100},
                {"type": "blakeHash"}),
        feature("dob", {"type": "date", "format": "%Y/%m/%d"}, {"type": "ngram", "n": 1, "positional": True},
                {"bitsPerToken": 40}),
        feature("sex", {"type": "enum", "values": ["M", "F"]}, {"type": "exact"}, {"bitsPerToken": 50},
                missing={"sentinel": "X"}),
    ], kdf=kdf512)
    yield "blake_sha512", s, ["id", "surname", "given", "dob", "sex"], [list(r) for r in JAPANESE]

    # doubleHash with prevent_singularity on a tiny filter (the re-hash loop really runs),
    # bitsPerFeature, trigrams; l not a multiple of 8 and one xor fold (bit-level folding).
    s = schema(21, [
        ignored("id"),
        feature("surname", {"type": "string"}, {"type": "ngram", "n": 3}, {"bitsPerFeature": 30},
                {"type": "doubleHash", "prevent_singularity": True}),
        feature("given", {"type": "string"}, {"type": "ngram", "n": 1}, {"bitsPerToken": 3},
                {"type": "doubleHash", "prevent_singularity": True}),
        feature("dob", {"type": "date", "format": "%Y/%m/%d"}, {"type": "exact"}, {"bitsPerToken": 5},
                {"type": "doubleHash", "prevent_singularity": False}),
        ignored("sex"),
    ], xor_folds=1)
    yield "double_singular_folded", s, ["id", "surname", "given", "dob", "sex"], [list(r) for r in JAPANESE]

    s = schema(1000, [
        ignored("id"),
        feature("surname", {"type": "string"}, {"type": "ngram", "n": 2}, {"bitsPerToken": 30},
                {"type": "doubleHash", "prevent_singularity": True}),
        feature("given", {"type": "string"}, {"type": "ngram", "n": 2}, {"bitsPerToken": 30},
                {"type": "doubleHash"}),
        feature("dob", {"type": "date", "format": "%Y/%m/%d"}, {"type": "ngram", "n": 2}, {"bitsPerToken": 30},
                {"type": "doubleHash"}),
        feature("sex", {"type": "string", "pattern": "[MF]"}, {"type": "exact"}, {"bitsPerToken": 30},
                {"type": "doubleHash"}),
    ])
    yield "double_l1000", s, ["id", "surname", "given", "dob", "sex"], [list(r) for r in JAPANESE]

    # Numeric and exact comparisons, integer formats, xor folding, every string constraint.
    s = schema(512, [
        feature("age", {"type": "integer", "minimum": 0, "maximum": 130},
                {"type": "numeric", "thresholdDistance": 3, "resolution": 2}, {"bitsPerToken": 10},
                missing={"sentinel": "", "replaceWith": "0"}),
        feature("weight", {"type": "string", "pattern": "[0-9]+(\\.[0-9]+)?"},
                {"type": "numeric", "thresholdDistance": 0.5, "resolution": 3, "fractional_precision": 1},
                {"bitsPerToken": 8}),
        feature("postcode", {"type": "integer"}, {"type": "ngram", "n": 1, "positional": True},
                {"bitsPerToken": 12}),
        feature("code", {"type": "string", "case": "upper", "minLength": 2, "maxLength": 4, "encoding": "ascii"},
                {"type": "exact"}, {"bitsPerToken": 40}),
        feature("note", {"type": "string", "case": "lower", "encoding": "utf-16"}, {"type": "ngram", "n": 2},
                {"bitsPerToken": 5}),
        feature("alias", {"type": "string", "encoding": "utf-32"}, {"type": "ngram", "n": 2},
                {"bitsPerFeature": 64}),
        feature("born", {"type": "date", "format": "%d %b %Y"}, {"type": "exact"}, {"bitsPerToken": 30}),
        feature("visit", {"type": "date", "format": "%d/%m/%y"}, {"type": "ngram", "n": 2}, {"bitsPerToken": 6}),
    ], xor_folds=2)
    header = ["age", "weight", "postcode", "code", "note", "alias", "born", "visit"]
    rows = [
        ["42", "70.25", "2000", "AB", "hello", "Zoë", "5 Mar 1999", "01/02/68"],
        [" +43 ", "70.3", "0200", "ABCD", "münchen", "髙橋", "05 march 1999", "1/2/69"],
        ["", "81", "1_234", "XY", "", "", "31 DEC 2000", "29/02/00"],
        ["131", "70", "2000", "AB", "x", "y", "1 Jan 2000", "01/01/01"],
        ["-1", "70", "2000", "AB", "x", "y", "1 Jan 2000", "01/01/01"],
        ["12", "7a", "2000", "AB", "x", "y", "1 Jan 2000", "01/01/01"],
        ["12", "7", "20a0", "AB", "x", "y", "1 Jan 2000", "01/01/01"],
        ["12", "7", "2000", "Ab", "x", "y", "1 Jan 2000", "01/01/01"],
        ["12", "7", "2000", "A", "x", "y", "1 Jan 2000", "01/01/01"],
        ["12", "7", "2000", "ABCDE", "x", "y", "1 Jan 2000", "01/01/01"],
        ["12", "7", "2000", "ÄB", "x", "y", "1 Jan 2000", "01/01/01"],
        ["12", "7", "2000", "AB", "Xy", "y", "1 Jan 2000", "01/01/01"],
        ["12", "7", "2000", "AB", "x", "y", "30 Feb 2000", "01/01/01"],
        ["12", "7", "2000", "AB", "x", "y", "1 Jan 2000", "32/01/01"],
        ["0", "0.05", "１２３", "ZZZ", "ß", "ｶﾀｶﾅ", "9 SEP 1900", "9/9/99"],
        ["130", "1000.45", "7", "QQ", "éé", "  ", "29 Feb 2004", "31/12/49"],
    ]
    yield "numeric_formats", s, header, rows

    # 'xorFolds' (camelCase, as written in the v3 master schema) is ignored by clkhash 0.18.3.
    s = schema(256, [
        feature("name", {"type": "string"}, {"type": "ngram", "n": 2}, {"bitsPerToken": 10}),
    ], xorFolds=1)
    yield "xorfolds_camelcase_ignored", s, ["name"], [["alice"], ["bob"], ["髙橋"]]


def main():
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, "secret.key"), "wb") as f:
        f.write(SECRET)
    for name, schema_dict, header, rows in cases():
        parsed = from_json_dict(schema_dict)
        with open(os.path.join(OUT, name + ".schema.json"), "w", encoding="utf-8") as f:
            json.dump(schema_dict, f, indent=2, ensure_ascii=False)
            f.write("\n")
        with open(os.path.join(OUT, name + ".csv"), "w", encoding="utf-8", newline="") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(header)
            w.writerows(rows)
        expected, rejected_columns = [], []
        for row in rows:
            try:
                [bf] = clk.generate_clks([row], parsed, SECRET, validate=True, max_workers=1)
                expected.append(serialize_bitarray(bf))
                rejected_columns.append(None)
            except EntryError as e:  # clkhash rejects the row, naming the column
                expected.append(None)
                rejected_columns.append(e.field_spec.identifier)
        # Whole-file run through the CSV path clkutil uses, for the rows clkhash accepts.
        good = [r for r, e in zip(rows, expected) if e is not None]
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(header)
        w.writerows(good)
        buf.seek(0)
        whole = clk.generate_clk_from_csv(buf, SECRET, parsed, progress_bar=False, max_workers=1)
        assert [serialize_bitarray(b) for b in whole] == [e for e in expected if e is not None], name
        with open(os.path.join(OUT, name + ".expected.json"), "w", encoding="utf-8") as f:
            json.dump({"clks": expected, "rejected_columns": rejected_columns}, f, indent=0, ensure_ascii=False)
            f.write("\n")
        print(f"{name}: {len(rows)} rows, {sum(e is None for e in expected)} rejected by clkhash")


if __name__ == "__main__":
    main()
