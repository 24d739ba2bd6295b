"""Step 1 as a stage: soft-prompt tuning of every (emotion, seed) job on one loaded model
(``run_train``), configured by one frozen ``TrainConfig`` that owns the cross-setting rules.

``train.py`` (``model-emotion train``) turns flags into a ``TrainConfig`` and calls ``run_train``; a
Python caller does the same with the same names (``api.train_prompt`` trains one prompt in memory).
"""

from __future__ import annotations

import logging
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from pathlib import Path

from .. import cli
from ..defaults import DEFAULT_ANSWER_CUE, DEFAULT_TEMPLATE, TRAIN
from ..errors import ConfigError, ToolkitError
from ..names import check_jobs
from ..prompt_config import check_paper_quirks

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run depends on. Validated on construction (``__post_init__``)."""

    jobs: tuple[tuple[str, int], ...] = (("admiration", 1),)  # the original train.py's default
    model: str = cli.DEFAULT_MODEL
    dtype: str | None = None
    data_dir: str | None = None
    checkpoint_dir: Path = Path("checkpoint")
    device: str | None = None
    log_dir: Path = Path("log")
    epochs: int = TRAIN.epochs
    train_batch_size: int = TRAIN.train_batch_size
    eval_batch_size: int = TRAIN.eval_batch_size
    prompt_len: int = TRAIN.prompt_len
    lr: float = TRAIN.lr
    weight_decay: float | None = None  # None: the protocol's (1e-5 toolkit, 0.01 paper)
    max_length: int = TRAIN.max_length
    max_train_samples: int | None = None
    max_eval_samples: int | None = None
    head: str = "auto"
    verbalizer: tuple[str, ...] | None = None
    prompt_mode: str = "soft"
    template: str = DEFAULT_TEMPLATE
    answer_cue: str = DEFAULT_ANSWER_CUE
    prompt_init: str | None = None  # None: the protocol's
    protocol: str = "toolkit"
    negative_sampling: str = "exclusive"
    multi_prompt: bool = False
    overwrite: bool = False

    def __post_init__(self):
        object.__setattr__(self, "checkpoint_dir", Path(self.checkpoint_dir))
        object.__setattr__(self, "log_dir", Path(self.log_dir))
        if self.verbalizer is not None:
            object.__setattr__(self, "verbalizer", tuple(self.verbalizer))
        object.__setattr__(self, "jobs", check_jobs(self.jobs))
        for name, allowed in (
            ("head", ("auto", "mlm", "linear", "lm")),
            ("prompt_mode", ("soft", "instruction")),
            ("prompt_init", (None, "vocab", "mask", "normal")),
            ("protocol", ("toolkit", "paper")),
            ("negative_sampling", ("exclusive", "paper")),
        ):
            if getattr(self, name) not in allowed:
                shown = ", ".join(a for a in allowed if a)
                raise ConfigError(f"{{--{name}}} {getattr(self, name)!r} unknown; choose one of {shown}")
        check_paper_quirks(self.protocol, self.negative_sampling, multi_prompt=self.multi_prompt)

    def to_dict(self) -> dict:
        values = asdict(self)
        values["jobs"] = [list(j) for j in self.jobs]
        return {
            k: (str(v) if isinstance(v, Path) else list(v) if isinstance(v, tuple) else v) for k, v in values.items()
        }


def run_train(config: TrainConfig) -> int:
    """Train every job of ``config`` (skipping, with --multi_prompt, jobs whose checkpoint exists);
    0 when all succeeded, 1 when some failed (each failure logged in one line, the others go on)."""
    from model_emotion.api import train_prompt, train_prompts
    from model_emotion.checkpoint import save_checkpoint
    from model_emotion.data import check_emotions, load_goemotions
    from model_emotion.io import job_lock, save_run_args
    from model_emotion.loading import load_backbone
    from model_emotion.run_folder import checkpoint_path

    jobs = list(config.jobs)
    if len(jobs) == 1 and checkpoint_path(config.checkpoint_dir, *jobs[0]).exists() and not config.overwrite:
        raise ToolkitError(
            f"checkpoint {checkpoint_path(config.checkpoint_dir, *jobs[0])} exists; pass --overwrite to "
            f"retrain (it is kept until the new one is complete)"
        )
    for folder, flag in ((config.checkpoint_dir, "{--checkpoint_dir}"), (config.log_dir, "{--log_dir}")):
        cli.check_output_dir(folder, flag)  # before any work: an unusable location fails now, not after training
    device = cli.resolve_device(config.device)
    data = load_goemotions(config.data_dir)
    check_emotions(sorted({e for e, _ in jobs}), data.emotions)
    backbone, tokenizer, head = load_backbone(config.model, config.head, config.dtype)  # once for all jobs
    settings = dict(
        head=head,
        model_name=config.model,
        prompt_len=config.prompt_len,
        epochs=config.epochs,
        lr=config.lr,
        weight_decay=config.weight_decay,
        train_batch_size=config.train_batch_size,
        eval_batch_size=config.eval_batch_size,
        max_length=config.max_length,
        max_train_samples=config.max_train_samples,
        max_eval_samples=config.max_eval_samples,
        protocol=config.protocol,
        negative_sampling=config.negative_sampling,
        prompt_init=config.prompt_init,
        verbalizer=config.verbalizer,
        prompt_mode=config.prompt_mode,
        template=config.template,
        answer_cue=config.answer_cue,
        device=device,
        progress=True,
    )

    def train_together() -> int:
        """--multi_prompt: every job without a checkpoint (all with --overwrite) in one batched model."""
        todo = [
            (e, s) for e, s in jobs if config.overwrite or not checkpoint_path(config.checkpoint_dir, e, s).exists()
        ]
        for e, s in sorted(set(jobs) - set(todo)):
            logger.info(
                "checkpoint %s exists; skipping (pass --overwrite to retrain)",
                checkpoint_path(config.checkpoint_dir, e, s),
            )
        if not todo:
            return 0
        with ExitStack() as stack:
            for e, s in todo:  # one run per checkpoint at a time, as without --multi_prompt
                stack.enter_context(job_lock(checkpoint_path(config.checkpoint_dir, e, s)))
            first = f"{todo[0][0]}-{todo[0][1]}"
            stack.enter_context(cli.job_log(config.log_dir / f"multi_prompt-{first}-{len(todo)}.log"))
            trained = train_prompts(backbone, tokenizer, data, todo, multi_prompt=True, **settings)
            for e, s in todo:
                save(trained[(e, s)], checkpoint_path(config.checkpoint_dir, e, s))
        return 0

    def train_one(sentiment: str, seed: int) -> None:
        ckpt_path = checkpoint_path(config.checkpoint_dir, sentiment, seed)
        # One run per checkpoint at a time (cluster jobs may overlap); the log is written only by it.
        with job_lock(ckpt_path):
            if ckpt_path.exists() and not config.overwrite:
                raise ToolkitError(f"checkpoint {ckpt_path} exists; pass --overwrite to retrain")
            with cli.job_log(config.log_dir / f"{sentiment}-{seed}.log"):
                train_locked(sentiment, seed, ckpt_path)

    def save(trained, ckpt_path) -> None:
        sentiment, seed = trained.emotion, trained.seed
        logger.info(
            "%s-%d: best dev acc %.4f (epoch %d), test acc %.4f",
            sentiment,
            seed,
            trained.best_acc,
            trained.best_epoch + 1,
            trained.test_acc,
        )
        save_checkpoint(ckpt_path, trained.checkpoint(), exclusive=not config.overwrite)
        save_run_args(
            config.checkpoint_dir,
            {**config.to_dict(), "sentiment": sentiment, "random_seed": seed},
            f"{sentiment}-{seed}_train",
        )
        logger.info("wrote %s", ckpt_path)

    if config.multi_prompt:
        return train_together()

    def train_locked(sentiment: str, seed: int, ckpt_path) -> None:
        trained = train_prompt(backbone, tokenizer, data, sentiment, seed, **settings)
        save(trained, ckpt_path)

    return cli.run_jobs(jobs, train_one, "prompt tuning")
