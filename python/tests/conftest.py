"""Shared fixtures: the `blindlink` binary the package is compared against, and data sets it
writes. The binary is $BLINDLINK_BIN, else the workspace's target/debug or target/release
build (`cargo build -p blindlink-cli`)."""

from __future__ import annotations

import csv
import os
import pathlib
import subprocess
from typing import List

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


def _find_cli() -> str:
    env = os.environ.get("BLINDLINK_BIN")
    if env:
        return env
    for build in ("debug", "release"):
        path = ROOT / "target" / build / "blindlink"
        if path.exists():
            return str(path)
    raise RuntimeError(
        "no blindlink binary to compare with: run `cargo build -p blindlink-cli` or set BLINDLINK_BIN"
    )


class Cli:
    """Runs the `blindlink` binary."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __call__(self, *args: object, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run(
            [self.path, *map(str, args)], capture_output=True, text=True, timeout=600
        )
        if check and result.returncode != 0:
            raise AssertionError(f"blindlink {' '.join(map(str, args))} failed:\n{result.stderr}")
        return result

    def error(self, *args: object) -> str:
        """The message of a failing command, as the package raises it (without `error: `)."""
        result = self(*args, check=False)
        assert result.returncode != 0, f"blindlink {args} succeeded"
        last = result.stderr.strip().splitlines()[-1]
        assert last.startswith("error: "), result.stderr
        return last[len("error: "):]

    def popen(self, *args: object) -> subprocess.Popen:
        return subprocess.Popen(
            [self.path, *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )


@pytest.fixture(scope="session")
def cli() -> Cli:
    return Cli(_find_cli())


def read_csv(path: pathlib.Path) -> List[List[str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.reader(f))


@pytest.fixture(scope="session")
def ja_data(cli: Cli, tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """`blindlink synth` registry-insurer, ja, 400 persons, seed 5."""
    out = tmp_path_factory.mktemp("ja")
    cli("synth", "--persons", 400, "--seed", 5, "--locale", "ja", "--out", out)
    return out


@pytest.fixture(scope="session")
def en_data(cli: Cli, tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """`blindlink synth` two-hospitals, en, 300 persons, seed 9, overlap 0.6."""
    out = tmp_path_factory.mktemp("en")
    cli("synth", "--persons", 300, "--seed", 9, "--locale", "en", "--scenario", "two-hospitals",
        "--overlap", 0.6, "--out", out)
    return out


SECRET = b"0123456789abcdef0123456789abcdef"

JA_SCHEMA = """version = 1
[filter]
bits = 1024
layout = "clk"

[[field]]
column = "surname_kana"
normalise = ["nfkc", "halfwidth-kana", "katakana", "long-vowel-fold", "strip-whitespace"]
tokens = { kind = "ngram", n = 2 }
bits_per_token = 15

[[field]]
column = "given_name_kana"
normalise = ["nfkc", "halfwidth-kana", "katakana", "long-vowel-fold", "strip-whitespace"]
tokens = { kind = "ngram", n = 2 }
bits_per_token = 15

[[field]]
column = "surname_kanji"
normalise = ["nfkc", "itaiji", "strip-whitespace"]
tokens = { kind = "ngram", n = 2 }
bits_per_token = 10

[[field]]
column = "date_of_birth"
normalise = ["nfkc", "date"]
tokens = { kind = "ngram", n = 1, positional = true }
bits_per_token = 12

[[field]]
column = "sex"
normalise = ["sex"]
tokens = { kind = "exact" }
bits_per_token = 20
"""

EN_SCHEMA = """version = 1
[filter]
bits = 512
layout = "clk"

[[field]]
column = "given_name"
normalise = ["nfkc", "casefold", "whitespace"]
tokens = { kind = "ngram", n = 2 }
bits_per_token = 20

[[field]]
column = "surname"
normalise = ["nfkc", "casefold", "whitespace"]
tokens = { kind = "ngram", n = 2 }
bits_per_token = 20

[[field]]
column = "date_of_birth"
normalise = ["nfkc", "date-dmy"]
tokens = { kind = "ngram", n = 1, positional = true }
bits_per_token = 12

[[field]]
column = "postcode"
normalise = ["nfkc", "strip-whitespace"]
tokens = { kind = "ngram", n = 2 }
bits_per_token = 10

[[harden]]
step = "xor-fold"
"""
