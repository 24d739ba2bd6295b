"""Accuracy of one prompt under many neuron masks, with the model and data loaded once.

A mask only changes FFN neurons, so the work it cannot change is done once and shared. For
BERT-style encoders (``prompt_model.BERT_BLOCK_TYPES``), with R = the first layer that any mask of
a group changes (layer 0 for RSA top-k masks):

* Each batch runs once, unmasked, up to block R's FFN activations. They are kept with the
  block's attention output and its unmasked FFN output projection.
* Block R under a mask is that kept projection minus the changed neurons' share. Only the
  changed neurons' columns are multiplied, so it costs k/d_ffn of a projection.
* In the blocks after R, a binary mask removes its silenced neurons from the FFN: the rows of the
  up projection and the columns of the output projection. Those neurons are not computed at all,
  and the result is the same as multiplying them by 0. Rows with fractional scales use the
  scaling hook of ``neurons.scale_neurons``.
* The last block runs past its self-attention for the classification slot only
  (``prompt_model.slot_only_last_block``).

Batches are grouped by length with little padding (``batching.batch_order``). The kept states of as
many batches as fit in ``CACHE_BYTES`` are evaluated under every mask of a group before the next
batches are run. A group's results are reported when the group is done. Other architectures take
the plain path: a full forward per mask with the scaling hook.
The logits are the same as the plain path's up to float rounding (``tests/test_masked_eval.py``).
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator

import torch
from torch import nn
from tqdm import tqdm

from .batching import EncodedTask, batch_order, pad_rows
from .errors import ToolkitError
from .neurons import find_ffn, scale_neurons
from .prompt_model import SoftPromptModel, bert_blocks, slot_only_last_block
from .training import autocast, mean_accuracy, predict_logits

logger = logging.getLogger(__name__)

# Masks per group: each group runs the unmasked prefix once per batch and reports when done.
DEFAULT_GROUP_SIZE = 32
# Kept unmasked states of one chunk of batches (FFN activations, attention output, projection).
CACHE_BYTES = 512 * 2 ** 20


def check_mask_shapes(model: SoftPromptModel, masks: dict[str, torch.Tensor], source: str = "masks") -> None:
    """Refuse masks that do not fit the model, before any evaluation."""
    ffn = find_ffn(model)
    expected = (ffn.num_layers, ffn.d_ffn)
    for name, mask in masks.items():
        if tuple(mask.shape) != expected:
            raise ToolkitError(f"{source}: mask {name!r} has shape {list(mask.shape)}, but the model's FFN is "
                               f"{list(expected)} (layers x d_ffn); generate masks from this model's rank table")


def first_changed_layer(mask: torch.Tensor) -> int | None:
    """The first layer where ``mask`` [layers, d_ffn] scales any neuron (None: it changes nothing)."""
    changed = (mask != 1).any(dim=1).nonzero()
    return int(changed[0]) if len(changed) else None


class _Stop(Exception):
    """Ends the unmasked pass once the resume block's inputs are kept."""


@dataclass
class _Kept:
    """Block R of one batch, unmasked: what every mask resumes from."""

    activations: torch.Tensor  # [batch, seq, d_ffn] FFN neurons
    attention_output: torch.Tensor  # [batch, seq, hidden] the FFN's residual input
    projection: torch.Tensor  # [batch, seq, hidden] the FFN output projection of all neurons
    block_args: tuple  # what the encoder passes to every block besides the hidden states
    block_kwargs: dict
    rows: list[int]  # the batch's rows in the task

    @property
    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in (self.activations, self.attention_output, self.projection))


def _keep(model: SoftPromptModel, blocks: nn.ModuleList, layer: int, ids: torch.Tensor, mask: torch.Tensor,
          rows: list[int]) -> _Kept:
    """Run the unmasked model on one batch until block ``layer``'s FFN activations are known."""
    store: dict = {}

    def on_block(_module, args, kwargs):
        store["args"], store["kwargs"] = args[1:], kwargs

    def on_intermediate(_module, args, output):
        store["attention_output"], store["activations"] = args[0], output
        raise _Stop

    handles = [blocks[layer].register_forward_pre_hook(on_block, with_kwargs=True),
               blocks[layer].intermediate.register_forward_hook(on_intermediate)]
    try:
        model(ids, mask)
    except _Stop:
        pass
    finally:
        for handle in handles:
            handle.remove()
    if "activations" not in store:
        raise RuntimeError(f"block {layer} was never reached; is {type(blocks[layer]).__name__} a BERT-style block?")
    projection = blocks[layer].output.dense(store["activations"])
    return _Kept(store["activations"], store["attention_output"], projection, store["args"], store["kwargs"], rows)


def _kept_chunks(model: SoftPromptModel, blocks: nn.ModuleList, layer: int, task: EncodedTask, batch_size: int,
                 device: torch.device) -> Iterator[list[_Kept]]:
    """The kept states of all batches, in chunks of at most ``CACHE_BYTES`` (at least one batch)."""
    chunk, size = [], 0
    for rows in batch_order(task, batch_size, extra_tokens=model.extra_tokens):
        ids, mask, _ = pad_rows(task, rows)
        kept = _keep(model, blocks, layer, ids.to(device), mask.to(device), rows)
        chunk.append(kept)
        size += kept.nbytes
        if size >= CACHE_BYTES:
            yield chunk
            chunk, size = [], 0
    if chunk:
        yield chunk


class _Linear(nn.Module):
    """A linear map over given weights: the FFN of a block without its silenced neurons."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None):
        super().__init__()
        self.weight, self.bias = weight, bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.linear(x, self.weight, self.bias)


@contextmanager
def _without_silenced(blocks: nn.ModuleList, mask: torch.Tensor, layers: list[int]) -> Iterator[None]:
    """Remove the neurons a binary row silences from those blocks' FFNs; restored in ``finally``."""
    replaced = []
    try:
        for layer in layers:
            block = blocks[layer]
            keep = mask[layer].nonzero()[:, 0]  # [kept]
            up, down = block.intermediate.dense, block.output.dense
            replaced.append((block, up, down))
            block.intermediate.dense = _Linear(up.weight[keep], None if up.bias is None else up.bias[keep])
            block.output.dense = _Linear(down.weight[:, keep], down.bias)
        yield
    finally:
        for block, up, down in replaced:
            block.intermediate.dense, block.output.dense = up, down


@dataclass
class _Change:
    """What a mask changes in block R: the changed neurons and their share of the projection."""

    neurons: torch.Tensor  # [k] indices of neurons scaled by s != 1
    weight: torch.Tensor  # [hidden, k] their columns of the output projection times (1 - s)


def _change_at(blocks: nn.ModuleList, layer: int, row: torch.Tensor) -> _Change:
    neurons = (row != 1).nonzero()[:, 0]
    weight = blocks[layer].output.dense.weight[:, neurons]  # [hidden, k]
    return _Change(neurons, weight * (1 - row[neurons].to(weight.dtype)))


def _resume_logits(model: SoftPromptModel, blocks: nn.ModuleList, layer: int, kept: _Kept,
                   change: _Change) -> torch.Tensor:
    """Logits from block ``layer``'s FFN output onwards, under the active mask. [batch, 2]"""
    output = blocks[layer].output
    projection = kept.projection
    if len(change.neurons):
        share = kept.activations[..., change.neurons] @ change.weight.T.to(kept.activations.dtype)
        projection = projection.float() - share.float()  # [batch, seq, hidden]; fp32 under bf16 autocast too
    hidden = output.LayerNorm(output.dropout(projection) + kept.attention_output)  # BERT's FFN output
    with slot_only_last_block(model.backbone):
        for block in blocks[layer + 1:]:
            out = block(hidden, *kept.block_args, **kept.block_kwargs)
            hidden = out[0] if isinstance(out, tuple) else out  # transformers 4 returns a tuple
    return model.classify(hidden[:, 0])


@contextmanager
def _masked_after(model: SoftPromptModel, blocks: nn.ModuleList, mask: torch.Tensor, layer: int) -> Iterator[None]:
    """Apply ``mask`` to the blocks after ``layer``: binary rows by removal, other rows by the hook."""
    later = [i for i in range(layer + 1, len(blocks)) if bool((mask[i] != 1).any())]
    binary = [i for i in later if bool(((mask[i] == 0) | (mask[i] == 1)).all())]
    scaled = [i for i in later if i not in binary]
    with scale_neurons(model, mask, layers=scaled), _without_silenced(blocks, mask, binary):
        yield


@torch.inference_mode()
def _group_logits(model: SoftPromptModel, blocks: nn.ModuleList, task: EncodedTask, masks: dict[str, torch.Tensor],
                  layer: int, batch_size: int, device: torch.device) -> dict[str, torch.Tensor]:
    """Logits of every row under every mask of a group, resuming from block ``layer``. {name: [n, 2]}"""
    logits = {name: torch.empty(len(task), 2) for name in masks}
    with autocast(device):
        for chunk in _kept_chunks(model, blocks, layer, task, batch_size, device):
            for name, mask in masks.items():
                change = _change_at(blocks, layer, mask[layer])
                with _masked_after(model, blocks, mask, layer):
                    for kept in chunk:
                        logits[name][kept.rows] = _resume_logits(model, blocks, layer, kept, change).float().cpu()
    return logits


def _masked_logits(model: SoftPromptModel, task: EncodedTask, masks: dict[str, torch.Tensor], batch_size: int,
                   device: torch.device, group_size: int, shared: bool) -> Iterator[dict[str, torch.Tensor]]:
    """Logits under the masks, one group at a time. Yields {name: [n, 2]} per group."""
    if group_size < 1:
        raise ToolkitError(f"mask group size {group_size} must be at least 1")
    model.eval()
    blocks = bert_blocks(model.backbone) if shared else None
    if blocks is None:  # the plain path: a full forward per mask
        for name, mask in masks.items():
            with scale_neurons(model, mask.to(device)):
                yield {name: predict_logits(model, task, batch_size, device)}
        return
    last = len(blocks) - 1
    first = {name: first_changed_layer(mask) for name, mask in masks.items()}
    # Masks that first change a late layer share more of the unmasked pass: group them together.
    names = sorted(masks, key=lambda name: last if first[name] is None else first[name])
    for start in range(0, len(names), group_size):
        group = names[start:start + group_size]
        layer = min(last if first[name] is None else first[name] for name in group)
        yield _group_logits(model, blocks, task, {name: masks[name].to(device) for name in group}, layer,
                            batch_size, device)


def masked_logits(model: SoftPromptModel, task: EncodedTask, masks: dict[str, torch.Tensor], batch_size: int,
                  device: torch.device, group_size: int = DEFAULT_GROUP_SIZE,
                  shared: bool = True) -> dict[str, torch.Tensor]:
    """The logits of every row of ``task`` under each mask, in row order. {name: [n, 2]}

    ``shared=False`` forces the plain path (a full forward per mask), e.g. to check the shared one.
    """
    out: dict[str, torch.Tensor] = {}
    for group in _masked_logits(model, task, masks, batch_size, device, group_size, shared):
        out.update(group)
    return {name: out[name] for name in masks}


def evaluate_masks(model: SoftPromptModel, task: EncodedTask, masks: dict[str, torch.Tensor], batch_size: int,
                   device: torch.device, done: dict[str, float] | None = None,
                   on_result: Callable[[str, float], None] | None = None, progress: bool = True,
                   group_size: int = DEFAULT_GROUP_SIZE, shared: bool = True,
                   per_batch: int | None = None) -> dict[str, float]:
    """Accuracy under each mask, skipping names already in ``done``; ``on_result`` after each.

    ``per_batch``: the original evaluation's mean of per-batch accuracies (``training.mean_accuracy``).
    """
    results = dict(done or {})
    todo = {name: mask for name, mask in masks.items() if name not in results}
    labels = torch.from_numpy(task.labels)
    with tqdm(total=len(todo), desc="masks", disable=not progress) as bar:
        for group in _masked_logits(model, task, todo, batch_size, device, group_size, shared):
            for name, logits in group.items():
                results[name] = mean_accuracy((logits.argmax(-1) == labels).numpy(), per_batch)
                if on_result is not None:
                    on_result(name, results[name])
            bar.update(len(group))
    return results
