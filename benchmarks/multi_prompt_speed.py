"""Training many prompts: one after another (``train.py --jobs``) against one batched model (``--multi_prompt``).

The same jobs, settings and data in the same run; both paths do the same per-job dev evaluation
after every epoch. Prints the wall time of each, the speed-up, and checks that the two give the
same best accuracies and prompts within 1e-3 relative. For BERT-style encoders it also prints each
path's rate in FLOP/s against a large matmul on the same device (``common.matmul_rate``): the
run's FLOPs are counted as the toolkit computes them (the last block at the slot only; training =
forward + backward to the inputs, about twice the forward; dev evaluation after every epoch, test
once), so the matmul's rate over the sequential path's rate bounds what any batching could gain.
It then times the FFN's first matrix product ([tokens, hidden] x [hidden, d_ffn]) at one job's
training batch and at all jobs' batches stacked: where the two rates are equal (a CPU), stacking
saves only the per-forward overhead (Python, dispatch), not arithmetic time.

    python benchmarks/multi_prompt_speed.py [--emotions 27] [--prompt_len 100] [--train_examples 32]
"""

from __future__ import annotations

import argparse
import time

import torch
from common import add_model_arguments, benchmark_backbone, matmul_rate, model_flops, shared_data, timed

from model_emotion.api import train_prompts
from model_emotion.data.goemotions import EMOTIONS, binary_task, load_goemotions
from model_emotion.lm.architectures import bert_blocks


def ffn_rate(backbone, tokens: int, device: torch.device) -> float:
    """FLOP/s of the FFN's first matrix product of ``backbone`` over ``tokens`` positions."""
    config = backbone.config
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32  # as under the toolkit's autocast
    x = torch.randn(tokens, config.hidden_size, device=device, dtype=dtype)
    w = torch.randn(config.intermediate_size, config.hidden_size, device=device, dtype=dtype)
    return 2 * tokens * config.hidden_size * config.intermediate_size / timed(lambda: x @ w.T, device, 20)


def row_lengths(data, trained, caps: dict) -> dict[str, list[int]]:
    """Token count of every row that ``api.train_prompts`` gave ``trained``'s prompts, per split."""
    rows = {split: [] for split in caps}
    for (emotion, seed), prompt in trained.items():
        for split, cap in caps.items():
            task = binary_task(data.split(split), emotion, seed, split, cap)
            encoded = prompt.model.encode_task(task.texts, task.labels)
            rows[split] += [len(ids) + prompt.model.extra_tokens for ids in encoded.input_ids]
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared_data", type=str, default=None, help="the shared data folder")
    add_model_arguments(parser)
    parser.add_argument(
        "--emotions", type=int, default=27, help="jobs: the first N emotions, seed 1 (default %(default)s)"
    )
    parser.add_argument("--prompt_len", type=int, default=100, help="soft prompt length P (default %(default)s)")
    parser.add_argument(
        "--train_examples", type=int, default=32, help="training examples per job (default %(default)s)"
    )
    parser.add_argument("--eval_examples", type=int, default=16, help="dev/test examples per job (default %(default)s)")
    parser.add_argument("--epochs", type=int, default=1, help="epochs (default %(default)s)")
    parser.add_argument("--batch_size", type=int, default=8, help="training batch size per job (default %(default)s)")
    parser.add_argument("--device", type=str, default="cpu", help="torch device (default %(default)s)")
    args = parser.parse_args()
    data = load_goemotions(shared_data(args.shared_data) / "goemotions", splits=("train", "dev", "test"))
    backbone, tokenizer, head, model_name = benchmark_backbone(args.model, args.arch, args.dtype)
    jobs = [(emotion, 1) for emotion in EMOTIONS[: args.emotions]]
    settings = dict(
        head=head,
        model_name=model_name,
        prompt_len=args.prompt_len,
        epochs=args.epochs,
        lr=2e-3,
        train_batch_size=args.batch_size,
        eval_batch_size=32,
        max_length=256,
        max_train_samples=args.train_examples,
        max_eval_samples=args.eval_examples,
        device=args.device,
    )
    print(
        f"{len(jobs)} prompts, {model_name.split('/')[-1]}, {args.device}, P = {args.prompt_len}, {args.train_examples} training "
        f"examples each, {args.epochs} epoch(s), batch {args.batch_size} per job, {torch.get_num_threads()} threads"
    )
    if args.device.startswith("cuda"):  # kernels compiled and memory pooled before either path is timed
        for multi in (False, True):
            train_prompts(backbone, tokenizer, data, jobs[:2], multi_prompt=multi, **settings)
    timings, results = {}, {}
    for label, multi in (("one after another", False), ("--multi_prompt", True)):
        start = time.perf_counter()
        results[label] = train_prompts(backbone, tokenizer, data, jobs, multi_prompt=multi, **settings)
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        timings[label] = time.perf_counter() - start
        rows = sum(p.sizes["train"] for p in results[label].values()) * args.epochs
        print(
            f"{label:>18}: {timings[label]:.1f} s ({rows / timings[label]:.1f} training examples/s incl. dev evaluation)"
        )
    device = torch.device(args.device)
    if bert_blocks(backbone) is not None:  # the FLOP count knows BERT-style blocks only
        caps = {"train": args.train_examples, "dev": args.eval_examples, "test": args.eval_examples}
        rows = row_lengths(data, results["--multi_prompt"], caps)
        fwd = {split: model_flops(backbone, lengths, slot_only=True) for split, lengths in rows.items()}
        flops = args.epochs * (2 * fwd["train"] + fwd["dev"]) + fwd["test"]
        reference = matmul_rate(device)
        for label, seconds in timings.items():
            print(
                f"{label:>18}: {flops / seconds / 1e12:.3f} TFLOP/s = {100 * flops / seconds / reference:.0f}% of "
                f"a {'bf16 8192' if device.type == 'cuda' else 'float32 2048'}^3 matmul's "
                f"{reference / 1e12:.3f} TFLOP/s"
            )
        print(
            f"the work ({flops / 1e12:.2f} TFLOP) at the matmul's rate would take {flops / reference:.1f} s: "
            f"at most {timings['one after another'] * reference / flops:.2f}x over one after another"
        )
        one = round(args.batch_size * sum(rows["train"]) / len(rows["train"]))  # one job's batch, mean rows
        rates = {n: ffn_rate(backbone, n * one, device) for n in (1, len(jobs))}
        print(
            f"the FFN's matrix product: {rates[1] / 1e12:.3f} TFLOP/s over one job's batch ({one} tokens), "
            f"{rates[len(jobs)] / 1e12:.3f} TFLOP/s over {len(jobs)} jobs' ({len(jobs) * one} tokens)"
        )
    a, b = results.values()
    same_acc = all(a[k].best_acc == b[k].best_acc for k in jobs)
    worst = max(
        float(
            torch.linalg.norm(a[k].final_state["prompt"] - b[k].final_state["prompt"])
            / torch.linalg.norm(a[k].final_state["prompt"])
        )
        for k in jobs
    )
    # CUDA runs under bf16 autocast, whose rounding depends on which rows share a forward: the prompts then
    # agree to bf16's precision compounded over the steps, not to 1e-3 (the float32 check, in the tests)
    rtol = 5e-2 if args.device.startswith("cuda") else 1e-3
    print(
        f"speed-up: {timings['one after another'] / timings['--multi_prompt']:.2f}x; same best accuracies: "
        f"{same_acc}; largest relative prompt difference {worst:.2e} (tolerance {rtol:g})"
    )
    return 0 if same_acc and worst <= rtol else 1


if __name__ == "__main__":
    raise SystemExit(main())
