"""papers/validation.md §7: the reliability table of a validate run in this directory, from the
insurer's links.csv (match_probability, status) joined with the generator's truth.csv, and the
flag rates of the issue's targets.

    python3 reliability.py .
"""
import csv
import sys

d = sys.argv[1]
truth = {r["insurer_record_id"]: r["outcome"] for r in csv.DictReader(open(f"{d}/data/truth.csv"))}
rows = [r for r in csv.DictReader(open(f"{d}/out/insurer/links.csv")) if r["match_probability"]]
bins = [0, 0.01, 0.1, 0.5, 0.9, 0.99, 0.999, 1.0000001]
print("bin_low bin_high pairs mean_predicted share_right wrong_person")
for lo, hi in zip(bins, bins[1:]):
    b = [r for r in rows if lo <= float(r["match_probability"]) < hi]
    right = sum(truth[r["local_record_id"]] == "correct" for r in b)
    wrong = sum(truth[r["local_record_id"]].startswith("wrong-person") for r in b)
    mean = sum(float(r["match_probability"]) for r in b) / len(b) if b else float("nan")
    print(lo, hi, len(b), round(mean, 4), round(right / len(b), 4) if b else "-", wrong)
flagged = lambda outcome: [r for r in rows if truth[r["local_record_id"]] == outcome
                           or (outcome == "wrong-person"
                               and truth[r["local_record_id"]].startswith("wrong-person"))]
for outcome in ("wrong-person", "correct"):
    pairs = flagged(outcome)
    hits = sum(r["status"] == "suspected-wrong-person" for r in pairs)
    print(f"{outcome} links flagged: {hits} / {len(pairs)}")
