"""FFN neurons of a Hugging Face model: find them, read them, scale them.

A "neuron" is one channel of the input of a feed-forward block's output projection: for RoBERTa
and BERT the output of ``intermediate`` (after GELU), for gated MLPs ``act(gate) * up``, for GPT-2
the input of ``c_proj``. Where those modules sit is ``architectures``' table. Neuron index = layer * d_ffn + unit,
layer-major, everywhere in the toolkit. Hooks only live inside the context managers below, whose
``finally`` removes them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

from model_emotion.errors import ConfigError
from model_emotion.lm.architectures import architecture, blocks, get_module, in_features

ACTIVATION_MODES = ("before_relu", "after_relu", "pre_activation")


@dataclass(frozen=True)
class FFNBlocks:
    up: list[nn.Module]
    down: list[nn.Module]
    d_ffn: int

    @property
    def num_layers(self) -> int:
        return len(self.down)

    @property
    def num_neurons(self) -> int:
        return self.num_layers * self.d_ffn


def find_ffn(model: nn.Module) -> FFNBlocks:
    """The feed-forward blocks of ``model`` (a backbone, an LM or a prompt model)."""
    backbone = getattr(model, "backbone", model)
    arch = architecture(backbone)
    layer_list = blocks(backbone)
    up = [get_module(block, arch.up[0]) for block in layer_list]
    down = [get_module(block, arch.down) for block in layer_list]
    widths = {in_features(m) for m in down}
    if len(widths) != 1:
        raise ConfigError(f"layers of {backbone.config.model_type} have different FFN widths {sorted(widths)}")
    return FFNBlocks(up, down, widths.pop())


@contextmanager
def capture_neurons(model: nn.Module, mode: str = "before_relu", position: int | None = 0) -> Iterator[list]:
    """Record every layer's neurons during the forward passes inside the block.

    Yields a list that, after a forward pass, holds one tensor per layer: [batch, d_ffn] at
    ``position`` (or [batch, seq, d_ffn] when ``position`` is None). ``before_relu`` (the paper's
    name) is the value after the activation function, ``after_relu`` that value > 0 as 0/1, and
    ``pre_activation`` the value before the activation function.
    """
    if mode not in ACTIVATION_MODES:
        raise ConfigError(f"activation mode {mode!r} unknown; choose one of {', '.join(ACTIVATION_MODES)}")
    ffn = find_ffn(model)
    captured: list = [None] * ffn.num_layers
    handles = []

    def keep(layer: int, value: torch.Tensor) -> None:
        value = value.detach()  # [batch, seq, d_ffn]
        if position is not None:
            value = value[:, position]
        if mode == "after_relu":
            value = (value > 0).to(value.dtype)
        captured[layer] = value.float()

    try:
        for layer in range(ffn.num_layers):
            if mode == "pre_activation":
                handles.append(ffn.up[layer].register_forward_hook(lambda _m, _inp, out, layer=layer: keep(layer, out)))
            else:
                handles.append(
                    ffn.down[layer].register_forward_pre_hook(lambda _m, inp, layer=layer: keep(layer, inp[0]))
                )
        yield captured
    finally:
        for handle in handles:
            handle.remove()


@contextmanager
def scale_neurons(
    model: nn.Module, scale: torch.Tensor, layers: Iterable[int] | None = None, shift: torch.Tensor | None = None
) -> Iterator[None]:
    """Multiply every layer's neurons by ``scale`` [layers, d_ffn] at every position (and add ``shift``).

    A binary mask (0 = masked) silences neurons; a float mask scales them. The output projection
    then sees the scaled values, exactly as if its input columns had been multiplied by ``scale``.
    ``shift`` [layers, d_ffn] is added after scaling: (1 - mask) * mean is a mean ablation.
    ``layers`` limits the hooks to those layers (default: all).
    """
    ffn = find_ffn(model)
    if tuple(scale.shape) != (ffn.num_layers, ffn.d_ffn):
        raise ConfigError(
            f"mask shape {list(scale.shape)} does not match the model's FFN [{ffn.num_layers}, {ffn.d_ffn}]"
        )
    handles = []
    try:
        for layer in range(ffn.num_layers) if layers is None else layers:
            down = ffn.down[layer]
            factor = scale[layer].to(device=down.weight.device)  # [d_ffn]
            offset = None if shift is None else shift[layer].to(device=down.weight.device)

            def hook(_m, inp, factor=factor, offset=offset):
                value = inp[0]  # [batch, seq, d_ffn]
                value = value * factor.to(value.dtype)
                if offset is not None:
                    value = value + offset.to(value.dtype)
                return (value,) + tuple(inp[1:])

            handles.append(down.register_forward_pre_hook(hook))
        yield
    finally:
        for handle in handles:
            handle.remove()


def count_hooks(model: nn.Module) -> int:
    """Forward hooks and pre-hooks currently registered anywhere in ``model`` (for tests)."""
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())
