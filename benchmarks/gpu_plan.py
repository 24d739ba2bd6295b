"""The paper's full grid as work: tokens and FLOPs, the limit on one GPU, and the measured rate.

The grid: 27 emotions x 12 seeds = 324 prompts on roberta-base (12 layers, hidden 768, FFN 3072,
about 85M parameters outside the embeddings), P = 100, the original README's 2 epochs with
batches of 16 (train) and 32 (eval), the balanced binary task of each emotion (all its positives,
as many negatives), a dev evaluation after every epoch and one test evaluation; then every prompt
under ``--masks`` masks (the paper's top-k masks plus their random twins) on its balanced dev set.

Counting (per token, N = non-embedding parameters, T = sequence length):
- forward: 2N multiply-adds plus attention 4 T d per layer (QK^T and AV);
- training with a frozen backbone: forward + backward to the inputs only (no weight gradients),
  about 2x the forward; the prompt's own gradient is negligible;
- masked evaluation: a full forward per row and mask (the toolkit computes less: it resumes from
  the unmasked prefix and drops silenced neurons, so its rate below is "plan-equivalent").
Tokens per row: 1 slot + P + the text's tokens, as the toolkit batches them (dynamic padding) and,
for comparison, padded to 256 text tokens as the original did. Text lengths come from the
tokenizer of ``--model`` (default the packaged all-MiniLM-L6-v2 WordPiece; roberta-base's BPE is
not available offline here; the two differ by a few percent on English Reddit text).

The limit is the total FLOPs at the device's dense bf16 peak (``--peak_tflops``, default H100/H200
SXM datasheet: 989 TFLOP/s). The measured part runs the toolkit's own code on ``--device``: a
matmul reference (bf16 on CUDA, float32 elsewhere), a training step of one prompt (batch 16), a
``--multi_prompt`` step of ``--measure_jobs`` prompts (16 rows each), a plain evaluation (batch 32)
and a masked evaluation with ``--masks_per_forward`` masks per forward; the grid's hours at those
rates follow. ``--arch roberta-base`` times roberta-base's shape with random weights (speed does
not depend on the weights' values), with ``--model``'s tokenizer.

    python benchmarks/gpu_plan.py [--peak_tflops 989] [--masks 252] [--device cpu]
    python benchmarks/gpu_plan.py --device cuda --arch roberta-base   # on the GPU
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from common import (
    ARCHS,
    add_model_arguments,
    benchmark_backbone,
    forward_flops,
    matmul_rate,
    model_flops,
    packaged_encoder,
    random_masks,
    shared_data,
    timed,
)

from model_emotion.data.goemotions import EMOTIONS, binary_task, load_goemotions

_R = ARCHS["roberta-base"]
ROBERTA = dict(layers=_R["num_hidden_layers"], hidden=_R["hidden_size"], ffn=_R["intermediate_size"])


def grid_rows(data, tokenizer, prompt_len: int, seeds: int):
    """Row lengths of every training, dev and test row of the grid (dynamic and padded to 256)."""
    out = {"train": [], "dev": [], "test": []}
    for emotion in EMOTIONS:
        for split in out:
            task = binary_task(data.split(split), emotion, 1, split)
            lengths = np.array(
                [len(ids) for ids in tokenizer(task.texts, truncation=True, max_length=256)["input_ids"]]
            )
            out[split].append(np.tile(lengths, seeds))  # every seed sees the same sizes
    return {split: np.concatenate(parts) + 1 + prompt_len for split, parts in out.items()}


MULTI = "train, --multi_prompt"  # the rate at the toolkit's padding tolerance for the device


def measure(args, data) -> dict[str, float]:
    """FLOP/s of the matmul reference and of the toolkit's training, evaluation and masked evaluation."""
    from model_emotion.lm.batching import pad_rows
    from model_emotion.lm.inference import accuracy, autocast
    from model_emotion.lm.neurons import find_ffn
    from model_emotion.masking.evaluate import evaluate_masks
    from model_emotion.prompts.config import PromptConfig
    from model_emotion.prompts.factory import build_prompt_model
    from model_emotion.prompts.multi import max_padding_for, stacked_logits
    from model_emotion.prompts.training import make_optimizer

    device = torch.device(args.device)
    rates = {"matmul": matmul_rate(device, args.reps)}

    backbone, tokenizer, head, name = benchmark_backbone(args.model, args.arch, args.dtype)
    jobs = args.measure_jobs
    emotions = [EMOTIONS[j % len(EMOTIONS)] for j in range(jobs)]
    models, batches, rows = [], [], []
    for emotion in emotions:
        model = build_prompt_model(
            backbone,
            tokenizer,
            PromptConfig(model=name, prompt_len=args.prompt_len, head=head, seed=1, sentiment=emotion),
        ).to(device)
        task = model.encode_task(*_texts_labels(data, emotion, "train", 16))
        ids, mask, labels = pad_rows(task, list(range(len(task))))
        models.append(model.train())
        batches.append((ids.to(device), mask.to(device), labels.to(device)))
        rows.append([len(r) + model.extra_tokens for r in task.input_ids])
    optimizers = [make_optimizer(m, "adamw", 1e-3, 1e-5) for m in models]

    def step(indices, max_padding):
        with autocast(device):
            logits = stacked_logits(
                [models[j] for j in indices], [batches[j][:2] for j in indices], max_padding=max_padding
            )
        loss = sum(torch.nn.functional.cross_entropy(out.float(), batches[j][2]) for j, out in zip(indices, logits))
        for j in indices:
            optimizers[j].zero_grad(set_to_none=True)
        loss.backward()
        for j in indices:
            optimizers[j].step()

    one = models[0]

    def single():  # the sequential path's step (training.train_prompt)
        with autocast(device):
            logits = one(*batches[0][:2])
        loss = torch.nn.functional.cross_entropy(logits.float(), batches[0][2])
        optimizers[0].zero_grad(set_to_none=True)
        loss.backward()
        optimizers[0].step()

    rates["train, one prompt"] = 2 * model_flops(backbone, rows[0]) / timed(single, device, args.reps)
    default = max_padding_for(device)
    for padding in sorted(set(args.paddings) | {default}):
        label = MULTI if padding == default else f"{MULTI} (padding <= {padding:g})"
        rates[label] = (
            2
            * sum(model_flops(backbone, r) for r in rows)
            / timed(lambda padding=padding: step(range(jobs), padding), device, args.reps)
        )

    dev = one.encode_task(*_texts_labels(data, "joy", "dev", args.eval_rows))
    dev_rows = [len(r) + one.extra_tokens for r in dev.input_ids]
    rates["evaluation"] = model_flops(backbone, dev_rows) / timed(
        lambda: accuracy(one, dev, 32, device), device, args.reps
    )
    ffn = find_ffn(one)
    masks = random_masks(ffn.num_layers, ffn.d_ffn, args.measure_masks)
    seconds = timed(
        lambda: evaluate_masks(one, dev, masks, 32, device, progress=False, masks_per_forward=args.masks_per_forward),
        device,
        1,
    )
    rates["masked evaluation"] = model_flops(backbone, dev_rows) * len(masks) / seconds
    return rates


def _texts_labels(data, emotion: str, split: str, rows: int):
    task = binary_task(data.split(split), emotion, 1, split, rows)
    return task.texts, task.labels


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared_data", type=str, default=None, help="the shared data folder")
    parser.add_argument("--peak_tflops", type=float, default=989.0, help="dense bf16 peak of the GPU (default H200)")
    parser.add_argument("--seeds", type=int, default=12, help="seeds per emotion (default %(default)s)")
    parser.add_argument("--epochs", type=int, default=2, help="epochs (default %(default)s)")
    parser.add_argument("--prompt_len", type=int, default=100, help="P (default %(default)s)")
    parser.add_argument("--masks", type=int, default=252, help="masks per prompt: 126 top-k + 126 random (default)")
    parser.add_argument("--device", type=str, default="cpu", help="device of the measured part (default %(default)s)")
    add_model_arguments(parser)
    parser.add_argument(
        "--measure_jobs",
        type=int,
        default=None,
        help="prompts in the measured multi-prompt step (default 27 on CUDA, 4 elsewhere)",
    )
    parser.add_argument("--measure_masks", type=int, default=16, help="masks in the measured masked evaluation")
    parser.add_argument("--masks_per_forward", type=int, default=16, help="stacked masks in that evaluation")
    parser.add_argument("--eval_rows", type=int, default=128, help="balanced dev rows of the measured evaluations")
    parser.add_argument(
        "--paddings",
        type=float,
        nargs="*",
        default=[0.05, 0.5, 1.0],
        help="padding tolerances of the multi-prompt step to compare with the device's default",
    )
    parser.add_argument("--reps", type=int, default=5, help="timed repetitions of each step (default %(default)s)")
    args = parser.parse_args()
    data = load_goemotions(shared_data(args.shared_data) / "goemotions")
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(args.model or packaged_encoder())
    rows = grid_rows(data, tokenizer, args.prompt_len, args.seeds)
    padded = {split: np.full(len(r), 256 + 1 + args.prompt_len) for split, r in rows.items()}
    prompts = len(EMOTIONS) * args.seeds
    print(
        f"grid: {prompts} prompts; rows per pass over all prompts: train {len(rows['train']):,}, "
        f"dev {len(rows['dev']):,}, test {len(rows['test']):,}; mean row {rows['train'].mean():.0f} tokens "
        f"(padded: {256 + 1 + args.prompt_len})"
    )
    peak = args.peak_tflops * 1e12
    work = {}
    for label, lengths in (("dynamic padding", rows), ("padded to 256", padded)):
        fwd = {split: forward_flops(lengths[split], **ROBERTA) for split in lengths}
        tokens = {split: float(np.sum(lengths[split])) for split in lengths}
        passes = {
            "training": tokens["train"] * args.epochs,
            "dev + test evaluation": tokens["dev"] * args.epochs + tokens["test"],
            "masked evaluation": tokens["dev"] * args.masks,
        }
        print(
            f"{label}, tokens through the backbone: "
            + ", ".join(f"{k} {v / 1e9:,.2f} G" for k, v in passes.items())
            + f"; total {sum(passes.values()) / 1e9:,.2f} G tokens"
        )
        work[label] = {
            "training": 2 * fwd["train"] * args.epochs,
            "dev + test evaluation": fwd["dev"] * args.epochs + fwd["test"],
            "masked evaluation": fwd["dev"] * args.masks,
        }
        total = sum(work[label].values())
        print(
            f"{label}: "
            + ", ".join(f"{k} {v / 1e15:,.0f} PFLOP" for k, v in work[label].items())
            + f"; total {total / 1e15:,.0f} PFLOP = {total / peak / 3600:.2f} h at {args.peak_tflops:.0f} TFLOP/s"
        )

    args.measure_jobs = args.measure_jobs or (27 if args.device.startswith("cuda") else 4)
    rates = measure(args, data)
    shape = (
        f"{args.arch} (random weights)" if args.arch else (args.model or "all-MiniLM-L6-v2").rstrip("/").split("/")[-1]
    )
    print(
        f"measured on {args.device}, {shape}, P = {args.prompt_len}, {args.measure_jobs} prompts "
        f"x 16 rows in the --multi_prompt step (FLOPs counted as the grid is: a full forward per row, padding "
        f"not counted; the toolkit computes less, e.g. its last block at the slot only, so a rate can pass "
        f"the matmul's):"
    )
    for label, rate in rates.items():
        share = "" if label == "matmul" else f" = {100 * rate / rates['matmul']:.1f}% of the matmul"
        print(f"  {label:>36}: {rate / 1e12:8.2f} TFLOP/s{share}")
    if args.device.startswith("cuda"):
        print(
            f"  the matmul reaches {100 * rates['matmul'] / peak:.0f}% of the {args.peak_tflops:.0f} TFLOP/s datasheet peak"
        )
    dynamic = work["dynamic padding"]
    for label, train_rate in (("one prompt at a time", rates["train, one prompt"]), ("--multi_prompt", rates[MULTI])):
        hours = (
            dynamic["training"] / train_rate
            + dynamic["dev + test evaluation"] / rates["evaluation"]
            + dynamic["masked evaluation"] / rates["masked evaluation"]
        ) / 3600
        print(
            f"full grid at these rates, training {label}: {hours:,.2f} h on {args.device} "
            f"(limit {sum(dynamic.values()) / peak / 3600:.2f} h at {args.peak_tflops:.0f} TFLOP/s)"
        )
    if not args.device.startswith("cuda"):
        print(
            "these are this machine's rates; the GPU hours are limits at the quoted peak, not measurements: "
            "run with --device cuda --arch roberta-base on a GPU to measure them"
        )
    if args.arch is None:
        print(f"note: the grid is counted for roberta-base; the rates were measured on {shape}, whose shape differs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
