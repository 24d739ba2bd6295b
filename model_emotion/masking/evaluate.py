"""Accuracy of one prompt under many neuron masks, with the model and data loaded once.

A mask only changes FFN neurons, so the work it cannot change is done once and shared. For
BERT-style encoders and pre-norm decoders with a plain residual FFN (``architectures``: the
``bert_block`` and ``residual_ffn`` entries), with R = the first layer that any mask of a group
changes (layer 0 for RSA top-k masks):

* Each batch runs once, unmasked, up to block R's FFN activations. They are kept with what the
  block adds them to: for an encoder the attention output and the unmasked FFN output projection
  (the block ends in a LayerNorm of their sum), for a decoder the block's unmasked output.
* Block R under a mask is that kept output minus the changed neurons' share. Only the
  changed neurons' columns are multiplied, so it costs k/d_ffn of a projection.
* In the blocks after R, a binary mask removes its silenced neurons from the FFN: the rows of the
  up projection and the columns of the output projection. Those neurons are not computed at all,
  and the result is the same as multiplying them by 0. Rows with fractional scales use the
  scaling hook of ``neurons.scale_neurons``.
* An encoder's last block runs past its self-attention for the classification slot only
  (``architectures.slot_only_last_block``); a decoder's final norm and head run at the read slot only.

Batches are grouped by length with little padding (``batching.batch_order``). The kept states of as
many batches as fit in ``CACHE_BYTES`` are evaluated under every mask of a group before the next
batches are run. A group's results are reported when the group is done. Other architectures take
the plain path: a full forward per mask with the scaling hook.
The logits are the same as the plain path's up to float rounding (``tests/test_masked_eval.py``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from model_emotion.errors import ConfigError, ToolkitError
from model_emotion.lm.architectures import (
    Architecture,
    architecture,
    get_module,
    linear_weight,
    set_module,
    slot_only_last_block,
)
from model_emotion.lm.architectures import blocks as model_blocks
from model_emotion.lm.batching import EncodedTask, batch_order, pad_rows
from model_emotion.lm.inference import autocast, bar_disabled, mean_accuracy, predict_logits
from model_emotion.lm.memory import activation_bytes, free_bytes
from model_emotion.lm.neurons import find_ffn, scale_neurons
from model_emotion.masking.ablation import Ablation
from model_emotion.prompts.base import PromptModel

logger = logging.getLogger(__name__)

# Masks per group: each group runs the unmasked prefix once per batch and reports when done.
DEFAULT_GROUP_SIZE = 32
# Kept unmasked states of one chunk of batches (FFN activations, attention output, projection).
CACHE_BYTES = 512 * 2**20
# masks_per_forward="auto" on CUDA: stack masks until a forward holds about this many tokens (rows x
# length). On an H200 with roberta-base's shape the rate stopped rising past about 66k tokens per
# forward (16 masks x 32 rows; benchmarks/mask_stack_speed.py); twice that leaves room for other GPUs.
STACK_TOKENS = 2**17
# ... and while a forward's activations take at most this share of the free device memory.
STACK_MEMORY_SHARE = 0.25


def check_mask_shapes(model: PromptModel, masks: dict[str, torch.Tensor], source: str = "masks") -> None:
    """Refuse masks that do not fit the model, before any evaluation."""
    ffn = find_ffn(model)
    expected = (ffn.num_layers, ffn.d_ffn)
    for name, mask in masks.items():
        if tuple(mask.shape) != expected:
            raise ToolkitError(
                f"{source}: mask {name!r} has shape {list(mask.shape)}, but the model's FFN is "
                f"{list(expected)} (layers x d_ffn); generate masks from this model's rank table"
            )


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
    # encoder: the FFN's residual input, the attention output; decoder: the block's unmasked output
    residual: torch.Tensor  # [batch, seq, hidden]
    projection: torch.Tensor | None  # encoder: [batch, seq, hidden] the FFN output projection of all neurons
    block_args: tuple  # what the model passes to every block besides the hidden states
    block_kwargs: dict
    rows: list[int]  # the batch's rows in the task
    attention_mask: torch.Tensor  # [batch, L] of the whole input (decoders read at each row's last 1)

    @property
    def nbytes(self) -> int:
        kept = [t for t in (self.activations, self.residual, self.projection) if t is not None]
        return sum(t.numel() * t.element_size() for t in kept)


def _ffn_output(block: nn.Module, arch: Architecture) -> nn.Module:
    """A BERT block's ``output`` module: LayerNorm(dropout(dense(neurons)) + attention output)."""
    return get_module(block, arch.down.rpartition(".")[0])


def _keep(
    model, blocks: nn.ModuleList, arch: Architecture, layer: int, ids: torch.Tensor, mask: torch.Tensor, rows: list[int]
) -> _Kept:
    """Run the unmasked model on one batch until block ``layer``'s FFN is known."""
    store: dict = {}
    block = blocks[layer]

    def on_block(_module, args, kwargs):
        store["args"], store["kwargs"] = args[1:], kwargs

    def on_down(_module, args):
        store["activations"] = args[0]

    def on_ffn_output(_module, args):  # encoder: output(neurons, attention_output)
        store["activations"], store["residual"] = args[0], args[1]
        raise _Stop

    def on_block_output(_module, _args, output):  # decoder: the whole block, unmasked
        store["residual"] = output[0] if isinstance(output, tuple) else output
        raise _Stop

    handles = [block.register_forward_pre_hook(on_block, with_kwargs=True)]
    if arch.bert_block:
        handles.append(_ffn_output(block, arch).register_forward_pre_hook(on_ffn_output))
    else:
        handles += [
            get_module(block, arch.down).register_forward_pre_hook(on_down),
            block.register_forward_hook(on_block_output),
        ]
    try:
        model(ids, mask)
    except _Stop:
        pass
    finally:
        for handle in handles:
            handle.remove()
    if "residual" not in store:
        raise RuntimeError(f"block {layer} was never reached; does {type(block).__name__} fit the {arch} entry?")
    projection = get_module(block, arch.down)(store["activations"]) if arch.bert_block else None
    full_mask = torch.cat(
        [torch.ones(mask.shape[0], model.extra_tokens, dtype=mask.dtype, device=mask.device), mask], 1
    )
    return _Kept(store["activations"], store["residual"], projection, store["args"], store["kwargs"], rows, full_mask)


def _kept_chunks(
    model,
    blocks: nn.ModuleList,
    arch: Architecture,
    layer: int,
    task: EncodedTask,
    batch_size: int,
    device: torch.device,
) -> Iterator[list[_Kept]]:
    """The kept states of all batches, in chunks of at most ``CACHE_BYTES`` (at least one batch)."""
    chunk, size = [], 0
    for rows in batch_order(task, batch_size, extra_tokens=model.extra_tokens):
        ids, mask, _ = pad_rows(task, rows)
        kept = _keep(model, blocks, arch, layer, ids.to(device), mask.to(device), rows)
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
def _without_silenced(
    blocks: nn.ModuleList, arch: Architecture, mask: torch.Tensor, layers: list[int], mean: torch.Tensor | None = None
) -> Iterator[None]:
    """Remove the neurons a binary row silences from those blocks' FFNs; restored in ``finally``.

    The rows of every ``up`` module (a gated MLP's gate and up projections) and the columns of the
    ``down`` projection go; GPT-2's Conv1D weights are read transposed (``linear_weight``).
    """
    replaced = []  # (block, path, original module)
    try:
        for layer in layers:
            block = blocks[layer]
            keep = mask[layer].nonzero()[:, 0]  # [kept]
            for path in arch.up:
                up = get_module(block, path)
                replaced.append((block, path, up))
                set_module(block, path, _Linear(linear_weight(up)[keep], None if up.bias is None else up.bias[keep]))
            down = get_module(block, arch.down)
            replaced.append((block, arch.down, down))
            bias = down.bias
            if mean is not None:  # mean ablation: the silenced neurons' mean is a constant through the projection
                gone = (mask[layer] == 0).nonzero()[:, 0]
                shift = linear_weight(down)[:, gone] @ mean[layer, gone].to(linear_weight(down).dtype)
                bias = shift if bias is None else bias + shift
            set_module(block, arch.down, _Linear(linear_weight(down)[:, keep], bias))
        yield
    finally:
        for block, path, module in reversed(replaced):
            set_module(block, path, module)


@dataclass
class _Change:
    """What a mask changes in block R: the changed neurons and their share of the projection."""

    neurons: torch.Tensor  # [k] indices of neurons scaled by s != 1
    weight: torch.Tensor  # [hidden, k] their columns of the output projection times (1 - s)
    offset: torch.Tensor | None = None  # [hidden] mean ablation: (1 - s) * mean of those neurons, projected


def _change_at(
    blocks: nn.ModuleList, arch: Architecture, layer: int, row: torch.Tensor, mean: torch.Tensor | None = None
) -> _Change:
    neurons = (row != 1).nonzero()[:, 0]
    weight = linear_weight(get_module(blocks[layer], arch.down))[:, neurons]  # [hidden, k]
    scaled = weight * (1 - row[neurons].to(weight.dtype))
    offset = None if mean is None else scaled @ mean[layer, neurons].to(weight.dtype)
    return _Change(neurons, scaled, offset)


def _block_output(blocks: nn.ModuleList, arch: Architecture, layer: int, kept: _Kept, change: _Change) -> torch.Tensor:
    """Block ``layer``'s output under a mask that changes ``change`` there. [batch, seq, hidden]"""
    share = None
    if len(change.neurons):
        share = kept.activations[..., change.neurons] @ change.weight.T.to(
            kept.activations.dtype
        )  # [batch, seq, hidden]
    if share is not None and change.offset is not None:  # mean ablation: the masked share is replaced by the mean's
        share = share.float() - change.offset.float()
    if arch.bert_block:
        projection = kept.projection
        if share is not None:  # subtracted in fp32, back in the projection's own dtype (bf16 weights on a CPU too)
            projection = (projection.float() - share.float()).to(projection.dtype)
        output = _ffn_output(blocks[layer], arch)
        return output.LayerNorm(output.dropout(projection) + kept.residual)  # BERT's FFN output
    # pre-norm decoder: block output = residual after attention + FFN output
    return kept.residual if share is None else (kept.residual.float() - share.float()).to(kept.residual.dtype)


def _finish(
    model,
    blocks: nn.ModuleList,
    arch: Architecture,
    layer: int,
    hidden: torch.Tensor,
    block_args: tuple,
    block_kwargs: dict,
    attention_mask: torch.Tensor,
) -> torch.Tensor:
    """The blocks after ``layer`` and the head, from block ``layer``'s output. [batch, 2]"""
    with slot_only_last_block(model.backbone):
        for block in blocks[layer + 1 :]:
            out = block(hidden, *block_args, **block_kwargs)
            hidden = out[0] if isinstance(out, tuple) else out  # transformers 4 returns a tuple
    if arch.bert_block:
        return model.classify(hidden[:, 0])
    read = model.read(hidden, attention_mask)  # [batch, hidden] at each row's read slot
    return model.classify(model.final_norm(read))


def _resume_logits(
    model, blocks: nn.ModuleList, arch: Architecture, layer: int, kept: _Kept, change: _Change
) -> torch.Tensor:
    """Logits from block ``layer``'s FFN output onwards, under the active mask. [batch, 2]"""
    hidden = _block_output(blocks, arch, layer, kept, change)
    return _finish(model, blocks, arch, layer, hidden, kept.block_args, kept.block_kwargs, kept.attention_mask)


def _repeat_batch(value, batch: int, times: int):
    """``value`` with its batch dimension (size ``batch``) repeated ``times`` times, mask-major; nested tuples too."""
    if torch.is_tensor(value):
        return torch.cat([value] * times) if value.dim() and value.shape[0] == batch else value
    if isinstance(value, tuple):
        return tuple(_repeat_batch(v, batch, times) for v in value)
    return value


@contextmanager
def _row_scaled(
    blocks: nn.ModuleList, arch: Architecture, scales: dict[int, torch.Tensor], mean: torch.Tensor | None = None
) -> Iterator[None]:
    """Scale each row's neurons in the given layers by its own factors ({layer: [rows, d_ffn]}); with
    ``mean`` [layers, d_ffn] add (1 - factor) * mean (mean ablation)."""
    handles = []
    try:
        for layer, factor in scales.items():
            offset = None if mean is None else (1 - factor.to(mean.dtype)) * mean[layer][None, :]

            def hook(_m, inp, factor=factor, offset=offset):
                value = inp[0] * factor[:, None, :].to(inp[0].dtype)  # [rows, seq, d_ffn]
                if offset is not None:
                    value = value + offset[:, None, :].to(value.dtype)
                return (value,) + tuple(inp[1:])

            handles.append(get_module(blocks[layer], arch.down).register_forward_pre_hook(hook))
        yield
    finally:
        for handle in handles:
            handle.remove()


def _stacked_logits(
    model,
    blocks: nn.ModuleList,
    arch: Architecture,
    layer: int,
    kept: _Kept,
    masks: list[torch.Tensor],
    changes: list[_Change],
    mean: torch.Tensor | None = None,
) -> torch.Tensor:
    """Logits of one batch under several masks in one forward: the masks' row groups stacked along
    the batch, each scaled by its own mask after ``layer``. [masks * batch, 2], mask-major."""
    batch, times = kept.residual.shape[0], len(masks)
    hidden = torch.cat([_block_output(blocks, arch, layer, kept, change) for change in changes])
    later = [i for i in range(layer + 1, len(blocks)) if any(bool((m[i] != 1).any()) for m in masks)]
    scales = {i: torch.stack([m[i] for m in masks]).repeat_interleave(batch, dim=0) for i in later}  # [M*b, d_ffn]
    with _row_scaled(blocks, arch, scales, mean):
        return _finish(
            model,
            blocks,
            arch,
            layer,
            hidden,
            _repeat_batch(kept.block_args, batch, times),
            {k: _repeat_batch(v, batch, times) for k, v in kept.block_kwargs.items()},
            torch.cat([kept.attention_mask] * times),
        )


@contextmanager
def _masked_after(
    model, blocks: nn.ModuleList, arch: Architecture, mask: torch.Tensor, layer: int, mean: torch.Tensor | None = None
) -> Iterator[None]:
    """Apply ``mask`` to the blocks after ``layer``: binary rows by removal, other rows by the hook."""
    later = [i for i in range(layer + 1, len(blocks)) if bool((mask[i] != 1).any())]
    binary = [i for i in later if bool(((mask[i] == 0) | (mask[i] == 1)).all())]
    scaled = [i for i in later if i not in binary]
    shift = None if mean is None else (1 - mask.to(mean.dtype)) * mean
    with scale_neurons(model, mask, layers=scaled, shift=shift), _without_silenced(blocks, arch, mask, binary, mean):
        yield


@torch.inference_mode()
def _group_logits(
    model,
    blocks: nn.ModuleList,
    arch: Architecture,
    task: EncodedTask,
    masks: dict[str, torch.Tensor],
    layer: int,
    *,
    batch_size: int,
    device: torch.device,
    masks_per_forward: int = 1,
    mean: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """Logits of every row under every mask of a group, resuming from block ``layer``. {name: [n, 2]}

    ``masks_per_forward`` > 1 stacks that many masks along the batch of each forward (each row group
    scaled by its own mask) instead of one forward per mask with the silenced neurons removed.
    """
    logits = {name: torch.empty(len(task), 2) for name in masks}
    names = list(masks)
    with autocast(device, model):
        for chunk in _kept_chunks(model, blocks, arch, layer, task, batch_size, device):
            if masks_per_forward > 1:
                for start in range(0, len(names), masks_per_forward):
                    part = names[start : start + masks_per_forward]
                    changes = [_change_at(blocks, arch, layer, masks[name][layer], mean) for name in part]
                    for kept in chunk:
                        out = _stacked_logits(model, blocks, arch, layer, kept, [masks[n] for n in part], changes, mean)
                        for name, rows in zip(part, out.float().cpu().split(len(kept.rows))):
                            logits[name][kept.rows] = rows
                continue
            for name, mask in masks.items():
                change = _change_at(blocks, arch, layer, mask[layer], mean)
                with _masked_after(model, blocks, arch, mask, layer, mean):
                    for kept in chunk:
                        logits[name][kept.rows] = _resume_logits(model, blocks, arch, layer, kept, change).float().cpu()
    return logits


def auto_masks_per_forward(
    model: PromptModel,
    task: EncodedTask,
    batch_size: int,
    device: torch.device,
    num_masks: int,
    group_size: int = DEFAULT_GROUP_SIZE,
) -> int:
    """Masks per forward for ``masks_per_forward="auto"``: 1 off CUDA (a CPU computes less with one mask
    per forward, which drops the silenced neurons); on CUDA as many as keep a forward under
    ``STACK_TOKENS`` tokens and its activations under ``STACK_MEMORY_SHARE`` of the free memory, at most
    the masks of one group (which share one unmasked prefix)."""
    if device.type != "cuda" or num_masks <= 1 or len(task) == 0:
        return 1
    width = max(len(ids) for ids in task.input_ids) + model.extra_tokens
    tokens = min(batch_size, len(task)) * width  # one stacked row group at its widest
    by_memory = int(STACK_MEMORY_SHARE * free_bytes(device) // (tokens * activation_bytes(model, width)))
    by_speed = STACK_TOKENS // tokens
    return max(1, min(num_masks, group_size, by_memory, by_speed))


def _masked_logits(
    model: PromptModel,
    task: EncodedTask,
    masks: dict[str, torch.Tensor],
    batch_size: int,
    device: torch.device,
    group_size: int,
    shared: bool,
    masks_per_forward: int | str = 1,
    *,
    ablation: Ablation | None = None,
) -> Iterator[dict[str, torch.Tensor]]:
    """Logits under the masks, one group at a time. Yields {name: [n, 2]} per group."""
    mean = None if ablation is None else ablation.mean_on(device)
    if ablation is not None and ablation.kind == "resample":  # per-row replacements: the plain path
        for name, mask in masks.items():
            yield {name: _resample_logits(model, task, mask.to(device), ablation.replacements, batch_size, device)}
        return
    if masks_per_forward == "auto":
        masks_per_forward = auto_masks_per_forward(model, task, batch_size, device, len(masks), group_size)
        logger.info("stacking %d mask(s) per forward", masks_per_forward)
    if not isinstance(masks_per_forward, int) or group_size < 1 or masks_per_forward < 1:
        raise ConfigError(f"mask group size {group_size} and masks per forward {masks_per_forward} must be at least 1")
    model.eval()
    arch = architecture(model)
    if not (shared and (arch.bert_block or arch.residual_ffn)):  # the plain path: a full forward per mask
        for name, mask in masks.items():
            shift = None if mean is None else (1 - mask.to(device=device, dtype=mean.dtype)) * mean
            with scale_neurons(model, mask.to(device), shift=shift):
                yield {name: predict_logits(model, task, batch_size, device)}
        return
    blocks = model_blocks(model)
    last = len(blocks) - 1
    first = {name: first_changed_layer(mask) for name, mask in masks.items()}
    # Masks that first change a late layer share more of the unmasked pass: group them together.
    names = sorted(masks, key=lambda name: last if first[name] is None else first[name])
    for start in range(0, len(names), group_size):
        group = names[start : start + group_size]
        layer = min(last if first[name] is None else first[name] for name in group)
        yield _group_logits(
            model,
            blocks,
            arch,
            task,
            {name: masks[name].to(device) for name in group},
            layer,
            batch_size=batch_size,
            device=device,
            masks_per_forward=masks_per_forward,
            mean=mean,
        )


@torch.inference_mode()
def _resample_logits(model, task: EncodedTask, mask: torch.Tensor, replacements: torch.Tensor, batch_size, device):
    """Logits under ``mask`` where each row's masked neurons take that row's replacement values
    ([rows, layers, d_ffn], at every position of the row): resample ablation. [n, 2]"""
    ffn = find_ffn(model)
    state: dict = {}
    handles = []
    keep = mask.to(device)
    try:
        for layer in range(ffn.num_layers):
            if not bool((keep[layer] != 1).any()):
                continue

            def hook(_m, inp, layer=layer):
                value = inp[0]  # [batch, seq, d_ffn]
                s = keep[layer].to(value.dtype)
                r = state["rows"][:, layer].to(value.dtype)  # [batch, d_ffn]
                return (value * s + ((1 - s) * r)[:, None, :],) + tuple(inp[1:])

            handles.append(ffn.down[layer].register_forward_pre_hook(hook))
        out = torch.empty(len(task), 2)
        with autocast(device, model):
            for rows in batch_order(task, batch_size, extra_tokens=model.extra_tokens):
                ids, attention, _ = pad_rows(task, rows)
                state["rows"] = replacements[rows].to(device)
                out[rows] = model(ids.to(device), attention.to(device)).float().cpu()
        return out
    finally:
        for handle in handles:
            handle.remove()


def masked_logits(
    model: PromptModel,
    task: EncodedTask,
    masks: dict[str, torch.Tensor],
    batch_size: int,
    device: torch.device,
    group_size: int = DEFAULT_GROUP_SIZE,
    shared: bool = True,
    masks_per_forward: int | str = 1,
    *,
    ablation: Ablation | None = None,
) -> dict[str, torch.Tensor]:
    """The logits of every row of ``task`` under each mask, in row order. {name: [n, 2]}

    ``shared=False`` forces the plain path (a full forward per mask), e.g. to check the shared one;
    ``masks_per_forward`` stacks masks along the batch on the shared path.
    """
    out: dict[str, torch.Tensor] = {}
    if ablation is not None and ablation.kind == "scale":
        masks = ablation.scaled(masks)
    for group in _masked_logits(
        model, task, masks, batch_size, device, group_size, shared, masks_per_forward, ablation=ablation
    ):
        out.update(group)
    return {name: out[name] for name in masks}


def evaluate_masks(
    model: PromptModel,
    task: EncodedTask,
    masks: dict[str, torch.Tensor],
    batch_size: int,
    device: torch.device,
    *,
    done: dict[str, float] | None = None,
    on_result: Callable[[str, float], None] | None = None,
    progress: bool = True,
    group_size: int = DEFAULT_GROUP_SIZE,
    shared: bool = True,
    per_batch: int | None = None,
    masks_per_forward: int | str = 1,
    correct: dict[str, np.ndarray] | None = None,
    ablation: Ablation | None = None,
) -> dict[str, float]:
    """Accuracy under each mask, skipping names already in ``done``; ``on_result`` after each.

    ``per_batch``: the original evaluation's mean of per-batch accuracies (``inference.mean_accuracy``).
    ``correct``: a dict filled with each evaluated mask's per-example correctness ([n] bool, row order),
    which the report resamples for its intervals over examples.
    """
    results = dict(done or {})
    todo = {name: mask for name, mask in masks.items() if name not in results}
    if ablation is not None and ablation.kind == "scale":
        todo = ablation.scaled(todo)
    unique, copies = distinct_masks(todo)
    labels = torch.from_numpy(task.labels)
    with tqdm(total=len(todo), desc="masks", disable=bar_disabled(progress)) as bar:
        groups = _masked_logits(
            model, task, unique, batch_size, device, group_size, shared, masks_per_forward, ablation=ablation
        )
        for group in groups:
            for first, logits in group.items():
                hits = (logits.argmax(-1) == labels).numpy()
                for name in copies[first]:  # a mask that several names share is evaluated once
                    if correct is not None:
                        correct[name] = hits
                    results[name] = mean_accuracy(hits, per_batch)
                    if on_result is not None:
                        on_result(name, results[name])
                bar.update(len(copies[first]))
    return results


def distinct_masks(masks: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, list[str]]]:
    """The distinct masks (the first name of each) and, per first name, every name with that mask
    (e.g. the global random draws that all attributes of one k share)."""
    import hashlib

    first: dict[tuple, str] = {}
    copies: dict[str, list[str]] = {}
    for name, mask in masks.items():
        flat = mask.detach().cpu().contiguous()
        key = (
            str(flat.dtype),
            tuple(flat.shape),
            hashlib.sha256(flat.reshape(-1).view(torch.uint8).numpy().tobytes()).hexdigest(),
        )
        if key in first:
            copies[first[key]].append(name)
        else:
            first[key] = name
            copies[name] = [name]
    return {name: masks[name] for name in copies}, copies
