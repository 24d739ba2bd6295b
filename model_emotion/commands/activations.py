"""Step 2: FFN neuron activations of every learned prompt, read at the classification slot.

The model is loaded once; each checkpoint's prompt is then run alone and all layers x d_ffn
neurons are read at the ``<mask>`` slot. The input is the protocol's: ``<mask> P_1..P_P`` with
Hugging Face's positions (toolkit), or exactly the original code's ``<mask> P_1..P_P <s>`` with
positions 0..L-1 and no token-type embedding on the prompt (``--protocol paper``).

``--control random_prompts`` writes the same files for untrained control prompts: each checkpoint's
prompt is replaced by Gaussian random vectors, each rescaled to the L2 norm of the trained prompt's
vector at the same position (one control per emotion and seed, drawn from ``--control_seed``, the
emotion and the seed), so that every later stage runs on them unchanged and ``report.py
--control_dir`` can put trained and control side by side: what the searchlight finds in prompts
that learned nothing.

Example:
    python get_active_neuron.py --activation_mode before_relu --checkpoint_dir checkpoint
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from model_emotion import cli
from model_emotion.errors import ToolkitError

logger = logging.getLogger(__name__)

PROVENANCE = "provenance.json"


def parse_args(argv=None) -> argparse.Namespace:
    parser = cli.Parser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--activation_mode",
        type=str,
        default="before_relu",
        choices=["before_relu", "after_relu", "pre_activation"],
        help="before_relu: value after the activation function (the paper's name); after_relu: "
        "that value > 0 as 0/1; pre_activation: the value before the activation function",
    )
    cli.add_model_args(parser)
    cli.add_checkpoint_args(parser)
    cli.add_device_args(parser)
    parser.add_argument(
        "--output_dir", type=Path, default=None, help="output folder (default active_neuron_{mode}_csv)"
    )
    parser.add_argument(
        "--sentiments", type=str, nargs="+", default=None, help="emotions to read (default: every checkpoint found)"
    )
    parser.add_argument(
        "--seeds", type=cli.seed_int, nargs="+", default=None, help="seeds to read (default: every checkpoint found)"
    )
    parser.add_argument(
        "--state", type=str, default="best", choices=["best", "final"], help="which prompt of the checkpoint"
    )
    parser.add_argument(
        "--control",
        type=str,
        default="none",
        choices=["none", "random_prompts"],
        help="random_prompts: untrained control prompts (random vectors with the trained prompt's "
        "norm per position) instead of the trained ones",
    )
    parser.add_argument(
        "--control_seed", type=cli.seed_int, default=0, help="seed of the control prompts (default %(default)s)"
    )
    cli.add_protocol_args(parser)
    parser.add_argument("--overwrite", action="store_true", help="recompute CSVs that exist")
    return parser.parse_args(argv)


def find_checkpoints(checkpoint_dir: Path, sentiments, seeds) -> list[tuple[str, int, Path]]:
    from model_emotion.data import split_run_name

    if not checkpoint_dir.is_dir():
        raise ToolkitError(f"--checkpoint_dir {checkpoint_dir} is not a folder")
    found = {}
    for file in sorted(checkpoint_dir.glob("*.pt")):
        run = split_run_name(file.stem) if file.suffix == ".pt" else None
        if run:
            found[run] = file
    if sentiments or seeds:
        emotions = sentiments or sorted({e for e, _ in found})
        wanted = seeds or sorted({s for _, s in found})
        missing = [f"{e}-{s}.pt" for e in emotions for s in wanted if (e, s) not in found]
        if missing:
            raise ToolkitError(
                f"missing checkpoint(s) in {checkpoint_dir}: {', '.join(missing[:10])}"
                f"{' ...' if len(missing) > 10 else ''}"
            )
        found = {(e, s): found[(e, s)] for e in emotions for s in wanted}
    if not found:
        raise ToolkitError(f"no {{sentiment}}-{{seed}}.pt checkpoints in {checkpoint_dir}")
    return [(e, s, found[(e, s)]) for e, s in sorted(found)]


def control_prompt(record: dict, state: str, emotion: str, seed: int, control_seed: int) -> dict:
    """A copy of a checkpoint record whose prompt is random: Gaussian vectors rescaled, position by
    position, to the trained prompt's L2 norms (the head, if any, is kept)."""
    import zlib

    import numpy as np
    import torch

    prompt = record[f"{state}_prompt"]
    if prompt.shape[0] == 0:
        raise ToolkitError(
            f"{emotion}-{seed}: an instruction prompt has no vectors to replace; --control "
            f"random_prompts needs soft prompts"
        )
    rng = np.random.default_rng([control_seed, zlib.crc32(emotion.encode()), seed])
    noise = torch.from_numpy(rng.standard_normal(tuple(prompt.shape))).to(prompt.dtype)
    norms = prompt.norm(dim=1, keepdim=True)
    control = noise / noise.norm(dim=1, keepdim=True).clamp_min(1e-12) * norms
    return {**record, f"{state}_prompt": control}


def main(argv=None) -> int:
    args = parse_args(argv)
    import numpy as np
    import pandas as pd
    from tqdm import tqdm

    from model_emotion.activation_files import ActivationSet, read_activation_csv, save_npz, write_activation_csv
    from model_emotion.activations import prompt_activations
    from model_emotion.checkpoint import load_checkpoint, prompt_model_from_checkpoint
    from model_emotion.io import file_digest, read_json, save_run_args, write_csv, write_json, write_meta
    from model_emotion.loading import load_backbone
    from model_emotion.neurons import find_ffn

    cli.setup_logging()
    out = args.output_dir or Path(f"active_neuron_{args.activation_mode}_csv")
    cli.check_output_dir(out, "--output_dir")  # before any work
    jobs = find_checkpoints(args.checkpoint_dir, args.sentiments, args.seeds)
    # What each CSV was made from; a CSV whose checkpoint or settings changed is recomputed.
    provenance_path = out / PROVENANCE
    try:
        provenance = read_json(provenance_path, dict) if provenance_path.exists() else {}
    except ToolkitError as exc:
        logger.warning("%s; recomputing every CSV", exc)
        provenance = {}
    records = {(e, s): load_checkpoint(path, args.model) for e, s, path in jobs}
    lengths = {rec["config"]["prompt_len"] for rec in records.values()}
    if len(lengths) > 1:
        example = {p: f"{e}-{s}" for (e, s), rec in records.items() for p in [rec["config"]["prompt_len"]]}
        raise ToolkitError(
            f"checkpoints mix prompt lengths {sorted(lengths)} (e.g. {example}); compare prompts of one configuration"
        )
    heads = {rec["config"].get("head", "mlm") for rec in records.values()}
    device = cli.resolve_device(args.device)
    backbone, tokenizer, _ = load_backbone(args.model, "linear" if heads == {"linear"} else "auto", args.dtype)
    ffn = find_ffn(backbone)
    logger.info("%d checkpoints; %s has %d layers x %d FFN neurons", len(jobs), args.model, ffn.num_layers, ffn.d_ffn)

    emotions = sorted({e for e, _, _ in jobs})
    seeds = sorted({s for _, s, _ in jobs})
    rows: dict[tuple[str, int], np.ndarray] = {}
    accuracy = []
    for emotion, seed, path in tqdm(jobs, desc="prompts"):
        record = records[(emotion, seed)]
        csv_path = out / f"{emotion}-{seed}.csv"
        made_from = {
            "checkpoint_sha256": file_digest(path),
            "model": args.model,
            "mode": args.activation_mode,
            "state": args.state,
            "protocol": args.protocol or record["config"].get("protocol", "toolkit"),
        }
        if args.control != "none":  # trained prompts keep the record of earlier versions (their CSVs stay valid)
            made_from.update(control=args.control, control_seed=args.control_seed)
        # The record covers the CSV itself too (its digest): a CSV edited since it was written is recomputed.
        stored = provenance.get(csv_path.name)
        stored = stored if isinstance(stored, dict) else {}
        reuse = (
            csv_path.exists()
            and not args.overwrite
            and {k: v for k, v in stored.items() if k != "csv_sha256"} == made_from
        )
        if reuse and stored.get("csv_sha256") not in (None, file_digest(csv_path)):
            logger.info("%s was changed since it was written; recomputing", csv_path)
            reuse = False
        elif csv_path.exists() and not args.overwrite and not reuse:
            logger.info("%s is stale or of unknown origin (checkpoint or settings changed); recomputing", csv_path)
        if reuse:
            rows[(emotion, seed)] = read_activation_csv(csv_path)
            if rows[(emotion, seed)].size != ffn.num_neurons:
                raise ToolkitError(
                    f"{csv_path} has {rows[(emotion, seed)].size} neurons, the model has "
                    f"{ffn.num_neurons}; pass --overwrite to recompute"
                )
        else:
            if args.control == "random_prompts":
                record = control_prompt(record, args.state, emotion, seed, args.control_seed)
            model = prompt_model_from_checkpoint(record, backbone, tokenizer, args.state, path, args.protocol).to(
                device
            )
            rows[(emotion, seed)] = prompt_activations(model, args.activation_mode)
            write_activation_csv(csv_path, rows[(emotion, seed)])
            provenance[csv_path.name] = {**made_from, "csv_sha256": file_digest(csv_path)}
            write_json(provenance_path, provenance)
        accuracy.append(
            {
                "sentiment": emotion,
                "random_seed": seed,
                "accuracy": record.get("best_acc"),
                "final_accuracy": record.get("final_acc"),
                "test_accuracy": record.get("test_acc"),
            }
        )
    for emotion in emotions:
        have = [rows[(emotion, s)] for s in seeds if (emotion, s) in rows]
        write_activation_csv(out / f"{emotion}-all.csv", np.sum(have, axis=0))
    write_csv(
        out / "goemotions_prompt_tuning_accuracy.csv", pd.DataFrame(accuracy).sort_values(["random_seed", "sentiment"])
    )
    missing = [f"{e}-{s}" for e in emotions for s in seeds if (e, s) not in rows]
    if missing:
        raise ToolkitError(
            f"incomplete emotion x seed grid, missing checkpoints {', '.join(missing[:10])}; the CSVs "
            f"were written but activations.npz needs the full grid (restrict with --sentiments/--seeds)"
        )
    acts = np.stack([np.stack([rows[(e, s)] for s in seeds]) for e in emotions]).astype(np.float32)
    save_npz(out / "activations.npz", ActivationSet(acts, emotions, seeds, ffn.num_layers, ffn.d_ffn))
    protocols = sorted({args.protocol or rec["config"].get("protocol", "toolkit") for rec in records.values()})
    modes = sorted({rec["config"].get("prompt_mode", "soft") for rec in records.values()})
    write_meta(
        out / "activations.npz",
        num_layers=ffn.num_layers,
        d_ffn=ffn.d_ffn,
        num_neurons=ffn.num_neurons,
        model=args.model,
        model_type=backbone.config.model_type,
        protocol="+".join(protocols),
        prompt_mode="+".join(modes),
        activation_mode=args.activation_mode,
        state=args.state,
        control=args.control if args.control != "none" else None,
        control_seed=args.control_seed if args.control != "none" else None,
    )
    save_run_args(out, args, "get_active_neuron")
    logger.info("wrote %d activation CSVs, activations.npz %s and the accuracy table to %s", len(rows), acts.shape, out)
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
