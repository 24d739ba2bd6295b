"""Neuron masks: the top-k neurons of an attribute's ranking, and random baselines.

A mask is a tensor [layers, d_ffn] that scales the FFN neurons: binary masks hold 0 (masked) or 1
(kept); float masks scale the masked neurons by uniform [0, 1) values (the paper's FLOAT_MASK).
Names: ``{attribute}_top{k}`` and its random baselines ``{attribute}_top{k}_random`` (first draw),
``{attribute}_top{k}_random_2``, ``_random_3``, ... (further draws), and the permuted-ranking baselines
``{attribute}_top{k}_permuted{i}``: the top k of a ranking computed with the emotion labels shuffled
(the i-th permutation of the searchlight's permutation test), which controls for top-ranked neurons
simply having structured RDMs, whatever the attribute.

Random baselines draw k neurons uniformly, either from all neurons (``global``) or layer by layer
with the top-k mask's count in every layer (``layer_matched``, the default). Masking effects depend
strongly on the layer, so a global draw confounds "these neurons carry the attribute" with "these
layers matter"; the layer-matched draw controls for that.
"""

from __future__ import annotations

import logging
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from model_emotion.errors import ToolkitError
from model_emotion.io.files import atomic_path, torch_save
from model_emotion.io.tensors import read_npz, read_tensor_file
from model_emotion.util.names import check_mask_name

logger = logging.getLogger(__name__)

MASK_METHODS = {"BINARY_MASK": "binary", "FLOAT_MASK": "float", "1": "binary", "2": "float"}
RANDOM_METHODS = ("global", "layer_matched")


def mask_name(attribute: str, k: int, draw: int | None = None) -> str:
    """``draw`` None = the top-k mask; 1 = first random draw (``_random``); n > 1 = ``_random_n``."""
    name = f"{attribute}_top{k}"
    if draw is None:
        return name
    return f"{name}_random" if draw == 1 else f"{name}_random_{draw}"


def _rng(seed: int, *parts) -> np.random.Generator:
    return np.random.default_rng([seed] + [zlib.crc32(str(p).encode()) for p in parts])


def top_k(ranks: np.ndarray, k: int, attribute: str = "") -> np.ndarray:
    """Indices of the k best-ranked neurons (rank 1 = best; unranked NaN never chosen)."""
    rankable = np.flatnonzero(np.isfinite(ranks))
    if k > rankable.size:
        raise ToolkitError(f"k = {k} exceeds the {rankable.size} rankable neurons of {attribute!r}")
    order = rankable[np.argsort(ranks[rankable], kind="stable")]
    return np.sort(order[:k])


def random_like(top: np.ndarray, num_layers: int, d_ffn: int, method: str, rng: np.random.Generator) -> np.ndarray:
    """k random neuron indices: uniform over all neurons, or per layer matching ``top``'s counts."""
    if method not in RANDOM_METHODS:
        raise ToolkitError(f"{{--random_method}} {method!r} unknown; choose one of {', '.join(RANDOM_METHODS)}")
    if method == "global":
        return np.sort(rng.choice(num_layers * d_ffn, size=top.size, replace=False))
    counts = np.bincount(top // d_ffn, minlength=num_layers)
    picks = [
        layer * d_ffn + rng.choice(d_ffn, size=count, replace=False) for layer, count in enumerate(counts) if count
    ]
    return np.sort(np.concatenate(picks)) if picks else np.array([], dtype=np.int64)


def build_mask(indices: np.ndarray, num_layers: int, d_ffn: int, method: str, rng: np.random.Generator) -> torch.Tensor:
    if method == "binary":
        flat = torch.ones(num_layers * d_ffn, dtype=torch.int8)
        flat[torch.from_numpy(indices)] = 0
    else:
        flat = torch.ones(num_layers * d_ffn, dtype=torch.float32)
        flat[torch.from_numpy(indices)] = torch.from_numpy(rng.random(indices.size).astype(np.float32))
    return flat.reshape(num_layers, d_ffn)


def permuted_name(attribute: str, k: int, i: int) -> str:
    return f"{attribute}_top{k}_permuted{i}"


def ks_from_percent(num_neurons: int, percent) -> list[int]:
    """k (neurons to mask) for each percentage of all ``num_neurons``, at least 1."""
    return [max(1, round(num_neurons * p / 100)) for p in percent]


def generate_masks(
    ranks: pd.DataFrame,
    attributes: list[str],
    thresholds: list[int],
    num_layers: int,
    *,
    mask_method: str = "BINARY_MASK",
    num_random: int = 3,
    random_method: str = "layer_matched",
    seed: int = 0,
    permuted_ranks: np.ndarray | None = None,
) -> dict[str, torch.Tensor]:
    """All top-k masks and their random baselines, in a deterministic order; with ``permuted_ranks``
    ([permutations, neurons, rank columns], 1 = best) also the permuted-ranking baselines."""
    method = MASK_METHODS.get(mask_method)
    if method is None:
        raise ToolkitError(f"{{--mask_method}} {mask_method!r} unknown; choose one of BINARY_MASK, FLOAT_MASK")
    missing = [a for a in attributes if a not in ranks.columns]
    if missing:
        raise ToolkitError(
            f"rank table has no column {', '.join(map(repr, missing))}; it has: {', '.join(ranks.columns)}"
        )
    bad = [k for k in thresholds if not isinstance(k, (int, np.integer)) or k < 1]
    if bad:
        raise ToolkitError(f"thresholds must be positive integers, got {bad}")
    if num_random < 0:
        raise ToolkitError(f"{{--num_random}} {num_random} must be 0 or more")
    n = len(ranks)
    if num_layers < 1 or n % num_layers:
        raise ToolkitError(f"{n} neurons do not split into {num_layers} layers")
    d_ffn = n // num_layers
    masks: dict[str, torch.Tensor] = {}
    for attribute in attributes:
        column = pd.to_numeric(ranks[attribute], errors="coerce").to_numpy(float)
        for k in thresholds:
            top = top_k(column, int(k), attribute)
            masks[mask_name(attribute, k)] = build_mask(top, num_layers, d_ffn, method, _rng(seed, attribute, k, "top"))
            for draw in range(1, num_random + 1):
                # global draws do not depend on the attribute: one set per k, shared by all attributes
                # (the evaluation runs each distinct mask once)
                rng = _rng(seed, "global", k, draw) if random_method == "global" else _rng(seed, attribute, k, draw)
                picks = random_like(top, num_layers, d_ffn, random_method, rng)
                masks[mask_name(attribute, k, draw)] = build_mask(picks, num_layers, d_ffn, method, rng)
            if permuted_ranks is not None:
                a = list(ranks.columns).index(attribute)
                for i, permuted in enumerate(permuted_ranks, start=1):
                    picks = top_k(permuted[:, a], int(k), attribute)
                    masks[permuted_name(attribute, k, i)] = build_mask(
                        picks, num_layers, d_ffn, method, _rng(seed, attribute, k, "permuted", i)
                    )
    return masks


def load_permuted_ranks(null_npz: Path, ranks: pd.DataFrame, count: int | None) -> np.ndarray:
    """The rankings of the first ``count`` permutations (None: all it kept) of a searchlight's
    permutation test, read from its ``_null.npz`` (no pickles) and checked against the rank table.
    [count, neurons, columns]"""
    from model_emotion.rsa.searchlight import rank_by

    data = read_npz(null_npz, "permutation-test file")
    try:
        stat = np.asarray(data["permuted_stat"], dtype=np.float64)
        names = [str(n) for n in data["attributes"]]
    except (ValueError, KeyError, TypeError) as exc:
        raise ToolkitError(
            f"{null_npz}: not a readable permutation-test file ({type(exc).__name__}); rerun "
            f"{{stage:rsa}} --test permutation"
        ) from None
    if stat.ndim != 3 or stat.shape[1:] != (len(ranks), len(ranks.columns)) or names != list(ranks.columns):
        raise ToolkitError(
            f"{null_npz} does not match its rank table (neurons or attributes differ: {stat.shape[1:]} "
            f"vs {(len(ranks), len(ranks.columns))}); rerun {{stage:rsa}}"
        )
    count = stat.shape[0] if count is None else count
    if count > stat.shape[0]:
        raise ToolkitError(f"{{--num_permuted}} {count}: {null_npz} keeps {stat.shape[0]} permuted rankings")
    return np.stack([rank_by(s) for s in stat[:count]])


def save_masks(path: str | Path, masks: dict[str, torch.Tensor]) -> None:
    """Write masks with ``torch.save`` (read back with ``weights_only=True``: no code can run on load).

    The ``.pkl`` name of the original command line is kept; only the content format changed.
    """
    with atomic_path(path) as tmp:
        torch_save({name: mask.contiguous() for name, mask in masks.items()}, tmp)


def load_masks(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a masks file safely and check it: a dict of name -> 2-D tensor of one shape, each either
    binary (integers 0/1: silence or keep) or scales (finite floats in [0, 1]).

    Reads this toolkit's files (``torch.save``) and the original code's pickles (protocols 0-5) with
    ``tensor_files.read_tensor_file``: no code runs, and no tensor is built that the file does not hold.
    """
    path = Path(path)
    if path.is_dir():
        raise ToolkitError(f"{path} is a folder; give the masks file (.pkl) made by {{stage:masks}}")
    if not path.is_file():
        raise ToolkitError(f"mask file not found: {path} (create it with {{stage:masks}})")
    masks = read_tensor_file(path, "masks file")
    if not isinstance(masks, dict) or not masks:
        raise ToolkitError(f"{path} must hold a non-empty dict of name -> tensor [layers, d_ffn]")
    out = {}
    for name, mask in masks.items():
        if isinstance(mask, np.ndarray) and mask.dtype.kind in "iuf":
            mask = torch.from_numpy(np.ascontiguousarray(mask))
        if not isinstance(name, str) or not isinstance(mask, torch.Tensor) or mask.dim() != 2:
            raise ToolkitError(
                f"{path}: entry {str(name)[:80]!r} is not a 2-D tensor ({type(mask).__name__}); "
                f"expected a dict of name -> tensor [layers, d_ffn]"
            )
        check_mask_name(name, str(path))
        if mask.dtype == torch.bool or mask.is_complex():
            raise ToolkitError(f"{path}: mask {name!r} has dtype {mask.dtype}; expected int8 0/1 or float scales")
        if mask.is_floating_point():
            values = mask.float()
            if not bool(torch.isfinite(values).all()) or bool((values < 0).any()) or bool((values > 1).any()):
                raise ToolkitError(
                    f"{path}: mask {name!r} holds values outside [0, 1] (or NaN); float masks scale neurons by "
                    f"factors in [0, 1]"
                )
        elif bool(((mask != 0) & (mask != 1)).any()):
            bad = mask[(mask != 0) & (mask != 1)][0].item()
            raise ToolkitError(f"{path}: binary mask {name!r} holds the value {bad}; binary masks hold only 0 and 1")
        out[name] = mask
    shapes = {tuple(m.shape) for m in out.values()}
    if len(shapes) > 1:
        raise ToolkitError(f"{path}: masks of different shapes {sorted(shapes)}; one file holds masks of one model")
    return out
