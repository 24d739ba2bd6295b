"""Tokenize once, then yield dynamically padded batches (padded to the longest row, not max_length)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

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


def batches(task: EncodedTask, batch_size: int, shuffle: bool = False, seed: int = 0,
            pad_to: int | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Yield ``(input_ids [B, T], attention_mask [B, T], labels [B])``.

    Without shuffling, rows are grouped by length so that padding is minimal (accuracy does not
    depend on the order). ``pad_to`` pads every batch to a fixed length instead (what the original
    code did; kept for the speed benchmark).
    """
    n = len(task)
    if shuffle:
        order = np.random.default_rng(seed).permutation(n)
    else:
        order = np.argsort([len(x) for x in task.input_ids], kind="stable")
    for start in range(0, n, batch_size):
        rows = order[start:start + batch_size]
        seqs = [task.input_ids[i] for i in rows]
        width = pad_to if pad_to is not None else max(len(s) for s in seqs)
        ids = torch.full((len(seqs), width), task.pad_id, dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        for row, seq in enumerate(seqs):
            seq = seq[:width]
            ids[row, :len(seq)] = torch.tensor(seq, dtype=torch.long)
            mask[row, :len(seq)] = 1
        yield ids, mask, torch.from_numpy(task.labels[rows])


def num_batches(task: EncodedTask, batch_size: int) -> int:
    return (len(task) + batch_size - 1) // batch_size
