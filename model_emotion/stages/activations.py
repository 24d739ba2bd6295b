"""Step 2 as a stage: the FFN neuron activations of every learned prompt, read at the classification
slot (``run_activations``), configured by one frozen ``ActivationsConfig``.

``get_active_neuron.py`` (``model-emotion activations``) turns flags into an ``ActivationsConfig`` and
calls ``run_activations``; a Python caller does the same with the same names. Each CSV's record
(``run_folder``: the checkpoint's digest, the settings and the CSV's own digest, in its ``_meta.json``)
decides whether it is reused.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from model_emotion.errors import ToolkitError
from model_emotion.lm.device import resolve_device
from model_emotion.stages import common
from model_emotion.stages.jobs import check_output_dir
from model_emotion.util.names import check_emotion_name
from model_emotion.util.settings import Settings, setting

logger = logging.getLogger(__name__)

MODES = ("before_relu", "after_relu", "pre_activation")


@dataclass(frozen=True)
class ActivationsConfig(Settings):
    """Everything the activation files depend on, each setting declared once; validated on construction."""

    activation_mode: str = setting(
        "before_relu",
        "before_relu: value after the activation function (the paper's name); after_relu: "
        "that value > 0 as 0/1; pre_activation: the value before the activation function",
        choices=MODES,
    )
    model: str = common.model()
    dtype: str | None = common.dtype()
    checkpoint_dir: Path = common.checkpoint_dir()
    device: str | None = common.device()
    output_dir: Path | None = setting(
        None, "output folder (default active_neuron_{mode}_csv)", kind="path", flags=("--output_dir", "--output")
    )
    sentiments: tuple[str, ...] | None = setting(
        None, "emotions to read (default: every checkpoint found)", kind="str", nargs="+"
    )
    seeds: tuple[int, ...] | None = setting(
        None, "seeds to read (default: every checkpoint found)", kind="seed", nargs="+"
    )
    state: str = common.state()
    control: str = setting(
        "none",
        "untrained control prompts instead of the trained ones: random_prompts = random vectors with "
        "the trained prompt's norm per position (not a clean null: the norms come from training); "
        "vocab_prompts = the input embeddings of random vocabulary tokens (nothing from the trained prompt)",
        choices=("none", "random_prompts", "vocab_prompts"),
    )
    control_seed: int = setting(0, "seed of the control prompts (default %(default)s)", kind="seed")
    protocol: str | None = common.checkpoint_protocol()
    overwrite: bool = common.overwrite("recompute CSVs that exist")

    def rules(self) -> None:
        for emotion in self.sentiments or ():
            check_emotion_name(emotion, "{--sentiments}")

    @property
    def out(self) -> Path:
        return self.output_dir or Path(f"active_neuron_{self.activation_mode}_csv")


def _count(sizes, split: str) -> int | None:
    """A checkpoint's recorded number of ``split`` examples, when it is a count (else None: unknown)."""
    value = sizes.get(split) if isinstance(sizes, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def find_checkpoints(checkpoint_dir: Path, sentiments, seeds) -> list[tuple[str, int, Path]]:
    from model_emotion.util.names import split_run_name

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


def control_prompt(record: dict, state: str, emotion: str, seed: int, control_seed: int, vocabulary=None) -> dict:
    """A copy of a checkpoint record whose prompt is random (the head, if any, is kept): without
    ``vocabulary``, Gaussian vectors rescaled, position by position, to the trained prompt's L2 norms
    (``random_prompts``); with it (the model's input embedding matrix [tokens, hidden]), the embeddings
    of random vocabulary tokens, one per position (``vocab_prompts``: only the prompt's length is kept,
    the usual initialisation of prompt tuning)."""
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
    if vocabulary is not None:
        tokens = torch.from_numpy(rng.integers(0, vocabulary.shape[0], size=prompt.shape[0]))
        return {**record, f"{state}_prompt": vocabulary[tokens].detach().to(prompt.dtype).clone()}
    noise = torch.from_numpy(rng.standard_normal(tuple(prompt.shape))).to(prompt.dtype)
    norms = prompt.norm(dim=1, keepdim=True)
    control = noise / noise.norm(dim=1, keepdim=True).clamp_min(1e-12) * norms
    return {**record, f"{state}_prompt": control}


def _load_records(config: ActivationsConfig, jobs) -> dict:
    """Every checkpoint's record, refused when they mix prompt lengths."""
    from model_emotion.prompts.checkpoint import load_checkpoint

    records = {(e, s): load_checkpoint(path, config.model) for e, s, path in jobs}
    lengths = {rec["config"]["prompt_len"] for rec in records.values()}
    if len(lengths) > 1:
        example = {p: f"{e}-{s}" for (e, s), rec in records.items() for p in [rec["config"]["prompt_len"]]}
        raise ToolkitError(
            f"checkpoints mix prompt lengths {sorted(lengths)} (e.g. {example}); compare prompts of one configuration"
        )
    return records


def _made_from(config: ActivationsConfig, record: dict, path: Path) -> dict:
    """What a prompt's CSV is made from (run_folder): its checkpoint and the settings it depends on."""
    from model_emotion.io import run_folder

    settings = {
        "model": config.model,
        "mode": config.activation_mode,
        "state": config.state,
        "protocol": config.protocol or record["config"].get("protocol", "toolkit"),
    }
    if config.control != "none":  # trained prompts keep the record of earlier versions (their CSVs stay valid)
        settings.update(control=config.control, control_seed=config.control_seed)
    return run_folder.made_from({"checkpoint": path}, settings)


def _prompt_row(config: ActivationsConfig, job, record: dict, loaded, out: Path):
    """One prompt's activations: its CSV reused when current (checkpoint, settings and content
    unchanged), else computed and written with its record."""
    from model_emotion.io import run_folder
    from model_emotion.io.activations import read_activation_csv, write_activation_csv
    from model_emotion.io.files import write_meta
    from model_emotion.prompts.activations import prompt_activations
    from model_emotion.prompts.checkpoint import prompt_model_from_checkpoint

    emotion, seed, path = job
    backbone, tokenizer, ffn, device = loaded
    csv_path = run_folder.activation_csv(out, emotion, seed)
    made_from = _made_from(config, record, path)
    recorded = run_folder.read_record(csv_path) if csv_path.exists() and not config.overwrite else None
    if recorded is None and csv_path.exists() and not config.overwrite:
        logger.info("%s has no record of what it was made from; recomputing", csv_path)
    if recorded is not None and run_folder.is_current(csv_path, recorded, made_from):
        row = read_activation_csv(csv_path)
        if row.size != ffn.num_neurons:
            raise ToolkitError(
                f"{csv_path} has {row.size} neurons, the model has {ffn.num_neurons}; pass --overwrite to recompute"
            )
        return row
    if config.control != "none":
        vocabulary = backbone.get_input_embeddings().weight.cpu() if config.control == "vocab_prompts" else None
        record = control_prompt(record, config.state, emotion, seed, config.control_seed, vocabulary)
    model = prompt_model_from_checkpoint(record, backbone, tokenizer, config.state, path, config.protocol)
    row = prompt_activations(model.to(device), config.activation_mode)
    write_activation_csv(csv_path, row)
    write_meta(csv_path, made_from=run_folder.with_output(made_from, csv_path))
    return row


def _accuracy_row(emotion: str, seed: int, record: dict) -> dict:
    return {
        "sentiment": emotion,
        "random_seed": seed,
        "accuracy": record.get("best_acc"),
        "final_accuracy": record.get("final_acc"),
        "test_accuracy": record.get("test_acc"),
        # examples behind the accuracies (checkpoints before 0.4 did not record them)
        "dev_examples": _count(record.get("sizes"), "dev"),
        "test_examples": _count(record.get("sizes"), "test"),
    }


def _write_npz(config: ActivationsConfig, out: Path, rows: dict, records: dict, backbone, ffn):
    """activations.npz over the full emotion x seed grid, with its meta."""
    import numpy as np

    from model_emotion.io import run_folder
    from model_emotion.io.activations import ActivationSet, save_npz
    from model_emotion.io.files import write_meta

    emotions = sorted({e for e, _ in records})
    seeds = sorted({s for _, s in records})
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
    return acts


def run_activations(config: ActivationsConfig) -> int:
    """Write one CSV per prompt, ``activations.npz`` and the prompt accuracy table (CSVs whose
    checkpoint, settings and content are unchanged are reused)."""
    import numpy as np
    import pandas as pd
    from tqdm import tqdm

    from model_emotion.io import run_folder
    from model_emotion.io.activations import write_activation_csv
    from model_emotion.io.files import save_run_args, write_csv
    from model_emotion.lm.loading import load_backbone
    from model_emotion.lm.neurons import find_ffn

    out = config.out
    check_output_dir(out, "--output_dir")  # before any work
    jobs = find_checkpoints(config.checkpoint_dir, config.sentiments, config.seeds)
    records = _load_records(config, jobs)
    heads = {rec["config"].get("head", "mlm") for rec in records.values()}
    device = resolve_device(config.device)
    backbone, tokenizer, _ = load_backbone(config.model, "linear" if heads == {"linear"} else "auto", config.dtype)
    ffn = find_ffn(backbone)
    logger.info("%d checkpoints; %s has %d layers x %d FFN neurons", len(jobs), config.model, ffn.num_layers, ffn.d_ffn)
    loaded = (backbone, tokenizer, ffn, device)
    rows = {}
    for job in tqdm(jobs, desc="prompts", disable=None):  # the bar on a terminal only
        rows[job[:2]] = _prompt_row(config, job, records[job[:2]], loaded, out)
    for emotion in sorted({e for e, _, _ in jobs}):
        have = [row for (e, _), row in sorted(rows.items()) if e == emotion]
        write_activation_csv(run_folder.emotion_sum_csv(out, emotion), np.sum(have, axis=0))
    accuracy = [_accuracy_row(e, s, records[(e, s)]) for e, s, _ in jobs]
    write_csv(out / run_folder.ACCURACY_CSV, pd.DataFrame(accuracy).sort_values(["random_seed", "sentiment"]))
    acts = _write_npz(config, out, rows, records, backbone, ffn)
    save_run_args(out, config.to_dict(), "get_active_neuron")
    logger.info("wrote %d activation CSVs, activations.npz %s and the accuracy table to %s", len(rows), acts.shape, out)
    return 0
