"""Tokenize once, then yield dynamically padded batches (padded to the longest row, not max_length)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class EncodedTask:
    """Token ids of a task's texts (special tokens included, truncated) and their 0/1 labels."""

    input_ids: list[list[int]]
    labels: np.ndarray  # [n] int64
    pad_id: int

    def __len__(self) -> int:
        return len(self.input_ids)


def encode(tokenizer, texts: list[str], labels: np.ndarray, max_length: int) -> EncodedTask:
    ids = tokenizer(list(texts), truncation=True, max_length=max_length)["input_ids"]
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    return EncodedTask(ids, np.asarray(labels, dtype=np.int64), pad_id)


# Without shuffling, a batch also ends early once padding would exceed this share of its tokens.
MAX_PADDING = 0.05


def _sorted_groups(lengths: list[int], batch_size: int, extra_tokens: int, max_padding: float) -> list[list[int]]:
    """Rows sorted by length, cut into batches of at most ``batch_size`` with little padding."""
    groups, rows, total = [], [], 0
    for i in np.argsort(lengths, kind="stable"):
        size = lengths[i] + extra_tokens  # the longest so far: rows are sorted
        if rows and (
            len(rows) == batch_size or (len(rows) + 1) * size - (total + size) > max_padding * (len(rows) + 1) * size
        ):
            groups.append(rows)
            rows, total = [], 0
        rows.append(int(i))
        total += size
    if rows:
        groups.append(rows)
    return groups


def batches(
    task: EncodedTask,
    batch_size: int,
    shuffle: bool = False,
    seed: int = 0,
    pad_to: int | None = None,
    extra_tokens: int = 0,
    max_padding: float | None = None,
) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Yield ``(input_ids [B, T], attention_mask [B, T], labels [B])``.

    Without shuffling, rows are sorted by length and a batch ends at ``batch_size`` rows or earlier
    when padding would exceed ``max_padding`` of its tokens, counting the ``extra_tokens`` that the
    model adds to every row (the slot and the soft prompt). Accuracy does not depend on the order;
    ``batch_order`` gives the rows of each batch and ``pad_rows`` pads one. ``pad_to`` pads every
    batch to a fixed length instead (what the original code did; kept for the speed benchmarks).
    """
    for rows in batch_order(task, batch_size, shuffle, seed, pad_to, extra_tokens, max_padding):
        yield pad_rows(task, rows, pad_to)


def pad_rows(
    task: EncodedTask, rows: list[int], pad_to: int | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(input_ids [B, T], attention_mask [B, T], labels [B])`` of ``rows``, padded to the longest (or ``pad_to``)."""
    seqs = [task.input_ids[i] for i in rows]
    width = pad_to if pad_to is not None else max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), task.pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for row, seq in enumerate(seqs):
        seq = seq[:width]
        ids[row, : len(seq)] = torch.tensor(seq, dtype=torch.long)
        mask[row, : len(seq)] = 1
    return ids, mask, torch.from_numpy(task.labels[rows])


def batch_order(
    task: EncodedTask,
    batch_size: int,
    shuffle: bool = False,
    seed: int = 0,
    pad_to: int | None = None,
    extra_tokens: int = 0,
    max_padding: float | None = None,
) -> list[list[int]]:
    """The row indices of each batch that ``batches`` yields, in order."""
    if batch_size < 1:
        raise ValueError(f"batch size {batch_size} must be at least 1")
    n = len(task)
    if shuffle:
        order = np.random.default_rng(seed).permutation(n)
        return [order[i : i + batch_size].tolist() for i in range(0, n, batch_size)]
    lengths = [len(x) for x in task.input_ids]
    if pad_to is not None:
        order = np.argsort(lengths, kind="stable")
        return [order[i : i + batch_size].tolist() for i in range(0, n, batch_size)]
    return _sorted_groups(lengths, batch_size, extra_tokens, MAX_PADDING if max_padding is None else max_padding)


def num_batches(task: EncodedTask, batch_size: int, **kwargs) -> int:
    return len(batch_order(task, batch_size, **kwargs))
