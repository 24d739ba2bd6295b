"""Many prompts trained in one batched model: one backbone forward per step for every job.

The backbone is frozen and the same for every (emotion, seed) job, so the rows of all jobs can go
through it together. Each job keeps everything of its own: its training rows and their shuffled
order (the same batches as ``training.train_prompt``), its prompt and head, its optimizer, its dev
evaluation after every epoch and its best state. At step t the t-th batch of every job that still
has one is embedded by that job's prompt model, all rows are sorted by length and cut into groups
with little padding, the backbone runs once per group, and each job's rows are classified by its
own head. The loss
is the sum of the jobs' mean losses; the jobs' parameters are disjoint, so job j's gradient is the
gradient of its own mean loss, and the result equals training the jobs one after another up to
float rounding (``tests/test_multi_prompt.py``).

The backbone must be in eval mode while training (the toolkit protocol): with dropout active (the
paper protocol) a row's noise would depend on the other jobs' rows.
"""

from __future__ import annotations

import copy
import logging

import torch
from torch import nn
from tqdm import tqdm

from .batching import MAX_PADDING, EncodedTask, _sorted_groups, batch_order, pad_rows
from .errors import ConfigError, ToolkitError
from .inference import accuracy, autocast
from .training import TrainResult, make_optimizer

logger = logging.getLogger(__name__)


def _fit(row: torch.Tensor, width: int) -> torch.Tensor:
    """One row ([L] or [L, hidden]) cut or right-padded with zeros (masked positions) to ``width``."""
    if row.shape[0] >= width:
        return row[:width]
    pad = (0, 0, 0, width - row.shape[0]) if row.dim() == 2 else (0, width - row.shape[0])
    return nn.functional.pad(row, pad)


def stacked_logits(models: list[nn.Module], batches: list[tuple[torch.Tensor, torch.Tensor]],
                   max_rows: int = 512) -> list[torch.Tensor]:
    """Each model's logits on its own batch, from as few backbone forwards as padding allows. [[rows_j, 2]]

    The rows of all jobs are sorted by length and cut into groups with little padding
    (``batching.MAX_PADDING``, at most ``max_rows`` rows); each group is one forward. Padding
    every job's rows to the longest row of all would cost more than it saves on a CPU.
    """
    parts = [model._inputs(ids, mask, len(ids)) for model, (ids, mask) in zip(models, batches)]
    rows = [(j, i) for j, part in enumerate(parts) for i in range(part["attention_mask"].shape[0])]
    lengths = [int(parts[j]["attention_mask"][i].sum()) for j, i in rows]
    hidden: list[list[torch.Tensor | None]] = [[None] * len(ids) for ids, _ in batches]
    for group in _sorted_groups(lengths, max_rows, 0, MAX_PADDING):
        width = max(lengths[r] for r in group)  # rows are right-padded: their real tokens come first
        inputs = {key: torch.stack([_fit(parts[rows[r][0]][key][rows[r][1]], width) for r in group])
                  if torch.is_tensor(value) else value for key, value in parts[0].items()}
        out = models[0].hidden_from_inputs(inputs)  # [group, hidden]
        for k, r in enumerate(group):
            hidden[rows[r][0]][rows[r][1]] = out[k]
    return [model.classify(torch.stack(h)) for model, h in zip(models, hidden)]


def train_prompts(models: list[nn.Module], trains: list[EncodedTask], devs: list[EncodedTask], *, epochs: int,
                  lr: float, batch_size: int, eval_batch_size: int, device: torch.device, seeds: list[int],
                  weight_decay: float = 1e-5, optimizer: str = "adamw", progress: bool = True) -> list[TrainResult]:
    """``training.train_prompt`` for every job at once; returns one ``TrainResult`` per job, in order."""
    if not models:
        return []
    backbone = models[0].backbone
    if any(m.backbone is not backbone for m in models):
        raise ConfigError("multi-prompt training needs every prompt on the same loaded backbone")
    if any(getattr(m, "paper", False) for m in models):
        raise ConfigError("multi-prompt training keeps the backbone in eval mode; the paper protocol trains with "
                          "dropout, which would make a row depend on the other jobs' rows: train those one by one")
    optimizers = [make_optimizer(m, optimizer, lr, weight_decay) for m in models]
    jobs = range(len(models))
    best = [(-1.0, -1, None) for _ in jobs]  # (accuracy, epoch, state)
    histories: list[list[dict]] = [[] for _ in jobs]
    for epoch in range(epochs):
        for model in models:
            model.train()
        orders = [batch_order(trains[j], batch_size, shuffle=True, seed=seeds[j] * 1000 + epoch) for j in jobs]
        losses, seen = [0.0 for _ in jobs], [0 for _ in jobs]
        steps = max(len(order) for order in orders)
        for step in tqdm(range(steps), desc=f"epoch {epoch + 1}/{epochs} ({len(models)} prompts)", leave=False,
                         disable=not progress):
            active = [j for j in jobs if step < len(orders[j])]
            padded = [pad_rows(trains[j], orders[j][step]) for j in active]
            with autocast(device):
                logits = stacked_logits([models[j] for j in active],
                                        [(ids.to(device), mask.to(device)) for ids, mask, _ in padded])
            total = 0.0
            for j, out, (_, _, labels) in zip(active, logits, padded):
                loss = nn.functional.cross_entropy(out.float(), labels.to(device))  # job j's mean loss
                if not torch.isfinite(loss):
                    raise ToolkitError(f"the training loss of job {j + 1} became {loss.item()} in epoch {epoch + 1}; "
                                       f"no checkpoint is written (lower the learning rate)")
                total = total + loss
                losses[j] += loss.item() * len(labels)
                seen[j] += len(labels)
            for j in active:
                optimizers[j].zero_grad(set_to_none=True)
            total.backward()
            for j in active:
                optimizers[j].step()
        for j in jobs:
            dev_acc = accuracy(models[j], devs[j], eval_batch_size, device)
            histories[j].append({"epoch": epoch, "train_loss": losses[j] / max(seen[j], 1), "dev_acc": dev_acc})
            if dev_acc > best[j][0]:
                best[j] = (dev_acc, epoch, copy.deepcopy(models[j].trainable_state()))
        logger.info("epoch %d/%d: dev acc %s", epoch + 1, epochs,
                    " ".join(f"{h[-1]['dev_acc']:.3f}" for h in histories))
    return [TrainResult(best[j][2], best[j][0], best[j][1], models[j].trainable_state(), histories[j][-1]["dev_acc"],
                        histories[j]) for j in jobs]
