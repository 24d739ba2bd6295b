"""Everything the toolkit knows about model architectures, in one table.

Per ``config.model_type``: whether the model is an encoder (read at a ``<mask>`` slot in front of the
text) or a decoder (read at the last real token), where its feed-forward blocks sit, which modules
make its MLM head, whether its position ids start after the padding index, and whether its blocks
are BERT's post-LayerNorm blocks (which the slot-only last block and the encoder's shared-prefix
masked evaluation rely on). ``neurons``, ``encoder_prompt``, ``decoder_prompt`` and ``masked_eval``
read it from here; adding an architecture is one entry (and a tiny model of it: ``MODELS`` in
``tests/test_decoders.py`` for a decoder, beside ``tiny_bert`` in ``tests/conftest.py`` for an encoder).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

from model_emotion.errors import ConfigError


@dataclass(frozen=True)
class Architecture:
    """Dotted module paths are relative to the model's ``base_model`` (layers, final norm) or to one block."""

    family: str  # "encoder" | "decoder"
    layers: str  # the ModuleList of transformer blocks
    up: tuple[str, ...]  # per block: modules whose output rows are the neurons; the first is the pre-activation
    down: str  # per block: the FFN output projection; its input is the neuron value
    mlm_head: tuple[str, ...] | None = None  # encoder: head modules applied to the slot only, in order
    position_offset: bool = False  # position ids start after the padding index (RoBERTa)
    bert_block: bool = False  # post-LN BERT blocks: ``attention``, ``intermediate``, ``output``
    final_norm: str | None = None  # decoder: the norm after the last block
    residual_ffn: bool = False  # decoder: block output = its input after attention + the FFN output


_BERT = dict(family="encoder", layers="encoder.layer", up=("intermediate.dense",), down="output.dense", bert_block=True)
# Gated MLPs (Llama style): the neuron is act(gate) * up, the input of down_proj; "pre-activation" is the gate.
_GATED = dict(
    family="decoder",
    layers="layers",
    up=("mlp.gate_proj", "mlp.up_proj"),
    down="mlp.down_proj",
    final_norm="norm",
    residual_ffn=True,
)

ARCHITECTURES: dict[str, Architecture] = {
    "bert": Architecture(**_BERT, mlm_head=("cls",)),
    "roberta": Architecture(**_BERT, mlm_head=("lm_head",), position_offset=True),
    "xlm-roberta": Architecture(**_BERT, mlm_head=("lm_head",), position_offset=True),
    "camembert": Architecture(**_BERT, mlm_head=("lm_head",), position_offset=True),
    "electra": Architecture(**_BERT, mlm_head=("generator_predictions", "generator_lm_head")),
    "distilbert": Architecture(
        "encoder",
        "transformer.layer",
        ("ffn.lin1",),
        "ffn.lin2",
        mlm_head=("vocab_transform", "activation", "vocab_layer_norm", "vocab_projector"),
    ),
    # GPT-2's c_fc/c_proj are Conv1D modules (weight [in, out]).
    "gpt2": Architecture("decoder", "h", ("mlp.c_fc",), "mlp.c_proj", final_norm="ln_f", residual_ffn=True),
    "llama": Architecture(**_GATED),
    "mistral": Architecture(**_GATED),
    "qwen2": Architecture(**_GATED),
    "qwen3": Architecture(**_GATED),
}


def known_types() -> str:
    return ", ".join(sorted(ARCHITECTURES))


def architecture(model_or_type) -> Architecture:
    """The entry of a model (a backbone, a prompt model or a ``config.model_type`` string)."""
    if isinstance(model_or_type, str):
        model_type = model_or_type
    else:
        backbone = getattr(model_or_type, "backbone", model_or_type)
        model_type = backbone.config.model_type
    arch = ARCHITECTURES.get(model_type)
    if arch is None:
        raise ConfigError(f"no FFN layout known for model type {model_type!r}; known: {known_types()}")
    return arch


def get_module(module: nn.Module, dotted: str) -> nn.Module:
    for part in dotted.split("."):
        module = getattr(module, part)
    return module


def set_module(module: nn.Module, dotted: str, new: nn.Module) -> None:
    parent, _, name = dotted.rpartition(".")
    setattr(get_module(module, parent) if parent else module, name, new)


def blocks(model: nn.Module) -> nn.ModuleList:
    """The transformer blocks of a backbone or prompt model."""
    backbone = getattr(model, "backbone", model)
    return get_module(backbone.base_model, architecture(backbone).layers)


def linear_weight(module: nn.Module) -> torch.Tensor:
    """The weight as ``nn.Linear`` stores it, [out, in] (GPT-2's Conv1D stores [in, out])."""
    return module.weight if isinstance(module, nn.Linear) else module.weight.T


def in_features(module: nn.Module) -> int:
    if isinstance(module, nn.Linear):
        return module.in_features
    weight = getattr(module, "weight", None)  # GPT-2's Conv1D stores [in, out]
    if weight is None:
        raise ConfigError(f"cannot read the input width of {type(module).__name__}")
    return int(weight.shape[0])


def bert_blocks(backbone: nn.Module) -> nn.ModuleList | None:
    """The blocks of a BERT-style encoder, or None for other architectures."""
    arch = ARCHITECTURES.get(backbone.config.model_type)
    if arch is None or not arch.bert_block:
        return None
    return getattr(getattr(backbone.base_model, "encoder", None), "layer", None)


def position_offset(backbone: nn.Module) -> int:
    """Positions the model reserves before the first token (RoBERTa: padding index + 1)."""
    arch = ARCHITECTURES.get(backbone.config.model_type)
    return (backbone.config.pad_token_id or 0) + 1 if arch is not None and arch.position_offset else 0


def mlm_head_modules(backbone: nn.Module) -> list[nn.Module]:
    """The MLM head as modules applied to the slot's hidden state ([] = unknown: run the full model)."""
    arch = ARCHITECTURES.get(backbone.config.model_type)
    if arch is None or not arch.mlm_head:
        return []
    return [getattr(backbone, name) for name in arch.mlm_head]


# -- the slot-only last block of BERT-style encoders -----------------------------------------------


def _first_position(value):
    return value[:, :1] if torch.is_tensor(value) and value.dim() == 3 else value  # [batch, 1, hidden]


def _keep_first_position(_module, args, kwargs):
    return tuple(_first_position(a) for a in args), {k: _first_position(v) for k, v in kwargs.items()}


class _SlotQueryAttention(nn.Module):
    """A BERT self-attention that answers for position 0 only: its query, every key and value.

    Returns ``(context [batch, 1, hidden], None)`` like the module it stands for.
    """

    def __init__(self, attention: nn.Module):
        super().__init__()
        self.attention = attention

    @staticmethod
    def fits(attention: nn.Module) -> bool:
        """A plain BERT self-attention: q/k/v projections, absolute positions, no cross-attention."""
        return (
            all(isinstance(getattr(attention, name, None), nn.Linear) for name in ("query", "key", "value"))
            and hasattr(attention, "num_attention_heads")
            and hasattr(attention, "attention_head_size")
            and getattr(attention, "position_embedding_type", "absolute") == "absolute"
            and not getattr(attention, "is_decoder", False)
        )

    def forward(self, hidden_states: torch.Tensor, attention_mask: torch.Tensor | None = None, *args, **kwargs):
        module = self.attention
        batch, seq, _ = hidden_states.shape
        heads, size = module.num_attention_heads, module.attention_head_size

        def split(x: torch.Tensor) -> torch.Tensor:
            return x.view(batch, x.shape[1], heads, size).transpose(1, 2)  # [batch, heads, len, size]

        query = split(module.query(hidden_states[:, :1]))
        key, value = split(module.key(hidden_states)), split(module.value(hidden_states))
        mask = attention_mask
        if mask is not None:
            if mask.dim() == 2:  # [batch, seq] of 0/1 (flash-attention style)
                mask = mask[:, None, None, :].bool()
            elif mask.dim() == 4:  # [batch, 1, seq or 1, seq]: the slot's row
                mask = mask[:, :, :1, :]
        scaling = getattr(module, "scaling", size**-0.5)
        context = nn.functional.scaled_dot_product_attention(query, key, value, attn_mask=mask, scale=scaling)
        return context.transpose(1, 2).reshape(batch, 1, heads * size), None


@contextmanager
def slot_only_last_block(backbone: nn.Module) -> Iterator[None]:
    """Compute the last block for the slot (position 0) only.

    Only the slot's final hidden state is read, so the last block needs the slot's query, but the
    keys and values of every position (the slot attends to them); its attention output projection
    and FFN run for the slot alone. The encoder then returns [batch, 1, hidden]. Same values up to
    float rounding (tested, gradients too); saves about 10/12 of one block's projections (14% of a
    6-layer model, 7% of a 12-layer one) and most of its attention. Other architectures: no change.
    """
    layer_list = bert_blocks(backbone)
    handle, swapped = None, None
    try:
        if layer_list is not None and len(layer_list):
            last = layer_list[-1].attention
            handle = last.output.register_forward_pre_hook(_keep_first_position, with_kwargs=True)
            if _SlotQueryAttention.fits(last.self):
                swapped = last.self
                last.self = _SlotQueryAttention(swapped)
        yield
    finally:
        if handle is not None:
            handle.remove()
        if swapped is not None:
            layer_list[-1].attention.self = swapped
