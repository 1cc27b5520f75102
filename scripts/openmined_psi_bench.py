#!/usr/bin/env python3
"""Side-by-side timing of OpenMined PSI (`openmined-psi` from PyPI) for papers/benchmarks.md.

Runs the client and server of OpenMined PSI in one process on N elements each, half shared,
with the same element strings as `blindlink bench psi --items N`, and prints the elapsed time
and the microseconds of one core per element pair. Pin it to one core and run our bench with
`--threads 1` right after, on the same machine:

    python3 -m venv /tmp/venv-psi && /tmp/venv-psi/bin/pip install openmined-psi
    taskset -c 0 /tmp/venv-psi/bin/python scripts/openmined_psi_bench.py --items 100000
    taskset -c 0 target/release/blindlink bench psi --items 100000 --threads 1

The package is never committed; CI does not run this script.
"""

import argparse
import time

import private_set_intersection.python as psi


def element(i: int) -> str:
    return f"element-{i:012d}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--fpr", type=float, default=1e-9)
    parser.add_argument(
        "--structure", choices=["raw", "bloom", "gcs"], default="raw"
    )
    args = parser.parse_args()
    n = args.items
    client_items = [element(i) for i in range(n)]
    server_items = [element(i) for i in range(n // 2, n + n // 2)]
    structure = {
        "raw": psi.DataStructure.RAW,
        "bloom": psi.DataStructure.BLOOM_FILTER,
        "gcs": psi.DataStructure.GCS,
    }[args.structure]

    start = time.perf_counter()
    server = psi.server.CreateWithNewKey(True)
    client = psi.client.CreateWithNewKey(True)
    setup = server.CreateSetupMessage(args.fpr, len(client_items), server_items, structure)
    request = client.CreateRequest(client_items)
    response = server.ProcessRequest(request)
    intersection = client.GetIntersection(setup, response)
    elapsed = time.perf_counter() - start

    expected = n - n // 2
    if len(intersection) < expected:
        raise SystemExit(f"openmined psi found {len(intersection)} shared, expected {expected}")
    print(f"openmined-psi {psi.__version__}, {n} x {n} elements ({len(intersection)} shared), "
          f"{args.structure}, one core")
    print(f"elapsed: {elapsed:.3f} s")
    print(f"per element pair (both parties): {elapsed * 1e6 / n:.2f} us of one core")


if __name__ == "__main__":
    main()
