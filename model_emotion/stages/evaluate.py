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
from dataclasses import asdict, dataclass
from pathlib import Path

from .. import cli
from ..errors import ConfigError, ToolkitError
from ..names import check_jobs
from ..prompt_config import check_paper_quirks

logger = logging.getLogger(__name__)

SPLITS = ("dev", "test")
STATES = ("best", "final")
PROTOCOLS = (None, "toolkit", "paper")
NEGATIVES = (None, "exclusive", "paper")
ACCURACY_MEANS = ("overall", "per_batch")


@dataclass(frozen=True)
class EvalConfig:
    """Everything a masked evaluation depends on. Validated on construction (``__post_init__``)."""

    mask_path: Path = Path("masks/RSA_14property_top_500_6000.pkl")
    result_path: Path = Path("eval_mask_neuron_result/RSA_14property_top_500_6000")
    # (emotion, seed) prompts; the original command's default is anger-1
    jobs: tuple[tuple[str, int], ...] = (("anger", 1),)
    model: str = cli.DEFAULT_MODEL
    dtype: str | None = None
    data_dir: str | None = None
    checkpoint_dir: Path = Path("checkpoint")
    device: str | None = None
    split: str = "dev"
    max_eval_samples: int | None = None
    eval_batch_size: int = 64
    masks_per_forward: int | str = "auto"
    state: str = "best"
    protocol: str | None = None  # None: the protocol each checkpoint was trained with
    negative_sampling: str | None = None  # None: the checkpoint's
    accuracy_mean: str = "overall"
    overwrite: bool = False

    def __post_init__(self):
        object.__setattr__(self, "mask_path", Path(self.mask_path))
        object.__setattr__(self, "result_path", Path(self.result_path))
        object.__setattr__(self, "checkpoint_dir", Path(self.checkpoint_dir))
        object.__setattr__(self, "jobs", check_jobs(self.jobs))
        for name, value, allowed in (
            ("split", self.split, SPLITS),
            ("state", self.state, STATES),
            ("protocol", self.protocol, PROTOCOLS),
            ("negative_sampling", self.negative_sampling, NEGATIVES),
            ("accuracy_mean", self.accuracy_mean, ACCURACY_MEANS),
        ):
            if value not in allowed:
                shown = ", ".join(str(a) for a in allowed if a is not None)
                raise ConfigError(f"{{--{name}}} {value!r} unknown; choose one of {shown}")
        for name in ("eval_batch_size", "max_eval_samples"):
            value = getattr(self, name)
            if value is not None and (
                not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= cli.MAX_COUNT
            ):
                raise ConfigError(f"{{--{name}}} {value!r} must be an integer in 1..{cli.MAX_COUNT}")
        if self.masks_per_forward != "auto" and (
            not isinstance(self.masks_per_forward, int) or self.masks_per_forward < 1
        ):
            raise ConfigError(f"{{--masks_per_forward}} {self.masks_per_forward!r} must be auto or at least 1")
        check_paper_quirks(self.protocol, self.negative_sampling, self.accuracy_mean)

    @property
    def per_batch(self) -> int | None:
        """The original's per-batch mean: its batch size, or None for the share of correct rows."""
        return self.eval_batch_size if self.accuracy_mean == "per_batch" else None

    def to_dict(self) -> dict:
        values = asdict(self)
        values["jobs"] = [list(j) for j in self.jobs]
        return {k: str(v) if isinstance(v, Path) else v for k, v in values.items()}

    @classmethod
    def from_dict(cls, values: dict) -> EvalConfig:
        if not isinstance(values, dict):
            raise ToolkitError("an eval config must be a JSON object")
        known = {k: v for k, v in values.items() if k in cls.__dataclass_fields__}
        if "jobs" in known:
            if not isinstance(known["jobs"], list) or not all(
                isinstance(j, list) and len(j) == 2 for j in known["jobs"]
            ):
                raise ToolkitError("an eval config's jobs must be a list of [emotion, seed] pairs")
            known["jobs"] = tuple(tuple(j) for j in known["jobs"])
        try:
            return cls(**known)
        except TypeError as exc:
            raise ToolkitError(f"not an eval config ({exc})") from None

    @classmethod
    def load(cls, path: str | Path) -> EvalConfig:
        """The config a run saved (``eval_config.json``), to run it again."""
        from ..io import read_json

        return cls.from_dict(read_json(path, dict))


def run_eval(config: EvalConfig) -> int:
    """Evaluate every prompt of ``config.jobs`` under every mask; 0 when all succeeded, 1 when some
    prompt failed (each failure is logged in one line and the others go on)."""
    import hashlib
    import json

    from model_emotion import run_folder
    from model_emotion.checkpoint import load_checkpoint, prompt_model_from_checkpoint
    from model_emotion.data import binary_task, check_emotions, load_goemotions
    from model_emotion.inference import mean_accuracy, predict
    from model_emotion.io import file_digest, job_lock, read_json, save_run_args, write_json
    from model_emotion.loading import load_backbone
    from model_emotion.masked_eval import check_mask_shapes, evaluate_masks
    from model_emotion.masks import load_masks
    from model_emotion.results import accuracies_of, correct_of, encode_correct, is_accuracy
    from model_emotion.run_folder import checkpoint_path, partial_path, result_path

    per_batch = config.per_batch
    cli.check_output_dir(config.result_path, "{--result_path}")  # before any work
    jobs = list(config.jobs)
    masks = load_masks(config.mask_path)
    masks_sha = file_digest(config.mask_path)

    known: dict[tuple[str, int], dict] = {}

    def record_of(emotion: str, seed: int) -> dict:
        """Everything a result depends on that is known before the model is loaded (the checkpoint hashed once)."""
        if (emotion, seed) not in known:
            known[(emotion, seed)] = _record(emotion, seed)
        return known[(emotion, seed)]

    def _record(emotion: str, seed: int) -> dict:
        """The result's record (run_folder), as far as it is known before the model is loaded."""
        ckpt = checkpoint_path(config.checkpoint_dir, emotion, seed)
        return {
            "inputs": {"masks": masks_sha, "checkpoint": file_digest(ckpt) if ckpt.is_file() else None},
            "settings": {
                "model": config.model,
                "split": config.split,
                "max_eval_samples": config.max_eval_samples,
                "state": config.state,
                "protocol": config.protocol,
                "negative_sampling": config.negative_sampling,
                "accuracy_mean": config.accuracy_mean,
                "per_batch": per_batch,
            },
        }

    def up_to_date(emotion: str, seed: int) -> bool:
        path = result_path(config.result_path, emotion, seed)
        if config.overwrite or not path.exists():
            return False
        try:
            previous = read_json(path, dict)
        except ToolkitError as exc:
            logger.warning("%s; evaluating again", exc)
            return False
        try:  # a result that the report would refuse is not up to date
            values = accuracies_of(previous, str(path))
            correct_of(previous, str(path))
        except ToolkitError as exc:
            logger.warning("%s; evaluating again", exc)
            return False
        invalid = [k for k, v in values.items() if not is_accuracy(v)]
        missing = [name for name in ["unmasked", *masks] if name not in values]
        if invalid or missing:
            logger.warning(
                "%s holds %s; evaluating again",
                path,
                f"invalid accuracies ({', '.join(invalid[:3])})" if invalid else f"no accuracy of {missing[0]}",
            )
            return False
        return run_folder.is_current(
            path, run_folder.result_record(previous), record_of(emotion, seed), "evaluating again"
        )

    pending = [(e, s) for e, s in jobs if not up_to_date(e, s)]
    if not pending:
        return 0
    first = load_checkpoint(checkpoint_path(config.checkpoint_dir, *pending[0]), config.model)
    records = {pending[0]: first}
    device = cli.resolve_device(config.device)
    backbone, tokenizer, _ = load_backbone(
        config.model, first["config"].get("head", "mlm"), config.dtype
    )  # once for all jobs
    data = load_goemotions(config.data_dir, splits=(config.split,))
    check_emotions(sorted({e for e, _ in pending}), data.emotions)

    def valid_partial(previous: dict, key: dict, run_name: str, n: int) -> tuple[dict[str, float], dict]:
        """Accuracies and per-example correctness of an interrupted run with the same key; anything
        else starts over, saying why."""
        if run_folder.result_record(previous) != key:
            logger.info(
                "%s: the partial result was made with other inputs (masks, checkpoint, examples or "
                "settings); starting over",
                run_name,
            )
            return {}, {}
        values = {k: v for k, v in accuracies_of(previous, run_name).items() if k in masks or k == "unmasked"}
        bad = [
            k for k, v in values.items() if not isinstance(v, (int, float)) or isinstance(v, bool) or not 0 <= v <= 1
        ]
        if bad or "unmasked" not in values:
            logger.warning(
                "%s: the partial result holds invalid values (%s); starting over",
                run_name,
                ", ".join(bad[:3]) or "no unmasked accuracy",
            )
            return {}, {}
        try:
            hits = correct_of(previous, run_name, n, per_batch)
        except ToolkitError as exc:
            logger.warning("%s; starting over", exc)
            return {}, {}
        if set(hits) != set(values):
            logger.warning("%s: the partial result lacks per-example results; starting over", run_name)
            return {}, {}
        return {k: float(v) for k, v in values.items()}, hits

    def evaluate_one(emotion: str, seed: int) -> None:
        output = result_path(config.result_path, emotion, seed)
        with job_lock(output):  # one process per result file
            evaluate_locked(emotion, seed, output)

    def evaluate_locked(emotion: str, seed: int, output) -> None:
        run_name = run_folder.run_name(emotion, seed)
        partial = partial_path(config.result_path, emotion, seed)
        ckpt_path = checkpoint_path(config.checkpoint_dir, emotion, seed)
        record = records.get((emotion, seed)) or load_checkpoint(ckpt_path, config.model)
        model = prompt_model_from_checkpoint(record, backbone, tokenizer, config.state, ckpt_path, config.protocol).to(
            device
        )
        check_mask_shapes(model, masks, str(config.mask_path))
        negatives = config.negative_sampling or record["config"].get("extra", {}).get("negative_sampling", "exclusive")
        if negatives == "paper" and model.config.protocol != "paper":
            raise ToolkitError(
                "the checkpoint was trained with the original code's negatives; evaluate it with --protocol paper"
            )
        task = binary_task(data.split(config.split), emotion, seed, config.split, config.max_eval_samples, negatives)
        encoded = model.encode_task(task.texts, task.labels)
        examples = hashlib.sha256(json.dumps([task.texts, task.labels.tolist()]).encode()).hexdigest()
        key = {
            **record_of(emotion, seed),
            "examples_sha256": examples,
            "resolved": {"protocol": model.config.protocol, "negative_sampling": negatives},
        }

        result = {
            "sentiment": emotion,
            "seed": seed,
            "best": record.get("best_acc"),
            "split": config.split,
            "n_examples": len(encoded),
        }
        done: dict[str, float] = {}
        correct: dict = {}  # mask name -> per-example correctness, row order
        if partial.exists() and not config.overwrite:
            try:
                done, correct = valid_partial(read_json(partial, dict), key, run_name, len(encoded))
            except ToolkitError as exc:
                logger.warning("%s; starting over", exc)
            if done:
                result["unmasked"] = done.pop("unmasked")
                logger.info("resuming %s: %d of %d masks done", run_name, len(done), len(masks))
        if result.get("unmasked") is None:
            correct["unmasked"] = predict(model, encoded, config.eval_batch_size, device) == encoded.labels
            result["unmasked"] = mean_accuracy(correct["unmasked"], per_batch)
        logger.info(
            "%s: %d %s examples, unmasked accuracy %.4f (checkpoint best %.4f)",
            run_name,
            len(encoded),
            config.split,
            result["unmasked"],
            result["best"] or float("nan"),
        )

        def hits_json() -> dict:
            return {name: encode_correct(value) for name, value in correct.items()}

        def save_progress(name: str, value: float) -> None:
            done[name] = value
            write_json(
                partial,
                {
                    **result,
                    "accuracies": {"unmasked": result["unmasked"], **done},
                    "correct": hits_json(),
                    run_folder.RECORD_KEY: key,
                },
            )

        accuracies = evaluate_masks(
            model,
            encoded,
            masks,
            config.eval_batch_size,
            device,
            done,
            save_progress,
            per_batch=per_batch,
            masks_per_forward=config.masks_per_forward,
            correct=correct,
        )
        # One key holds every accuracy (the unmasked one first); readers accept the older flat layout too.
        # "correct" holds each one's per-example results (a 0/1 string in row order) for the report's intervals.
        result["accuracies"] = {"unmasked": result.pop("unmasked"), **{name: accuracies[name] for name in masks}}
        result["correct"] = {name: encode_correct(correct[name]) for name in ["unmasked", *masks]}
        result[run_folder.RECORD_KEY] = key  # the record travels inside the result (run_folder)
        write_json(output, result)
        if partial.exists():
            partial.unlink()
        logger.info("wrote %s (%d masks)", output, len(masks))

    status = cli.run_jobs(pending, evaluate_one, "masked evaluation")
    save_run_args(config.result_path, config.to_dict(), "eval_mask_neuron")
    write_json(config.result_path / run_folder.EVAL_CONFIG, config.to_dict())
    return status
