#!/bin/bash
# Submits one party's sharded linkage to Slurm: the job array of its N shards, then the merge
# as a job that starts only when every shard succeeded. Each organisation runs this on its own
# cluster with its own config (the responder with ROLE=serve, the initiator with ROLE=link).
#
#   deploy/slurm/submit.sh serve registry.toml 4 out/registry out/registry-merged
#   deploy/slurm/submit.sh link insurer.toml 4 out/insurer out/insurer-merged
#
# Environment passed on to the jobs: BLINDLINK_BASE_PORT (default 7443), BLINDLINK_PEER_HOST
# (link), BLINDLINK_LISTEN_HOST (serve), BLINDLINK_BIN; SBATCH_EXTRA: more sbatch options.
#
# An exact cascade of several match keys is one sharded stage per key, each a dependent array
# of the previous one; blindlink does not shard cascades yet (it refuses them), so this
# submits one stage.
set -euo pipefail
if (($# != 5)); then
  echo "usage: $0 serve|link CONFIG N SHARD_ROOT MERGED_DIR" >&2
  exit 2
fi
ROLE=$1 CONFIG=$2 N=$3 ROOT=$4 MERGED=$5
HERE=$(cd "$(dirname "$0")" && pwd)
export BLINDLINK_ROLE=$ROLE BLINDLINK_CONFIG=$CONFIG BLINDLINK_SHARDS=$N
export BLINDLINK_BASE_PORT=${BLINDLINK_BASE_PORT:-7443}
export BLINDLINK_SHARD_ROOT=$ROOT BLINDLINK_MERGED=$MERGED
# shellcheck disable=SC2086
array=$(sbatch --parsable ${SBATCH_EXTRA:-} --array="0-$((N - 1))" --export=ALL \
  --job-name="blindlink-$ROLE" "$HERE/blindlink-shard.sbatch")
# shellcheck disable=SC2086
merge=$(sbatch --parsable ${SBATCH_EXTRA:-} --dependency="afterok:$array" --export=ALL \
  --job-name="blindlink-merge-$ROLE" "$HERE/blindlink-merge.sbatch")
echo "$array $merge"
