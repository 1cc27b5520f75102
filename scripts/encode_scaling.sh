#!/usr/bin/env bash
# Scaling of `blindlink encode` over cores, side by side: every round runs the same encoding
# pinned to one core (`taskset -c 0`, --threads 1) and then to two cores (`taskset -c 0,1`,
# --threads 2); it prints each round, then the medians and their ratio. Interleaving the two
# cases round by round (alternating which goes first) keeps a noisy shared machine from
# favouring one of them; the figure to quote is the median of the per-round ratios. As a
# control, each round also runs two independent one-core encodings at once, one per core: what
# this machine gives perfectly parallel work (shared caches, memory bandwidth, clock changes
# and noisy neighbours make it less than 2x on a VM).
#
#   cargo build --release && scripts/encode_scaling.sh [ROUNDS] [PERSONS]
#
# The input is the registry file of `blindlink synth --persons PERSONS` (default 1,000,000
# persons, ~990,000 records) encoded with benches/data/synth-registry.toml. Set SCHEMA, SECRET
# and INPUT to measure other data, e.g. clkhash's randomnames schema:
#   SCHEMA=tests/data/clkhash/randomnames.schema.json SECRET=tests/data/clkhash/secret.key \
#   INPUT=/tmp/rn1m.csv scripts/encode_scaling.sh
# Output goes to a temporary directory next to the input's, so each run includes writing the
# file and its fsync, as a real run does; set OUTDIR=/dev/shm to leave the disk out.
set -euo pipefail
rounds=${1:-7}
persons=${2:-1000000}
bin=${BLINDLINK:-target/release/blindlink}
schema=${SCHEMA:-benches/data/synth-registry.toml}
secret=${SECRET:-examples/linkage.key}
work=$(mktemp -d "${OUTDIR:-${TMPDIR:-/tmp}}/encode-scaling.XXXXXX")
trap 'rm -rf "$work"' EXIT
if [[ -z "${INPUT:-}" ]]; then
    "$bin" synth --persons "$persons" --out "$work/synth" >/dev/null
    INPUT=$work/synth/registry.csv
fi
echo "input: $INPUT ($(($(wc -l <"$INPUT") - 1)) records), schema: $schema"
if (($(nproc) < 2)); then
    echo "this machine has one core: nothing to compare" >&2
    exit 1
fi

# Seconds of one run, as `blindlink encode` reports them: run CORES THREADS [OUTPUT].
run() {
    taskset -c "$1" "$bin" encode --schema "$schema" --secret-file "$secret" --input "$INPUT" \
        --output "$work/${3:-clks}.json" --threads "$2" --no-progress |
        sed -E 's/.* in ([0-9.]+) s$/\1/'
}
# The control: two independent one-core runs at once, one on each core; seconds of the slower.
pair() {
    local x y
    run 0 1 left >"$work/left.t" &
    run 1 1 right >"$work/right.t" &
    wait
    x=$(<"$work/left.t") y=$(<"$work/right.t")
    awk -v x="$x" -v y="$y" 'BEGIN { print (x > y) ? x : y }'
}
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

one=() two=() ratios=() ceilings=()
for ((r = 1; r <= rounds; r++)); do
    # Alternate the order, so a machine that speeds up or slows down during a round does not
    # always favour the same case.
    if ((r % 2)); then
        a=$(run 0 1) b=$(run 0,1 2) p=$(pair)
    else
        p=$(pair) b=$(run 0,1 2) a=$(run 0 1)
    fi
    ratio=$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.2f", a / b }')
    ceiling=$(awk -v a="$a" -v p="$p" 'BEGIN { printf "%.2f", 2 * a / p }')
    one+=("$a") two+=("$b") ratios+=("$ratio") ceilings+=("$ceiling")
    echo "round $r: 1 core ${a} s, 2 cores ${b} s: ${ratio}x (two independent 1-core runs: ${p} s, ${ceiling}x)"
done
m1=$(printf '%s\n' "${one[@]}" | median)
m2=$(printf '%s\n' "${two[@]}" | median)
mr=$(printf '%s\n' "${ratios[@]}" | median)
mc=$(printf '%s\n' "${ceilings[@]}" | median)
records=$(($(wc -l <"$INPUT") - 1))
awk -v m1="$m1" -v m2="$m2" -v n="$records" -v mr="$mr" -v mc="$mc" 'BEGIN {
    printf "median: 1 core %.3f s (%.0f records/s), 2 cores %.3f s (%.0f records/s)\n", m1, n / m1, m2, n / m2
    printf "median of the per-round ratios: %.2fx (the machine gives two independent runs %.2fx)\n", mr, mc }'
