"""Training and evaluation throughput: dynamic padding against padding every batch to 256 tokens.

The original code padded every batch to ``--max_length 256``; the toolkit pads to the longest row
of each batch (and, for evaluation, groups rows by length). Same model, prompt and examples in the
same run; the figure is the ratio of examples per second.

    python benchmarks/train_speed.py [--model PATH] [--prompt_len 100] [--train_examples 96]
"""

from __future__ import annotations

import argparse
import time

import torch
from common import packaged_encoder, shared_data

from model_emotion.data.goemotions import binary_task, load_goemotions
from model_emotion.lm.batching import encode
from model_emotion.lm.inference import accuracy
from model_emotion.lm.loading import load_backbone
from model_emotion.prompts.config import PromptConfig
from model_emotion.prompts.encoder import SoftPromptModel
from model_emotion.prompts.training import set_seed, train_prompt


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--shared_data", type=str, default=None, help="the shared data folder")
    parser.add_argument("--model", type=str, default=None, help="model folder (default: the packaged all-MiniLM-L6-v2)")
    parser.add_argument("--prompt_len", type=int, default=100, help="soft prompt length P (default %(default)s)")
    parser.add_argument("--train_examples", type=int, default=96, help="training examples timed (default %(default)s)")
    parser.add_argument(
        "--eval_examples", type=int, default=256, help="evaluation examples timed (default %(default)s)"
    )
    parser.add_argument("--batch_size", type=int, default=8, help="training batch size (the paper's 8)")
    parser.add_argument("--eval_batch_size", type=int, default=32, help="evaluation batch size (the paper's 32)")
    parser.add_argument("--device", type=str, default="cpu", help="torch device (default %(default)s)")
    args = parser.parse_args()
    root = shared_data(args.shared_data)
    device = torch.device(args.device)
    model_name = args.model or packaged_encoder()
    data = load_goemotions(root / "goemotions", splits=("train", "dev"))
    backbone, tokenizer, head = load_backbone(model_name)
    set_seed(0)
    model = SoftPromptModel(
        backbone, tokenizer, PromptConfig(model=model_name, prompt_len=args.prompt_len, head=head, max_length=256)
    ).to(device)
    train = binary_task(data.split("train"), "anger", 1, "train", args.train_examples)
    dev = binary_task(data.split("dev"), "anger", 1, "dev", args.eval_examples)
    tiny = binary_task(data.split("dev"), "anger", 2, "dev", 2)
    train_enc = encode(tokenizer, train.texts, train.labels, 256)
    dev_enc = encode(tokenizer, dev.texts, dev.labels, 256)
    tiny_enc = encode(tokenizer, tiny.texts, tiny.labels, 256)
    lengths = sorted(len(x) for x in dev_enc.input_ids)
    print(
        f"model {model_name}, P={args.prompt_len}, device {device}; GoEmotions text tokens: median "
        f"{lengths[len(lengths) // 2]}, max {lengths[-1]}"
    )

    rates = {}
    for label, pad_to in (("dynamic", None), ("pad256", 256)):
        start = time.perf_counter()
        train_prompt(
            model,
            train_enc,
            tiny_enc,
            epochs=1,
            lr=1e-3,
            batch_size=args.batch_size,
            eval_batch_size=args.eval_batch_size,
            device=device,
            seed=0,
            pad_to=pad_to,
            progress=False,
        )
        train_rate = len(train_enc) / (time.perf_counter() - start)
        start = time.perf_counter()
        accuracy(model, dev_enc, args.eval_batch_size, device, pad_to=pad_to)
        eval_rate = len(dev_enc) / (time.perf_counter() - start)
        rates[label] = (train_rate, eval_rate)
        print(f"{label:>8}: train {train_rate:7.1f} examples/s   eval {eval_rate:7.1f} examples/s")
    print(
        f"speed-up of dynamic padding: train {rates['dynamic'][0] / rates['pad256'][0]:.2f}x, "
        f"eval {rates['dynamic'][1] / rates['pad256'][1]:.2f}x"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
