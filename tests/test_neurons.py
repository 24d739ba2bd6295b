"""Neuron hooks: captured values equal the FFN computed by hand; scaling equals editing weights."""

import numpy as np
import pytest
import torch

from model_emotion.errors import ToolkitError
from model_emotion.lm.loading import load_backbone
from model_emotion.lm.neurons import capture_neurons, count_hooks, find_ffn, scale_neurons
from model_emotion.prompts.config import PromptConfig
from model_emotion.prompts.encoder import SoftPromptModel


@pytest.fixture(scope="module", params=["tiny_roberta", "tiny_bert"])
def prompt_model(request):
    folder = request.getfixturevalue(request.param)
    backbone, tokenizer, head = load_backbone(str(folder))
    model = SoftPromptModel(
        backbone, tokenizer, PromptConfig(model=str(folder), prompt_len=3, head=head, max_length=32)
    )
    model.eval()
    ids = torch.tensor(
        [
            [tokenizer.cls_token_id, 7, 8, 9, tokenizer.sep_token_id],
            [tokenizer.cls_token_id, 10, 11, tokenizer.sep_token_id, tokenizer.pad_token_id],
        ]
    )
    mask = (ids != tokenizer.pad_token_id).long()
    return model, ids, mask


def test_find_ffn_reads_sizes_from_the_model(prompt_model):
    model, _, _ = prompt_model
    ffn = find_ffn(model)
    assert ffn.num_layers == model.backbone.config.num_hidden_layers
    assert ffn.d_ffn == model.backbone.config.intermediate_size


@pytest.mark.parametrize("mode", ["before_relu", "after_relu", "pre_activation"])
def test_captured_value_equals_ffn_by_hand(prompt_model, mode):
    model, ids, mask = prompt_model
    ffn = find_ffn(model)
    inputs = {}
    handles = [
        ffn.up[layer].register_forward_hook(lambda m, inp, out, layer=layer: inputs.__setitem__(layer, inp[0]))
        for layer in range(ffn.num_layers)
    ]
    try:
        with torch.no_grad(), capture_neurons(model, mode, position=0) as captured:
            model(ids, mask)
    finally:
        for handle in handles:
            handle.remove()
    for layer in range(ffn.num_layers):
        up = ffn.up[layer]
        pre = inputs[layer][:, 0] @ up.weight.T + up.bias  # [batch, d_ffn]
        post = torch.nn.functional.gelu(pre)
        expected = {"pre_activation": pre, "before_relu": post, "after_relu": (post > 0).float()}[mode]
        assert torch.allclose(captured[layer], expected, atol=1e-5)


def test_no_hooks_remain_even_after_an_error(prompt_model):
    model, ids, mask = prompt_model
    before = count_hooks(model)
    with pytest.raises(RuntimeError):
        with capture_neurons(model):
            raise RuntimeError("boom")
    with pytest.raises(RuntimeError):
        with scale_neurons(model, torch.zeros(find_ffn(model).num_layers, find_ffn(model).d_ffn)):
            raise RuntimeError("boom")
    assert count_hooks(model) == before


def test_all_ones_mask_is_exactly_unmasked_and_zeros_change(prompt_model):
    model, ids, mask = prompt_model
    ffn = find_ffn(model)
    with torch.no_grad():
        base = model(ids, mask)
        with scale_neurons(model, torch.ones(ffn.num_layers, ffn.d_ffn, dtype=torch.int8)):
            ones = model(ids, mask)
        with scale_neurons(model, torch.zeros(ffn.num_layers, ffn.d_ffn)):
            zeros = model(ids, mask)
    assert torch.equal(base, ones)
    assert not torch.allclose(base, zeros)


def test_hook_equals_editing_the_output_projection(prompt_model):
    model, ids, mask = prompt_model
    ffn = find_ffn(model)
    rng = np.random.default_rng(0)
    scale = torch.from_numpy((rng.random((ffn.num_layers, ffn.d_ffn)) > 0.3).astype(np.float32))
    scale[0, :5] = torch.tensor([0.25, 0.5, 0.0, 1.0, 0.75])
    with torch.no_grad():
        with scale_neurons(model, scale):
            hooked = model(ids, mask)
        saved = [down.weight.detach().clone() for down in ffn.down]
        try:
            for layer, down in enumerate(ffn.down):
                down.weight.mul_(scale[layer][None, :])  # column j of W_out multiplies neuron j
            edited = model(ids, mask)
        finally:
            for down, weight in zip(ffn.down, saved):
                down.weight.copy_(weight)
    assert torch.allclose(hooked, edited, atol=1e-6)


def test_wrong_mask_shape_is_refused(prompt_model):
    model, _, _ = prompt_model
    with pytest.raises(ToolkitError, match="does not match the model's FFN"):
        with scale_neurons(model, torch.ones(3, 7)):
            pass
