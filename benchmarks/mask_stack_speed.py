"""Masked evaluation with one mask per forward against several masks stacked along the batch.

One mask per forward (the default) removes the mask's silenced neurons from the later layers' FFNs,
so it computes less; stacking N masks runs the later layers once for N masks' row groups, each
scaled by its own mask, so the batch is N times larger and the FFN is complete. Both resume from the
shared unmasked prefix. Same model, prompt, examples and masks (4/8/16% at random) in the same run;
the accuracies must be equal.

    python benchmarks/mask_stack_speed.py [--num_masks 112] [--eval_examples 32] [--masks_per_forward 8]
"""

from __future__ import annotations

import argparse
import time

import torch
from common import add_model_arguments, benchmark_backbone, model_flops, random_masks, shared_data

from model_emotion.data.goemotions import binary_task, load_goemotions
from model_emotion.lm.neurons import find_ffn
from model_emotion.masking.evaluate import auto_masks_per_forward, evaluate_masks
from model_emotion.prompts.config import PromptConfig
from model_emotion.prompts.factory import build_prompt_model


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared_data", type=str, default=None, help="the shared data folder")
    add_model_arguments(parser)
    parser.add_argument("--num_masks", type=int, default=112, help="masks (default %(default)s)")
    parser.add_argument("--eval_examples", type=int, default=32, help="balanced dev examples (default %(default)s)")
    parser.add_argument("--masks_per_forward", type=int, nargs="+", default=[4, 16], help="N to compare with 1")
    parser.add_argument("--prompt_len", type=int, default=100, help="P (default %(default)s)")
    parser.add_argument("--batch_size", type=int, default=32, help="examples per batch (default %(default)s)")
    parser.add_argument("--device", type=str, default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    data = load_goemotions(shared_data(args.shared_data) / "goemotions", splits=("dev",))
    backbone, tokenizer, head, name = benchmark_backbone(args.model, args.arch, args.dtype)
    model = build_prompt_model(
        backbone, tokenizer, PromptConfig(model=name, prompt_len=args.prompt_len, head=head, seed=1, sentiment="joy")
    ).to(device)
    task = binary_task(data.split("dev"), "joy", 1, "dev", args.eval_examples)
    encoded = model.encode_task(task.texts, task.labels)
    ffn = find_ffn(model)
    masks = random_masks(ffn.num_layers, ffn.d_ffn, args.num_masks)
    print(
        f"{args.num_masks} masks x {len(encoded)} examples, {name.split('/')[-1]}, P = {args.prompt_len}, {device}; "
        f"--masks_per_forward auto would stack "
        f"{auto_masks_per_forward(model, encoded, args.batch_size, device, len(masks))} here"
    )
    # counted as benchmarks/gpu_plan.py counts the grid: a full forward per row and mask (the toolkit computes
    # less: it resumes from the unmasked prefix and drops silenced neurons)
    flops = model_flops(backbone, [len(ids) + model.extra_tokens for ids in encoded.input_ids]) * len(masks)
    results, seconds = {}, {}
    for n in [1] + args.masks_per_forward:
        evaluate_masks(
            model, encoded, dict(list(masks.items())[:n]), args.batch_size, device, progress=False, masks_per_forward=n
        )  # warm-up
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        results[n] = evaluate_masks(model, encoded, masks, args.batch_size, device, progress=False, masks_per_forward=n)
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds[n] = time.perf_counter() - start
        gap = max(abs(results[n][k] - results[1][k]) for k in masks)
        print(
            f"{n:>3} mask(s) per forward: {seconds[n]:.1f} s ({seconds[n] / len(masks):.3f} s per mask), "
            f"speed-up {seconds[1] / seconds[n]:.2f}x, {flops / seconds[n] / 1e12:.2f} TFLOP/s plan-equivalent, "
            f"largest accuracy gap {gap:.4f}"
        )
    worst = max(abs(results[n][k] - results[1][k]) for n in results for k in masks)
    return 0 if worst <= 1.0 / len(encoded) else 1


if __name__ == "__main__":
    raise SystemExit(main())
