#!/bin/bash
# Runs the exact cascade of cascade/ on Kubernetes, stage after stage, in the current kubectl
# context and namespace (config.yaml of the parent directory applied first, with real secrets):
#
#   deploy/k8s/cascade/cascade.sh [STAGES]          # default 2: stage-0.yaml, stage-1.yaml
#
# Per stage K:
#   1. apply split-stage-K.yaml: each party's split Job (blindlink split --shards N --stage K,
#      for K > 0 --previous its own merge of stages 0 to K-1) writes its shards' files to
#      /data/split/<party>-cascade/stage-K/; wait until both are Complete -- or stop if one
#      Failed;
#   2. apply stage-K.yaml: the registry's StatefulSet registry-stage-K (N servers, --stage K,
#      for K > 0 --previous the registry's merge of stages 0 to K-1, pod I reading its split
#      file through --input) behind the headless Service registry-stage-K, and the insurer's
#      Indexed Job insurer-link-stage-K (index I reading its own split file);
#   3. wait until insurer-link-stage-K is Complete (every index linked; a link that found its
#      server not yet listening was retried) -- or stop if it Failed;
#   4. delete registry-stage-K in the foreground: its servers get SIGTERM, finish their
#      sessions and write their outputs, and the deletion returns once every pod is gone;
#   5. apply merge-stage-K.yaml (both parties' merges of stages 0 to K, from their output
#      directories as shard roots) and wait until both are Complete -- or stop if one Failed.
# Stage K + 1's splits and pods read those merges as --previous, so they are applied only now.
#
# Why a script and not init containers polling the shared volume for a marker: the Job's
# Complete/Failed condition is the API server's own record of every index having succeeded,
# visible to `kubectl get jobs`; a marker file on a ReadWriteMany volume can be stale from an
# earlier run and says nothing about failure, and waiting init containers would hold N pods
# (and their resource requests) pending per stage for the whole run. Step 3 is an action, not
# a condition: only something outside the pods can drain the registry before its merge.
#
# Environment: BLINDLINK_K8S_TIMEOUT (seconds per wait, default 86400), KUBECTL (default
# kubectl).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
STAGES=${1:-2}
TIMEOUT=${BLINDLINK_K8S_TIMEOUT:-86400}
KUBECTL=${KUBECTL:-kubectl}

# Waits until every Job named is Complete; stops at the first that Failed.
wait_jobs() {
  local deadline=$((SECONDS + TIMEOUT)) job state
  for job in "$@"; do
    while :; do
      state=$($KUBECTL get "job/$job" \
        -o jsonpath='{range .status.conditions[?(@.status=="True")]}{.type} {end}')
      case " $state " in
        *" Complete "*) break ;;
        *" Failed "*)
          echo "job/$job failed; see: $KUBECTL describe job/$job" >&2
          exit 1
          ;;
      esac
      if ((SECONDS > deadline)); then
        echo "job/$job did not complete within $TIMEOUT s" >&2
        exit 1
      fi
      sleep 10
    done
  done
}

for ((k = 0; k < STAGES; k++)); do
  echo "stage $k: split files"
  $KUBECTL apply -f "$HERE/split-stage-$k.yaml"
  wait_jobs "registry-split-stage-$k" "insurer-split-stage-$k"
  echo "stage $k: servers and links"
  $KUBECTL apply -f "$HERE/stage-$k.yaml"
  wait_jobs "insurer-link-stage-$k"
  $KUBECTL delete --cascade=foreground --wait=true --timeout="${TIMEOUT}s" \
    "statefulset/registry-stage-$k" "service/registry-stage-$k"
  echo "stage $k: merges of stages 0 to $k"
  $KUBECTL apply -f "$HERE/merge-stage-$k.yaml"
  wait_jobs "registry-merge-stage-$k" "insurer-merge-stage-$k"
done
echo "done: /data/out/registry-cascade-merged and /data/out/insurer-cascade-merged"
