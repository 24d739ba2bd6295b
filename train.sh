#!/usr/bin/env bash
# Step 1 over the grid: train.py for every emotion x seed (27 x 12 by default), skipping finished runs.
#
# Environment (defaults = the paper's setup):
#   EMOTIONS, SEEDS            the grid (space-separated)
#   MODEL (roberta-base), DATA_DIR (empty = hub), CHECKPOINT_DIR (checkpoint), LOG_DIR (log)
#   EPOCHS, PROMPT_LEN, LR, TRAIN_BATCH_SIZE, EVAL_BATCH_SIZE (unset: train.py's defaults, the paper's
#   50, 100, 2e-3, 8, 32, defined once in model_emotion/defaults.py)
#   MAX_TRAIN_SAMPLES, MAX_EVAL_SAMPLES (empty = all), DEVICE (empty = auto), EXTRA_ARGS
#   PROTOCOL (toolkit|paper), NEGATIVE_SAMPLING (exclusive|paper; paper protocol only)
#   MULTI_PROMPT=1             train the jobs of each python process together (train.py --multi_prompt)
#   SHARD, NUM_SHARDS          split the grid (SLURM_ARRAY_TASK_ID / _COUNT are used when set)
#   JOBS_PER_PROCESS           jobs per python process (default 0 = all of the shard: the model loads once)
#   DRY_RUN=1                  list the jobs of this shard without running them
set -euo pipefail
cd "$(dirname "$0")"
source scripts/grid.sh

CHECKPOINT_DIR=${CHECKPOINT_DIR:-checkpoint}
args=(--model "${MODEL:-roberta-base}" --checkpoint_dir "$CHECKPOINT_DIR" --log_dir "${LOG_DIR:-log}")
[[ -n ${EPOCHS:-} ]] && args+=(--epochs "$EPOCHS")
[[ -n ${PROMPT_LEN:-} ]] && args+=(--prompt_len "$PROMPT_LEN")
[[ -n ${LR:-} ]] && args+=(--lr "$LR")
[[ -n ${TRAIN_BATCH_SIZE:-} ]] && args+=(--train_batch_size "$TRAIN_BATCH_SIZE")
[[ -n ${EVAL_BATCH_SIZE:-} ]] && args+=(--eval_batch_size "$EVAL_BATCH_SIZE")
[[ -n ${DATA_DIR:-} ]] && args+=(--data_dir "$DATA_DIR")
[[ -n ${MAX_TRAIN_SAMPLES:-} ]] && args+=(--max_train_samples "$MAX_TRAIN_SAMPLES")
[[ -n ${MAX_EVAL_SAMPLES:-} ]] && args+=(--max_eval_samples "$MAX_EVAL_SAMPLES")
[[ -n ${DEVICE:-} ]] && args+=(--device "$DEVICE")
[[ -n ${PROTOCOL:-} ]] && args+=(--protocol "$PROTOCOL")
[[ -n ${NEGATIVE_SAMPLING:-} ]] && args+=(--negative_sampling "$NEGATIVE_SAMPLING")
[[ ${MULTI_PROMPT:-0} == 1 ]] && args+=(--multi_prompt)  # all jobs of a python process in one batched model
EXTRA=()
[[ -n ${EXTRA_ARGS:-} ]] && read -r -a EXTRA <<<"$EXTRA_ARGS"  # split on spaces, never globbed
args+=(${EXTRA[@]+"${EXTRA[@]}"})

run_grid "$CHECKPOINT_DIR/{e}-{s}.pt" "$PYTHON" train.py "${args[@]}"
