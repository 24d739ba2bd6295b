"""Step 1 as a stage: soft-prompt tuning of every (emotion, seed) job on one loaded model
(``run_train``), configured by one frozen ``TrainConfig`` that owns the cross-setting rules.

``train.py`` (``model-emotion train``) turns flags into a ``TrainConfig`` and calls ``run_train``; a
Python caller does the same with the same names (``api.train_prompt`` trains one prompt in memory).
"""

from __future__ import annotations

import logging
from contextlib import ExitStack
from dataclasses import dataclass, replace
from pathlib import Path

from model_emotion.errors import ToolkitError
from model_emotion.io.files import job_lock, save_run_args
from model_emotion.io.run_folder import checkpoint_path
from model_emotion.lm.device import resolve_device
from model_emotion.prompts.tuning import TrainedPrompt, TuneSettings
from model_emotion.stages import common
from model_emotion.stages.jobs import check_output_dir, job_log, run_jobs
from model_emotion.util.names import check_jobs, run_name
from model_emotion.util.settings import setting

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig(TuneSettings):
    """Everything a training run depends on: the prompts' settings (``TuneSettings``) and where the
    model, data and outputs are. Each setting declared once; validated on construction."""

    jobs: tuple[tuple[str, int], ...] = setting(
        (("admiration", 1),), "(emotion, seed) jobs; the original train.py's default", kind="jobs", cli=False
    )
    model: str = common.model()
    dtype: str | None = common.dtype()
    data_dir: str | None = common.data_dir()
    checkpoint_dir: Path = common.checkpoint_dir()
    device: str | None = common.device()
    log_dir: Path = setting(Path("log"), "folder of {sentiment}-{seed}.log (default %(default)s)")
    overwrite: bool = common.overwrite("retrain even if the checkpoint exists")

    def rules(self) -> None:
        super().rules()
        object.__setattr__(self, "jobs", check_jobs(self.jobs))


@dataclass
class Loaded:
    """What every job of a run shares: the model and data, loaded once, and the settings to train with."""

    backbone: object
    tokenizer: object
    data: object
    settings: TuneSettings
    device: object


def run_train(config: TrainConfig) -> int:
    """Train every job of ``config`` (skipping, with --multi_prompt, jobs whose checkpoint exists);
    0 when all succeeded, 1 when some failed (each failure logged in one line, the others go on)."""
    jobs = list(config.jobs)
    if len(jobs) == 1 and checkpoint_path(config.checkpoint_dir, *jobs[0]).exists() and not config.overwrite:
        raise ToolkitError(
            f"checkpoint {checkpoint_path(config.checkpoint_dir, *jobs[0])} exists; pass --overwrite to "
            f"retrain (it is kept until the new one is complete)"
        )
    for folder, flag in ((config.checkpoint_dir, "{--checkpoint_dir}"), (config.log_dir, "{--log_dir}")):
        check_output_dir(folder, flag)  # before any work: an unusable location fails now, not after training
    loaded = load_for_training(config)
    if config.multi_prompt:
        return train_together(config, loaded)
    return run_jobs(jobs, lambda e, s: train_one(config, loaded, e, s), what="prompt tuning")


def load_for_training(config: TrainConfig) -> Loaded:
    """The data and the backbone, once for all jobs (the head resolved for this backbone)."""
    from model_emotion.data.goemotions import check_emotions, load_goemotions
    from model_emotion.lm.loading import load_backbone

    device = resolve_device(config.device)
    data = load_goemotions(config.data_dir)
    check_emotions(sorted({e for e, _ in config.jobs}), data.emotions)
    backbone, tokenizer, head = load_backbone(config.model, config.head, config.dtype)
    return Loaded(backbone, tokenizer, data, replace(config.tune_settings(), head=head), device)


def _tune(config: TrainConfig, loaded: Loaded, jobs) -> dict:
    from model_emotion.prompts.tuning import tune_prompts

    return tune_prompts(
        loaded.backbone, loaded.tokenizer, loaded.data, jobs, loaded.settings, device=loaded.device,
        model_name=config.model, progress=True,
    )  # fmt: skip


def train_together(config: TrainConfig, loaded: Loaded) -> int:
    """--multi_prompt: every job without a checkpoint (all with --overwrite) in one batched model."""
    todo = [
        (e, s) for e, s in config.jobs if config.overwrite or not checkpoint_path(config.checkpoint_dir, e, s).exists()
    ]
    for e, s in sorted(set(config.jobs) - set(todo)):
        logger.info(
            "checkpoint %s exists; skipping (pass --overwrite to retrain)", checkpoint_path(config.checkpoint_dir, e, s)
        )
    if not todo:
        return 0
    with ExitStack() as stack:
        for e, s in todo:  # one run per checkpoint at a time, as without --multi_prompt
            stack.enter_context(job_lock(checkpoint_path(config.checkpoint_dir, e, s)))
        stack.enter_context(job_log(config.log_dir / f"multi_prompt-{run_name(*todo[0])}-{len(todo)}.log"))
        trained = _tune(config, loaded, todo)
        for e, s in todo:
            save(config, trained[(e, s)], checkpoint_path(config.checkpoint_dir, e, s))
    return 0


def train_one(config: TrainConfig, loaded: Loaded, sentiment: str, seed: int) -> None:
    ckpt_path = checkpoint_path(config.checkpoint_dir, sentiment, seed)
    # One run per checkpoint at a time (cluster jobs may overlap); the log is written only by it.
    with job_lock(ckpt_path):
        if ckpt_path.exists() and not config.overwrite:
            raise ToolkitError(f"checkpoint {ckpt_path} exists; pass --overwrite to retrain")
        with job_log(config.log_dir / f"{run_name(sentiment, seed)}.log"):
            save(config, _tune(config, loaded, [(sentiment, seed)])[(sentiment, seed)], ckpt_path)


def save(config: TrainConfig, trained: TrainedPrompt, ckpt_path) -> None:
    from model_emotion.prompts.checkpoint import save_checkpoint

    sentiment, seed = trained.emotion, trained.seed
    logger.info(
        "%s: best dev acc %.4f (epoch %d), test acc %.4f",
        run_name(sentiment, seed),
        trained.best_acc,
        trained.best_epoch + 1,
        trained.test_acc,
    )
    save_checkpoint(ckpt_path, trained.checkpoint(), exclusive=not config.overwrite)
    record = {**config.to_dict(), "sentiment": sentiment, "random_seed": seed}
    save_run_args(config.checkpoint_dir, record, f"{run_name(sentiment, seed)}_train")
    logger.info("wrote %s", ckpt_path)
