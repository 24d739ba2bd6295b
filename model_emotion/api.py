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

The figures of ``model_emotion.report.plots`` take these tables and return matplotlib figures.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from model_emotion.data.goemotions import GoEmotions, binary_task
from model_emotion.data.ratings import AttributeRDMs, Ratings, build_rdms
from model_emotion.errors import ToolkitError
from model_emotion.lm.device import resolve_device
from model_emotion.lm.inference import accuracy
from model_emotion.lm.neurons import find_ffn
from model_emotion.masking.ablation import make_ablation, reference_texts
from model_emotion.masking.evaluate import check_mask_shapes
from model_emotion.masking.evaluate import evaluate_masks as _evaluate_masks
from model_emotion.masking.masks import generate_masks, ks_from_percent
from model_emotion.prompts.activations import ActivationSet, prompt_activations
from model_emotion.prompts.base import PromptModel
from model_emotion.prompts.tuning import TrainedPrompt, TuneSettings, tune_prompts
from model_emotion.report.results import Results, masking_from_records
from model_emotion.report.tables import summary_table
from model_emotion.rsa.searchlight import RSAResult, searchlight, summarize

logger = logging.getLogger(__name__)


def train_prompt(
    backbone, tokenizer, data: GoEmotions, emotion: str, seed: int = 1, *, device=None, model_name=None,
    progress: bool = False, **settings,
) -> TrainedPrompt:  # fmt: skip
    """Step 1 for one (emotion, seed), in memory; ``train.py`` runs exactly this. ``settings``: the
    fields of ``prompts.tuning.TuneSettings`` (epochs, prompt_len, head, ...), with train.py's defaults.

    Decoders: the verbalizer defaults to no/yes and ``prompt_mode="instruction"`` trains nothing: the
    "best" accuracy is the zero-shot dev accuracy of the question ``template``.
    """
    jobs = [(emotion, seed)]
    kwargs = dict(device=device, model_name=model_name, progress=progress)
    return train_prompts(backbone, tokenizer, data, jobs, **kwargs, **settings)[(emotion, seed)]


def train_prompts(
    backbone, tokenizer, data: GoEmotions, jobs, *, device=None, model_name=None, progress: bool = False, **settings
) -> dict[tuple[str, int], TrainedPrompt]:
    """Step 1 for several (emotion, seed) jobs; ``multi_prompt=True`` trains them together in one batched
    model (``prompts.multi``: the same result up to float rounding, one backbone forward per step)."""
    if settings.get("head", "auto") is None:
        settings["head"] = "auto"
    tune = TuneSettings(**settings)
    return tune_prompts(backbone, tokenizer, data, jobs, tune, device=device, model_name=model_name, progress=progress)


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
    ks = list(thresholds) if thresholds is not None else ks_from_percent(len(ranks), percent)
    return generate_masks(
        ranks, list(attributes or ranks.columns), ks, rsa.num_layers, mask_method=mask_method,
        num_random=num_random, random_method=random_method, seed=seed,
    )  # fmt: skip


def evaluate_masks(
    prompt,
    data: GoEmotions,
    masks: dict[str, torch.Tensor],
    *,
    split: str = "test",
    max_eval_samples: int | None = None,
    eval_batch_size: int = 64,
    device=None,
    progress: bool = False,
    masks_per_forward: int | str = "auto",
    ablation: str = "zero",
    ablation_scale: float = 0.5,
    reference: str = "neutral",
    reference_samples: int = 256,
    ablation_seed: int = 0,
) -> dict[str, float]:
    """Step 5: accuracy of one prompt with each mask applied, plus ``unmasked``, on its balanced split
    (test by default: dev chose the epoch). ``ablation`` and the reference settings as in
    ``eval_mask_neuron.py`` (``masking.ablation``)."""
    model = _prompt_model(prompt)
    device = resolve_device(device)
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
    texts = None
    if ablation in ("mean", "resample"):
        texts = reference_texts(data.split(split), reference, reference_samples, ablation_seed)
    kind, _ = make_ablation(
        ablation, model, texts, device, rows=len(encoded), scale=ablation_scale, seed=ablation_seed,
        emotion=config.sentiment, prompt_seed=config.seed,
    )  # fmt: skip
    out = {"unmasked": accuracy(model, encoded, eval_batch_size, device)}
    out.update(
        _evaluate_masks(
            model, encoded, masks, eval_batch_size, device, progress=progress, masks_per_forward=masks_per_forward,
            ablation=kind,
        )
    )  # fmt: skip
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
