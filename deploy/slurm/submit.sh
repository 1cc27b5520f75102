#!/bin/bash
# Submits one party's sharded linkage to Slurm: a split job (blindlink split: one pass writes
# each shard's rows to its own file), the job array of its N shards (afterok on the split; task
# I reads its own file with --input), then the merge as a job that starts only when every
# shard succeeded. Each organisation runs this on its own
# cluster with its own config (the responder with ROLE=serve, the initiator with ROLE=link).
#
#   deploy/slurm/submit.sh serve registry.toml 4 out/registry out/registry-merged
#   deploy/slurm/submit.sh link insurer.toml 4 out/insurer out/insurer-merged
#
# An exact cascade of several match keys runs one sharded stage per key: give the number of
# stages (the config's match keys) as a sixth argument. Stage K's split then depends on the
# merge of stages 0 to K-1 (afterok), which it reads as --previous (it keeps the records they
# left unlinked, routed by key K), its array on its split, and its own merge (stages 0 to K)
# goes to MERGED_DIR-stage-K, the last one to MERGED_DIR:
#
#   deploy/slurm/submit.sh link insurer.toml 4 out/insurer out/insurer-merged 2
#
# Prints the job ids: the split, the array and the merge of each stage, in order.
#
# The split files go to BLINDLINK_SPLIT_DIR (default SHARD_ROOT-split; stage K's to its
# stage-K/ inside). BLINDLINK_SPLIT=0 submits no split job and lets every task read the whole
# input (a config whose [input] is a PostgreSQL query, which split cannot read).
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
SPLIT=${BLINDLINK_SPLIT:-1}
SPLIT_ROOT=${BLINDLINK_SPLIT_DIR:-${ROOT%/}-split}
unset BLINDLINK_SPLIT_DIR

# Submits stage $1's split (if any, after the options in "${after[@]}"), its array after the
# split, and its merge after the array; appends their ids to ids.
submit_stage() {
  local name=$1 split_dep=("${after[@]}") split array merge
  if [[ $SPLIT == 1 ]]; then
    # shellcheck disable=SC2086
    split=$(sbatch --parsable ${SBATCH_EXTRA:-} "${after[@]}" --export=ALL \
      --job-name="blindlink-split-$ROLE$name" "$HERE/blindlink-split.sbatch")
    ids+=("$split")
    split_dep=(--dependency="afterok:$split")
  fi
  # shellcheck disable=SC2086
  array=$(sbatch --parsable ${SBATCH_EXTRA:-} "${split_dep[@]}" --array="0-$((N - 1))" \
    --export=ALL --job-name="blindlink-$ROLE$name" "$HERE/blindlink-shard.sbatch")
  # shellcheck disable=SC2086
  merge=$(sbatch --parsable ${SBATCH_EXTRA:-} --dependency="afterok:$array" --export=ALL \
    --job-name="blindlink-merge-$ROLE$name" "$HERE/blindlink-merge.sbatch")
  ids+=("$array" "$merge")
  after=(--dependency="afterok:$merge")
}

ids=()
after=()
if [[ -z $STAGES ]]; then
  [[ $SPLIT == 1 ]] && export BLINDLINK_SPLIT_DIR=$SPLIT_ROOT
  submit_stage ""
  echo "${ids[*]}"
  exit 0
fi
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
  [[ $SPLIT == 1 ]] && export BLINDLINK_SPLIT_DIR=$SPLIT_ROOT/stage-$k
  submit_stage "-stage-$k"
done
echo "${ids[*]}"
