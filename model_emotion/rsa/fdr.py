"""False discovery rate over many tests: Benjamini-Hochberg (scipy) or the paper's own formula."""

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
