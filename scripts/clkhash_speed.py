#!/usr/bin/env python3
"""Single-core clkhash 0.18.3 encoding speed, the reference for papers/benchmarks.md.

    /tmp/venv-clkhash/bin/python scripts/clkhash_speed.py SCHEMA.json SECRET_FILE DATA.csv [RUNS]

Times `clk.generate_clk_from_csv(..., max_workers=1)` (one process, no pool; the CSV is read
from memory, interpreter start-up excluded; clkhash's token caches emptied before each run),
prints each run and the median in records/s.
The secret is the file's bytes, stripped of surrounding whitespace only if the file name ends
in .txt (as scripts/anonlink_febrl4.py hands FEBRL4's secret to clkhash).
"""
import io
import statistics
import sys
import time

from clkhash import bloomfilter, clk
from clkhash.schema import from_json_file


def main():
    schema_path, secret_path, data_path = sys.argv[1:4]
    runs = int(sys.argv[4]) if len(sys.argv) > 4 else 3
    schema = from_json_file(open(schema_path))
    secret = open(secret_path, "rb").read()
    if secret_path.endswith(".txt"):
        secret = secret.strip()
    text = open(data_path, encoding="utf-8").read()
    records = text.count("\n") - 1
    rates = []
    for run in range(runs):
        # clkhash memoises tokens and whole fields in lru_caches that outlive a call; empty
        # them so every run starts cold, like a fresh `clkutil hash` (and a fresh blindlink).
        for cached in (bloomfilter._double_hash_encode_ngrams, bloomfilter._double_hash_token,
                       bloomfilter._double_hash_token_non_singular, bloomfilter._blake_encode_ngrams,
                       bloomfilter.blake_hash_token):
            cached.cache_clear()
        start = time.perf_counter()
        clks = clk.generate_clk_from_csv(io.StringIO(text), secret, schema, progress_bar=False, max_workers=1)
        elapsed = time.perf_counter() - start
        assert len(clks) == records
        rates.append(records / elapsed)
        print(f"run {run}: {records} records in {elapsed:.2f} s = {records / elapsed:,.0f} records/s")
    print(f"median: {statistics.median(rates):,.0f} records/s")


if __name__ == "__main__":
    main()
