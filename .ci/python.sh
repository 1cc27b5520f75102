#!/usr/bin/env bash
# The Python package (issue 15): on a clean machine with only Rust and Python, build the wheel,
# install it into a fresh venv and run its pytest suite against the `blindlink` binary. The last
# line printed is pytest's closing line (`N passed in S s`), which CI reads.
#
# The wheel is built with the dev profile (dependencies at opt-level 3, as the tests' binary):
# the tests check behaviour, not speed, and a thin-LTO release build of the whole graph cost CI
# minutes (`pip install ./python` still builds the release profile). Its target directory is the
# workspace's own `target/`, so build scripts and proc macros already compiled by the Rust steps
# are reused. PyPI must be reachable (maturin, numpy, pandas, pytest).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
work=$(mktemp -d "${TMPDIR:-/tmp}/blindlink-python.XXXXXX")
trap 'rm -rf "$work"' EXIT

echo "== python: cargo fmt --check (python/ is its own workspace)"
(cd python && cargo fmt --check)

echo "== python: fresh venv in $work with maturin, numpy, pandas, pytest, mypy"
python3 -m venv "$work/venv"
"$work/venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    "maturin>=1.5,<2" numpy pandas pytest "mypy>=2.4,<2.5"

echo "== python: cargo build -p blindlink-cli (the binary the tests compare with)"
cargo build -p blindlink-cli --locked --quiet

echo "== python: maturin build (python/, dev profile)"
started=$(date +%s)
(cd python && CARGO_TARGET_DIR="$root/target" "$work/venv/bin/maturin" build --profile dev --locked \
    --quiet --interpreter "$work/venv/bin/python" --out "$work/wheels")
echo "wheel built in $(( $(date +%s) - started )) s: $(basename "$work"/wheels/*.whl)"
"$work/venv/bin/python" -m pip install --quiet --disable-pip-version-check "$work"/wheels/*.whl

echo "== python: stubtest (the .pyi stubs against the installed package)"
(cd "$work" && "$work/venv/bin/python" -m mypy.stubtest blindlink)

echo "== python: pytest python/tests"
status=0
(cd "$work" && BLINDLINK_BIN="$root/target/debug/blindlink" "$work/venv/bin/python" -m pytest \
    "$root/python/tests" -q -p no:cacheprovider >"$work/pytest.log" 2>&1) || status=$?
cat "$work/pytest.log"
tail -n 1 "$work/pytest.log"
exit "$status"
