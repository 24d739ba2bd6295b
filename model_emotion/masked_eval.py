"""Accuracy of one prompt under many neuron masks, with the model and data loaded once."""

from __future__ import annotations

import logging
from typing import Callable

import torch
from tqdm import tqdm

from .batching import EncodedTask
from .errors import ToolkitError
from .neurons import find_ffn, scale_neurons
from .prompt_model import SoftPromptModel
from .training import accuracy

logger = logging.getLogger(__name__)


def check_mask_shapes(model: SoftPromptModel, masks: dict[str, torch.Tensor], source: str = "masks") -> None:
    """Refuse masks that do not fit the model, before any evaluation."""
    ffn = find_ffn(model)
    expected = (ffn.num_layers, ffn.d_ffn)
    for name, mask in masks.items():
        if tuple(mask.shape) != expected:
            raise ToolkitError(f"{source}: mask {name!r} has shape {list(mask.shape)}, but the model's FFN is "
                               f"{list(expected)} (layers x d_ffn); generate masks from this model's rank table")


def evaluate_masks(model: SoftPromptModel, task: EncodedTask, masks: dict[str, torch.Tensor], batch_size: int,
                   device: torch.device, done: dict[str, float] | None = None,
                   on_result: Callable[[str, float], None] | None = None, progress: bool = True) -> dict[str, float]:
    """Accuracy under each mask, skipping names already in ``done``; ``on_result`` after each."""
    results = dict(done or {})
    todo = [name for name in masks if name not in results]
    for name in tqdm(todo, desc="masks", disable=not progress):
        with scale_neurons(model, masks[name].to(device)):
            results[name] = accuracy(model, task, batch_size, device)
        if on_result is not None:
            on_result(name, results[name])
    return results
