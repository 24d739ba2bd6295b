#!/usr/bin/env bash
# The reproduction recipe sized for a 2-core machine: all 27 emotions x 3 seeds, RSA against the 14
# attributes, masks of 4/8/16% of the neurons with 3 random draws each, masked evaluation, report
# side by side with the paper's released RoBERTa numbers (when PAPER_DIR is set).
#   ME_SHARED_DATA=../shared/data bash scripts/reproduce.sh      (about 1 h on 2 cores; 24 examples per masked evaluation)
# The paper's own run on a GPU box with roberta-base (its input, training, sampler, masks and
# per-batch means; see the README's protocol table):
#   PROTOCOL=paper MODEL=roberta-base bash scripts/reproduce.sh
# PROTOCOL=paper gives every variable below the paper's value unless it is set.
# Detectable effect: on the paper's data 324 prompts detect a drop beyond random of about 1.6 points
# (80% power); the 2-core recipe's 81 prompts of 24 examples detect no less than about 3.2 points, so it is
# not sized for the 2-point target (the report's summary states its own figure); set SEEDS and
# MASK_EVAL_SAMPLES higher to get there.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ ${PROTOCOL:-} == paper ]]; then
  # The original README's train.sh: 2 epochs, batches of 16/32, lr 2e-3, all data, 12 seeds; masks at
  # exactly k = 500 ... 6000 with one global random draw; evaluation on all dev rows as the mean of
  # per-batch means over batches of 100 (the original eval_mask_neuron.py); the original's sampler.
  : "${PROMPT_LEN:=100}" "${EPOCHS:=2}" "${LR:=2e-3}" "${TRAIN_BATCH_SIZE:=16}" "${EVAL_BATCH_SIZE:=32}"
  : "${THRESHOLDS=500 1000 1500 2000 2500 3000 4000 5000 6000}" "${NUM_RANDOM:=1}" "${RANDOM_METHOD:=global}"
  : "${NEGATIVE_SAMPLING:=paper}" "${ACCURACY_MEAN:=per_batch}" "${MASK_EVAL_BATCH_SIZE:=100}"
  : "${MAX_TRAIN_SAMPLES=}" "${MAX_EVAL_SAMPLES=}" "${MASK_EVAL_SAMPLES=}"
else
  SEEDS=${SEEDS:-1 3 5}  # before grid.sh, whose default is the paper's 12 seeds
fi
source scripts/grid.sh
source scripts/pipeline.sh
prepare_run
OUT=${REPRO_DIR:-runs/reproduce}
EMOTIONS=${EMOTIONS:-$PAPER_EMOTIONS}
PROMPT_LEN=${PROMPT_LEN:-20}
EPOCHS=${EPOCHS:-2}
LR=${LR:-1e-2}
MAX_TRAIN_SAMPLES=${MAX_TRAIN_SAMPLES-400}
MAX_EVAL_SAMPLES=${MAX_EVAL_SAMPLES-200}
MASK_EVAL_SAMPLES=${MASK_EVAL_SAMPLES-24}
MASK_PERCENT=${MASK_PERCENT:-4 8 16}
NUM_RANDOM=${NUM_RANDOM:-40}  # global draws, shared by the attributes: 40 evaluations per k
RANDOM_METHOD=${RANDOM_METHOD:-global}
# permuted-ranking masks are attribute-specific (14 x 3 k evaluations each): 3 here to fit 2 cores, not
# the 20 the searchlight keeps (gen_mask.py's default), so the permuted-ranking test has low resolution
NUM_PERMUTED=${NUM_PERMUTED:-3}
PAPER_DIR=${PAPER_DIR:-${ME_SHARED_DATA:+$ME_SHARED_DATA/paper_roberta}}
REPORT_ARGS=${REPORT_ARGS:-${PAPER_DIR:+--paper_dir $PAPER_DIR}}
run_pipeline
