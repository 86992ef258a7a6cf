#!/bin/bash
# Plans an experiment into PLAN_DIR, submits its trials as one Slurm job array (one trial per
# task) and a collect job that runs once the array has ended (afterany), then prints
# "<array job id> <collect job id> <array ids>" on stdout (array id "-" when nothing was left).
#
#   scripts/slurm/submit.sh [--gpu] [--max-running K] NAME PLAN_DIR [samlab experiment flags]
#   scripts/slurm/submit.sh --max-running 8 m-sweep /shared/sweeps/m-sweep --seeds 5
#
# Run again with the same arguments to resume: the plan keeps every result, and only the trials
# without one are submitted. Partition, account, time limit, …: sbatch's own environment
# variables (SBATCH_PARTITION, SBATCH_ACCOUNT, SBATCH_TIMELIMIT). SAMLAB names the samlab binary
# (default: samlab on PATH); it and PLAN_DIR must be visible from every node.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
script=trial.sbatch
max_running=${SAMLAB_MAX_RUNNING:-16}
while [ $# -gt 0 ]; do
  case $1 in
    --gpu) script=trial-gpu.sbatch; shift ;;
    --max-running) max_running=${2:?--max-running takes a number}; shift 2 ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print } /^set /{ exit }' "$0"; exit 0 ;;
    *) break ;;
  esac
done
if [ $# -lt 2 ]; then
  echo "usage: $0 [--gpu] [--max-running K] NAME PLAN_DIR [samlab experiment flags]" >&2
  exit 2
fi
name=$1 dir=$(realpath -m "$2"); shift 2
flags=("$@")
if [ "$script" = trial-gpu.sbatch ] && [[ " ${flags[*]} " != *" --backend "* ]]; then
  flags+=(--backend gpu)
fi
samlab=$(command -v "${SAMLAB:-samlab}") || { echo "error: no samlab binary (set SAMLAB or put samlab on PATH)" >&2; exit 2; }
export SAMLAB=$samlab

ids=$("$samlab" experiment "$name" --plan "$dir" "${flags[@]}")
mkdir -p "$dir/logs"
array=-
dependency=()
if [ -n "$ids" ]; then
  array=$(sbatch --parsable --array="$ids%$max_running" --job-name="samlab-$name" \
    --output="$dir/logs/trial-%A_%a.out" "$here/$script" "$dir")
  array=${array%%;*}
  dependency=(--dependency="afterany:$array")
  echo "submitted array job $array: trials $ids of $name, at most $max_running at a time" >&2
fi
collect=$(sbatch --parsable "${dependency[@]}" --job-name="samlab-$name-collect" \
  --output="$dir/logs/collect-%j.out" "$here/collect.sbatch" "$name" "$dir")
collect=${collect%%;*}
echo "submitted collect job $collect: $dir/$name.md when the trials have ended (log: $dir/logs/collect-$collect.out)" >&2
echo "$array $collect ${ids:--}"
