#!/usr/bin/env bash
# Issue 10 item 7: the PSI's run-time fallback for CPUs without AVX-512 IFMA, tested.
#
# The workspace builds curve25519-dalek with its IFMA backend (`.cargo/config.toml`), and dalek
# then picks IFMA, AVX2 or serial field arithmetic at run time from the CPU. This script takes
# the psi test binaries that `cargo test --workspace` already built (golden vectors, proptests,
# bad input) and runs them
#   - natively, checking with the `curve_backend` example that the build really has IFMA where
#     the CPU does (so a lost `.cargo/config.toml` fails here), and
#   - on emulated CPUs without AVX-512 (`qemu-x86_64 -cpu Haswell`: the AVX2 path) and without
#     AVX (`-cpu Nehalem`: the serial path), checking that each took the path meant for it.
# qemu implements no AVX-512, so a binary that chose IFMA there would die on an illegal
# instruction: a wrong run-time choice fails too, not only wrong arithmetic.
#
# qemu-user comes from Debian (installed here if missing, with sudo when not root). If it cannot
# be had, the script instead builds and runs the psi tests with the serial backend forced
# (`--cfg curve25519_dalek_backend="serial"`) in their own target dir, as a weaker substitute
# (about two more minutes of CPU on a cold machine); BLINDLINK_CURVE_FALLBACK=serial takes that
# path on purpose.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(uname -m)" != x86_64 ]; then
    echo "curve-fallback: $(uname -m) is not x86-64: dalek builds its portable backend only"
    exit 0
fi

# The executables cargo reports for a build, one per line: the test binaries (`tests`; `cargo
# test --no-run` also builds the examples), or the example named by the argument.
executables() {
    python3 -c '
import json, sys
want = sys.argv[1]
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") != "compiler-artifact" or not m.get("executable"):
        continue
    if (m["profile"]["test"] and want == "tests") or m["target"]["name"] == want:
        print(m["executable"])' "$1"
}

expect_backend() {
    local got=$1 want=$2 where=$3
    if [ "$got" != "$want" ]; then
        echo "curve-fallback: $where: curve25519 backend is '$got', expected '$want'" >&2
        exit 1
    fi
    echo "$where: backend $got"
}

forced_serial() {
    echo "curve-fallback: $1; running the psi tests with the serial backend forced"
    local target=target/serial-backend
    RUSTFLAGS='--cfg curve25519_dalek_backend="serial"' cargo test -p blindlink-psi --locked \
        --target-dir "$target" --quiet
    local example
    example=$(RUSTFLAGS='--cfg curve25519_dalek_backend="serial"' cargo build -p blindlink-psi \
        --example curve_backend --locked --target-dir "$target" --quiet --message-format=json \
        | executables curve_backend)
    expect_backend "$("$example")" serial "forced-serial build"
}

if [ "${BLINDLINK_CURVE_FALLBACK:-qemu}" = serial ]; then
    forced_serial "BLINDLINK_CURVE_FALLBACK=serial"
    exit 0
fi

tests=$(cargo test -p blindlink-psi --locked --no-run --quiet --message-format=json \
    | executables tests)
example=$(cargo build -p blindlink-psi --example curve_backend --locked --quiet \
    --message-format=json | executables curve_backend)
[ -n "$tests" ] && [ -n "$example" ] || { echo "curve-fallback: no psi test binaries" >&2; exit 1; }

flags=$(grep -m1 '^flags' /proc/cpuinfo || true)
native=avx2
if [[ " $flags " == *" avx512ifma "* && " $flags " == *" avx512vl "* ]]; then
    native=avx512ifma
fi
expect_backend "$("$example")" "$native" "native CPU"

if ! command -v qemu-x86_64 >/dev/null 2>&1; then
    sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    echo "curve-fallback: installing Debian's qemu-user"
    if ! { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y \
        -qq qemu-user; } >/dev/null 2>&1 || ! command -v qemu-x86_64 >/dev/null 2>&1; then
        forced_serial "qemu-user could not be installed"
        exit 0
    fi
fi

# Left out under emulation (~50x slower), run natively by `cargo test --workspace`: the grouped
# PSI's 64-case session proptest (40 s of CPU per emulated CPU; the golden vectors and the
# other session tests cover the same arithmetic) and the Bloom filter's rate measurement (no
# curve arithmetic).
skip=(--skip grouped_equals_plain_multiset_intersection
    --skip bloom::tests::measured_false_positive_rate_matches_the_design)

log=$(mktemp)
trap 'rm -f "$log"' EXIT
for cpu_backend in Haswell:avx2 Nehalem:serial; do
    cpu=${cpu_backend%%:*}
    expect_backend "$(qemu-x86_64 -cpu "$cpu" "$example" 2>/dev/null)" "${cpu_backend#*:}" \
        "qemu -cpu $cpu"
    started=$(date +%s)
    for test in $tests; do
        status=0
        qemu-x86_64 -cpu "$cpu" "$test" -q "${skip[@]}" >"$log" 2>&1 || status=$?
        # qemu warns once per thread about CPUID bits it does not emulate (interleaved with the
        # test harness's progress dots); the rest is the test's.
        sed 's/qemu-x86_64: warning: TCG doesn.t support requested feature: [^ ]* \[bit [0-9]*\]//g' \
            "$log" | grep -v '^\.*$' || true
        if [ "$status" -ne 0 ]; then
            echo "curve-fallback: $(basename "$test") failed on qemu -cpu $cpu" >&2
            exit 1
        fi
    done
    echo "qemu -cpu $cpu: psi tests passed in $(($(date +%s) - started)) s"
done
