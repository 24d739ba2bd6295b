"""Step 5 as a stage: the accuracy of learned prompts with masked FFN neurons (``run_eval``), configured
by one frozen ``EvalConfig`` that owns its defaults and its cross-setting rules.

``eval_mask_neuron.py`` (``model-emotion eval``) turns flags into an ``EvalConfig`` and calls
``run_eval``; a Python caller does the same, with the same names, the paper protocol's masked accuracy
(``accuracy_mean="per_batch"``) included. The config is saved beside the results
(``eval_config.json``) and ``EvalConfig.load`` reads it back to rerun.

The model and each prompt are loaded once; the unmasked prompt is evaluated, then every mask of the
file by scaling neurons through a hook. Results (accuracies and per-example correctness) are saved
after every group of masks, so an interrupted run resumes where it stopped, and a result whose inputs
or settings changed is evaluated again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from model_emotion.errors import ToolkitError
from model_emotion.io import run_folder
from model_emotion.io.files import job_lock
from model_emotion.io.run_folder import checkpoint_path, partial_path, result_path
from model_emotion.lm.device import resolve_device
from model_emotion.masking.ablation import ABLATIONS, REFERENCES
from model_emotion.masking.records import accuracies_of, correct_of, encode_correct, is_accuracy
from model_emotion.prompts.config import check_paper_quirks
from model_emotion.stages import common
from model_emotion.stages.jobs import check_output_dir, run_jobs
from model_emotion.util.names import check_jobs, run_name, split_run_name
from model_emotion.util.settings import Settings, setting

logger = logging.getLogger(__name__)

SPLITS = ("dev", "test")
STATES = ("best", "final")
PROTOCOLS = (None, "toolkit", "paper")
NEGATIVES = (None, "exclusive", "paper")
ACCURACY_MEANS = ("overall", "per_batch")


@dataclass(frozen=True)
class EvalConfig(Settings):
    """Everything a masked evaluation depends on, each setting declared once; validated on construction."""

    mask_path: Path = setting(
        Path("masks/RSA_14property_top_500_6000.pkl"),
        "masks PKL from gen_mask.py (default %(default)s)",
        flags=("--maskPath", "--mask_path"),
    )
    result_path: Path = setting(
        Path("eval_mask_neuron_result/RSA_14property_top_500_6000"),
        "folder of {sentiment}-{seed}.json results (default %(default)s)",
        flags=("--resultPath", "--result_path", "--output"),
    )
    jobs: tuple[tuple[str, int], ...] = setting(
        (("anger", 1),), "(emotion, seed) prompts; the original command's default is anger-1", kind="jobs", cli=False
    )
    model: str = common.model()
    dtype: str | None = common.dtype()
    data_dir: str | None = common.data_dir()
    checkpoint_dir: Path = common.checkpoint_dir()
    device: str | None = common.device()
    split: str | None = setting(
        None,
        "evaluation split; default test under the toolkit protocol (dev chose each prompt's best epoch, "
        "so it is not held out), dev under --protocol paper (the paper's)",
        kind="str",
        choices=(None,) + SPLITS,
    )
    selection: str | None = setting(
        None,
        "held_out: each prompt is evaluated with the masks of the seed fold it did not select "
        "(gen_mask.py --selection held_out); all: with the masks of all seeds (circular when the "
        "prompt's own activations ranked them: the paper's choice); default held_out when the masks "
        "have folds, else all",
        kind="str",
        choices=(None, "held_out", "all"),
    )
    max_eval_samples: int | None = setting(None, "cap on evaluation examples, balanced", kind="count")
    eval_batch_size: int = setting(64, "evaluation batch size (default %(default)s)", kind="count")
    masks_per_forward: int | str = setting(
        "auto",
        "masks stacked along the batch of one forward, or auto (default): 1 off CUDA (one mask "
        "per forward, its silenced neurons removed), on CUDA as many as fit the device's free "
        "memory and pay off (masking.evaluate.auto_masks_per_forward)",
        kind="count",
        also=("auto",),
    )
    state: str = common.state()
    protocol: str | None = common.checkpoint_protocol()
    negative_sampling: str | None = setting(
        None,
        "negatives drawn from rows without the emotion, or the original code's draw with "
        "replacement from the whole split (only with --protocol paper); default the checkpoint's, else exclusive",
        kind="str",
        choices=NEGATIVES,
    )
    accuracy_mean: str = setting(
        "overall",
        "share of correct rows (default), or the original evaluation's mean of per-batch means "
        "over --eval_batch_size rows in task order (only with --protocol paper)",
        choices=ACCURACY_MEANS,
    )
    ablation: str = setting(
        "zero",
        "what a masked neuron is set to: zero (the paper's), mean (its mean over the reference texts), "
        "resample (its value at a random token of a random reference text, per example), scale "
        "(--ablation_scale of its value); see masking.ablation",
        choices=ABLATIONS,
    )
    ablation_scale: float = setting(
        0.5, "--ablation scale: the share of its value a masked neuron keeps (default %(default)s)",
        kind="probability",
    )  # fmt: skip
    reference: str = setting(
        "neutral",
        "reference texts of --ablation mean/resample: the split's neutral-only texts (default) or all of its texts",
        choices=REFERENCES,
    )
    reference_samples: int = setting(
        256, "reference texts at most, drawn with --ablation_seed (default %(default)s)", kind="count"
    )
    ablation_seed: int = setting(0, "seed of the reference draw and of resample ablation", kind="seed")
    overwrite: bool = common.overwrite("re-evaluate even if the result exists")

    def rules(self) -> None:
        object.__setattr__(self, "jobs", check_jobs(self.jobs))
        check_paper_quirks(self.protocol, self.negative_sampling, self.accuracy_mean)
        if self.split is None:
            object.__setattr__(self, "split", "dev" if self.protocol == "paper" else "test")

    @property
    def per_batch(self) -> int | None:
        """The original's per-batch mean: its batch size, or None for the share of correct rows."""
        return self.eval_batch_size if self.accuracy_mean == "per_batch" else None

    @classmethod
    def load(cls, path: str | Path) -> EvalConfig:
        """The config a run saved (``eval_config.json``), to run it again."""
        from model_emotion.io.files import read_json

        return cls.from_dict(read_json(path, dict))


@dataclass
class EvalRun:
    """What every job of one evaluation shares: its config, the masks (hashed once), the records of
    the checkpoints known so far, and, once a job needs them, the model, data and device."""

    config: EvalConfig
    masks: dict
    masks_sha: str
    by_seed: dict = field(default_factory=dict)  # seed -> (masks, digest, selection record) of its fold
    reference_texts: list | None = None  # mean/resample ablation: the reference set, drawn once
    known: dict = field(default_factory=dict)  # (emotion, seed) -> the record known before loading
    checkpoints: dict = field(default_factory=dict)  # (emotion, seed) -> loaded checkpoint
    backbone: object = None
    tokenizer: object = None
    data: object = None
    device: object = None


def run_eval(config: EvalConfig) -> int:
    """Evaluate every prompt of ``config.jobs`` under every mask; 0 when all succeeded, 1 when some
    prompt failed (each failure is logged in one line and the others go on)."""
    from model_emotion.io.files import file_digest, save_run_args, write_json
    from model_emotion.masking.masks import load_masks

    check_output_dir(config.result_path, "{--result_path}")  # before any work
    run = EvalRun(config, load_masks(config.mask_path), file_digest(config.mask_path))
    run.by_seed = mask_sets(config, run.masks, run.masks_sha)
    pending = [(e, s) for e, s in config.jobs if not up_to_date(run, e, s)]
    if not pending:
        return 0
    load_shared(run, pending)
    status = run_jobs(pending, lambda e, s: evaluate_one(run, e, s), "masked evaluation")
    save_run_args(config.result_path, config.to_dict(), "eval_mask_neuron")
    write_json(config.result_path / run_folder.EVAL_CONFIG, config.to_dict())
    return status


def record_of(run: EvalRun, emotion: str, seed: int) -> dict:
    """The result's record (run_folder), as far as it is known before the model is loaded (each
    checkpoint hashed once)."""
    from model_emotion.io.files import file_digest

    if (emotion, seed) not in run.known:
        config = run.config
        ckpt = checkpoint_path(config.checkpoint_dir, emotion, seed)
        run.known[(emotion, seed)] = {
            "inputs": {"masks": run.by_seed[seed][1], "checkpoint": file_digest(ckpt) if ckpt.is_file() else None},
            "settings": {
                "model": config.model,
                "split": config.split,
                "max_eval_samples": config.max_eval_samples,
                "state": config.state,
                "protocol": config.protocol,
                "negative_sampling": config.negative_sampling,
                "accuracy_mean": config.accuracy_mean,
                "per_batch": config.per_batch,
                "selection": run.by_seed[seed][2],
                **ablation_settings(config),
            },
        }
    return run.known[(emotion, seed)]


def up_to_date(run: EvalRun, emotion: str, seed: int) -> bool:
    """A result exists, is one the report would accept, holds every mask and was made from these inputs."""
    from model_emotion.io.files import read_json

    path = result_path(run.config.result_path, emotion, seed)
    if run.config.overwrite or not path.exists():
        return False
    try:  # a result that the report would refuse is not up to date
        previous = read_json(path, dict)
        values = accuracies_of(previous, str(path))
        correct_of(previous, str(path))
    except ToolkitError as exc:
        logger.warning("%s; evaluating again", exc)
        return False
    invalid = [k for k, v in values.items() if not is_accuracy(v)]
    missing = [name for name in ["unmasked", *run.by_seed[seed][0]] if name not in values]
    if invalid or missing:
        problem = f"invalid accuracies ({', '.join(invalid[:3])})" if invalid else f"no accuracy of {missing[0]}"
        logger.warning("%s holds %s; evaluating again", path, problem)
        return False
    return run_folder.is_current(
        path, run_folder.result_record(previous), record_of(run, emotion, seed), "evaluating again"
    )


def load_shared(run: EvalRun, pending: list[tuple[str, int]]) -> None:
    """The model (with the first checkpoint's head), the data and the device, once for all jobs."""
    from model_emotion.data.goemotions import check_emotions, load_goemotions
    from model_emotion.lm.loading import load_backbone
    from model_emotion.prompts.checkpoint import load_checkpoint

    config = run.config
    first = load_checkpoint(checkpoint_path(config.checkpoint_dir, *pending[0]), config.model)
    run.checkpoints[pending[0]] = first
    run.device = resolve_device(config.device)
    run.backbone, run.tokenizer, _ = load_backbone(config.model, first["config"].get("head", "mlm"), config.dtype)
    run.data = load_goemotions(config.data_dir, splits=(config.split,))
    check_emotions(sorted({e for e, _ in pending}), run.data.emotions)
    if config.ablation in ("mean", "resample"):  # a reference set that cannot serve: refused before any job
        from model_emotion.masking.ablation import reference_texts

        texts = reference_texts(
            run.data.split(config.split), config.reference, config.reference_samples, config.ablation_seed
        )
        run.reference_texts = texts
        if config.ablation == "resample" and len(texts) < 2:
            raise ToolkitError(f"--ablation resample needs at least 2 reference texts to draw from, got {len(texts)}")


def valid_partial(run: EvalRun, previous: dict, key: dict, job: str, n: int) -> tuple[dict[str, float], dict]:
    """Accuracies and per-example correctness of an interrupted run with the same key; anything
    else starts over, saying why."""
    if run_folder.result_record(previous) != key:
        logger.info(
            "%s: the partial result was made with other inputs (masks, checkpoint, examples or settings); starting over",
            job,
        )
        return {}, {}
    masks = run.by_seed[split_run_name(job)[1]][0]
    values = {k: v for k, v in accuracies_of(previous, job).items() if k in masks or k == "unmasked"}
    bad = [k for k, v in values.items() if not is_accuracy(v)]
    if bad or "unmasked" not in values:
        problem = ", ".join(bad[:3]) or "no unmasked accuracy"
        logger.warning("%s: the partial result holds invalid values (%s); starting over", job, problem)
        return {}, {}
    try:
        hits = correct_of(previous, job, n, run.config.per_batch)
    except ToolkitError as exc:
        logger.warning("%s; starting over", exc)
        return {}, {}
    if set(hits) != set(values):
        logger.warning("%s: the partial result lacks per-example results; starting over", job)
        return {}, {}
    return {k: float(v) for k, v in values.items()}, hits


def evaluate_one(run: EvalRun, emotion: str, seed: int) -> None:
    output = result_path(run.config.result_path, emotion, seed)
    with job_lock(output):  # one process per result file
        evaluate_locked(run, emotion, seed, output)


def prepare_job(run: EvalRun, emotion: str, seed: int):
    """The job's prompt model, its encoded task and the key its result (and a partial one) is made from."""
    import hashlib
    import json

    from model_emotion.data.goemotions import binary_task
    from model_emotion.masking.evaluate import check_mask_shapes
    from model_emotion.prompts.checkpoint import load_checkpoint, prompt_model_from_checkpoint

    config = run.config
    ckpt_path = checkpoint_path(config.checkpoint_dir, emotion, seed)
    record = run.checkpoints.get((emotion, seed)) or load_checkpoint(ckpt_path, config.model)
    model = prompt_model_from_checkpoint(record, run.backbone, run.tokenizer, config.state, ckpt_path, config.protocol)
    model = model.to(run.device)
    check_mask_shapes(model, run.by_seed[seed][0], str(config.mask_path))
    negatives = config.negative_sampling or record["config"].get("extra", {}).get("negative_sampling", "exclusive")
    if negatives == "paper" and model.config.protocol != "paper":
        raise ToolkitError(
            "the checkpoint was trained with the original code's negatives; evaluate it with --protocol paper"
        )
    task = binary_task(run.data.split(config.split), emotion, seed, config.split, config.max_eval_samples, negatives)
    encoded = model.encode_task(task.texts, task.labels)
    examples = hashlib.sha256(json.dumps([task.texts, task.labels.tolist()]).encode()).hexdigest()
    key = {
        **record_of(run, emotion, seed),
        "examples_sha256": examples,
        "resolved": {"protocol": model.config.protocol, "negative_sampling": negatives},
    }
    return record, model, encoded, key


def resume(run: EvalRun, partial, key: dict, job: str, n: int) -> tuple[float | None, dict, dict]:
    """(unmasked accuracy or None, accuracies done, per-example results) of an interrupted run."""
    from model_emotion.io.files import read_json

    done, correct = {}, {}
    if partial.exists() and not run.config.overwrite:
        try:
            done, correct = valid_partial(run, read_json(partial, dict), key, job, n)
        except ToolkitError as exc:
            logger.warning("%s; starting over", exc)
        if done:
            logger.info(
                "resuming %s: %d of %d masks done", job, len(done) - 1, len(run.by_seed[split_run_name(job)[1]][0])
            )
            return done.pop("unmasked"), done, correct
    return None, done, correct


def evaluate_locked(run: EvalRun, emotion: str, seed: int, output) -> None:
    from model_emotion.io.files import write_json
    from model_emotion.lm.inference import mean_accuracy, predict
    from model_emotion.masking.evaluate import evaluate_masks

    config, job = run.config, run_name(emotion, seed)
    partial = partial_path(config.result_path, emotion, seed)
    record, model, encoded, key = prepare_job(run, emotion, seed)
    result = {"sentiment": emotion, "seed": seed, "best": record.get("best_acc"), "split": config.split}
    result["n_examples"] = len(encoded)
    unmasked, done, correct = resume(run, partial, key, job, len(encoded))
    if unmasked is None:
        correct["unmasked"] = predict(model, encoded, config.eval_batch_size, run.device) == encoded.labels
        unmasked = mean_accuracy(correct["unmasked"], config.per_batch)
    logger.info(
        "%s: %d %s examples, unmasked accuracy %.4f (checkpoint best %.4f)",
        job, len(encoded), config.split, unmasked, result["best"] or float("nan"),
    )  # fmt: skip

    def save_progress(name: str, value: float) -> None:
        done[name] = value
        hits = {n: encode_correct(v) for n, v in correct.items()}
        accuracies = {"unmasked": unmasked, **done}
        write_json(partial, {**result, "accuracies": accuracies, "correct": hits, run_folder.RECORD_KEY: key})

    masks = run.by_seed[seed][0]
    result["selection"] = run.by_seed[seed][2]
    ablation, result["ablation"] = job_ablation(run, model, emotion, seed, len(encoded))
    accuracies = evaluate_masks(
        model, encoded, masks, config.eval_batch_size, run.device, done=done, on_result=save_progress,
        per_batch=config.per_batch, masks_per_forward=config.masks_per_forward, correct=correct, ablation=ablation,
    )  # fmt: skip
    # One key holds every accuracy (the unmasked one first); readers accept the older flat layout too.
    # "correct" holds each one's per-example results (a 0/1 string in row order) for the report's intervals.
    result["accuracies"] = {"unmasked": unmasked, **{name: accuracies[name] for name in masks}}
    result["correct"] = {name: encode_correct(correct[name]) for name in ["unmasked", *masks]}
    result[run_folder.RECORD_KEY] = key  # the record travels inside the result (run_folder)
    write_json(output, result)
    if partial.exists():
        partial.unlink()
    logger.info("wrote %s (%d masks, selection %s)", output, len(masks), result["selection"]["kind"])


def mask_sets(config: EvalConfig, masks: dict, sha: str) -> dict:
    """Per seed of the jobs: (masks, their file's digest, the selection record) it is evaluated with.

    Held-out selection (the masks file's _meta.json lists seed folds) gives each seed the masks of the
    fold it did not select; a seed that selected every fold's masks has nothing held out for it: refused
    before any work. ``all`` gives every seed the file's own masks, recorded as circular when the file's
    rank table was made from the seed's prompt."""
    from model_emotion.io.files import file_digest, read_meta
    from model_emotion.masking.masks import load_masks

    meta = read_meta(config.mask_path)
    folds = [f for f in meta.get("folds") or [] if isinstance(f, dict)]
    selection = config.selection or ("held_out" if folds else "all")
    seeds = sorted({s for _, s in config.jobs})
    if selection == "all":
        ranked = meta.get("seeds") if isinstance(meta.get("seeds"), list) else None
        return {
            s: (
                masks,
                sha,
                {"kind": "circular" if ranked is None or s in ranked else "held_out", "select_seeds": ranked},
            )
            for s in seeds
        }
    if not folds:
        raise ToolkitError(
            f"--selection held_out needs masks with seed folds; {config.mask_path} has none "
            f"({{stage:masks}} --selection held_out on a rank table with --selection_folds)"
        )
    out, loaded = {}, {}
    for s in seeds:
        fold = next((f for f in folds if s in (f.get("evaluate_seeds") or [])), None)
        if fold is None:
            raise ToolkitError(
                f"seed {s} selected the masks of every fold of {config.mask_path}: no held-out masks to evaluate "
                f"it with (folds evaluate seeds {[f.get('evaluate_seeds') for f in folds]})"
            )
        path = config.mask_path.with_name(str(fold.get("file")))
        if path.name not in loaded:
            if not path.is_file() or path.parent != config.mask_path.parent:
                raise ToolkitError(f"fold masks file {path} is missing; rerun {{stage:masks}}")
            digest = file_digest(path)
            if fold.get("sha256") not in (None, digest):
                raise ToolkitError(f"{path} changed since {{stage:masks}} wrote it; rerun {{stage:masks}}")
            fold_masks = load_masks(path)
            if set(fold_masks) != set(masks):
                raise ToolkitError(f"{path} holds other masks than {config.mask_path}; rerun {{stage:masks}}")
            loaded[path.name] = (fold_masks, digest)
        fold_masks, digest = loaded[path.name]
        record = {
            "kind": "held_out",
            "fold": fold.get("fold"),
            "select_seeds": fold.get("select_seeds"),
            "masks_file": path.name,
        }
        out[s] = (fold_masks, digest, record)
    return out


def _all_seeds_kind(ranked: list | None, seed: int) -> str:
    """circular: the seed's prompts ranked the masks; held_out: they did not; unrecorded: older masks."""
    if ranked is None:
        return "unrecorded"
    return "circular" if seed in ranked else "held_out"


def ablation_settings(config: EvalConfig) -> dict:
    """The ablation's part of a result's record (zero ablation adds nothing: older results stay current)."""
    if config.ablation == "zero":
        return {}
    out = {"ablation": config.ablation}
    if config.ablation == "scale":
        out["ablation_scale"] = config.ablation_scale
    else:
        out.update(
            reference=config.reference, reference_samples=config.reference_samples, ablation_seed=config.ablation_seed
        )
    return out


def job_ablation(run: EvalRun, model, emotion: str, seed: int, rows: int):
    """The job's ``Ablation`` and its record in the result: the reference mean of mean ablation is
    computed once per prompt (through its prompt) and cached beside the results with its record
    (``reference/{emotion}-{seed}.npz``)."""
    from model_emotion.masking.ablation import make_ablation

    config = run.config
    texts, mean = run.reference_texts, None  # drawn once, in load_shared
    if texts is not None:
        if config.ablation == "mean":
            mean = cached_reference(run, model, emotion, seed, texts)
    ablation, info = make_ablation(
        config.ablation, model, texts, run.device, rows=rows, scale=config.ablation_scale,
        seed=config.ablation_seed, emotion=emotion, prompt_seed=seed, mean=mean,
    )  # fmt: skip
    if texts is not None:
        info.update(reference=config.reference, split=config.split)
    return ablation, info


def cached_reference(run: EvalRun, model, emotion: str, seed: int, texts: list[str]):
    """The reference mean [layers, d_ffn] of mean ablation, reused from the cache when its record
    (checkpoint, model, settings, texts) matches."""
    import hashlib
    import json

    import numpy as np
    import torch

    from model_emotion.io.files import atomic_path, read_meta, write_meta
    from model_emotion.io.tensors import read_npz
    from model_emotion.masking.ablation import reference_activations

    config = run.config
    path = config.result_path / "reference" / f"{run_name(emotion, seed)}.npz"
    texts_sha = hashlib.sha256(json.dumps(texts).encode()).hexdigest()
    record = {"checkpoint": record_of(run, emotion, seed)["inputs"]["checkpoint"], "model": config.model,
              "state": config.state, "protocol": config.protocol, "texts_sha256": texts_sha}  # fmt: skip
    if path.is_file() and read_meta(path).get("record") == record:
        data = read_npz(path, "reference mean file")
        if "mean" in data and data["mean"].ndim == 2:
            return torch.from_numpy(data["mean"].astype(np.float32))
    mean, _ = reference_activations(model, texts, run.device, config.ablation_seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            np.savez_compressed(handle, mean=mean.numpy())
    write_meta(path, record=record, n_texts=len(texts), reference=config.reference)
    return mean
