"""Prompt checkpoints: ``{sentiment}-{seed}.pt`` dicts that ``torch.load(weights_only=True)`` reads.

Keys: ``best_prompt`` [P, hidden], ``best_acc``, ``epoch``, ``final_prompt``, ``final_acc``,
``config`` (a PromptConfig dict), ``test_acc``, ``history``, and ``best_head`` / ``final_head``
when a linear head is used. Checkpoints written by the original code (only the first five keys,
no config) load too: their config is completed from the caller's model name, an MLM head, a
``<mask>`` init and the ``paper`` protocol, under which they give the original code's activations
(and, with its sampler and per-batch means, its masked accuracies).
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from model_emotion.errors import ToolkitError
from model_emotion.io.files import atomic_path, torch_save
from model_emotion.io.tensors import read_tensor_file
from model_emotion.prompts.config import PromptConfig, backbone_signature
from model_emotion.prompts.factory import build_prompt_model
from model_emotion.util.names import split_run_name

logger = logging.getLogger(__name__)

STATES = ("best", "final")


def save_checkpoint(path: str | Path, record: dict, exclusive: bool = False) -> None:
    """Write a checkpoint atomically; ``exclusive`` refuses to replace one (also one written meanwhile)."""
    try:
        with atomic_path(path, exclusive=exclusive) as tmp:
            torch_save(record, tmp)
    except FileExistsError:
        raise ToolkitError(
            f"checkpoint {path} was written by another run meanwhile; this run's result is "
            f"discarded (pass {{--overwrite}} to replace it)"
        ) from None


def _as_float(value) -> float:
    return float(value.item() if isinstance(value, torch.Tensor) else value)


def load_checkpoint(path: str | Path, model_name: str | None = None) -> dict:
    """Read a checkpoint and return it with a complete ``config`` dict and plain-float accuracies."""
    path = Path(path)
    if not path.exists():
        raise ToolkitError(
            f"checkpoint not found: {path} (train it first with {{stage:train}}, or set {{--checkpoint_dir}})"
        )
    record = read_tensor_file(path, "prompt checkpoint")
    if not isinstance(record, dict) or "best_prompt" not in record:
        raise ToolkitError(f"{path} is not a prompt checkpoint (no 'best_prompt' key)")
    prompt = record["best_prompt"]
    if not isinstance(prompt, torch.Tensor) or prompt.dim() != 2 or not prompt.is_floating_point():
        raise ToolkitError(f"{path}: best_prompt must be a [prompt_len, hidden] float tensor")
    if not bool(torch.isfinite(prompt).all()):
        raise ToolkitError(f"{path}: best_prompt holds NaN or infinite values")
    if not isinstance(record.get("config") or {}, dict):
        raise ToolkitError(f"{path}: its config is {type(record['config']).__name__}, not a dict")
    config = dict(record.get("config") or {})
    if not config:  # written by the original code
        stem_sentiment, stem_seed = split_run_name(path.stem) or (None, 1)
        config = {
            "model": model_name or "roberta-base",
            "head": "mlm",
            "prompt_init": "mask",
            "sentiment": stem_sentiment,
            "seed": stem_seed,
            "protocol": "paper",
            "extra": {"original_code": True},
        }
    config["prompt_len"] = int(prompt.shape[0])
    record["config"] = config
    for key in ("best_acc", "final_acc", "test_acc"):
        if key in record and record[key] is not None:
            record[key] = _as_float(record[key])
    record.setdefault("final_prompt", prompt)
    record.setdefault("final_acc", record.get("best_acc"))
    return record


def prompt_model_from_checkpoint(
    record: dict, backbone, tokenizer, state: str = "best", path: str | Path = "checkpoint", protocol: str | None = None
):
    """Build the prompt model (``build_prompt_model``) over an already loaded backbone with the checkpoint's prompt.

    ``protocol`` overrides the protocol the checkpoint was trained with (None keeps it; checkpoints
    of the original code count as ``paper``).
    """
    if state not in STATES:
        raise ToolkitError(f"{{--state}} {state!r} unknown; choose one of {', '.join(STATES)}")
    config = PromptConfig.from_dict(record["config"])
    if protocol is not None and protocol != config.protocol:
        logger.warning("%s: trained under the %s protocol, read under --protocol %s", path, config.protocol, protocol)
        config.protocol = protocol
    trained_on = config.extra.get("backbone")
    here = backbone_signature(backbone)
    if trained_on and trained_on != here:
        diff = ", ".join(f"{k} {trained_on.get(k)} vs {here[k]}" for k in here if trained_on.get(k) != here[k])
        raise ToolkitError(
            f"{path}: prompt trained on another model ({config.model}; {diff}); pass that model with {{--model}}"
        )
    hidden = backbone.get_input_embeddings().embedding_dim
    prompt = record[f"{state}_prompt"]
    if prompt.shape[1] != hidden:
        raise ToolkitError(
            f"{path}: prompt hidden size {prompt.shape[1]} does not match the model's {hidden} "
            f"(checkpoint trained on {config.model}?)"
        )
    model = build_prompt_model(backbone, tokenizer, config)
    model.load_trainable_state(prompt, record.get(f"{state}_head"))
    return model
