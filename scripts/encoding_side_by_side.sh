#!/usr/bin/env bash
# Side-by-side single-core encoding speed: clkhash 0.18.3 versus `blindlink encode --threads 1`
# on the same schema, data and secret, in one session (the machine is shared and noisy).
#
#   python3 -m venv /tmp/venv-clkhash && /tmp/venv-clkhash/bin/pip install clkhash==0.18.3
#   cargo build --release
#   scripts/encoding_side_by_side.sh [RUNS]
#
# Data: FEBRL4 a.csv + b.csv (10,000 records) with tests/data/febrl4/schema-5field.json, and
# benches/data/randomnames-10k.csv (and 100,000 more generated records) with clkhash's
# randomnames schema. clkhash's time excludes
# interpreter start-up and output serialisation (scripts/clkhash_speed.py); blindlink's is the
# time its summary line reports, which includes reading the CSV and writing and syncing the
# output file. Both start with cold token caches. Both are pinned to one core (`taskset -c 0`):
# blindlink's CSV reader and output writer are threads of their own, which would otherwise run
# on the second core and flatter the per-core figure.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-5}
PY=${PYTHON:-/tmp/venv-clkhash/bin/python}
BIN=target/release/blindlink
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

(head -1 tests/data/febrl4/a.csv; tail -n +2 tests/data/febrl4/a.csv; tail -n +2 tests/data/febrl4/b.csv) >"$WORK/febrl4.csv"
# scripts/anonlink_febrl4.py gives clkhash the FEBRL4 secret stripped of whitespace: do the same.
printf '%s' "$(cat tests/data/febrl4/secret.txt)" >"$WORK/febrl4.key"

median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

compare() {
    local name=$1 schema=$2 key=$3 data=$4 records
    records=$(($(wc -l <"$data") - 1))
    local py_rate
    py_rate=$(taskset -c 0 "$PY" scripts/clkhash_speed.py "$schema" "$key" "$data" "$RUNS" | awk '/^median/ {gsub(",", "", $2); print $2}')
    local rates=()
    for _ in $(seq "$RUNS"); do
        local seconds
        seconds=$(taskset -c 0 "$BIN" encode --schema "$schema" --secret-file "$key" --input "$data" \
            --output "$WORK/out.json" --threads 1 --no-progress | sed -E 's/.* in ([0-9.]+) s$/\1/')
        rates+=("$(awk -v n="$records" -v s="$seconds" 'BEGIN {printf "%.0f", n / (s > 0 ? s : 0.001)}')")
    done
    local rust_rate
    rust_rate=$(printf '%s\n' "${rates[@]}" | median)
    printf '%-16s %8d records  clkhash %10.0f rec/s  blindlink %10.0f rec/s  ratio %6.1fx\n' \
        "$name" "$records" "$py_rate" "$rust_rate" "$(awk -v a="$rust_rate" -v b="$py_rate" 'BEGIN {print a / b}')"
}

compare febrl4 tests/data/febrl4/schema-5field.json "$WORK/febrl4.key" "$WORK/febrl4.csv"
compare randomnames tests/data/clkhash/randomnames.schema.json tests/data/clkhash/secret.key benches/data/randomnames-10k.csv
# A larger run, where blindlink's fixed costs (key derivation, fsync) no longer dominate.
"$PY" scripts/clkhash_randomnames.py 100000 "$WORK/randomnames-100k.csv"
compare randomnames-100k tests/data/clkhash/randomnames.schema.json tests/data/clkhash/secret.key "$WORK/randomnames-100k.csv"
