#!/usr/bin/env bash
# The Python binding against the CLI on the same data (papers/benchmarks.md, "Python package"):
# `blindlink synth --persons 100000`, then ROUNDS rounds alternating the CLI and Python:
#   encode registry.csv (99,209 records) to CLKs;
#   match 20,000 x 16,000 CLKs at Dice 0.8 (greedy, no blocking);
#   encode the same registry from a pandas DataFrame (in-process, the call only).
# One line per run: name, wall s, user s, sys s of the whole process (/usr/bin/time); for Python
# also the call alone (name-call, wall s, CPU s). The outputs are checked byte for byte.
#
#   python/bench/compare_cli.sh BLINDLINK_BINARY PYTHON [ROUNDS]
# PYTHON must import the blindlink package (a release build: maturin build --release).
set -euo pipefail
B=$(realpath "$1"); PY=$2; rounds=${3:-5}
work=$(mktemp -d "${TMPDIR:-/tmp}/blindlink-compare.XXXXXX"); trap 'rm -rf "$work"' EXIT
here=$(dirname "$(realpath "$0")")
cd "$work"
"$B" synth --persons 100000 --seed 1 --out data >/dev/null
"$PY" -c "import sys; sys.path.insert(0, '$here/../tests'); from conftest import JA_SCHEMA, SECRET; open('schema.toml', 'w').write(JA_SCHEMA); open('key', 'wb').write(SECRET)"
chmod 600 key
head -n 20001 data/registry.csv > a20.csv; head -n 16001 data/insurer.csv > b20.csv
for s in a20 b20; do "$B" encode --schema schema.toml --secret-file key --input $s.csv --output $s.bin --format bin --no-progress >/dev/null; done
cat > call.py <<'PY'
import resource, sys, time
def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime
import blindlink
what = sys.argv[1]
if what == "frame":
    import pandas as pd
    df = pd.read_csv("data/registry.csv", dtype=str, keep_default_na=False)
w, c = time.perf_counter(), cpu()
if what == "encode":
    out = blindlink.encode("data/registry.csv", "schema.toml", open("key", "rb").read())
elif what == "frame":
    out = blindlink.encode(df, "schema.toml", open("key", "rb").read())
else:
    out = blindlink.match("a20.bin", "b20.bin", 0.8)
print(f"py-{what}-call {time.perf_counter() - w:.3f} {cpu() - c:.3f}")
if what == "match":
    with open("py_pairs.csv", "w") as f:
        f.write("a_index,b_index,score\n")
        for a, b, s in zip(*(x.tolist() for x in out)):
            f.write(f"{a},{b},{int(s) if s == int(s) else repr(s)}\n")
else:
    out.tofile(f"py_{what}.raw")
PY
T='%e %U %S'
for i in $(seq "$rounds"); do
    /usr/bin/time -o t -f "cli-encode $T" "$B" encode --schema schema.toml --secret-file key --input data/registry.csv --output a.bin --format bin --no-progress >/dev/null; cat t
    /usr/bin/time -o t -f "py-encode $T" "$PY" call.py encode; cat t
    /usr/bin/time -o t -f "cli-match $T" "$B" match --a a20.bin --b b20.bin --threshold 0.8 --output pairs.csv 2>/dev/null; cat t
    /usr/bin/time -o t -f "py-match $T" "$PY" call.py match; cat t
    "$PY" call.py frame
done
tail -c +57 a.bin | cmp - py_encode.raw && tail -c +57 a.bin | cmp - py_frame.raw && cmp pairs.csv py_pairs.csv
echo "outputs identical"
