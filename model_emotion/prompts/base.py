"""What every prompt model shares: ``TrainablePrompt`` (the prompt and optional head it saves and
restores, their initialisation) and ``PromptModel``, the protocol that the encoder model
(``encoder_prompt.SoftPromptModel``) and the decoder model (``decoder_prompt.DecoderPromptModel``)
both satisfy and that the stages are written against."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np
import torch
from torch import nn

from model_emotion.errors import ToolkitError
from model_emotion.lm.batching import EncodedTask
from model_emotion.prompts.config import PromptConfig


@runtime_checkable
class PromptModel(Protocol):
    """A frozen backbone with a trained prompt that classifies a text at one read slot."""

    config: PromptConfig
    tokenizer: object
    backbone: nn.Module
    prompt: nn.Parameter
    head: nn.Module | None
    paper: bool
    extra_tokens: int  # positions the model adds around a text (slot, prompt, cue)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Two class logits per row. [batch, 2]"""

    def encode_task(self, texts, labels: np.ndarray) -> EncodedTask:
        """The texts tokenised for this model, with their labels."""

    def slot_hidden(self, ids: torch.Tensor | None) -> torch.Tensor:
        """The backbone run on the prompt alone (``ids`` None) or after ``ids``; read at the slot."""

    def trainable_state(self) -> dict[str, torch.Tensor]:
        """The prompt (and head) a checkpoint stores."""

    def load_trainable_state(self, prompt: torch.Tensor, head_state: dict | None = None) -> None:
        """Restore what ``trainable_state`` returned."""


class TrainablePrompt(nn.Module):
    """What every prompt model saves and restores: the prompt [P, hidden] and the optional linear head."""

    prompt: nn.Parameter
    head: nn.Module | None
    config: PromptConfig

    @property
    def paper(self) -> bool:
        """Built as the original code built its input (``--protocol paper``)."""
        return self.config.protocol == "paper"

    def _init_prompt(self, tokenizer, generator: torch.Generator) -> torch.Tensor:
        """P rows of the input embeddings (seeded random non-special tokens, or ``<mask>`` x P), or ``normal``:
        i.i.d. N(0, initializer_range^2) draws, what the original code's prompt really started from (its
        ``from_pretrained`` in transformers 4.28.1 re-initialises weights missing from the checkpoint, the
        prompt included, with the model's ``_init_weights``, discarding the constructor's ``<mask>`` copies). [P, hidden]"""
        weight = self.embeddings.weight.detach()
        P = self.config.prompt_len
        if self.config.prompt_init == "normal":
            std = float(getattr(self.backbone.config, "initializer_range", 0.02) or 0.02)
            return torch.randn((P, weight.shape[1]), generator=generator) * std
        if self.config.prompt_init == "mask":
            ids = torch.full((P,), tokenizer.mask_token_id)
        else:
            special = set(tokenizer.all_special_ids)
            pool = torch.tensor([i for i in range(min(len(tokenizer), weight.shape[0])) if i not in special])
            ids = pool[torch.randint(len(pool), (P,), generator=generator)]
        return weight[ids].clone().float()

    @staticmethod
    def linear_head(hidden: int, generator: torch.Generator) -> nn.Linear:
        """Two logits from a hidden state: seeded uniform(+-1/sqrt(hidden)) weights, zero bias."""
        head = nn.Linear(hidden, 2)
        with torch.no_grad():
            bound = 1.0 / hidden**0.5
            head.weight.uniform_(-bound, bound, generator=generator)
            head.bias.zero_()
        return head

    def trainable_state(self) -> dict[str, torch.Tensor]:
        """The only parameters a checkpoint needs: the prompt and, if any, the head."""
        state = {"prompt": self.prompt.detach().cpu().clone()}
        if self.head is not None:
            state.update({f"head.{k}": v.detach().cpu().clone() for k, v in self.head.state_dict().items()})
        return state

    def load_trainable_state(self, prompt: torch.Tensor, head_state: dict | None = None) -> None:
        if tuple(prompt.shape) != tuple(self.prompt.shape):
            raise ToolkitError(
                f"checkpoint prompt has shape {list(prompt.shape)}, but the model expects "
                f"{list(self.prompt.shape)} (prompt_len x hidden size of {self.config.model})"
            )
        with torch.no_grad():
            self.prompt.copy_(prompt.to(self.prompt.dtype))
            if self.head is not None:
                if not head_state:
                    raise ToolkitError("checkpoint has no linear-head weights, but its config says head=linear")
                self.head.load_state_dict({k.removeprefix("head."): v for k, v in head_state.items()})
