#!/usr/bin/env python3
"""Synthetic records for clkhash's own `randomnames` schema (names, dates of birth, sex drawn
from clkhash's bundled US name tables; no real persons), used by the encoding benchmark.

    /tmp/venv-clkhash/bin/python scripts/clkhash_randomnames.py 10000 benches/data/randomnames-10k.csv
"""
import csv
import random
import sys

from clkhash import randomnames


def main():
    count, path = int(sys.argv[1]), sys.argv[2]
    random.seed(2026)
    names = randomnames.NameList(count)
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["INDEX", "NAME freetext", "DOB YYYY/MM/DD", "GENDER M or F"])
        for row in names.names:
            w.writerow([str(row[0]), row[1], row[2], row[3]])


if __name__ == "__main__":
    main()
