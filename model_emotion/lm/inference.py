"""Inference with a prompt model: logits, predictions and accuracy over an encoded task (no training)."""

from __future__ import annotations

from contextlib import nullcontext

import numpy as np
import torch
from tqdm import tqdm

from model_emotion.lm.batching import EncodedTask, batch_order, pad_rows


def bar_disabled(progress: bool) -> bool | None:
    """tqdm's ``disable``: off when not asked for; when asked for, shown on a terminal only (None lets
    tqdm hide it when the output is a file or a pipe, so logs hold no carriage-return progress)."""
    return None if progress else True


def autocast(device: torch.device, model=None):
    """bf16 mixed precision on CUDA; full precision elsewhere (CPU results stay exact) and for a model
    under the paper protocol, which the original code ran in float32."""
    if device.type == "cuda" and not getattr(model, "paper", False):
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return nullcontext()


@torch.inference_mode()
def predict_logits(
    model,
    task: EncodedTask,
    batch_size: int,
    device: torch.device,
    pad_to: int | None = None,
    progress: bool = False,
    desc: str = "eval",
) -> torch.Tensor:
    """The two logits of every row of ``task``, in the task's row order. [n, 2] float32 on the CPU"""
    model.eval()
    out = torch.empty(len(task), 2)
    with autocast(device, model):
        for rows in tqdm(
            batch_order(task, batch_size, pad_to=pad_to, extra_tokens=model.extra_tokens),
            desc=desc,
            leave=False,
            disable=bar_disabled(progress),
        ):
            ids, mask, _ = pad_rows(task, rows, pad_to)
            out[rows] = model(ids.to(device), mask.to(device)).float().cpu()  # [batch, 2]
    return out


def predict(model, task: EncodedTask, batch_size: int, device: torch.device, **kwargs) -> np.ndarray:
    """Predicted class of every row of ``task``, in the task's row order. [n]"""
    return predict_logits(model, task, batch_size, device, **kwargs).argmax(-1).numpy()


ACCURACY_MEANS = ("overall", "per_batch")


def mean_accuracy(correct, per_batch: int | None = None) -> float:
    """Share of correct rows; ``per_batch=B``: the original evaluation's mean of per-batch means over
    consecutive batches of B rows in task order (its last, smaller batch weighs as much as a full one)."""
    correct = np.asarray(correct, dtype=np.float64)
    if per_batch is None:
        return float(correct.mean())
    return float(
        np.mean([chunk.mean() for chunk in np.array_split(correct, range(per_batch, len(correct), per_batch))])
    )


def accuracy(
    model, task: EncodedTask, batch_size: int, device: torch.device, per_batch: int | None = None, **kwargs
) -> float:
    preds = predict(model, task, batch_size, device, **kwargs)
    return mean_accuracy(preds == task.labels, per_batch)
