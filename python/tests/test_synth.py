"""`blindlink.synth` gives the rows `blindlink synth` writes."""

import pytest

import blindlink
from conftest import read_csv


def frame_rows(frame):
    return [list(frame.columns)] + frame.values.tolist()


def dict_rows(table):
    header = list(table[0].keys())
    return [header] + [[r[h] for h in header] for r in table]


def check(cli, tmp_path, expected_files, **kwargs):
    args = []
    for key, value in kwargs.items():
        args += ["--" + key.replace("_", "-"), value]
    cli("synth", *args, "--out", tmp_path)
    data = blindlink.synth(**kwargs)
    assert data.names == expected_files
    plain = blindlink.synth(as_frames=False, **kwargs)
    for name, frame, table in zip(data.names, data[:3], plain[:3]):
        want = read_csv(tmp_path / name)
        assert len(want) > 1
        assert frame_rows(frame) == want, name
        assert dict_rows(table) == want, name


def test_registry_insurer_ja(cli, tmp_path):
    check(cli, tmp_path, ("registry.csv", "insurer.csv", "truth.csv"),
          persons=500, seed=3, locale="ja")


def test_two_hospitals_en_with_rates(cli, tmp_path):
    check(cli, tmp_path, ("hospital_a.csv", "hospital_b.csv", "truth.csv"),
          persons=300, seed=11, locale="en", scenario="two-hospitals", overlap=0.5,
          kana_variant_rate=0.3, date_format_rate=0.4)


@pytest.mark.parametrize(
    "kwargs, cli_args",
    [
        ({"overlap": 1.5}, ["--overlap", "1.5"]),
        ({"persons": 0}, ["--persons", "0"]),
        ({"keying_error_rate": -0.1}, ["--keying-error-rate=-0.1"]),
    ],
)
def test_bad_arguments_raise_the_cli_message(cli, tmp_path, kwargs, cli_args):
    want = cli.error("synth", *cli_args, "--out", tmp_path)
    with pytest.raises(blindlink.InputError) as e:
        blindlink.synth(**kwargs)
    assert str(e.value) == want


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"locale": "fr"}, 'locale "fr": expected "ja" or "en"'),
        ({"scenario": "x"}, 'scenario "x": expected "registry-insurer" or "two-hospitals"'),
        ({"typo_rate": 0.1}, 'unknown rate "typo_rate"'),
    ],
)
def test_unknown_names(kwargs, message):
    with pytest.raises(blindlink.InputError) as e:
        blindlink.synth(persons=10, **kwargs)
    assert str(e.value) == message
