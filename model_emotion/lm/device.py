"""The device a stage runs on: ``--device`` by name, or cuda when available, else cpu."""

from __future__ import annotations

from model_emotion.errors import ToolkitError


def resolve_device(name: str | None):
    """``--device``: an explicit name, or cuda when available, else cpu."""
    import torch

    if name in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ToolkitError(f"--device {name!r} is not a device name (use cpu, cuda, cuda:1, ...)") from None
    if device.type not in ("cpu", "cuda", "mps", "xpu"):
        raise ToolkitError(f"--device {name!r} cannot run the model (use cpu, cuda, cuda:1, ...)")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ToolkitError(f"--device {name} asked for, but no CUDA device is available (use --device cpu)")
    return device
