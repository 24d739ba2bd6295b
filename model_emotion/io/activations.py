"""Neuron activations of learned prompts on disk (no torch import: the report reads these).

Per (emotion, seed) the paper's CSV layout: a header row ``0..L*N-1`` and one data row. All of
them together in ``activations.npz``: ``activations`` [emotions, seeds, L*N] float32 with
``emotions``, ``seeds``, ``layers`` and ``d_ffn``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from model_emotion.errors import ToolkitError
from model_emotion.io.files import atomic_path, read_csv, write_csv
from model_emotion.io.tensors import read_npz
from model_emotion.util.names import check_emotion_names, split_run_name

logger = logging.getLogger(__name__)


@dataclass
class ActivationSet:
    activations: np.ndarray  # [emotions, seeds, neurons] float32
    emotions: list[str]
    seeds: list[int]
    layers: int | None
    d_ffn: int | None


def write_activation_csv(path: str | Path, rows: np.ndarray) -> None:
    """The paper's layout: header 0..L*N-1, one row per vector. rows: [rows, neurons]"""
    rows = np.atleast_2d(rows)
    write_csv(path, pd.DataFrame(rows, columns=[str(i) for i in range(rows.shape[1])]))


def read_activation_csv(path: str | Path) -> np.ndarray:
    """The single data row of a per-(emotion, seed) CSV. [neurons]"""
    path = Path(path)
    what = "an activation CSV (header 0..N-1, one numeric row)"
    frame = read_csv(path, what)
    try:
        values = frame.to_numpy(dtype=np.float64)
    except (ValueError, TypeError):
        raise ToolkitError(f"{path} is not {what}: a value is not a number") from None
    if values.shape[0] != 1:
        raise ToolkitError(f"{path} should hold one data row, found {values.shape[0]}")
    return values[0]


def save_npz(path: str | Path, data: ActivationSet) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            np.savez(
                handle,
                activations=data.activations.astype(np.float32),
                emotions=np.array(data.emotions),
                seeds=np.array(data.seeds),
                layers=np.array(data.layers or 0),
                d_ffn=np.array(data.d_ffn or 0),
            )


def _check_finite(values: np.ndarray, where: str) -> None:
    if not np.isfinite(values).all():
        bad = np.argwhere(~np.isfinite(values))[0]
        raise ToolkitError(
            f"{where} has a NaN or infinite activation (at index {tuple(int(i) for i in bad)}); "
            f"recompute it with {{stage:activations}}"
        )


def load_activations(path: str | Path) -> ActivationSet:
    """Read an ``activations.npz`` or a folder of the paper's ``{emotion}-{seed}.csv`` files."""
    path = Path(path)
    if path.is_dir():
        return _load_csv_folder(path)
    if not path.exists():
        raise ToolkitError(
            f"activations not found: {path} (an activations.npz or a folder of {{emotion}}-{{seed}}.csv)"
        )
    data = read_npz(path, "activations npz")
    try:
        acts = data["activations"]
        emotions = [str(e) for e in data["emotions"]]
        seeds = [int(s) for s in data["seeds"]]
        layers = int(data["layers"]) if "layers" in data else 0
        d_ffn = int(data["d_ffn"]) if "d_ffn" in data else 0
    except (ValueError, KeyError, TypeError) as exc:
        reason = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise ToolkitError(f"{path} is not an activations npz (needs activations, emotions, seeds): {reason}") from None
    if acts.dtype.kind not in "fiu":
        raise ToolkitError(f"{path}: activations have dtype {acts.dtype}, expected numbers")
    if acts.ndim != 3 or acts.shape[:2] != (len(emotions), len(seeds)):
        raise ToolkitError(
            f"{path}: activations shape {acts.shape} does not match {len(emotions)} emotions x {len(seeds)} seeds"
        )
    check_emotion_names(emotions, str(path))
    _check_finite(acts, str(path))
    if layers and d_ffn and layers * d_ffn != acts.shape[2]:
        raise ToolkitError(f"{path}: layers {layers} x d_ffn {d_ffn} != {acts.shape[2]} neurons")
    return ActivationSet(acts, emotions, seeds, layers or None, d_ffn or None)


def _load_csv_folder(folder: Path) -> ActivationSet:
    found: dict[tuple[str, int], Path] = {}
    for file in sorted(folder.glob("*.csv")):
        run = split_run_name(file.stem)
        if run:
            found[run] = file
    if not found:
        raise ToolkitError(f"{folder} holds no {{emotion}}-{{seed}}.csv activation files")
    emotions = sorted({e for e, _ in found})
    seeds = sorted({s for _, s in found})
    missing = [f"{e}-{s}" for e in emotions for s in seeds if (e, s) not in found]
    if missing:
        raise ToolkitError(
            f"{folder}: incomplete emotion x seed grid, missing {', '.join(missing[:10])}"
            f"{' ...' if len(missing) > 10 else ''} ({len(missing)} file(s))"
        )
    acts, width = None, None
    for i, emotion in enumerate(emotions):
        for j, seed in enumerate(seeds):
            file = found[(emotion, seed)]
            row = read_activation_csv(file)
            if width is None:
                width = row.size
                acts = np.empty((len(emotions), len(seeds), width), np.float32)
            elif row.size != width:
                raise ToolkitError(f"{file} has {row.size} neurons, but {found[(emotions[0], seeds[0])]} has {width}")
            _check_finite(row, str(file))
            acts[i, j] = row
    return ActivationSet(acts, emotions, seeds, None, None)
