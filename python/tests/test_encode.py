"""`blindlink.encode` gives the bytes of `blindlink encode`, and its errors."""

import pathlib
import threading

import numpy as np
import pytest

import blindlink
from conftest import EN_SCHEMA, EXAMPLES, JA_SCHEMA, SECRET

HEADER = 56  # the binary CLK file's header


def cli_clks(cli, tmp_path, csv_path, schema_path, key_path, *extra):
    out = tmp_path / "clks.bin"
    cli("encode", "--schema", schema_path, "--secret-file", key_path, "--input", csv_path,
        "--output", out, "--format", "bin", "--no-progress", *extra)
    data = out.read_bytes()[HEADER:]
    js = tmp_path / "clks.json"
    cli("encode", "--schema", schema_path, "--secret-file", key_path, "--input", csv_path,
        "--output", js, "--no-progress", *extra)
    return data, js


def write(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


def check(cli, tmp_path, csv_path, schema_text, frame=None, **options):
    schema = write(tmp_path, "schema.toml", schema_text)
    key = write(tmp_path, "key", SECRET)
    extra = ["--era-dates", options["era_dates"]] if "era_dates" in options else []
    want, json_path = cli_clks(cli, tmp_path, csv_path, schema, key, *extra)
    got = blindlink.encode(csv_path, schema, SECRET, **options)
    assert got.dtype == np.uint8 and got.ndim == 2
    assert got.tobytes() == want
    # The same from the schema text, a key file, one thread, the anonlink JSON the CLI wrote.
    assert blindlink.encode(str(csv_path), schema_text, key, threads=1, **options).tobytes() == want
    assert blindlink.read_clks(json_path).tobytes() == want
    if frame is not None:
        assert blindlink.encode(frame, schema_text, SECRET.decode(), **options).tobytes() == want
        records = frame.to_dict("records")
        assert blindlink.encode(records, schema_text, SECRET, **options).tobytes() == want
    return got


def test_synthetic_registry_ja(cli, tmp_path, ja_data):
    data = blindlink.synth(persons=400, seed=5, locale="ja")
    got = check(cli, tmp_path, ja_data / "registry.csv", JA_SCHEMA, frame=data.a)
    assert got.shape == (len(data.a), 128)
    check(cli, tmp_path, ja_data / "insurer.csv", JA_SCHEMA, frame=data.b, era_dates="lenient")


def test_synthetic_hospital_en_hardened(cli, tmp_path, en_data):
    data = blindlink.synth(persons=300, seed=9, locale="en", scenario="two-hospitals", overlap=0.6)
    got = check(cli, tmp_path, en_data / "hospital_b.csv", EN_SCHEMA, frame=data.b)
    assert got.shape[1] == 32  # 512 bits xor-folded once


def test_readme_example_and_clkhash_schema(cli, tmp_path):
    people = EXAMPLES / "people.csv"
    check(cli, tmp_path, people, (EXAMPLES / "schema.toml").read_text())
    schema = (EXAMPLES / "clkhash-schema.json").read_text()
    key = EXAMPLES / "linkage.key"
    want, _ = cli_clks(cli, tmp_path, people, EXAMPLES / "clkhash-schema.json", key)
    assert blindlink.encode(people, schema, key.read_bytes()).tobytes() == want
    assert blindlink.encode(people, EXAMPLES / "clkhash-schema.json", pathlib.Path(key)).tobytes() == want


BAD_ROWS = "id,surname,given_name,name_kana,date_of_birth,sex,postcode\n1,高橋,一郎,タカハシ,1985-04-03,M,100-0001\n2,鈴木,花子,スズキ,1985-02-30,F,100-0001\n"


def test_bad_row_raises_the_cli_message(cli, tmp_path):
    csv_path = write(tmp_path, "bad.csv", BAD_ROWS)
    schema = EXAMPLES / "schema.toml"
    want = cli.error("encode", "--schema", schema, "--secret-file", EXAMPLES / "linkage.key",
                     "--input", csv_path, "--output", tmp_path / "o.json", "--no-progress")
    assert want.startswith(f"{csv_path}:3: field 'date_of_birth': ")
    with pytest.raises(blindlink.InputError) as e:
        blindlink.encode(csv_path, schema, (EXAMPLES / "linkage.key").read_bytes())
    assert str(e.value) == want
    # In memory: the input is named `rows`, rows[1] is line 3.
    rows = [dict(zip(BAD_ROWS.splitlines()[0].split(","), line.split(",")))
            for line in BAD_ROWS.splitlines()[1:]]
    with pytest.raises(blindlink.InputError) as e:
        blindlink.encode(rows, schema, (EXAMPLES / "linkage.key").read_bytes())
    assert str(e.value) == want.replace(str(csv_path), "rows", 1)
    assert not (tmp_path / "o.json").exists()


def test_config_errors_raise_the_cli_message(cli, tmp_path):
    people = EXAMPLES / "people.csv"
    bad_schema = write(tmp_path, "bad.toml", "version = 1\n[filter]\nbits = 0\n")
    want = cli.error("encode", "--schema", bad_schema, "--secret-file", EXAMPLES / "linkage.key",
                     "--input", people, "--output", tmp_path / "o.json")
    with pytest.raises(blindlink.ConfigError) as e:
        blindlink.encode(people, bad_schema, SECRET)
    assert str(e.value) == want
    short = write(tmp_path, "short.key", b"tooshort")
    want = cli.error("encode", "--schema", EXAMPLES / "schema.toml", "--secret-file", short,
                     "--input", people, "--output", tmp_path / "o.json")
    with pytest.raises(blindlink.ConfigError) as e:
        blindlink.encode(people, EXAMPLES / "schema.toml", short)
    assert str(e.value) == want
    with pytest.raises(blindlink.ConfigError) as e:
        blindlink.encode(people, EXAMPLES / "schema.toml", b"tooshort")
    assert str(e.value) == (
        "the secret holds 8 bytes; a linkage key needs at least 16 (make one with `blindlink "
        "keygen`, or set BLINDLINK_ALLOW_WEAK_KEY=1 to use a weak key for tests)"
    )


def test_missing_column_and_empty_input(tmp_path):
    schema = (EXAMPLES / "schema.toml").read_text()
    with pytest.raises(blindlink.InputError) as e:
        blindlink.encode([{"surname": "x"}], schema, SECRET)
    assert str(e.value).startswith("rows:1: ")
    empty = write(tmp_path, "empty.csv", BAD_ROWS.splitlines()[0] + "\n")
    with pytest.raises(blindlink.InputError) as e:
        blindlink.encode(empty, schema, SECRET)
    assert str(e.value) == f"{empty}: no records after the header row"
    with pytest.raises(TypeError):
        blindlink.encode([1, 2], schema, SECRET)


def test_encode_releases_the_gil(ja_data):
    """A second Python thread runs while one encodes: the GIL is released."""
    rows = blindlink.synth(persons=4000, seed=2, locale="ja").a
    ticks = []
    done = threading.Event()

    def work():
        blindlink.encode(rows, JA_SCHEMA, SECRET, threads=1)
        done.set()

    worker = threading.Thread(target=work)
    worker.start()
    while not done.is_set():
        ticks.append(1)
    worker.join()
    assert len(ticks) > 1000
