# Shared by train.sh and eval.sh: walk the emotion x seed grid, keep this shard's jobs, skip done ones,
# and run the rest through one process per JOBS_PER_PROCESS jobs (default: all of the shard's jobs in
# one process, so the model is loaded once).
#
# Usage (after setting EMOTIONS, SEEDS, SHARD, NUM_SHARDS, DRY_RUN):
#   run_grid DONE_TEMPLATE COMMAND...
# DONE_TEMPLATE is a path with {e} and {s} for the emotion and seed; a job whose file exists is
# skipped. "-" skips nothing here: the command decides (eval: results whose inputs changed are redone). COMMAND gets `--jobs EMOTION-SEED ...` appended. Jobs are numbered in grid order and job i
# belongs to shard i % NUM_SHARDS, so the shards split the grid disjointly.

PAPER_EMOTIONS="admiration amusement anger annoyance approval caring confusion curiosity desire disappointment disapproval disgust embarrassment excitement fear gratitude grief joy love nervousness optimism pride realization relief remorse sadness surprise"
PAPER_SEEDS="1 3 5 7 9 11 13 15 17 19 42 100"

EMOTIONS=${EMOTIONS:-$PAPER_EMOTIONS}
SEEDS=${SEEDS:-$PAPER_SEEDS}
# One shard per GPU, or per SLURM array task (sbatch --array=0-3 sets these for you).
SHARD=${SHARD:-${SLURM_ARRAY_TASK_ID:-0}}
NUM_SHARDS=${NUM_SHARDS:-${SLURM_ARRAY_TASK_COUNT:-1}}
JOBS_PER_PROCESS=${JOBS_PER_PROCESS:-0}
DRY_RUN=${DRY_RUN:-0}
PYTHON=${PYTHON:-python}

grid_error() {
  echo "$(basename "$0"): error: $*" >&2
  return 2
}

run_grid() {
  local template=$1
  shift
  # Integers in base 10 (08 is not octal), validated before any job runs.
  local var
  for var in SHARD NUM_SHARDS JOBS_PER_PROCESS; do
    [[ ${!var} =~ ^[0-9]+$ ]] || { grid_error "$var=${!var} must be a non-negative integer"; return 2; }
    # at most 9 digits once leading zeros are dropped: bash arithmetic wraps around past 2^63
    [[ ${!var} =~ ^0*[0-9]{1,9}$ ]] || { grid_error "$var=${!var} is too large (at most 999999999)"; return 2; }
    printf -v "$var" '%d' "$((10#${!var}))"
  done
  if (( NUM_SHARDS < 1 || SHARD >= NUM_SHARDS )); then
    grid_error "SHARD=$SHARD must be in 0..NUM_SHARDS-1 (NUM_SHARDS=$NUM_SHARDS)"
    return 2
  fi
  # Emotions and seeds are words, never glob patterns: EMOTIONS='*' must not expand to file names.
  local emotions seeds
  read -r -a emotions <<<"$EMOTIONS"
  read -r -a seeds <<<"$SEEDS"
  local word
  for word in "${emotions[@]}"; do
    [[ $word =~ ^[A-Za-z][A-Za-z0-9_]*$ ]] || { grid_error "EMOTIONS entry '$word' is not an emotion name"; return 2; }
  done
  for word in "${seeds[@]}"; do
    [[ $word =~ ^[0-9]+$ ]] || { grid_error "SEEDS entry '$word' is not a non-negative integer"; return 2; }
  done
  (( ${#emotions[@]} && ${#seeds[@]} )) || { grid_error "EMOTIONS and SEEDS must not be empty"; return 2; }
  local i=0 skipped=0 e s
  local pending=()
  for e in "${emotions[@]}"; do
    for s in "${seeds[@]}"; do
      if (( i % NUM_SHARDS == SHARD )); then
        local done_path=${template//\{e\}/$e}
        done_path=${done_path//\{s\}/$s}
        # The plan, job by job, in a dry run only: a real run says how many and then reports each job
        # as it finishes (so nothing reads as done before it ran).
        if [[ $template != - && -e $done_path ]]; then
          [[ $DRY_RUN == 1 ]] && echo "skip $e-$s ($done_path exists)"
          skipped=$((skipped + 1))
        else
          [[ $DRY_RUN == 1 ]] && echo "run $e-$s"
          pending+=("$e-$s")
        fi
      fi
      i=$((i + 1))
    done
  done
  local failed=0 chunk=${JOBS_PER_PROCESS}
  (( chunk > 0 )) || chunk=${#pending[@]}
  if [[ $DRY_RUN != 1 ]]; then
    echo "shard $SHARD/$NUM_SHARDS: ${#pending[@]} job(s) to run, $skipped already done (skipped)"
    local start
    for (( start = 0; start < ${#pending[@]}; start += chunk )); do
      "$@" --jobs "${pending[@]:start:chunk}" || failed=1
    done
  fi
  if [[ $DRY_RUN == 1 ]]; then
    echo "shard $SHARD/$NUM_SHARDS: ${#pending[@]} to run, $skipped skipped"
  else
    echo "shard $SHARD/$NUM_SHARDS finished: ${#pending[@]} job(s) run, $skipped skipped$( ((failed)) && echo ', some FAILED (see above)')"
  fi
  (( failed == 0 ))
}
