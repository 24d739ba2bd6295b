"""Multiplicity over many tests: the false discovery rate (Benjamini-Hochberg, scipy, or the paper's own
formula) and Holm's family-wise step-down adjustment."""

from __future__ import annotations

import numpy as np
from scipy import stats

from model_emotion.errors import ToolkitError

FDR_METHODS = ("bh", "paper")


def fdr(p: np.ndarray, method: str = "bh") -> np.ndarray:
    """q-values over all finite tests: Benjamini-Hochberg (scipy) or the paper's p * N / rank(p)."""
    if method not in FDR_METHODS:
        raise ToolkitError(f"{{--fdr}} {method!r} unknown; choose one of {', '.join(FDR_METHODS)}")
    q = np.full(p.shape, np.nan)
    finite = np.isfinite(p)
    values = p[finite]
    if values.size:
        if method == "bh":
            q[finite] = stats.false_discovery_control(values, method="bh")
        else:
            q[finite] = values * values.size / stats.rankdata(values)
    return q


def holm(p: np.ndarray) -> np.ndarray:
    """Holm's step-down adjusted p values (NaN stays NaN and does not count as a test)."""
    p = np.asarray(p, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    if ok.size == 0:
        return out
    order = ok[np.argsort(p[ok], kind="stable")]
    m = order.size
    adjusted = np.maximum.accumulate((m - np.arange(m)) * p[order])
    out[order] = np.minimum(adjusted, 1.0)
    return out
