"""Shared checks of the ablation kinds (masking/ablation.py) for the encoder and decoder tests: each
kind's logits from the evaluation paths equal those of a model edited by hand (hooks written here,
independently of the library's), and a mean ablation of a constant neuron changes nothing."""

from __future__ import annotations

import numpy as np
import torch

from model_emotion.lm.inference import predict_logits
from model_emotion.lm.neurons import count_hooks, find_ffn
from model_emotion.masking import evaluate as masked_eval
from model_emotion.masking.ablation import Ablation, reference_activations


def hand_logits(prompt, task, edit) -> torch.Tensor:
    """Logits row by row with every layer's neurons replaced by ``edit(layer, row, value)``."""
    ffn = find_ffn(prompt)
    out = torch.empty(len(task), 2)
    state = {}
    handles = [
        down.register_forward_pre_hook(lambda _m, args, layer=layer: (edit(layer, state["row"], args[0]), *args[1:]))
        for layer, down in enumerate(ffn.down)
    ]
    try:
        with torch.no_grad():
            for i in range(len(task)):
                state["row"] = i
                ids = torch.as_tensor(task.input_ids[i])[None]
                out[i] = prompt(ids, torch.ones_like(ids))[0]
    finally:
        for h in handles:
            h.remove()
    return out


def masks_for(ffn) -> dict[str, torch.Tensor]:
    rng = np.random.default_rng(5)
    binary = torch.from_numpy((rng.random((ffn.num_layers, ffn.d_ffn)) > 0.3).astype(np.int8))
    later = torch.ones(ffn.num_layers, ffn.d_ffn, dtype=torch.int8)
    later[1:, ::3] = 0
    return {"binary": binary, "from_layer_1": later}


def check_ablations_equal_hand_edits(prompt, task, reference_texts: list[str]) -> None:
    ffn = find_ffn(prompt)
    masks = masks_for(ffn)
    mean, pool = reference_activations(prompt, reference_texts, torch.device("cpu"), seed=3)
    one_by_one = reference_activations(prompt, reference_texts, torch.device("cpu"), seed=3, batch_size=1)
    assert torch.allclose(mean, one_by_one[0], atol=1e-5) and torch.allclose(pool, one_by_one[1], atol=1e-5)
    assert mean.shape == (ffn.num_layers, ffn.d_ffn) and pool.shape == (len(reference_texts), ffn.num_layers, ffn.d_ffn)
    replacements = pool[torch.from_numpy(np.random.default_rng(1).integers(0, len(pool), len(task)))]
    kinds = {
        "zero": (None, lambda m: lambda layer, row, v: v * m[layer].to(v.dtype)),
        "mean": (
            Ablation("mean", mean=mean),
            lambda m: lambda layer, row, v: v * m[layer].to(v.dtype) + (1 - m[layer].to(v.dtype)) * mean[layer],
        ),
        "scale": (
            Ablation("scale", factor=0.25),
            lambda m: lambda layer, row, v: v * (1 - (1 - m[layer].to(v.dtype)) * 0.75),
        ),
        "resample": (
            Ablation("resample", replacements=replacements),
            lambda m: (
                lambda layer, row, v: v * m[layer].to(v.dtype) + (1 - m[layer].to(v.dtype)) * replacements[row, layer]
            ),
        ),
    }
    cpu = torch.device("cpu")
    none = masked_eval.masked_logits(prompt, task, masks, 4, cpu, group_size=2)
    zero = masked_eval.masked_logits(prompt, task, masks, 4, cpu, group_size=2, ablation=Ablation("zero"))
    assert all(torch.equal(none[n], zero[n]) for n in masks)  # zero ablation is today's path, bit for bit
    for kind, (ablation, edit) in kinds.items():
        for stack in (1, 2):
            got = masked_eval.masked_logits(
                prompt, task, masks, 4, cpu, group_size=2, masks_per_forward=stack, ablation=ablation
            )
            plain = masked_eval.masked_logits(prompt, task, masks, 4, cpu, shared=False, ablation=ablation)
            for name, mask in masks.items():
                by_hand = hand_logits(prompt, task, edit(mask))
                assert torch.allclose(got[name], by_hand, atol=1e-4), (kind, stack, name)
                assert torch.allclose(plain[name], by_hand, atol=1e-4), (kind, name)
    unmasked = predict_logits(prompt, task, 4, cpu)
    assert not torch.allclose(hand_logits(prompt, task, kinds["mean"][1](masks["binary"])), unmasked, atol=1e-3)
    assert count_hooks(prompt) == 0


def check_mean_of_a_constant_neuron_changes_nothing(prompt, task, reference_texts, make_constant) -> None:
    """``make_constant(layer, unit)`` edits the model so that the neuron's value is the same at every
    token; its mean ablation then equals no mask (zero ablation of it does not)."""
    ffn = find_ffn(prompt)
    layer, unit = 1, 3
    make_constant(layer, unit)
    mean, _ = reference_activations(prompt, reference_texts, torch.device("cpu"))
    mask = torch.ones(ffn.num_layers, ffn.d_ffn, dtype=torch.int8)
    mask[layer, unit] = 0
    cpu = torch.device("cpu")
    unmasked = predict_logits(prompt, task, 4, cpu)
    for shared in (True, False):
        meaned = masked_eval.masked_logits(
            prompt, task, {"m": mask}, 4, cpu, shared=shared, ablation=Ablation("mean", mean=mean)
        )
        assert torch.allclose(meaned["m"], unmasked, atol=1e-5), shared
    zeroed = masked_eval.masked_logits(prompt, task, {"m": mask}, 4, cpu)["m"]
    assert not torch.allclose(zeroed, unmasked, atol=1e-4)
