"""The paper's full grid as work: tokens and FLOPs, the limit on one GPU, and a measured fraction of a peak.

The grid: 27 emotions x 12 seeds = 324 prompts on roberta-base (12 layers, hidden 768, FFN 3072,
about 85M parameters outside the embeddings), P = 100, the original README's 2 epochs with
batches of 16 (train) and 32 (eval), the balanced binary task of each emotion (all its positives,
as many negatives), a dev evaluation after every epoch and one test evaluation; then every prompt
under ``--masks`` masks (the paper's top-k masks plus their random twins) on its balanced dev set.

Counting (per token, N = non-embedding parameters, T = sequence length):
- forward: 2N multiply-adds plus attention 4 T d per layer (QK^T and AV);
- training with a frozen backbone: forward + backward to the inputs only (no weight gradients),
  about 2x the forward; the prompt's own gradient is negligible.
Tokens per row: 1 slot + P + the text's tokens, as the toolkit batches them (dynamic padding) and,
for comparison, padded to 256 text tokens as the original did. Text lengths come from the
packaged all-MiniLM-L6-v2 WordPiece tokenizer (roberta-base's BPE is not available offline here;
the two differ by a few percent on English Reddit text).

The limit is the total FLOPs at the device's dense bf16 peak (``--peak_tflops``, default H100/H200
SXM: 989 TFLOP/s). The measured part runs here: the toolkit's training step on all-MiniLM-L6-v2
(the same counting) against this machine's own measured matmul peak, the fraction a real run reaches.

    python benchmarks/gpu_plan.py [--peak_tflops 989] [--masks 252] [--device cpu]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from common import packaged_encoder, shared_data
from model_emotion.data import EMOTIONS, binary_task, load_goemotions

ROBERTA = dict(layers=12, hidden=768, ffn=3072)


def non_embedding_params(layers: int, hidden: int, ffn: int) -> int:
    # attention q, k, v, o (4 h^2 + 4 h) + FFN (2 h f + f + h) + 2 LayerNorms (4 h), per layer
    return layers * (4 * hidden * hidden + 4 * hidden + 2 * hidden * ffn + ffn + hidden + 4 * hidden)


def forward_flops(tokens: np.ndarray, layers: int, hidden: int, ffn: int) -> float:
    """FLOPs of one forward over rows of the given lengths (each row attends over its own length)."""
    n = non_embedding_params(layers, hidden, ffn)
    tokens = tokens.astype(np.float64)
    return float((2 * n * tokens).sum() + (4 * layers * hidden * tokens * tokens).sum())


def grid_rows(data, tokenizer, prompt_len: int, seeds: int):
    """Row lengths of every training, dev and test row of the grid (dynamic and padded to 256)."""
    out = {"train": [], "dev": [], "test": []}
    for emotion in EMOTIONS:
        for split in out:
            task = binary_task(data.split(split), emotion, 1, split)
            lengths = np.array([len(ids) for ids in tokenizer(task.texts, truncation=True, max_length=256)["input_ids"]])
            out[split].append(np.tile(lengths, seeds))  # every seed sees the same sizes
    return {split: np.concatenate(parts) + 1 + prompt_len for split, parts in out.items()}


def measured_fraction(device: torch.device) -> tuple[float, float, float]:
    """(achieved FLOP/s of a training step of the toolkit, matmul peak FLOP/s measured here, fraction)."""
    from model_emotion.batching import encode, pad_rows
    from model_emotion.prompt_model import PromptConfig, SoftPromptModel, load_backbone

    size = 2048 if device.type == "cpu" else 8192
    a = torch.randn(size, size, device=device)
    b = torch.randn(size, size, device=device)
    for _ in range(2):
        a @ b
    if device.type == "cuda":
        torch.cuda.synchronize()
    start, reps = time.perf_counter(), 5
    for _ in range(reps):
        a @ b
    if device.type == "cuda":
        torch.cuda.synchronize()
    peak = 2 * size ** 3 * reps / (time.perf_counter() - start)

    name = packaged_encoder()
    backbone, tokenizer, head = load_backbone(name)
    model = SoftPromptModel(backbone, tokenizer, PromptConfig(model=name, prompt_len=100, head=head)).to(device)
    texts = ["I really did not expect this to go so well, thank you all for the support!"] * 16
    task = encode(tokenizer, texts, np.zeros(16, dtype=np.int64), 256)
    ids, mask, labels = (t.to(device) for t in pad_rows(task, list(range(16))))
    optimizer = torch.optim.AdamW([model.prompt], lr=1e-3)
    model.train()

    def step():
        loss = torch.nn.functional.cross_entropy(model(ids, mask).float(), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    step()
    start, reps = time.perf_counter(), 5
    for _ in range(reps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = (time.perf_counter() - start) / reps
    config = backbone.config
    rows = np.full(16, ids.shape[1] + 1 + 100)
    flops = 2 * forward_flops(rows, config.num_hidden_layers, config.hidden_size, config.intermediate_size)
    return flops / seconds, peak, flops / seconds / peak


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared_data", type=str, default=None, help="the shared data folder")
    parser.add_argument("--peak_tflops", type=float, default=989.0, help="dense bf16 peak of the GPU (default H200)")
    parser.add_argument("--seeds", type=int, default=12, help="seeds per emotion (default %(default)s)")
    parser.add_argument("--epochs", type=int, default=2, help="epochs (default %(default)s)")
    parser.add_argument("--prompt_len", type=int, default=100, help="P (default %(default)s)")
    parser.add_argument("--masks", type=int, default=252, help="masks per prompt: 126 top-k + 126 random (default)")
    parser.add_argument("--device", type=str, default="cpu", help="device of the measured part (default %(default)s)")
    args = parser.parse_args()
    data = load_goemotions(shared_data(args.shared_data) / "goemotions")
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(packaged_encoder())
    rows = grid_rows(data, tokenizer, args.prompt_len, args.seeds)
    padded = {split: np.full(len(r), 256 + 1 + args.prompt_len) for split, r in rows.items()}
    prompts = len(EMOTIONS) * args.seeds
    print(f"grid: {prompts} prompts; rows per pass over all prompts: train {len(rows['train']):,}, "
          f"dev {len(rows['dev']):,}, test {len(rows['test']):,}; mean row {rows['train'].mean():.0f} tokens "
          f"(padded: {256 + 1 + args.prompt_len})")
    peak = args.peak_tflops * 1e12
    total = {}
    for label, lengths in (("dynamic padding", rows), ("padded to 256", padded)):
        fwd = {split: forward_flops(lengths[split], **ROBERTA) for split in lengths}
        work = {"training": 2 * fwd["train"] * args.epochs,
                "dev + test evaluation": fwd["dev"] * args.epochs + fwd["test"],
                "masked evaluation": fwd["dev"] * args.masks}
        total[label] = sum(work.values())
        print(f"{label}: " + ", ".join(f"{k} {v / 1e15:,.0f} PFLOP" for k, v in work.items())
              + f"; total {total[label] / 1e15:,.0f} PFLOP = {total[label] / peak / 3600:.2f} h at "
                f"{args.peak_tflops:.0f} TFLOP/s")
    device = torch.device(args.device)
    achieved, measured_peak, fraction = measured_fraction(device)
    print(f"measured here ({args.device}): a training step of all-MiniLM-L6-v2 (P = 100, batch 16) reaches "
          f"{achieved / 1e9:.1f} GFLOP/s against a {measured_peak / 1e9:.1f} GFLOP/s matmul measured in the same "
          f"process ({100 * fraction:.0f}%; the count ignores the slot-only last block, so it runs a little high)")
    if device.type != "cuda":
        print("the GPU hours above are limits at the quoted peak, not measurements: a CPU's fraction says nothing "
              "about a GPU's; run this script with --device cuda on the GPU to measure its fraction")
        return 0
    achieved_tflops = fraction * args.peak_tflops  # the matmul reference stands in for the device's peak
    print(f"on this GPU: the full grid at {achieved_tflops:.0f} TFLOP/s takes "
          f"{total['dynamic padding'] / (achieved_tflops * 1e12) / 3600:.2f} h (limit "
          f"{total['dynamic padding'] / peak / 3600:.2f} h at {args.peak_tflops:.0f} TFLOP/s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
