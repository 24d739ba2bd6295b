"""Step 2 as a stage: the FFN neuron activations of every learned prompt, read at the classification
slot (``run_activations``), configured by one frozen ``ActivationsConfig``.

``get_active_neuron.py`` (``model-emotion activations``) turns flags into an ``ActivationsConfig`` and
calls ``run_activations``; a Python caller does the same with the same names. Each CSV's record
(``run_folder``: the checkpoint's digest, the settings and the CSV's own digest, in its ``_meta.json``)
decides whether it is reused.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path

from .. import cli
from ..errors import ConfigError, ToolkitError
from ..names import check_emotion_name

logger = logging.getLogger(__name__)

MODES = ("before_relu", "after_relu", "pre_activation")


@dataclass(frozen=True)
class ActivationsConfig:
    """Everything the activation files depend on. Validated on construction."""

    activation_mode: str = "before_relu"
    model: str = cli.DEFAULT_MODEL
    dtype: str | None = None
    checkpoint_dir: Path = Path("checkpoint")
    device: str | None = None
    output_dir: Path | None = None  # None: active_neuron_{activation_mode}_csv
    sentiments: tuple[str, ...] | None = None  # None: every checkpoint found
    seeds: tuple[int, ...] | None = None
    state: str = "best"
    control: str = "none"
    control_seed: int = 0
    protocol: str | None = None  # None: each checkpoint's own
    overwrite: bool = False

    def __post_init__(self):
        object.__setattr__(self, "checkpoint_dir", Path(self.checkpoint_dir))
        if self.output_dir is not None:
            object.__setattr__(self, "output_dir", Path(self.output_dir))
        for name in ("sentiments", "seeds"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, tuple(getattr(self, name)))
        for name, allowed in (
            ("activation_mode", MODES),
            ("state", ("best", "final")),
            ("control", ("none", "random_prompts")),
            ("protocol", (None, "toolkit", "paper")),
        ):
            if getattr(self, name) not in allowed:
                shown = ", ".join(a for a in allowed if a)
                raise ConfigError(f"{{--{name}}} {getattr(self, name)!r} unknown; choose one of {shown}")
        for emotion in self.sentiments or ():
            check_emotion_name(emotion, "{--sentiments}")
        for seed in (self.seeds or ()) + (self.control_seed,):
            if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed <= cli.MAX_SEED:
                raise ConfigError(f"seed {seed!r} must be an integer in 0..{cli.MAX_SEED}")

    @property
    def out(self) -> Path:
        return self.output_dir or Path(f"active_neuron_{self.activation_mode}_csv")

    def to_dict(self) -> dict:
        values = asdict(self)
        return {
            k: (str(v) if isinstance(v, Path) else list(v) if isinstance(v, tuple) else v) for k, v in values.items()
        }


def _count(sizes, split: str) -> int | None:
    """A checkpoint's recorded number of ``split`` examples, when it is a count (else None: unknown)."""
    value = sizes.get(split) if isinstance(sizes, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def find_checkpoints(checkpoint_dir: Path, sentiments, seeds) -> list[tuple[str, int, Path]]:
    from model_emotion.data import split_run_name

    if not checkpoint_dir.is_dir():
        raise ToolkitError(f"{{--checkpoint_dir}} {checkpoint_dir} is not a folder")
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


def run_activations(config: ActivationsConfig) -> int:
    """Write one CSV per prompt, ``activations.npz`` and the prompt accuracy table (CSVs whose
    checkpoint, settings and content are unchanged are reused)."""
    import numpy as np
    import pandas as pd
    from tqdm import tqdm

    from model_emotion import run_folder
    from model_emotion.activation_files import ActivationSet, read_activation_csv, save_npz, write_activation_csv
    from model_emotion.activations import prompt_activations
    from model_emotion.checkpoint import load_checkpoint, prompt_model_from_checkpoint
    from model_emotion.io import save_run_args, write_csv, write_meta
    from model_emotion.loading import load_backbone
    from model_emotion.neurons import find_ffn

    out = config.output_dir or Path(f"active_neuron_{config.activation_mode}_csv")
    cli.check_output_dir(out, "--output_dir")  # before any work
    jobs = find_checkpoints(config.checkpoint_dir, config.sentiments, config.seeds)
    records = {(e, s): load_checkpoint(path, config.model) for e, s, path in jobs}
    lengths = {rec["config"]["prompt_len"] for rec in records.values()}
    if len(lengths) > 1:
        example = {p: f"{e}-{s}" for (e, s), rec in records.items() for p in [rec["config"]["prompt_len"]]}
        raise ToolkitError(
            f"checkpoints mix prompt lengths {sorted(lengths)} (e.g. {example}); compare prompts of one configuration"
        )
    heads = {rec["config"].get("head", "mlm") for rec in records.values()}
    device = cli.resolve_device(config.device)
    backbone, tokenizer, _ = load_backbone(config.model, "linear" if heads == {"linear"} else "auto", config.dtype)
    ffn = find_ffn(backbone)
    logger.info("%d checkpoints; %s has %d layers x %d FFN neurons", len(jobs), config.model, ffn.num_layers, ffn.d_ffn)

    emotions = sorted({e for e, _, _ in jobs})
    seeds = sorted({s for _, s, _ in jobs})
    rows: dict[tuple[str, int], np.ndarray] = {}
    accuracy = []
    for emotion, seed, path in tqdm(jobs, desc="prompts", disable=None):  # the bar on a terminal only
        record = records[(emotion, seed)]
        csv_path = run_folder.activation_csv(out, emotion, seed)
        # What the CSV is made from (run_folder): a CSV whose checkpoint or settings changed, or that was
        # edited since it was written, is recomputed.
        settings = {
            "model": config.model,
            "mode": config.activation_mode,
            "state": config.state,
            "protocol": config.protocol or record["config"].get("protocol", "toolkit"),
        }
        if config.control != "none":  # trained prompts keep the record of earlier versions (their CSVs stay valid)
            settings.update(control=config.control, control_seed=config.control_seed)
        made_from = run_folder.made_from({"checkpoint": path}, settings)
        recorded = run_folder.read_record(csv_path) if csv_path.exists() and not config.overwrite else None
        if recorded is None and csv_path.exists() and not config.overwrite:
            logger.info("%s has no record of what it was made from; recomputing", csv_path)
        reuse = recorded is not None and run_folder.is_current(csv_path, recorded, made_from)
        if reuse:
            rows[(emotion, seed)] = read_activation_csv(csv_path)
            if rows[(emotion, seed)].size != ffn.num_neurons:
                raise ToolkitError(
                    f"{csv_path} has {rows[(emotion, seed)].size} neurons, the model has "
                    f"{ffn.num_neurons}; pass --overwrite to recompute"
                )
        else:
            if config.control == "random_prompts":
                record = control_prompt(record, config.state, emotion, seed, config.control_seed)
            model = prompt_model_from_checkpoint(record, backbone, tokenizer, config.state, path, config.protocol).to(
                device
            )
            rows[(emotion, seed)] = prompt_activations(model, config.activation_mode)
            write_activation_csv(csv_path, rows[(emotion, seed)])
            write_meta(csv_path, made_from=run_folder.with_output(made_from, csv_path))
        accuracy.append(
            {
                "sentiment": emotion,
                "random_seed": seed,
                "accuracy": record.get("best_acc"),
                "final_accuracy": record.get("final_acc"),
                "test_accuracy": record.get("test_acc"),
                # examples behind the accuracies (checkpoints before 0.4 did not record them)
                "dev_examples": _count(record.get("sizes"), "dev"),
                "test_examples": _count(record.get("sizes"), "test"),
            }
        )
    for emotion in emotions:
        have = [rows[(emotion, s)] for s in seeds if (emotion, s) in rows]
        write_activation_csv(run_folder.emotion_sum_csv(out, emotion), np.sum(have, axis=0))
    write_csv(out / run_folder.ACCURACY_CSV, pd.DataFrame(accuracy).sort_values(["random_seed", "sentiment"]))
    missing = [f"{e}-{s}" for e in emotions for s in seeds if (e, s) not in rows]
    if missing:
        raise ToolkitError(
            f"incomplete emotion x seed grid, missing checkpoints {', '.join(missing[:10])}; the CSVs "
            f"were written but activations.npz needs the full grid (restrict with --sentiments/--seeds)"
        )
    acts = np.stack([np.stack([rows[(e, s)] for s in seeds]) for e in emotions]).astype(np.float32)
    save_npz(out / run_folder.ACTIVATIONS_NPZ, ActivationSet(acts, emotions, seeds, ffn.num_layers, ffn.d_ffn))
    protocols = sorted({config.protocol or rec["config"].get("protocol", "toolkit") for rec in records.values()})
    modes = sorted({rec["config"].get("prompt_mode", "soft") for rec in records.values()})
    write_meta(
        out / run_folder.ACTIVATIONS_NPZ,
        num_layers=ffn.num_layers,
        d_ffn=ffn.d_ffn,
        num_neurons=ffn.num_neurons,
        model=config.model,
        model_type=backbone.config.model_type,
        protocol="+".join(protocols),
        prompt_mode="+".join(modes),
        activation_mode=config.activation_mode,
        state=config.state,
        control=config.control if config.control != "none" else None,
        control_seed=config.control_seed if config.control != "none" else None,
    )
    save_run_args(out, config.to_dict(), "get_active_neuron")
    logger.info("wrote %d activation CSVs, activations.npz %s and the accuracy table to %s", len(rows), acts.shape, out)
    return 0
