"""Masked evaluation of one prompt under many masks: the toolkit against the original approach.

Toolkit (``masked_eval.evaluate_masks``): model and prompt loaded once, batches grouped by length,
the unmasked work shared by all masks, silenced neurons left out of the FFN, the last block run for
the slot only.
Original approach (thunlp/Model_Emotion eval_mask_neuron.py): for every mask the tokenizer, the
model and the prompt are loaded again, every batch is padded to 256 text tokens, and the whole
encoder runs on every position; the neurons are scaled by a hook. Both evaluate the same examples
under the same masks and must give the same accuracies (on the CPU; on CUDA the toolkit runs in
bf16 autocast and the gap is printed). The original approach is timed on the
first ``--original_masks`` masks and its per-mask cost extrapolated to all of them.

The masks silence 4%, 8% or 16% of all neurons (in turn), chosen at random, like gen_mask's grid.

    python benchmarks/mask_eval_speed.py [--num_masks 112] [--eval_examples 32]
"""

from __future__ import annotations

import argparse
import time

import torch
from common import packaged_encoder, random_masks, shared_data

from model_emotion.data.goemotions import binary_task, load_goemotions
from model_emotion.lm.batching import batches, encode
from model_emotion.lm.loading import load_backbone
from model_emotion.lm.neurons import find_ffn, scale_neurons
from model_emotion.masking.evaluate import evaluate_masks
from model_emotion.prompts.config import PromptConfig
from model_emotion.prompts.encoder import SoftPromptModel


def build(model_name: str, prompt_len: int, prompt: torch.Tensor | None, head_state: dict | None, device):
    backbone, tokenizer, head = load_backbone(model_name)
    model = SoftPromptModel(
        backbone, tokenizer, PromptConfig(model=model_name, prompt_len=prompt_len, head=head, max_length=256, seed=1)
    )
    if prompt is not None:
        model.load_trainable_state(prompt, head_state)
    return model.to(device), tokenizer


@torch.inference_mode()
def original_accuracy(model: SoftPromptModel, task, batch_size: int, device) -> float:
    """The original evaluation: batches padded to 256 text tokens, the full encoder on every position."""
    model.eval()
    correct = 0
    for ids, mask, labels in batches(task, batch_size, pad_to=256):
        hidden = model.encode(model._inputs(ids.to(device), mask.to(device), len(ids)), slot_only=False)[
            0
        ]  # [batch, 1 + P + 256, hidden]
        correct += int((model.classify(hidden[:, 0]).argmax(-1).cpu() == labels).sum())
    return correct / len(task)


def check(device: torch.device, what: str, differences: list[float]) -> None:
    """Same accuracies on the CPU (fp32 both); on CUDA the toolkit runs in bf16 autocast, so report the gap."""
    worst = max(abs(d) for d in differences)
    if device.type == "cpu":
        assert worst < 1e-9, f"{what} gave other accuracies (max difference {worst})"
    else:
        print(f"  accuracy difference to {what} (toolkit bf16 autocast vs fp32): at most {worst:.4f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--shared_data", type=str, default=None, help="the shared data folder")
    parser.add_argument("--model", type=str, default=None, help="model folder (default: the packaged all-MiniLM-L6-v2)")
    parser.add_argument("--prompt_len", type=int, default=100, help="soft prompt length P (default %(default)s)")
    parser.add_argument("--num_masks", type=int, default=112, help="masks evaluated (default %(default)s)")
    parser.add_argument("--eval_examples", type=int, default=32, help="evaluation examples (default %(default)s)")
    parser.add_argument("--batch_size", type=int, default=32, help="evaluation batch size, both (default %(default)s)")
    parser.add_argument("--original_masks", type=int, default=4, help="masks timed with the original approach")
    parser.add_argument(
        "--plain_masks",
        type=int,
        default=8,
        help="masks timed with the toolkit's plain path (a full forward per mask, model loaded once)",
    )
    parser.add_argument("--device", type=str, default="cpu", help="torch device (default %(default)s)")
    args = parser.parse_args()
    root = shared_data(args.shared_data)
    device = torch.device(args.device)
    model_name = args.model or packaged_encoder()
    data = load_goemotions(root / "goemotions", splits=("dev",))
    task = binary_task(data.split("dev"), "anger", 1, "dev", args.eval_examples)

    if device.type == "cuda":  # start CUDA and cuBLAS before any timing, so neither approach pays for it
        (torch.ones(64, 64, device=device) @ torch.ones(64, 64, device=device)).sum().item()
    start = time.perf_counter()
    model, tokenizer = build(model_name, args.prompt_len, None, None, device)
    loaded_s = time.perf_counter() - start
    ffn = find_ffn(model)
    masks = random_masks(ffn.num_layers, ffn.d_ffn, args.num_masks)
    encoded = encode(tokenizer, task.texts, task.labels, 256)
    ours = evaluate_masks(model, encoded, masks, args.batch_size, device, progress=False)
    toolkit_s = time.perf_counter() - start
    print(
        f"toolkit: {args.num_masks} masks x {len(encoded)} examples in {toolkit_s:.1f} s "
        f"({toolkit_s / args.num_masks:.2f} s per mask; the model loaded once in {loaded_s:.1f} s, counted)"
    )

    plain_names = list(masks)[: args.plain_masks]
    start = time.perf_counter()
    plain = evaluate_masks(
        model, encoded, {n: masks[n] for n in plain_names}, args.batch_size, device, progress=False, shared=False
    )
    plain_per_mask = (time.perf_counter() - start) / len(plain_names)
    check(device, "the plain path", [plain[n] - ours[n] for n in plain_names])
    print(
        f"  for comparison, the plain path (a full forward per mask, model loaded once, dynamic padding): "
        f"{plain_per_mask:.2f} s per mask ({len(plain_names)} masks timed)"
    )

    prompt, head_state = model.prompt.detach().cpu().clone(), model.trainable_state()
    head_state = {k: v for k, v in head_state.items() if k.startswith("head.")} or None
    differences = []
    start = time.perf_counter()
    for name in list(masks)[: args.original_masks]:
        fresh, fresh_tok = build(model_name, args.prompt_len, prompt, head_state, device)  # reload per mask
        enc = encode(fresh_tok, task.texts, task.labels, 256)
        with scale_neurons(fresh, masks[name].to(device)):
            acc = original_accuracy(fresh, enc, args.batch_size, device)
        differences.append(acc - ours[name])
    per_mask = (time.perf_counter() - start) / args.original_masks
    check(device, "the original approach", differences)
    original_s = per_mask * args.num_masks
    print(
        f"original approach: {per_mask:.2f} s per mask (reload + pad to 256; {args.original_masks} masks timed) "
        f"-> {original_s:.1f} s extrapolated to {args.num_masks} masks"
    )
    print(f"speed-up: {original_s / toolkit_s:.1f}x")

    # The original script also re-read the data for every mask (get_loader: train, dev and test).
    start = time.perf_counter()
    load_goemotions(root / "goemotions", splits=("train", "dev", "test"))
    reread = time.perf_counter() - start
    print(
        f"not counted above: the original script also re-read train/dev/test for every mask, {reread:.2f} s here; "
        f"with it the speed-up would be {(per_mask + reread) * args.num_masks / toolkit_s:.1f}x"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
