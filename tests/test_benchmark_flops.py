"""The benchmarks' FLOP counts (benchmarks/common.py), which the GPU plan's hours and the rates in the
README rest on, against torch's own FLOP counter on a BERT forward: the full encoder and the
toolkit's slot-only last block."""

import sys
from contextlib import nullcontext

import pytest
import torch
from conftest import REPO
from torch.utils.flop_counter import FlopCounterMode
from transformers import BertConfig, BertModel

from model_emotion.lm.architectures import slot_only_last_block

sys.path.insert(0, str(REPO / "benchmarks"))
from common import forward_flops, slot_read_flops  # noqa: E402

HIDDEN, FFN, LAYERS = 64, 256, 3
MATMULS = {"mm", "addmm", "bmm"}  # what the counter sees of a forward on a CPU (not SDPA kernels)


def _matmul_flops(model, lengths, slot_only: bool) -> int:
    """Matrix-product FLOPs torch counts for the encoder on rows of ``lengths`` (one forward per row)."""
    total = 0
    for length in lengths:
        with (
            torch.no_grad(),
            slot_only_last_block(model) if slot_only else nullcontext(),
            FlopCounterMode(display=False) as counter,
        ):
            model(inputs_embeds=torch.randn(1, length, HIDDEN), attention_mask=torch.ones(1, length, dtype=torch.long))
        total += sum(n for op, n in counter.get_flop_counts()["Global"].items() if op.__name__ in MATMULS)
    return total


@pytest.fixture(scope="module")
def bert():
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=100,
        hidden_size=HIDDEN,
        num_hidden_layers=LAYERS,
        num_attention_heads=4,
        intermediate_size=FFN,
        attn_implementation="eager",
    )  # attention as counted bmm
    return BertModel(config).eval()


LENGTHS = [5, 17, 40]
# Parts of the count that are no matrix product: 2 FLOPs per bias and LayerNorm parameter and token
# (9 hidden-size vectors and the FFN's bias per block); the pooler's matrix product is the counter's extra.
NOT_MATMUL_PER_TOKEN = 2 * (9 * HIDDEN + FFN)
POOLER = 2 * HIDDEN * HIDDEN


def test_forward_flops_equal_torch_counter(bert):
    tokens = sum(LENGTHS)
    expected = forward_flops(LENGTHS, LAYERS, HIDDEN, FFN) - NOT_MATMUL_PER_TOKEN * LAYERS * tokens
    assert _matmul_flops(bert, LENGTHS, slot_only=False) == expected + POOLER * len(LENGTHS)


def test_slot_read_flops_equal_torch_counter_with_the_slot_only_last_block(bert):
    tokens, rows = sum(LENGTHS), len(LENGTHS)
    counted = slot_read_flops(LENGTHS, LAYERS, HIDDEN, FFN)
    not_matmul = (
        NOT_MATMUL_PER_TOKEN * (LAYERS - 1) * tokens
        + 2 * 2 * HIDDEN * tokens  # the last block's key and value biases, every position
        + 2 * (7 * HIDDEN + FFN) * rows  # its other biases and LayerNorms, the slot only
        + 4 * HIDDEN * tokens
    )  # the slot's attention (an SDPA kernel the counter does not see)
    assert _matmul_flops(bert, LENGTHS, slot_only=True) == counted - not_matmul + POOLER * rows
    assert counted < forward_flops(LENGTHS, LAYERS, HIDDEN, FFN)  # and it is the cheaper forward
