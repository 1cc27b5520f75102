#!/usr/bin/env python3
"""Side by side: anonlink's Dice candidate generation vs blindlink's on anonlink's own benchmark
workload (random 1024-bit filters, threshold 0.8, one core), with the candidate sets compared.

The workload follows anonlink's benchmark.py: a pool of 10,000 uniformly random filters, data set
a draws N filters from pool[0:8000], data set b draws N from pool[2000:10000] (so some pairs are
identical and there are candidates to compare). Filters come from a seeded generator so the run
is reproducible. Both sides get the same filters (raw bytes files for blindlink).

    /tmp/venv-anonlink/bin/pip install anonlink==0.15.3
    cargo build --release -p blindlink-matching --example dice_throughput
    /tmp/venv-anonlink/bin/python scripts/anonlink_speed.py --size 10000 --runs 5

Timings are medians of CPU time (the shared machine's wall time includes other people's work)
and wall time; both sides are single-threaded here.
"""
import argparse
import csv
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import anonlink
from bitarray import bitarray


def make_workload(size, seed, bits=1024):
    rng = random.Random(seed)
    pool = [rng.getrandbits(bits).to_bytes(bits // 8, "big") for _ in range(10_000)]
    a = [pool[rng.randrange(0, 8000)] for _ in range(size)]
    b = [pool[rng.randrange(2000, 10_000)] for _ in range(size)]
    return a, b


def to_bitarrays(filters):
    out = []
    for f in filters:
        x = bitarray(endian="big")
        x.frombytes(f)
        out.append(x)
    return out


def anonlink_candidates(a, b, threshold, runs):
    fa, fb = to_bitarrays(a), to_bitarrays(b)
    cpu, wall, result = [], [], None
    for _ in range(runs):
        c0, w0 = time.process_time(), time.perf_counter()
        result = anonlink.candidate_generation.find_candidate_pairs(
            (fa, fb), anonlink.similarities.dice_coefficient, threshold)
        cpu.append(time.process_time() - c0)
        wall.append(time.perf_counter() - w0)
    sims, _, (rec_a, rec_b) = result
    pairs = sorted(zip(rec_a, rec_b, sims))
    return pairs, statistics.median(cpu), statistics.median(wall)


def read_pairs(path):
    with open(path) as f:
        rows = list(csv.reader(f))[1:]
    return sorted((int(a), int(b), float(s)) for a, b, s in rows)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--size", type=int, default=10_000)
    p.add_argument("--threshold", type=float, default=0.8)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--seed", type=int, default=2024)
    p.add_argument("--binary", default="target/release/examples/dice_throughput")
    args = p.parse_args()

    a, b = make_workload(args.size, args.seed)
    ours_dir = Path(tempfile.mkdtemp(prefix="blindlink-speed-"))
    (ours_dir / "a.bin").write_bytes(b"".join(a))
    (ours_dir / "b.bin").write_bytes(b"".join(b))

    theirs, cpu, wall = anonlink_candidates(a, b, args.threshold, args.runs)
    n = args.size * args.size
    print(f"anonlink {anonlink.__version__ if hasattr(anonlink, '__version__') else ''}: "
          f"{args.size} x {args.size}, threshold {args.threshold}: {len(theirs)} candidates, "
          f"median cpu {cpu:.3f} s ({n / cpu / 1e6:.0f} M comparisons/cpu-s), "
          f"wall {wall:.3f} s ({n / wall / 1e6:.0f} M/s)")

    out = ours_dir / "pairs.csv"
    cmd = [args.binary, str(ours_dir / "a.bin"), str(ours_dir / "b.bin"), "1024",
           str(args.threshold), "1", str(args.runs), str(out)]
    print("$ " + " ".join(cmd), flush=True)
    report = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    print(report, end="")

    ours = read_pairs(out)
    same_pairs = [(x, y) for x, y, _ in ours] == [(x, y) for x, y, _ in theirs]
    same_scores = same_pairs and all(s == t for (_, _, s), (_, _, t) in zip(ours, theirs))
    print(f"candidate sets: anonlink {len(theirs)}, blindlink {len(ours)}, "
          f"same pairs: {same_pairs}, same scores: {same_scores}")
    # The last line of the table is the fastest kernel with pruning; compare CPU seconds.
    for line in report.splitlines():
        fields = line.split()
        if len(fields) == 9 and fields[1] in ("true", "false"):
            ratio = cpu / float(fields[3])
            print(f"  {fields[0]:<17} prune={fields[1]:<5} {ratio:5.1f}x anonlink per core (cpu time)")
    if not (same_pairs and same_scores):
        sys.exit("candidate sets differ")


if __name__ == "__main__":
    main()
