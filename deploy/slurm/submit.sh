#!/bin/bash
# Plan a sharded run, submit its shards as a job array and the merge after
# them. Usage (from the directory holding pipeline.yaml, on the login node):
#   KNEEPIPE_WORK=/shared/kneepipe-work deploy/slurm/submit.sh 64
# A shard that failed is resubmitted alone, with a new merge after it:
#   m=$(sbatch --parsable --array=5 deploy/slurm/shard.sbatch)
#   sbatch --dependency=afterok:$m deploy/slurm/merge.sbatch
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export KNEEPIPE_SHARDS=${1:?usage: submit.sh SHARDS}
: "${KNEEPIPE_WORK:?set KNEEPIPE_WORK to a directory all nodes share, or s3://bucket/prefix/}"
"${KNEEPIPE:-kneepipe}" shard plan -f "${KNEEPIPE_FILE:-pipeline.yaml}" --shards "$KNEEPIPE_SHARDS" --work "$KNEEPIPE_WORK"
array=$(sbatch --parsable --array=0-$((KNEEPIPE_SHARDS - 1)) "$here/shard.sbatch")
merge=$(sbatch --parsable --dependency=afterok:"$array" "$here/merge.sbatch")
echo "shards: job $array; merge: job $merge"
