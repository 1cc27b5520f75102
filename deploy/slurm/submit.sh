#!/bin/bash
# Submits one party's sharded linkage to Slurm: the job array of its N shards, then the merge
# as a job that starts only when every shard succeeded. Each organisation runs this on its own
# cluster with its own config (the responder with ROLE=serve, the initiator with ROLE=link).
#
#   deploy/slurm/submit.sh serve registry.toml 4 out/registry out/registry-merged
#   deploy/slurm/submit.sh link insurer.toml 4 out/insurer out/insurer-merged
#
# An exact cascade of several match keys runs one sharded stage per key: give the number of
# stages (the config's match keys) as a sixth argument. Stage K's array then depends on the
# merge of stages 0 to K-1 (afterok), which it reads as --previous, and its own merge (stages 0
# to K) goes to MERGED_DIR-stage-K, the last one to MERGED_DIR:
#
#   deploy/slurm/submit.sh link insurer.toml 4 out/insurer out/insurer-merged 2
#
# Prints the job ids: the array and the merge of each stage, in order.
#
# Environment passed on to the jobs: BLINDLINK_BASE_PORT (default 7443), BLINDLINK_PEER_HOST
# (link), BLINDLINK_LISTEN_HOST (serve), BLINDLINK_BIN; SBATCH_EXTRA: more sbatch options.
set -euo pipefail
if (($# != 5 && $# != 6)); then
  echo "usage: $0 serve|link CONFIG N SHARD_ROOT MERGED_DIR [STAGES]" >&2
  exit 2
fi
ROLE=$1 CONFIG=$2 N=$3 ROOT=$4 MERGED=$5 STAGES=${6:-}
HERE=$(cd "$(dirname "$0")" && pwd)
export BLINDLINK_ROLE=$ROLE BLINDLINK_CONFIG=$CONFIG BLINDLINK_SHARDS=$N
export BLINDLINK_BASE_PORT=${BLINDLINK_BASE_PORT:-7443}
export BLINDLINK_SHARD_ROOT=$ROOT BLINDLINK_MERGED=$MERGED
if [[ -z $STAGES ]]; then
  # shellcheck disable=SC2086
  array=$(sbatch --parsable ${SBATCH_EXTRA:-} --array="0-$((N - 1))" --export=ALL \
    --job-name="blindlink-$ROLE" "$HERE/blindlink-shard.sbatch")
  # shellcheck disable=SC2086
  merge=$(sbatch --parsable ${SBATCH_EXTRA:-} --dependency="afterok:$array" --export=ALL \
    --job-name="blindlink-merge-$ROLE" "$HERE/blindlink-merge.sbatch")
  echo "$array $merge"
  exit 0
fi
ids=()
after=()
for ((k = 0; k < STAGES; k++)); do
  export BLINDLINK_STAGE=$k
  if ((k > 0)); then
    export BLINDLINK_PREVIOUS=$MERGED-stage-$((k - 1))
  else
    unset BLINDLINK_PREVIOUS
  fi
  if ((k == STAGES - 1)); then
    export BLINDLINK_MERGED=$MERGED
  else
    export BLINDLINK_MERGED=$MERGED-stage-$k
  fi
  # shellcheck disable=SC2086
  array=$(sbatch --parsable ${SBATCH_EXTRA:-} "${after[@]}" --array="0-$((N - 1))" \
    --export=ALL --job-name="blindlink-$ROLE-stage-$k" "$HERE/blindlink-shard.sbatch")
  # shellcheck disable=SC2086
  merge=$(sbatch --parsable ${SBATCH_EXTRA:-} --dependency="afterok:$array" --export=ALL \
    --job-name="blindlink-merge-$ROLE-stage-$k" "$HERE/blindlink-merge.sbatch")
  ids+=("$array" "$merge")
  after=(--dependency="afterok:$merge")
done
echo "${ids[*]}"
