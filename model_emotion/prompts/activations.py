"""Neuron activations of learned prompts: computing them (the files: ``activation_files``).

Per (emotion, seed), every FFN neuron at the read slot when the input is the prompt alone.
"""

from __future__ import annotations

import numpy as np
import torch

from model_emotion.io.activations import (
    ActivationSet,
    load_activations,
    read_activation_csv,
    save_npz,
    write_activation_csv,
)
from model_emotion.lm.neurons import capture_neurons

# The file functions stay importable from here (scripts written against earlier versions).
__all__ = [
    "prompt_activations",
    "ActivationSet",
    "load_activations",
    "read_activation_csv",
    "save_npz",
    "write_activation_csv",
]


@torch.inference_mode()
def prompt_activations(model, mode: str = "before_relu") -> np.ndarray:
    """All FFN neurons at the read slot when the input is the prompt alone (``alone_position``). [layers * d_ffn]"""
    model.eval()
    with capture_neurons(model, mode, position=model.alone_position) as captured:
        model.slot_hidden(None)
    return torch.cat([layer[0] for layer in captured]).cpu().numpy()  # layer-major
