#!/bin/bash
# The Slurm path for real, on one machine: installs Debian's slurm-wlm and munge if missing,
# starts munged, slurmctld and slurmd on loopback (a one-node cluster whose state lives in a
# scratch directory), links synthetic data unsharded, then submits both parties' split jobs,
# job arrays for N = 4 shards (each task reading its own split file through --input) and
# merges through submit.sh, waits, and compares the merged links
# with the unsharded ones (as sets: rows without the random link ids, and the linked pairs).
# By default the linkage is the example's exact cascade of 2 keys (my_number, then
# kana+dob+sex), run as 2 dependent stages of N shards each; BLINDLINK_SLURM_STAGES=1 cuts it
# to its first key and runs one stage without --stage, as before. BLINDLINK_SPLIT=0: no split
# jobs, every task reads the whole input (as before the split step).
#
#   BLINDLINK_SLURM_TEST=1 deploy/slurm/test-local.sh
#
# Installs packages and starts daemons (as root, or through sudo), so it runs only when
# BLINDLINK_SLURM_TEST=1 and never in .ci/run. Environment: BLINDLINK_BIN (default
# target/release/blindlink, else target/debug/blindlink), BLINDLINK_SLURM_PERSONS (20000),
# BLINDLINK_SLURM_SHARDS (4), BLINDLINK_SLURM_WORK (a fresh /tmp directory; kept).
set -euo pipefail
if [[ ${BLINDLINK_SLURM_TEST:-} != 1 ]]; then
  echo "skipped: set BLINDLINK_SLURM_TEST=1 (installs slurm-wlm and munge, starts daemons)"
  exit 0
fi
REPO=$(cd "$(dirname "$0")/../.." && pwd)
HERE=$REPO/deploy/slurm
BIN=${BLINDLINK_BIN:-$REPO/target/release/blindlink}
[[ -x $BIN ]] || BIN=$REPO/target/debug/blindlink
PERSONS=${BLINDLINK_SLURM_PERSONS:-20000}
N=${BLINDLINK_SLURM_SHARDS:-4}
STAGES=${BLINDLINK_SLURM_STAGES:-2}
WORK=${BLINDLINK_SLURM_WORK:-$(mktemp -d /tmp/blindlink-slurm.XXXXXX)}
PORT=${BLINDLINK_SLURM_PORT:-17443}
SUDO=
[[ $(id -u) == 0 ]] || SUDO=sudo
mkdir -p "$WORK"/{slurm/state,slurm/spool,logs}
cd "$WORK"
echo "work directory: $WORK; binary: $BIN"

# --- the cluster --------------------------------------------------------------------------
if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
  $SUDO apt-get update
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
    slurm-wlm munge
fi
if [[ ! -s /etc/munge/munge.key ]]; then
  $SUDO sh -c 'dd if=/dev/urandom bs=1024 count=1 of=/etc/munge/munge.key 2>/dev/null'
  $SUDO chown munge:munge /etc/munge/munge.key
  $SUDO chmod 0400 /etc/munge/munge.key
fi
$SUDO mkdir -p /run/munge /var/log/munge /var/lib/munge
$SUDO chown munge:munge /run/munge /var/log/munge /var/lib/munge
if ! pgrep -x munged >/dev/null; then
  $SUDO runuser -u munge -- /usr/sbin/munged
fi
# 4 x CPUs so that every shard's server and client run at once (a server waits for its
# client: with fewer slots the arrays would wait on each other); slurmd accepts the
# overstatement with config_overrides.
cat > slurm/slurm.conf <<CONF
ClusterName=blindlink-test
SlurmctldHost=localhost(127.0.0.1)
SlurmUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SlurmdParameters=config_overrides
ReturnToService=2
MinJobAge=3600
StateSaveLocation=$WORK/slurm/state
SlurmdSpoolDir=$WORK/slurm/spool
SlurmctldPidFile=$WORK/slurm/slurmctld.pid
SlurmdPidFile=$WORK/slurm/slurmd.pid
SlurmctldLogFile=$WORK/slurm/slurmctld.log
SlurmdLogFile=$WORK/slurm/slurmd.log
SlurmctldPort=16817
SlurmdPort=16818
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$((4 * N)) State=UNKNOWN
PartitionName=blindlink Nodes=localhost Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF=$WORK/slurm/slurm.conf
$SUDO env SLURM_CONF="$SLURM_CONF" /usr/sbin/slurmctld -c
$SUDO env SLURM_CONF="$SLURM_CONF" /usr/sbin/slurmd -N localhost
stop_cluster() {
  $SUDO kill "$(cat "$WORK/slurm/slurmd.pid" 2>/dev/null)" 2>/dev/null || true
  $SUDO kill "$(cat "$WORK/slurm/slurmctld.pid" 2>/dev/null)" 2>/dev/null || true
}
trap stop_cluster EXIT
for _ in $(seq 60); do
  sinfo -h -o %T 2>/dev/null | grep -qx idle && break
  sleep 1
done
sinfo

# --- the data and the parties ---------------------------------------------------------------
"$BIN" synth --scenario registry-insurer --persons "$PERSONS" --out data >/dev/null
"$BIN" certs --out certs --names registry,insurer >/dev/null
"$BIN" keygen --out linkage.key >/dev/null
cp "$REPO"/examples/peers/{schema.toml,registry.toml,insurer.toml} .
for party in registry insurer; do
  python3 - "$party.toml" "$PORT" "$STAGES" <<'PY'
import sys
path, port, stages = sys.argv[1], sys.argv[2], sys.argv[3]
text = open(path).read()
text = text.replace('mode = "validate"', 'mode = "exact"', 1)
text = text.replace("127.0.0.1:7443", f"127.0.0.1:{port}")
if stages == "1":  # one key: one sharded run without stages
    start = text.find('[[input.match_key]]\nname = "kana+dob+sex"')
    text = text[:start] + text[text.find("[output]"):]
open(path, "w").write(text)
PY
done
# Every blindlink process's times, for papers/scale.md.
cat > timed-blindlink <<SH
#!/bin/sh
exec /usr/bin/time -a -o $WORK/times.txt -f "%C|%e|%U|%S|%M" $BIN "\$@"
SH
chmod +x timed-blindlink

# --- unsharded ------------------------------------------------------------------------------
start=$(date +%s.%N)
./timed-blindlink serve --quiet --config registry.toml &
server=$!
until (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null; do sleep 0.2; done
./timed-blindlink link --quiet --config insurer.toml
wait $server
echo "unsharded: $(awk "BEGIN { printf \"%.1f\", $(date +%s.%N) - $start }") s wall"
mv out unsharded

# --- sharded, through Slurm ---------------------------------------------------------------
export BLINDLINK_BIN=$WORK/timed-blindlink BLINDLINK_BASE_PORT=$PORT
export BLINDLINK_LISTEN_HOST=127.0.0.1 BLINDLINK_PEER_HOST=127.0.0.1
export SBATCH_EXTRA="--cpus-per-task=1 --chdir=$WORK --output=$WORK/logs/%x-%A_%a.out"
start=$(date +%s.%N)
STAGE_ARG=()
((STAGES > 1)) && STAGE_ARG=("$STAGES")
read -r -a reg_jobs < <("$HERE/submit.sh" serve registry.toml "$N" out/registry merged/registry "${STAGE_ARG[@]}")
read -r -a ins_jobs < <("$HERE/submit.sh" link insurer.toml "$N" out/insurer merged/insurer "${STAGE_ARG[@]}")
echo "submitted (split, array, merge per stage): registry ${reg_jobs[*]}; insurer ${ins_jobs[*]}"
jobs=$(IFS=,; echo "${reg_jobs[*]},${ins_jobs[*]}")
while [[ -n $(squeue -h -j "$jobs" 2>/dev/null) ]]; do
  sleep 2
done
echo "sharded (N = $N, $STAGES stage(s)) through Slurm: $(awk "BEGIN { printf \"%.1f\", $(date +%s.%N) - $start }") s wall"
for job in ${jobs//,/ }; do scontrol show job "$job"; done | grep -E "JobId|JobState" | paste - - || true

# --- compare --------------------------------------------------------------------------------
python3 - <<'PY'
import csv, sys
def table(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))
def linkage(reg, ins):
    a, b = table(f"{reg}/links.csv"), table(f"{ins}/links.csv")
    rows = {(p, tuple(sorted((k, v) for k, v in r.items() if k != "link_id")))
            for p, t in (("registry", a), ("insurer", b)) for r in t}
    by_link = {r["link_id"]: r["local_record_id"] for r in b if r["link_id"]}
    pairs = {(r["local_record_id"], by_link[r["link_id"]]) for r in a if r["link_id"]}
    return rows, pairs
whole = linkage("unsharded/registry", "unsharded/insurer")
merged = linkage("merged/registry", "merged/insurer")
print(f"unsharded: {len(whole[0])} rows, {len(whole[1])} linked pairs; "
      f"merged: {len(merged[0])} rows, {len(merged[1])} linked pairs")
if whole != merged:
    print("FAIL: the merged links differ from the unsharded ones")
    sys.exit(1)
print("OK: the merged links equal the unsharded links (as sets)")
PY
echo "times (command|wall s|user s|sys s|max RSS KB):"
cat times.txt
