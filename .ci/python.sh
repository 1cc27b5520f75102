#!/usr/bin/env bash
# The Python package (issue 15): on a clean machine with only Rust and Python, build the wheel,
# install it into a fresh venv and run its pytest suite against the `blindlink` binary. The last
# line printed is pytest's closing line (`N passed in S s`), which CI reads.
#
# The wheel is built with the dev profile (dependencies at opt-level 3, as the tests' binary):
# the tests check behaviour, not speed, and a thin-LTO release build of the whole graph cost CI
# minutes (`pip install ./python` still builds the release profile). `python/` is a member of
# the root workspace (its bindings behind the `python` feature), so the wheel's build uses the
# root's lock file and `target/` and reuses what `cargo build -p blindlink-cli` compiled: only
# pyo3 and the bindings are compiled here. PyPI must be reachable (maturin, numpy, pandas,
# pytest, mypy).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
work=$(mktemp -d "${TMPDIR:-/tmp}/blindlink-python.XXXXXX")
trap 'rm -rf "$work"' EXIT

echo "== [${SECONDS}s] python: fresh venv in $work with maturin, numpy, pandas, pytest, mypy"
python3 -m venv "$work/venv"
"$work/venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    "maturin>=1.5,<2" numpy pandas pytest "mypy>=2.4,<2.5"

# One feature set for the binary and the wheel: built together, the CLI binary gets the
# features the bindings' graph unifies to (pyo3's macros ask more of syn than the CLI does), so
# maturin below finds every workspace crate already compiled and compiles only the bindings.
export PYO3_PYTHON="$work/venv/bin/python"
echo "== [${SECONDS}s] python: cargo build of blindlink-cli (the binary the tests compare with) and the bindings"
cargo build -p blindlink-cli -p blindlink-python --features blindlink-python/python --locked --quiet

echo "== [${SECONDS}s] python: cargo clippy -D warnings of the bindings (feature python, this venv's interpreter)"
cargo clippy -p blindlink-python --features python \
    --all-targets --locked --quiet -- -D warnings

echo "== [${SECONDS}s] python: maturin build (python/, dev profile)"
started=$(date +%s)
(cd python && CARGO_TARGET_DIR="$root/target" "$work/venv/bin/maturin" build --profile dev --locked \
    --quiet --interpreter "$work/venv/bin/python" --out "$work/wheels")
echo "wheel built in $(( $(date +%s) - started )) s: $(basename "$work"/wheels/*.whl)"
"$work/venv/bin/python" -m pip install --quiet --disable-pip-version-check "$work"/wheels/*.whl

echo "== [${SECONDS}s] python: stubtest (the .pyi stubs against the installed package)"
(cd "$work" && "$work/venv/bin/python" -m mypy.stubtest blindlink)

echo "== [${SECONDS}s] python: pytest python/tests"
status=0
(cd "$work" && BLINDLINK_BIN="$root/target/debug/blindlink" "$work/venv/bin/python" -m pytest \
    "$root/python/tests" -q -p no:cacheprovider >"$work/pytest.log" 2>&1) || status=$?
cat "$work/pytest.log"
tail -n 1 "$work/pytest.log"
exit "$status"
