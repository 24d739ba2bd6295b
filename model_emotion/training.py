"""Training and evaluation loops of a soft prompt."""

from __future__ import annotations

import copy
import logging
import random
from contextlib import nullcontext
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm import tqdm

from .batching import EncodedTask, batch_order, batches, num_batches, pad_rows
from .prompt_model import SoftPromptModel

logger = logging.getLogger(__name__)


def set_seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def autocast(device: torch.device):
    """bf16 mixed precision on CUDA; full precision elsewhere (CPU results stay exact)."""
    if device.type == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return nullcontext()


@torch.inference_mode()
def predict_logits(model: SoftPromptModel, task: EncodedTask, batch_size: int, device: torch.device,
                   pad_to: int | None = None, progress: bool = False, desc: str = "eval") -> torch.Tensor:
    """The two logits of every row of ``task``, in the task's row order. [n, 2] float32 on the CPU"""
    model.eval()
    out = torch.empty(len(task), 2)
    with autocast(device):
        for rows in tqdm(batch_order(task, batch_size, pad_to=pad_to, extra_tokens=model.extra_tokens), desc=desc,
                         leave=False, disable=not progress):
            ids, mask, _ = pad_rows(task, rows, pad_to)
            out[rows] = model(ids.to(device), mask.to(device)).float().cpu()  # [batch, 2]
    return out


def predict(model: SoftPromptModel, task: EncodedTask, batch_size: int, device: torch.device,
            **kwargs) -> np.ndarray:
    """Predicted class of every row of ``task``, in the task's row order. [n]"""
    return predict_logits(model, task, batch_size, device, **kwargs).argmax(-1).numpy()


def accuracy(model: SoftPromptModel, task: EncodedTask, batch_size: int, device: torch.device, **kwargs) -> float:
    preds = predict(model, task, batch_size, device, **kwargs)
    return float((preds == task.labels).mean())


@dataclass
class TrainResult:
    best_state: dict
    best_acc: float
    best_epoch: int
    final_state: dict
    final_acc: float
    history: list[dict] = field(default_factory=list)


def train_prompt(model: SoftPromptModel, train: EncodedTask, dev: EncodedTask, *, epochs: int, lr: float,
                 batch_size: int, eval_batch_size: int, device: torch.device, seed: int,
                 weight_decay: float = 1e-5, pad_to: int | None = None, progress: bool = True) -> TrainResult:
    """AdamW on the prompt (and head); evaluate on dev after every epoch; keep the best state."""
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    best_acc, best_epoch, best_state = -1.0, -1, None
    history = []
    for epoch in range(epochs):
        model.train()
        total_loss, seen = 0.0, 0
        bar = tqdm(batches(train, batch_size, shuffle=True, seed=seed * 1000 + epoch, pad_to=pad_to),
                   total=num_batches(train, batch_size, shuffle=True), desc=f"epoch {epoch + 1}/{epochs}",
                   leave=False, disable=not progress)
        for ids, mask, labels in bar:
            ids, mask, labels = ids.to(device), mask.to(device), labels.to(device)
            with autocast(device):
                logits = model(ids, mask)  # [batch, 2]
            loss = torch.nn.functional.cross_entropy(logits.float(), labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total_loss += loss.item() * len(labels)
            seen += len(labels)
            bar.set_postfix(loss=f"{total_loss / seen:.4f}")
        dev_acc = accuracy(model, dev, eval_batch_size, device, pad_to=pad_to)
        history.append({"epoch": epoch, "train_loss": total_loss / max(seen, 1), "dev_acc": dev_acc})
        logger.info("epoch %d/%d  train loss %.4f  dev acc %.4f", epoch + 1, epochs, total_loss / max(seen, 1), dev_acc)
        if dev_acc > best_acc:
            best_acc, best_epoch, best_state = dev_acc, epoch, copy.deepcopy(model.trainable_state())
    return TrainResult(best_state, best_acc, best_epoch, model.trainable_state(), history[-1]["dev_acc"], history)
