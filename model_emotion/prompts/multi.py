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

More jobs than one step should stack (``waves``: a token budget and, on CUDA, the free memory) are
trained in successive waves, each through all its epochs. Jobs are independent, so the results
are the same, and memory stays that of one wave: the whole grid in one process (324 prompts)
would otherwise keep every job's batch for one backward.

The backbone must be in eval mode while training (the toolkit protocol): with dropout active (the
paper protocol) a row's noise would depend on the other jobs' rows.
"""

from __future__ import annotations

import copy
import logging

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from model_emotion.errors import ConfigError, ToolkitError
from model_emotion.lm.batching import MAX_PADDING, EncodedTask, _sorted_groups, batch_order, pad_rows
from model_emotion.lm.inference import autocast, bar_disabled, mean_accuracy
from model_emotion.lm.memory import activation_bytes, free_bytes
from model_emotion.lm.neurons import find_ffn
from model_emotion.prompts.training import TrainResult, make_optimizer
from model_emotion.util.progress import Progress

logger = logging.getLogger(__name__)


# Padding tolerated inside one forward of stacked rows: on a CPU every padded token costs its full
# compute, so rows are cut into groups of similar length (batching.MAX_PADDING); on a GPU a few large
# forwards beat many small ones (kernel launches and Python dispatch, not FLOPs, bound small batches),
# so far more padding pays (benchmarks/gpu_plan.py measures the choice).
GPU_MAX_PADDING = 0.5


# Tokens one step stacks across jobs (each job's batch at its rows' mean length); more jobs go to the
# next wave. 2^16 is just above the largest step measured, 27 prompts x 16 rows of roberta-base with
# P = 100 (about 54k tokens) on an H200: 4.3x over one prompt at a time (benchmarks/multi_prompt_speed.py).
WAVE_TOKENS = 2**16
# ... and, on CUDA, while the activations a step keeps for its backward (every block's) take at most
# this share of the free device memory by ``memory.activation_bytes``. That estimate is float32 and
# doubled; under bf16 autocast a BERT block keeps about a quarter of it (roberta-base: ~29 of 110 KB
# per token), so the real use stays near a fifth of the free memory.
WAVE_MEMORY_SHARE = 0.75


def waves(models: list[nn.Module], tasks: list[EncodedTask], batch_size: int, device: torch.device) -> list[list[int]]:
    """The jobs' indices, in order, cut into waves to train (or evaluate) together; at least one job each.

    A job's step is ``batch_size`` of its rows at their mean length. A wave holds jobs while their
    steps stay within ``WAVE_TOKENS`` tokens and, on CUDA, their activations in every block within
    ``WAVE_MEMORY_SHARE`` of the free memory.
    """
    free = free_bytes(device)
    out, wave, tokens, memory = [], [], 0.0, 0.0
    for j, (model, task) in enumerate(zip(models, tasks)):
        lengths = [len(ids) + model.extra_tokens for ids in task.input_ids] or [model.extra_tokens]
        mean = sum(lengths) / len(lengths)
        step = min(batch_size, len(task) or 1) * mean  # tokens of one batch of this job
        need = step * find_ffn(model).num_layers * activation_bytes(model, round(mean)) if free is not None else 0.0
        if wave and (tokens + step > WAVE_TOKENS or (free is not None and memory + need > WAVE_MEMORY_SHARE * free)):
            out.append(wave)
            wave, tokens, memory = [], 0.0, 0.0
        wave.append(j)
        tokens += step
        memory += need
    if wave:
        out.append(wave)
    return out


def max_padding_for(device: torch.device) -> float:
    return GPU_MAX_PADDING if device.type == "cuda" else MAX_PADDING


def _pad_width(tensor: torch.Tensor, width: int) -> torch.Tensor:
    """[rows, L(, hidden)] right-padded with zeros (masked positions) to ``width`` along dim 1."""
    extra = width - tensor.shape[1]
    if extra <= 0:
        return tensor
    pad = (0, 0, 0, extra) if tensor.dim() == 3 else (0, extra)
    return nn.functional.pad(tensor, pad)


def stacked_logits(
    models: list[nn.Module],
    batches: list[tuple[torch.Tensor, torch.Tensor]],
    max_rows: int = 512,
    max_padding: float = MAX_PADDING,
) -> list[torch.Tensor]:
    """Each model's logits on its own batch, from as few backbone forwards as padding allows. [[rows_j, 2]]

    The rows of all jobs are sorted by length and cut into groups of at most ``max_rows`` rows whose
    padding stays under ``max_padding`` of their tokens (``max_padding_for`` the device); each group
    is one forward. Rows are right-padded, so a row's real tokens come first at any width.
    """
    parts = [model._inputs(ids, mask, len(ids)) for model, (ids, mask) in zip(models, batches)]
    sizes = [part["attention_mask"].shape[0] for part in parts]
    width = max(part["attention_mask"].shape[1] for part in parts)
    flat = {
        key: torch.cat([_pad_width(part[key], width) for part in parts]) if torch.is_tensor(value) else value
        for key, value in parts[0].items()
    }  # every job's rows, one tensor per input
    lengths = flat["attention_mask"].sum(dim=1).tolist()
    outputs, order = [], []
    for group in _sorted_groups(lengths, max_rows, 0, max_padding):
        index = torch.tensor(group, device=flat["attention_mask"].device)
        group_width = int(max(lengths[r] for r in group))
        inputs = {
            key: value.index_select(0, index)[:, :group_width] if torch.is_tensor(value) else value
            for key, value in flat.items()
        }
        outputs.append(models[0].hidden_from_inputs(inputs))  # [group, hidden]
        order.extend(group)
    inverse = torch.empty(len(order), dtype=torch.long)
    inverse[torch.tensor(order)] = torch.arange(len(order))
    hidden = torch.cat(outputs).index_select(0, inverse.to(outputs[0].device))  # back to the jobs' row order
    return [model.classify(h) for model, h in zip(models, hidden.split(sizes))]


@torch.inference_mode()
def stacked_predictions(
    models: list[nn.Module], tasks: list[EncodedTask], batch_size: int, device: torch.device
) -> list[np.ndarray]:
    """Each model's predicted labels on its own task, the rows of all jobs batched together. [[n_j]]

    Round t takes the t-th batch of every job of a wave (``batch_order``: sorted by length, as
    ``inference.predict`` batches one job; ``waves``), so memory stays that of one wave's batches.
    """
    for model in models:
        model.eval()
    orders = [batch_order(task, batch_size, extra_tokens=model.extra_tokens) for model, task in zip(models, tasks)]
    preds = [np.empty(len(task), dtype=np.int64) for task in tasks]
    for wave in waves(models, tasks, batch_size, device):
        for step in range(max(len(orders[j]) for j in wave)):
            active = [j for j in wave if step < len(orders[j])]
            padded = [pad_rows(tasks[j], orders[j][step]) for j in active]
            with autocast(device):
                logits = stacked_logits(
                    [models[j] for j in active],
                    [(ids.to(device), mask.to(device)) for ids, mask, _ in padded],
                    max_rows=max(batch_size, 512),
                    max_padding=max_padding_for(device),
                )
            for j, out in zip(active, logits):
                preds[j][orders[j][step]] = out.argmax(dim=-1).cpu().numpy()
    return preds


def stacked_accuracies(
    models: list[nn.Module], tasks: list[EncodedTask], batch_size: int, device: torch.device
) -> list[float]:
    """``inference.accuracy`` of every job on its own task, from ``stacked_predictions``."""
    return [
        mean_accuracy(pred == task.labels)
        for pred, task in zip(stacked_predictions(models, tasks, batch_size, device), tasks)
    ]


def train_prompts(
    models: list[nn.Module],
    trains: list[EncodedTask],
    devs: list[EncodedTask],
    *,
    epochs: int,
    lr: float,
    batch_size: int,
    eval_batch_size: int,
    device: torch.device,
    seeds: list[int],
    weight_decay: float = 1e-5,
    optimizer: str = "adamw",
    progress: bool = True,
) -> list[TrainResult]:
    """``training.train_prompt`` for every job at once; returns one ``TrainResult`` per job, in order."""
    if not models:
        return []
    backbone = models[0].backbone
    if any(m.backbone is not backbone for m in models):
        raise ConfigError("multi-prompt training needs every prompt on the same loaded backbone")
    if any(getattr(m, "paper", False) for m in models):
        raise ConfigError(
            "multi-prompt training keeps the backbone in eval mode; the paper protocol trains with "
            "dropout, which would make a row depend on the other jobs' rows: train those one by one"
        )
    groups = waves(models, trains, batch_size, device)
    if len(groups) > 1:
        logger.info("%d prompts trained in %d waves of at most %d", len(models), len(groups), max(map(len, groups)))
    results: list[TrainResult | None] = [None] * len(models)
    tracker = Progress(f"epochs of {len(models)} prompts", epochs * len(groups))  # one line per epoch in a log
    for wave in groups:
        trained = _train_together(
            [models[j] for j in wave],
            [trains[j] for j in wave],
            [devs[j] for j in wave],
            epochs=epochs,
            lr=lr,
            batch_size=batch_size,
            eval_batch_size=eval_batch_size,
            device=device,
            seeds=[seeds[j] for j in wave],
            weight_decay=weight_decay,
            optimizer=optimizer,
            progress=progress,
            first_job=wave[0],
            tracker=tracker,
        )
        for j, result in zip(wave, trained):
            results[j] = result
    return results


def _train_together(
    models: list[nn.Module],
    trains: list[EncodedTask],
    devs: list[EncodedTask],
    *,
    epochs: int,
    lr: float,
    batch_size: int,
    eval_batch_size: int,
    device: torch.device,
    seeds: list[int],
    weight_decay: float,
    optimizer: str,
    progress: bool,
    first_job: int = 0,
    tracker: Progress | None = None,
) -> list[TrainResult]:
    """One wave (the jobs ``first_job``, ``first_job + 1``, ...): every job's step in one stacked forward and
    backward."""
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
        for step in tqdm(
            range(steps),
            desc=f"epoch {epoch + 1}/{epochs} ({len(models)} prompts)",
            leave=False,
            disable=bar_disabled(progress),
        ):
            active = [j for j in jobs if step < len(orders[j])]
            padded = [pad_rows(trains[j], orders[j][step]) for j in active]
            with autocast(device):
                logits = stacked_logits(
                    [models[j] for j in active],
                    [(ids.to(device), mask.to(device)) for ids, mask, _ in padded],
                    max_padding=max_padding_for(device),
                )
            total = 0.0
            for j, out, (_, _, labels) in zip(active, logits, padded):
                loss = nn.functional.cross_entropy(out.float(), labels.to(device))  # job j's mean loss
                if not torch.isfinite(loss):
                    raise ToolkitError(
                        f"the training loss of job {first_job + j + 1} became {loss.item()} in epoch "
                        f"{epoch + 1}; no checkpoint is written (lower the learning rate)"
                    )
                total = total + loss
                losses[j] += loss.item() * len(labels)
                seen[j] += len(labels)
            for j in active:
                optimizers[j].zero_grad(set_to_none=True)
            total.backward()
            for j in active:
                optimizers[j].step()
        dev_accs = stacked_accuracies(models, devs, eval_batch_size, device)
        for j in jobs:
            dev_acc = dev_accs[j]
            histories[j].append({"epoch": epoch, "train_loss": losses[j] / max(seen[j], 1), "dev_acc": dev_acc})
            if dev_acc > best[j][0]:
                best[j] = (dev_acc, epoch, copy.deepcopy(models[j].trainable_state()))
        logger.info(
            "epoch %d/%d: dev acc %s", epoch + 1, epochs, " ".join(f"{h[-1]['dev_acc']:.3f}" for h in histories)
        )
        if tracker is not None:
            tracker.step()
    return [
        TrainResult(
            best[j][2], best[j][0], best[j][1], models[j].trainable_state(), histories[j][-1]["dev_acc"], histories[j]
        )
        for j in jobs
    ]
