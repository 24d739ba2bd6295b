"""The Python API: one call per stage on in-memory objects, for notebooks and scripts.

Each call returns data that the next one accepts; nothing is read or written unless you say so
(file I/O stays in the stage commands, ``model_emotion.commands``, and in ``save_*``/``load_*``)::

    import model_emotion as me

    data = me.load_goemotions("../shared/data/goemotions")
    backbone, tokenizer, head = me.load_backbone("sentence-transformers/all-MiniLM-L6-v2")
    prompts = {(e, 1): me.train_prompt(backbone, tokenizer, data, e, seed=1, epochs=2, max_train_samples=400)
               for e in ["anger", "joy", "sadness", "fear"]}
    acts = me.collect_activations(prompts)                       # ActivationSet [emotions, seeds, neurons]
    rsa = me.run_searchlight(acts, me.load_ratings("../shared/data/emotion_attributes"),
                             test="parametric")                  # 4 emotions: too few permutations (4! = 24)
    masks = me.make_masks(rsa, percent=[4, 8])                   # {name: tensor [layers, d_ffn]}
    accuracy = me.evaluate_masks(prompts[("joy", 1)], data, masks, max_eval_samples=64)
    tables = me.report_tables(acts, rsa, {("joy", 1): accuracy}, prompts)

The figures of ``model_emotion.plots`` take these tables and return matplotlib figures.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from .activations import ActivationSet, prompt_activations
from .attributes import AttributeRDMs, Ratings, build_rdms
from .data import GoEmotions, binary_task
from .decoder_prompt import DECODER_VERBALIZER
from .defaults import DEFAULT_ANSWER_CUE, DEFAULT_TEMPLATE, TRAIN
from .errors import ToolkitError
from .inference import accuracy
from .loading import has_mlm_head, is_decoder
from .masked_eval import check_mask_shapes
from .masked_eval import evaluate_masks as _evaluate_masks
from .masks import generate_masks
from .multi_prompt import stacked_accuracies
from .multi_prompt import train_prompts as _train_many
from .neurons import find_ffn
from .prompt_base import PromptModel
from .prompt_config import PromptConfig, check_paper_quirks
from .prompt_model import build_prompt_model
from .results import Results, masking_from_records
from .rsa import RSAResult, searchlight, summarize
from .tables import summary_table
from .training import TrainResult, set_seed
from .training import train_prompt as _train_loop

logger = logging.getLogger(__name__)


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


def _device(device) -> torch.device:
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def train_prompt(
    backbone,
    tokenizer,
    data: GoEmotions,
    emotion: str,
    seed: int = 1,
    *,
    head: str | None = None,
    model_name: str | None = None,
    prompt_len: int = TRAIN.prompt_len,
    epochs: int = TRAIN.epochs,
    lr: float = TRAIN.lr,
    weight_decay: float | None = None,
    train_batch_size: int = TRAIN.train_batch_size,
    eval_batch_size: int = TRAIN.eval_batch_size,
    max_length: int = TRAIN.max_length,
    max_train_samples: int | None = None,
    max_eval_samples: int | None = None,
    protocol: str = "toolkit",
    negative_sampling: str = "exclusive",
    prompt_init: str | None = None,
    verbalizer=None,
    prompt_mode: str = "soft",
    template: str = DEFAULT_TEMPLATE,
    answer_cue: str = DEFAULT_ANSWER_CUE,
    device=None,
    progress: bool = False,
) -> TrainedPrompt:
    """Step 1 for one (emotion, seed), in memory; ``train.py`` runs exactly this (same defaults).

    Decoders (``decoder_prompt``): the verbalizer defaults to no/yes and ``prompt_mode="instruction"``
    trains nothing: the "best" accuracy is the zero-shot dev accuracy of the question ``template``.
    """
    settings = {k: v for k, v in locals().items() if k not in ("backbone", "tokenizer", "data", "emotion", "seed")}
    return train_prompts(backbone, tokenizer, data, [(emotion, seed)], multi_prompt=False, **settings)[(emotion, seed)]


def train_prompts(
    backbone,
    tokenizer,
    data: GoEmotions,
    jobs,
    *,
    multi_prompt: bool = False,
    head: str | None = None,
    model_name: str | None = None,
    prompt_len: int = TRAIN.prompt_len,
    epochs: int = TRAIN.epochs,
    lr: float = TRAIN.lr,
    weight_decay: float | None = None,
    train_batch_size: int = TRAIN.train_batch_size,
    eval_batch_size: int = TRAIN.eval_batch_size,
    max_length: int = TRAIN.max_length,
    max_train_samples: int | None = None,
    max_eval_samples: int | None = None,
    protocol: str = "toolkit",
    negative_sampling: str = "exclusive",
    prompt_init: str | None = None,
    verbalizer=None,
    prompt_mode: str = "soft",
    template: str = DEFAULT_TEMPLATE,
    answer_cue: str = DEFAULT_ANSWER_CUE,
    device=None,
    progress: bool = False,
) -> dict[tuple[str, int], TrainedPrompt]:
    """Step 1 for several (emotion, seed) jobs; ``multi_prompt=True`` trains them together in one batched
    model (``multi_prompt``: the same result up to float rounding, one backbone forward per step)."""
    paper = protocol == "paper"
    check_paper_quirks(protocol, negative_sampling, multi_prompt=multi_prompt)
    device = _device(device)
    decoder = is_decoder(backbone)
    head = head or ("lm" if decoder else "mlm" if has_mlm_head(backbone) else "linear")
    if verbalizer is None:
        verbalizer = DECODER_VERBALIZER if decoder else ("negative", "positive")

    def prepare(emotion: str, seed: int):
        set_seed(seed)
        config = PromptConfig(
            model=model_name or getattr(backbone.config, "_name_or_path", "model"),
            prompt_len=prompt_len,
            head=head,
            verbalizer=tuple(verbalizer),
            prompt_init=prompt_init or ("normal" if paper else "vocab"),
            max_length=max_length,
            seed=seed,
            sentiment=emotion,
            protocol=protocol,
            prompt_mode=prompt_mode,
            template=template,
            answer_cue=answer_cue,
            extra={"negative_sampling": negative_sampling},
        )
        model = build_prompt_model(backbone, tokenizer, config).to(device)
        tasks = {}
        for split, cap in (("train", max_train_samples), ("dev", max_eval_samples), ("test", max_eval_samples)):
            task = binary_task(data.split(split), emotion, seed, split, cap, negative_sampling)
            tasks[split] = model.encode_task(task.texts, task.labels)
        logger.info(
            "%s-%d: train %d, dev %d, test %d examples; model %s on %s",
            emotion,
            seed,
            len(tasks["train"]),
            len(tasks["dev"]),
            len(tasks["test"]),
            config.model,
            device,
        )
        return model, tasks

    loop = dict(
        epochs=epochs,
        lr=lr,
        batch_size=train_batch_size,
        eval_batch_size=eval_batch_size,
        device=device,
        weight_decay=weight_decay if weight_decay is not None else (0.01 if paper else 1e-5),
        optimizer="adamw_legacy" if paper else "adamw",
        progress=progress,
    )
    prepared, results = {}, {}
    if prompt_mode == "instruction":  # zero-shot: nothing to train
        for key in jobs:
            prepared[key] = model, tasks = prepare(*key)
            dev_acc = accuracy(model, tasks["dev"], eval_batch_size, device)
            history = [{"epoch": 0, "train_loss": None, "dev_acc": dev_acc}]
            results[key] = TrainResult(model.trainable_state(), dev_acc, 0, model.trainable_state(), dev_acc, history)
    elif multi_prompt:
        prepared = {key: prepare(*key) for key in jobs}
        keys = list(prepared)
        trained = _train_many(
            [prepared[k][0] for k in keys],
            [prepared[k][1]["train"] for k in keys],
            [prepared[k][1]["dev"] for k in keys],
            seeds=[s for _, s in keys],
            **loop,
        )
        results = dict(zip(keys, trained))
    else:  # one after another, each built just before its training (as train.py always did)
        for key in jobs:
            prepared[key] = model, tasks = prepare(*key)
            results[key] = _train_loop(model, tasks["train"], tasks["dev"], seed=key[1], **loop)
    for key, (model, _) in prepared.items():
        best = results[key].best_state
        model.load_trainable_state(best["prompt"], {k: v for k, v in best.items() if k.startswith("head.")})
    if multi_prompt and prompt_mode != "instruction":  # every job's test rows batched together
        tests = stacked_accuracies(
            [m for m, _ in prepared.values()], [t["test"] for _, t in prepared.values()], eval_batch_size, device
        )
    else:
        tests = [accuracy(model, tasks["test"], eval_batch_size, device) for model, tasks in prepared.values()]
    out = {}
    for ((emotion, seed), (model, tasks)), test_acc in zip(prepared.items(), tests):
        result = results[(emotion, seed)]
        out[(emotion, seed)] = TrainedPrompt(
            model,
            emotion,
            seed,
            result.best_acc,
            result.best_epoch,
            test_acc,
            result.history,
            result.final_state,
            {split: len(task) for split, task in tasks.items()},
        )
    return out


def _prompt_model(prompt) -> PromptModel:
    return prompt.model if isinstance(prompt, TrainedPrompt) else prompt


def collect_activations(prompts: dict, mode: str = "before_relu") -> ActivationSet:
    """Step 2: every FFN neuron at the slot, the prompt alone, for a full {(emotion, seed): prompt} grid.

    ``prompts`` values are ``TrainedPrompt`` or a ``PromptModel`` (e.g. from a checkpoint).
    """
    if not prompts:
        raise ToolkitError("no prompts given")
    emotions = sorted({e for e, _ in prompts})
    seeds = sorted({s for _, s in prompts})
    missing = [f"{e}-{s}" for e in emotions for s in seeds if (e, s) not in prompts]
    if missing:
        raise ToolkitError(f"incomplete emotion x seed grid: missing {', '.join(missing[:10])}")
    first = _prompt_model(next(iter(prompts.values())))
    ffn = find_ffn(first)
    acts = np.stack(
        [np.stack([prompt_activations(_prompt_model(prompts[(e, s)]), mode) for s in seeds]) for e in emotions]
    ).astype(np.float32)  # [emotions, seeds, neurons]
    return ActivationSet(acts, emotions, seeds, ffn.num_layers, ffn.d_ffn)


@dataclass
class Searchlight:
    """Step 3's result: tau, p, q and rank per neuron and attribute, the summary, and the RDMs used."""

    result: RSAResult
    summary: pd.DataFrame
    rdms: AttributeRDMs
    num_layers: int
    alpha: float

    def table(self, which: str) -> pd.DataFrame:
        return self.result.table(which)


def run_searchlight(
    activations: ActivationSet,
    ratings: Ratings,
    *,
    mode: str = "14Properties",
    method: str = "kendall_tau_b",
    fdr: str = "bh",
    alternative: str = "greater",
    alpha: float = 0.01,
    num_layers: int | None = None,
    device=None,
    test: str = "permutation",
    permutations: int = 1000,
    perm_seed: int = 0,
    correction: str | None = None,
    tail: str = "empirical",
) -> Searchlight:
    """Step 3: the per-neuron RSA against the attribute RDMs of ``ratings`` (``load_ratings``).

    ``test="permutation"`` (the default, as ``rsa_searchlight.py``): emotion-label permutation test with
    max-T family-wise error control within each attribute (``correction``), ``permutations`` draws from
    ``perm_seed``; ``result.perm`` holds its p-values and the null counts. ``test="parametric"``: the paper's test.
    """
    rdms = build_rdms(ratings, activations.emotions, mode)
    keep = [activations.emotions.index(e) for e in rdms.emotions]
    result = searchlight(
        activations.activations[keep],
        rdms.rdms,
        rdms.names,
        method,
        fdr,
        alternative,
        device,
        test=test,
        permutations=permutations,
        perm_seed=perm_seed,
        alpha=alpha,
        correction=correction,
        tail=tail,
    )
    layers = num_layers or activations.layers
    if not layers:
        raise ToolkitError("the activations do not say how many layers the model has; pass num_layers")
    return Searchlight(result, summarize(result, layers, alpha), rdms, layers, alpha)


def make_masks(
    rsa: Searchlight,
    *,
    thresholds=None,
    percent=None,
    mask_method: str = "BINARY_MASK",
    num_random: int = 3,
    random_method: str = "layer_matched",
    seed: int = 0,
    attributes=None,
) -> dict[str, torch.Tensor]:
    """Step 4: top-k masks per attribute and their random baselines, from a searchlight's ranks."""
    ranks = rsa.table("rank")
    if (thresholds is None) == (percent is None):
        raise ToolkitError("give either thresholds (numbers of neurons) or percent (shares of all neurons)")
    ks = list(thresholds) if thresholds is not None else [max(1, round(len(ranks) * p / 100)) for p in percent]
    return generate_masks(
        ranks, list(attributes or ranks.columns), ks, rsa.num_layers, mask_method, num_random, random_method, seed
    )


def evaluate_masks(
    prompt,
    data: GoEmotions,
    masks: dict[str, torch.Tensor],
    *,
    split: str = "dev",
    max_eval_samples: int | None = None,
    eval_batch_size: int = 64,
    device=None,
    progress: bool = False,
    masks_per_forward: int | str = "auto",
) -> dict[str, float]:
    """Step 5: accuracy of one prompt with each mask applied, plus ``unmasked``, on its balanced split."""
    model = _prompt_model(prompt)
    device = _device(device)
    model.to(device)
    check_mask_shapes(model, masks)
    config = model.config
    task = binary_task(
        data.split(split),
        config.sentiment,
        config.seed,
        split,
        max_eval_samples,
        config.extra.get("negative_sampling", "exclusive"),
    )
    encoded = model.encode_task(task.texts, task.labels)
    out = {"unmasked": accuracy(model, encoded, eval_batch_size, device)}
    out.update(
        _evaluate_masks(
            model, encoded, masks, eval_batch_size, device, progress=progress, masks_per_forward=masks_per_forward
        )
    )
    return out


def report_tables(
    activations: ActivationSet | None = None,
    rsa: Searchlight | None = None,
    masked: dict | None = None,
    prompts: dict | None = None,
    k: int | None = None,
) -> dict[str, pd.DataFrame]:
    """Step 6's tables from in-memory results: ``summary`` (per attribute), ``masking`` (long), ``accuracy``."""
    res = Results(alpha=rsa.alpha if rsa else 0.01)
    if prompts:
        res.accuracy = pd.DataFrame(
            [
                {
                    "emotion": e,
                    "seed": s,
                    "accuracy": p.best_acc,
                    "test_accuracy": p.test_acc,
                    "dev_examples": p.sizes.get("dev"),
                    "test_examples": p.sizes.get("test"),
                }
                for (e, s), p in sorted(prompts.items())
                if isinstance(p, TrainedPrompt)
            ]
        )
    if rsa is not None:
        res.tau, res.q, res.rank = rsa.table("tau"), rsa.table("q"), rsa.table("rank")
        res.summary, res.num_layers = rsa.summary, rsa.num_layers
    if masked:
        res.masking = masking_from_records([{"sentiment": e, "seed": s, **values} for (e, s), values in masked.items()])
    res.activations = activations
    summary, _ = summary_table(res, k)
    tables = {"summary": summary}
    if res.masking is not None:
        tables["masking"] = res.masking
    if res.accuracy is not None:
        tables["accuracy"] = res.accuracy
    return tables
