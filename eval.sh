#!/usr/bin/env bash
# Step 5 over the grid: eval_mask_neuron.py for every emotion x seed, skipping finished results.
#
# Environment:
#   EMOTIONS, SEEDS            the grid (space-separated; default 27 x 12)
#   MASK_PATH (masks/RSA_14property_top_500_6000.pkl), RESULT_PATH (eval_mask_neuron_result/<mask name>)
#   MODEL (roberta-base), DATA_DIR (empty = hub), CHECKPOINT_DIR (checkpoint)
#   MAX_EVAL_SAMPLES (empty = all), EVAL_BATCH_SIZE (64), SPLIT (empty = test, dev under the paper protocol),
#   SELECTION (empty = held_out when the masks have seed folds), ABLATION (zero|mean|resample|scale; empty = zero),
#   DEVICE (empty = auto), EXTRA_ARGS,
#   MASKS_PER_FORWARD (auto: 1 off CUDA, sized to the free memory on CUDA; or a number of masks per forward)
#   PROTOCOL (toolkit|paper; empty = the checkpoint's), NEGATIVE_SAMPLING, ACCURACY_MEAN (paper protocol only)
#   SHARD, NUM_SHARDS, JOBS_PER_PROCESS, DRY_RUN  as in train.sh
set -euo pipefail
cd "$(dirname "$0")"
source scripts/grid.sh

MASK_PATH=${MASK_PATH:-masks/RSA_14property_top_500_6000.pkl}
mask_name=$(basename "$MASK_PATH" .pkl)
RESULT_PATH=${RESULT_PATH:-eval_mask_neuron_result/$mask_name}
args=(--maskPath "$MASK_PATH" --resultPath "$RESULT_PATH" --model "${MODEL:-roberta-base}"
      --checkpoint_dir "${CHECKPOINT_DIR:-checkpoint}" --eval_batch_size "${EVAL_BATCH_SIZE:-64}")
[[ -n ${SPLIT:-} ]] && args+=(--split "$SPLIT")
[[ -n ${SELECTION:-} ]] && args+=(--selection "$SELECTION")
[[ -n ${ABLATION:-} ]] && args+=(--ablation "$ABLATION")
[[ -n ${MASKS_PER_FORWARD:-} ]] && args+=(--masks_per_forward "$MASKS_PER_FORWARD")
[[ -n ${DATA_DIR:-} ]] && args+=(--data_dir "$DATA_DIR")
[[ -n ${MAX_EVAL_SAMPLES:-} ]] && args+=(--max_eval_samples "$MAX_EVAL_SAMPLES")
[[ -n ${DEVICE:-} ]] && args+=(--device "$DEVICE")
[[ -n ${PROTOCOL:-} ]] && args+=(--protocol "$PROTOCOL")
[[ -n ${ACCURACY_MEAN:-} ]] && args+=(--accuracy_mean "$ACCURACY_MEAN")
[[ -n ${NEGATIVE_SAMPLING:-} ]] && args+=(--negative_sampling "$NEGATIVE_SAMPLING")
EXTRA=()
[[ -n ${EXTRA_ARGS:-} ]] && read -r -a EXTRA <<<"$EXTRA_ARGS"  # split on spaces, never globbed
args+=(${EXTRA[@]+"${EXTRA[@]}"})

# Every job goes to Python, which skips up-to-date results before loading the model and redoes those
# whose masks, checkpoint or settings changed (a file that merely exists may be stale).
run_grid - "$PYTHON" eval_mask_neuron.py "${args[@]}"
