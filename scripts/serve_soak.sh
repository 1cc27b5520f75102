#!/usr/bin/env bash
# Soak test of one long-running `blindlink serve`: SESSIONS small `link` sessions, one after
# another, against one server process; prints the server's resident set size (VmRSS) after the
# first session and at every power of ten, and at the end. Loopback, mutual TLS, the example
# configs with `max_sessions = 0`; everything lives in a temporary directory that is removed.
#
#   scripts/serve_soak.sh BLINDLINK_BINARY [SESSIONS=400] [PERSONS=100] [MODE=validate]
set -euo pipefail
bin=$(realpath "$1")
sessions=${2:-400}
persons=${3:-100}
mode=${4:-validate}
examples=$(dirname "$0")/../examples/peers
dir=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$dir"' EXIT
pid=
"$bin" synth --scenario registry-insurer --persons "$persons" --out "$dir/data" >/dev/null
"$bin" certs --out "$dir/certs" --names registry,insurer >/dev/null
"$bin" keygen --out "$dir/linkage.key" >/dev/null
cp "$examples"/{schema.toml,clk-schema.toml,registry.toml,insurer.toml} "$dir/"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
for party in registry insurer; do
  sed -i -e "s/127.0.0.1:7443/127.0.0.1:$port/" -e "s/^mode = .*/mode = \"$mode\"/" \
    -e "s/^max_sessions = [0-9]*/max_sessions = 0/" "$dir/$party.toml"
done
"$bin" serve --quiet --config "$dir/registry.toml" 2>"$dir/serve.log" &
pid=$!
rss() { awk '/^VmRSS/ {print $2}' "/proc/$pid/status"; }
# The first link also waits for the server to bind.
for _ in $(seq 50); do
  "$bin" link --quiet --config "$dir/insurer.toml" 2>/dev/null && break
  sleep 0.1
done
echo "sessions rss_kib"
echo "1 $(rss)"
start=$(date +%s.%N)
for i in $(seq 2 "$sessions"); do
  "$bin" link --quiet --config "$dir/insurer.toml"
  case $i in 10|100|1000|10000|"$sessions") echo "$i $(rss)" ;; esac
done
end=$(date +%s.%N)
echo "# $((sessions - 1)) sessions in $(echo "$end - $start" | bc) s; peak (VmHWM) $(awk '/^VmHWM/ {print $2}' "/proc/$pid/status") KiB"
kill -TERM "$pid"
wait "$pid"
echo "# completed sessions written: $(find "$dir/out/registry" -name links.csv | wc -l)"
