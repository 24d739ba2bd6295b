#!/usr/bin/env bash
# The #12 GPU checks in one go: the full-grid plan with measured rates, --multi_prompt against one
# prompt at a time, and stacked masks against one mask per forward, all on roberta-base's shape with
# random weights (speed does not depend on the weights' values; nothing is downloaded).
#
#   bash benchmarks/gpu_run.sh TOKENIZER_FOLDER SHARED_DATA [OUT_FOLDER]
#
# TOKENIZER_FOLDER: any tokenizer whose ids fit roberta-base's vocabulary (the packaged
# all-MiniLM-L6-v2 folder will do); SHARED_DATA: the folder holding goemotions/. Each log goes to
# OUT_FOLDER (default ./results/gpu_run) as it is written, so a run cut short keeps what it measured.
# ONLY="gpu_plan mask_stack" runs some of the three. DEVICE=cpu QUICK=1 runs the same script on tiny sizes (a check of the script itself, no figures).
set -u
tok=${1:?tokenizer folder}; data=${2:?shared data folder}; out=${3:-results/gpu_run}
tok=$(cd "$tok" && pwd); data=$(cd "$data" && pwd); mkdir -p "$out"; out=$(cd "$out" && pwd)
cd "$(dirname "$0")"
export PYTHONUNBUFFERED=1 PYTHONPATH="$(cd .. && pwd)${PYTHONPATH:+:$PYTHONPATH}"
common=(--model "$tok" --shared_data "$data" --arch roberta-base --device "${DEVICE:-cuda}")
if [ -n "${QUICK:-}" ]; then
  plan=(--measure_jobs 2 --masks_per_forward 2 --measure_masks 2 --eval_rows 8 --reps 1 --prompt_len 10)
  multi=(--emotions 2 --prompt_len 10 --train_examples 8 --eval_examples 8 --batch_size 4)
  stack=(--num_masks 4 --eval_examples 8 --masks_per_forward 2 --prompt_len 10)
else
  plan=(--measure_jobs 27 --masks_per_forward 16 --measure_masks 32 --eval_rows 256)
  multi=(--emotions 27 --prompt_len 100 --train_examples 256 --eval_examples 128 --batch_size 16)
  stack=(--num_masks 112 --eval_examples 256 --masks_per_forward 4 16 56)
fi
{
  nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv || true
  python3 -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)"
} 2>&1 | tee "$out/env.txt"
status=0
run() {
  local name=$1; shift
  case " ${ONLY:-gpu_plan multi_prompt mask_stack} " in *" $name "*) ;; *) return 0 ;; esac
  echo "== $name: $*"
  local start=$SECONDS
  python3 "$@" 2>&1 | grep -v "^Loading weights" | tee "$out/$name.txt"
  local rc=${PIPESTATUS[0]}
  echo "== $name: exit $rc after $((SECONDS - start)) s" | tee -a "$out/$name.txt"
  [ "$rc" = 0 ] || status=1
}
run gpu_plan gpu_plan.py "${common[@]}" "${plan[@]}"
run multi_prompt multi_prompt_speed.py "${common[@]}" "${multi[@]}"
run mask_stack mask_stack_speed.py "${common[@]}" "${stack[@]}"
exit $status
