"""Step 1's computation, one owner: soft prompts (or instruction prompts) for (emotion, seed) jobs on
one loaded backbone, one after another or batched together (``multi``), with the settings that
shape them declared once (``TuneSettings``; the stage's ``TrainConfig`` and the API build on it)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch

from model_emotion.data.goemotions import GoEmotions, binary_task
from model_emotion.defaults import DEFAULT_ANSWER_CUE, DEFAULT_TEMPLATE, TRAIN
from model_emotion.lm.inference import accuracy
from model_emotion.lm.loading import HEADS, has_mlm_head, is_decoder
from model_emotion.prompts.base import PromptModel
from model_emotion.prompts.config import PromptConfig, check_paper_quirks
from model_emotion.prompts.decoder import DECODER_VERBALIZER
from model_emotion.prompts.factory import build_prompt_model
from model_emotion.prompts.multi import stacked_accuracies
from model_emotion.prompts.multi import train_prompts as train_batched
from model_emotion.prompts.training import TrainResult, set_seed
from model_emotion.prompts.training import train_prompt as train_loop
from model_emotion.util.settings import Settings, setting

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TuneSettings(Settings):
    """What a trained prompt depends on besides its backbone, data, emotion and seed."""

    epochs: int = setting(TRAIN.epochs, "training epochs (default %(default)s)", kind="count", env="ME_EPOCHS")
    train_batch_size: int = setting(TRAIN.train_batch_size, "training batch size (default %(default)s)", kind="count")
    eval_batch_size: int = setting(TRAIN.eval_batch_size, "evaluation batch size (default %(default)s)", kind="count")
    prompt_len: int = setting(TRAIN.prompt_len, "number of soft-prompt vectors P (default %(default)s)", kind="count")
    lr: float = setting(TRAIN.lr, "AdamW learning rate (default %(default)s)", low=1e-30, high=3.4e38)
    weight_decay: float | None = setting(
        None, "AdamW weight decay (default 1e-5; 0.01 under --protocol paper, the original's value)", kind="float",
        low=0.0, high=3.4e38,
    )  # fmt: skip
    max_length: int = setting(
        TRAIN.max_length, "max text tokens, special tokens included (default %(default)s)", kind="count"
    )
    max_train_samples: int | None = setting(None, "cap on training examples, balanced (default: all)", kind="count")
    max_eval_samples: int | None = setting(None, "cap on dev and test examples, balanced (default: all)", kind="count")
    head: str = setting(
        "auto",
        "MLM verbalizer (encoders), LM-head verbalizer (lm, decoders) or linear head; auto = "
        "mlm when an encoder has a trained MLM head, lm for decoders, linear otherwise",
        choices=("auto",) + tuple(HEADS),
    )
    verbalizer: tuple[str, ...] | None = setting(
        None,
        "label words of the negative and positive class (default negative positive; "
        "no yes for decoders, where each must be a single token)",
        kind="str",
        nargs="+",
    )
    prompt_mode: str = setting(
        "soft",
        "soft: train a soft prompt (default); instruction (decoders): no training, a "
        "natural-language question per emotion (--template) read at the answer slot",
        choices=("soft", "instruction"),
    )
    template: str = setting(DEFAULT_TEMPLATE, "instruction question with {emotion} (default %(default)r)")
    answer_cue: str = setting(
        DEFAULT_ANSWER_CUE,
        "decoders: fixed text after the text, whose last token is the read slot "
        "(default %(default)r; write a newline as a real newline)",
    )
    prompt_init: str | None = setting(
        None,
        "init the prompt from random vocabulary embeddings (default), <mask> x P (what the "
        "original code asks for), or N(0, initializer_range^2) (what it got: its pinned "
        "transformers 4.28.1 re-initialises the prompt on from_pretrained; default under "
        "--protocol paper)",
        kind="str",
        choices=(None, "vocab", "mask", "normal"),
    )
    protocol: str = setting(
        "toolkit",
        "model input and training: the toolkit's own or exactly the original code's (see README); "
        "default toolkit (env ME_PROTOCOL)",
        choices=("toolkit", "paper"),
        env="ME_PROTOCOL",
    )
    negative_sampling: str = setting(
        "exclusive",
        "negatives drawn from rows without the emotion, or the original code's draw with "
        "replacement from the whole split (only with --protocol paper); default exclusive",
        choices=("exclusive", "paper"),
    )
    multi_prompt: bool = setting(
        False,
        "train all --jobs together in one batched model (one backbone forward per step; "
        "the same prompts as one after another, up to float rounding; toolkit protocol)",
    )

    def rules(self) -> None:
        check_paper_quirks(self.protocol, self.negative_sampling, multi_prompt=self.multi_prompt)

    def tune_settings(self) -> TuneSettings:
        """The training settings alone (a stage config that derives from this class has more)."""
        return TuneSettings(**{name: getattr(self, name) for name in TuneSettings.__dataclass_fields__})


@dataclass
class TrainedPrompt:
    """A trained soft prompt: the model (backbone shared, prompt at its best dev epoch) and its numbers."""

    model: PromptModel
    emotion: str
    seed: int
    best_acc: float
    best_epoch: int
    test_acc: float
    history: list
    final_state: dict
    sizes: dict  # examples per split

    def checkpoint(self) -> dict:
        """The checkpoint dict that ``train.py`` writes (``torch.save`` it, or ``save_checkpoint``)."""
        state = self.model.trainable_state()
        record = {
            "best_prompt": state["prompt"],
            "best_acc": self.best_acc,
            "epoch": self.best_epoch,
            "final_prompt": self.final_state["prompt"],
            "final_acc": self.history[-1]["dev_acc"],
            "test_acc": self.test_acc,
            "config": self.model.config.to_dict(),
            "history": self.history,
            "sizes": self.sizes,
        }
        if self.model.head is not None:
            record["best_head"] = {k: v for k, v in state.items() if k.startswith("head.")}
            record["final_head"] = {k: v for k, v in self.final_state.items() if k.startswith("head.")}
        return record


def prompt_config(backbone, settings: TuneSettings, emotion: str, seed: int, model_name: str | None) -> PromptConfig:
    """The prompt model's config of one job (the head and verbalizer resolved for this backbone)."""
    decoder = is_decoder(backbone)
    head = settings.head
    if head == "auto":
        head = "lm" if decoder else "mlm" if has_mlm_head(backbone) else "linear"
    verbalizer = settings.verbalizer or (DECODER_VERBALIZER if decoder else ("negative", "positive"))
    paper = settings.protocol == "paper"
    return PromptConfig(
        model=model_name or getattr(backbone.config, "_name_or_path", "model"),
        prompt_len=settings.prompt_len,
        head=head,
        verbalizer=tuple(verbalizer),
        prompt_init=settings.prompt_init or ("normal" if paper else "vocab"),
        max_length=settings.max_length,
        seed=seed,
        sentiment=emotion,
        protocol=settings.protocol,
        prompt_mode=settings.prompt_mode,
        template=settings.template,
        answer_cue=settings.answer_cue,
        extra={"negative_sampling": settings.negative_sampling},
    )


def prepare_job(backbone, tokenizer, data: GoEmotions, job: tuple[str, int], settings: TuneSettings, context: dict):
    """One job's prompt model (on ``context["device"]``) and its encoded train/dev/test tasks."""
    emotion, seed = job
    set_seed(seed)
    config = prompt_config(backbone, settings, emotion, seed, context.get("model_name"))
    model = build_prompt_model(backbone, tokenizer, config).to(context["device"])
    tasks = {}
    caps = {"train": settings.max_train_samples, "dev": settings.max_eval_samples, "test": settings.max_eval_samples}
    for split, cap in caps.items():
        task = binary_task(data.split(split), emotion, seed, split, cap, settings.negative_sampling)
        tasks[split] = model.encode_task(task.texts, task.labels)
    sizes = ", ".join(f"{split} {len(task)}" for split, task in tasks.items())
    logger.info("%s-%d: %s examples; model %s on %s", emotion, seed, sizes, config.model, context["device"])
    return model, tasks


def loop_settings(settings: TuneSettings, device, progress: bool) -> dict:
    """The training loop's keywords (the protocol's optimizer and weight decay resolved)."""
    paper = settings.protocol == "paper"
    decay = settings.weight_decay if settings.weight_decay is not None else (0.01 if paper else 1e-5)
    return dict(
        epochs=settings.epochs,
        lr=settings.lr,
        batch_size=settings.train_batch_size,
        eval_batch_size=settings.eval_batch_size,
        device=device,
        weight_decay=decay,
        optimizer="adamw_legacy" if paper else "adamw",
        progress=progress,
    )


def _zero_shot(model, tasks, settings: TuneSettings, device) -> TrainResult:
    """An instruction prompt trains nothing: its "best" accuracy is the question's zero-shot dev accuracy."""
    dev_acc = accuracy(model, tasks["dev"], settings.eval_batch_size, device)
    history = [{"epoch": 0, "train_loss": None, "dev_acc": dev_acc}]
    return TrainResult(model.trainable_state(), dev_acc, 0, model.trainable_state(), dev_acc, history)


def _train_all(prepare, jobs, settings: TuneSettings, loop: dict) -> tuple[dict, dict]:
    """Every job prepared and trained: (job -> (model, tasks), job -> TrainResult)."""
    prepared, results = {}, {}
    if settings.prompt_mode == "instruction":
        for job in jobs:
            prepared[job] = prepare(job)
            results[job] = _zero_shot(*prepared[job], settings, loop["device"])
    elif settings.multi_prompt:
        prepared = {job: prepare(job) for job in jobs}
        keys = list(prepared)
        trained = train_batched(
            [prepared[k][0] for k in keys],
            [prepared[k][1]["train"] for k in keys],
            [prepared[k][1]["dev"] for k in keys],
            seeds=[s for _, s in keys],
            **loop,
        )
        results = dict(zip(keys, trained))
    else:  # one after another, each built just before its training (as train.py always did)
        for job in jobs:
            prepared[job] = model, tasks = prepare(job)
            results[job] = train_loop(model, tasks["train"], tasks["dev"], seed=job[1], **loop)
    return prepared, results


def _test_accuracies(prepared: dict, settings: TuneSettings, device) -> list[float]:
    models = [m for m, _ in prepared.values()]
    tests = [t["test"] for _, t in prepared.values()]
    if settings.multi_prompt and settings.prompt_mode != "instruction":  # every job's test rows batched together
        return stacked_accuracies(models, tests, settings.eval_batch_size, device)
    return [accuracy(model, task, settings.eval_batch_size, device) for model, task in zip(models, tests)]


def tune_prompts(
    backbone, tokenizer, data: GoEmotions, jobs, settings: TuneSettings, *, device=None, model_name=None,
    progress: bool = False,
) -> dict[tuple[str, int], TrainedPrompt]:  # fmt: skip
    """Step 1 for (emotion, seed) jobs: each prompt at its best dev epoch with its test accuracy."""
    from model_emotion.lm.device import resolve_device

    device = resolve_device(device) if not isinstance(device, torch.device) else device
    context = {"device": device, "model_name": model_name}
    prepared, results = _train_all(
        lambda job: prepare_job(backbone, tokenizer, data, job, settings, context),
        list(jobs),
        settings,
        loop_settings(settings, device, progress),
    )
    for job, (model, _) in prepared.items():
        best = results[job].best_state
        model.load_trainable_state(best["prompt"], {k: v for k, v in best.items() if k.startswith("head.")})
    out = {}
    for (job, (model, tasks)), test_acc in zip(prepared.items(), _test_accuracies(prepared, settings, device)):
        r = results[job]
        sizes = {split: len(task) for split, task in tasks.items()}
        out[job] = TrainedPrompt(model, *job, r.best_acc, r.best_epoch, test_acc, r.history, r.final_state, sizes)
    return out
