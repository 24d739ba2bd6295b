"""The training loop of a soft prompt (predictions and accuracy: ``inference``)."""

from __future__ import annotations

import copy
import logging
import random
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from model_emotion.errors import ConfigError, ToolkitError
from model_emotion.lm.batching import EncodedTask, batches, num_batches
from model_emotion.lm.inference import accuracy, autocast, bar_disabled
from model_emotion.prompts.base import PromptModel

logger = logging.getLogger(__name__)


def set_seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


class LegacyAdamW(torch.optim.Optimizer):
    """The AdamW of transformers < 4.x that the original code used with ``correct_bias=False``:
    no bias correction of the moments, eps 1e-6 added to the root, and the decoupled weight decay
    ``p -= lr * wd * p`` applied after the Adam step."""

    def __init__(self, params, lr: float, weight_decay: float, betas=(0.9, 0.999), eps: float = 1e-6):
        super().__init__(params, {"lr": lr, "weight_decay": weight_decay, "betas": betas, "eps": eps})

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["exp_avg"] = torch.zeros_like(p)
                    state["exp_avg_sq"] = torch.zeros_like(p)
                exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
                exp_avg.mul_(beta1).add_(p.grad, alpha=1.0 - beta1)
                exp_avg_sq.mul_(beta2).addcmul_(p.grad, p.grad, value=1.0 - beta2)
                p.addcdiv_(exp_avg, exp_avg_sq.sqrt().add_(group["eps"]), value=-group["lr"])
                if group["weight_decay"] > 0:
                    p.add_(p, alpha=-group["lr"] * group["weight_decay"])


OPTIMIZERS = ("adamw", "adamw_legacy")


def make_optimizer(model: nn.Module, name: str, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    """The optimizer of a prompt model's trainable parameters (the prompt and, if any, the head)."""
    if name not in OPTIMIZERS:
        raise ConfigError(f"optimizer {name!r} unknown; choose one of {', '.join(OPTIMIZERS)}")
    params = [p for p in model.parameters() if p.requires_grad]
    return (
        torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
        if name == "adamw"
        else LegacyAdamW(params, lr=lr, weight_decay=weight_decay)
    )


@dataclass
class TrainResult:
    best_state: dict
    best_acc: float
    best_epoch: int
    final_state: dict
    final_acc: float
    history: list[dict] = field(default_factory=list)


def train_prompt(
    model: PromptModel,
    train: EncodedTask,
    dev: EncodedTask,
    *,
    epochs: int,
    lr: float,
    batch_size: int,
    eval_batch_size: int,
    device: torch.device,
    seed: int,
    weight_decay: float = 1e-5,
    pad_to: int | None = None,
    progress: bool = True,
    optimizer: str = "adamw",
) -> TrainResult:
    """AdamW on the prompt (and head); evaluate on dev after every epoch; keep the best state.

    ``optimizer="adamw_legacy"`` is the original code's AdamW without bias correction.
    """
    optimizer = make_optimizer(model, optimizer, lr, weight_decay)
    best_acc, best_epoch, best_state = -1.0, -1, None
    history = []
    for epoch in range(epochs):
        model.train()
        total_loss, seen = 0.0, 0
        bar = tqdm(
            batches(train, batch_size, shuffle=True, seed=seed * 1000 + epoch, pad_to=pad_to),
            total=num_batches(train, batch_size, shuffle=True),
            desc=f"epoch {epoch + 1}/{epochs}",
            leave=False,
            disable=bar_disabled(progress),
        )
        for ids, mask, labels in bar:
            ids, mask, labels = ids.to(device), mask.to(device), labels.to(device)
            with autocast(device, model):
                logits = model(ids, mask)  # [batch, 2]
            loss = torch.nn.functional.cross_entropy(logits.float(), labels)
            if not torch.isfinite(loss):
                raise ToolkitError(
                    f"the training loss became {loss.item()} in epoch {epoch + 1}; no checkpoint is "
                    f"written (lower the learning rate)"
                )
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
