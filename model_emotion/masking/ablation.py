"""What a masked neuron is set to: the ablation kinds of the masked evaluation.

A mask [layers, d_ffn] holds each neuron's keep factor s (1 = untouched). A neuron's value a becomes

- ``zero`` (the paper's and the default): s * a; a binary mask sets masked neurons to 0;
- ``mean``: s * a + (1 - s) * m, with m the neuron's mean over every token of a reference set of texts
  read through the same prompt (``reference_mean``). Zhang & Nanda (ICLR 2024) and Li & Janson
  (NeurIPS 2024) report it beside zero ablation, which moves a neuron off its own distribution;
- ``resample``: s * a + (1 - s) * r, with r the neuron's values at one token of one reference text
  drawn at random for each evaluated example (the same token for all of the example's masked neurons,
  so their joint distribution is kept; seeded), at every position of the example;
- ``scale``: the masked neurons keep a share ``factor`` of their value: s' = 1 - (1 - s)(1 - factor).

The reference set is the evaluation split's neutral-labelled texts (``neutral``, the default) or all
of its texts (``split``), at most ``reference_samples`` of them drawn with the seed. No padding
enters the means (each row's real positions are counted); a layer that runs at the read slot only (an
encoder's last block, whose other positions never reach the output) contributes its slot values. A mean ablation is a constant shift of the down
projection's input, so the shared-prefix and stacked evaluation paths add it as a bias at the cost
of zero ablation; resample ablation gives each row its own values and takes the plain path.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from model_emotion.errors import ToolkitError

ABLATIONS = ("zero", "mean", "resample", "scale")
REFERENCES = ("neutral", "split")


@dataclass(frozen=True)
class Ablation:
    """An ablation kind with what it needs: the reference mean [layers, d_ffn] (mean), the per-row
    replacements [rows, layers, d_ffn] in the task's row order (resample), the kept share (scale)."""

    kind: str = "zero"
    mean: torch.Tensor | None = None
    replacements: torch.Tensor | None = None
    factor: float = 0.0

    def __post_init__(self):
        if self.kind not in ABLATIONS:
            raise ToolkitError(f"{{--ablation}} {self.kind!r} unknown; choose one of {', '.join(ABLATIONS)}")
        if self.kind == "mean" and self.mean is None:
            raise ToolkitError("mean ablation needs the reference mean of every neuron")
        if self.kind == "resample" and self.replacements is None:
            raise ToolkitError("resample ablation needs the replacement values of every evaluated row")

    def mean_on(self, device) -> torch.Tensor | None:
        return None if self.kind != "mean" else self.mean.to(device=device, dtype=torch.float32)

    def scaled(self, masks: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """``scale``: every mask with its masked neurons keeping the share ``factor``."""
        f = float(self.factor)
        return {name: 1 - (1 - mask.float()) * (1 - f) for name, mask in masks.items()}


def reference_texts(frame, reference: str, samples: int, seed: int) -> list[str]:
    """The reference set: the split's neutral-only texts or all of its texts, at most ``samples``."""
    if reference not in REFERENCES:
        raise ToolkitError(f"{{--reference}} {reference!r} unknown; choose one of {', '.join(REFERENCES)}")
    if reference == "neutral":
        rows = [i for i, labels in enumerate(frame["labels"]) if tuple(labels) == ("neutral",)]
    else:
        rows = list(range(len(frame)))
    if not rows:
        raise ToolkitError(
            f"the reference set ({{--reference}} {reference}) has no example in this split; use --reference split"
        )
    rng = np.random.default_rng([seed, 7919])
    if len(rows) > samples:
        rows = sorted(rng.choice(rows, samples, replace=False).tolist())
    texts = frame["text"].to_numpy()
    return [str(texts[i]) for i in rows]


@torch.inference_mode()
def reference_activations(
    model, texts: list[str], device, seed: int = 0, batch_size: int = 16
) -> tuple[torch.Tensor, torch.Tensor]:
    """Every neuron's mean over all tokens of the reference texts [layers, d_ffn], and one random token's
    values per text [texts, layers, d_ffn] (the resample pool), read through ``model`` (its prompt).

    Texts run in batches padded on the right; each row's real positions are its first ``extra_tokens``
    + length ones, so no padding enters (``batch_size=1`` runs them one by one: the same numbers)."""
    from model_emotion.lm.batching import batch_order, pad_rows
    from model_emotion.lm.neurons import capture_neurons

    encoded = model.encode_task(texts, np.zeros(len(texts), dtype=np.int64))
    rng = np.random.default_rng([seed, 104729])
    picks = [rng.random() for _ in range(len(texts))]  # one uniform per text: its pool token
    totals, counts, pool = None, None, [None] * len(texts)
    model.eval()
    with capture_neurons(model, "before_relu", position=None) as layers:
        for rows in batch_order(encoded, batch_size, extra_tokens=model.extra_tokens):
            ids, attention, _ = pad_rows(encoded, rows)
            model(ids.to(device), attention.to(device))
            values = [layer.float().cpu() for layer in layers]  # per layer [batch, positions, d_ffn]
            if totals is None:
                totals, counts = [torch.zeros(v.shape[-1]) for v in values], [0] * len(values)
            width = max(v.shape[1] for v in values)
            for b, row in enumerate(rows):
                real = int(attention[b].sum()) + width - ids.shape[1]  # the prompt's positions count too
                per_layer = [v[b, :real] if v.shape[1] == width else v[b] for v in values]
                for j, v in enumerate(per_layer):
                    totals[j] += v.sum(0)
                    counts[j] += v.shape[0]
                # one token for the resample pool; a layer that ran at the read slot only (an encoder's
                # last block, whose other positions never reach the output) gives its slot value
                t = int(picks[row] * real)
                pool[row] = torch.stack([v[t] if v.shape[0] == real else v[-1] for v in per_layer])
    mean = torch.stack([total / count for total, count in zip(totals, counts)])
    return mean, torch.stack(pool)


def resample_rows(pool: torch.Tensor, rows: int, seed: int, emotion: str, prompt_seed: int) -> torch.Tensor:
    """Per evaluated row, the values of one reference token drawn at random. [rows, layers, d_ffn]"""
    import zlib

    if pool.shape[0] < 2:
        raise ToolkitError(f"--ablation resample needs at least 2 reference texts to draw from, got {pool.shape[0]}")
    rng = np.random.default_rng([seed, zlib.crc32(emotion.encode()), prompt_seed])
    return pool[torch.from_numpy(rng.integers(0, pool.shape[0], rows))]


def make_ablation(
    kind: str,
    model,
    texts: list[str] | None,
    device,
    *,
    rows: int,
    scale: float = 0.5,
    seed: int = 0,
    emotion: str = "",
    prompt_seed: int = 0,
    mean: torch.Tensor | None = None,
):
    """The ``Ablation`` of ``kind`` for one prompt: the reference statistics read through ``model``
    from ``texts`` (``mean`` given: the cached mean of mean ablation), the per-row draws of resample
    ablation for ``rows`` evaluated rows. Returns (ablation or None for zero, its record)."""
    if kind not in ABLATIONS:
        raise ToolkitError(f"{{--ablation}} {kind!r} unknown; choose one of {', '.join(ABLATIONS)}")
    if kind == "zero":
        return None, {"kind": "zero"}
    if kind == "scale":
        return Ablation("scale", factor=scale), {"kind": "scale", "factor": scale}
    info = {"kind": kind, "n_reference": len(texts)}
    if kind == "mean":
        if mean is None:
            mean, _ = reference_activations(model, texts, device, seed)
        return Ablation("mean", mean=mean), info
    _, pool = reference_activations(model, texts, device, seed)
    return Ablation("resample", replacements=resample_rows(pool, rows, seed, emotion, prompt_seed)), {
        **info,
        "seed": seed,
    }
