"""The soft-prompt classifier: P trainable vectors in front of a frozen Hugging Face encoder.

The sequence is ``<mask> P_1..P_P <s> text </s>`` (RoBERTa spelling; ``[MASK] P.. [CLS] text
[SEP]`` for BERT). The class is read at the ``<mask>`` slot, either by an MLM verbalizer (the
logits of the label words, the paper's choice) or by a small trainable linear head for models
without an MLM head. Only the prompt (and the head) are trainable.

Two protocols build the input (``PromptConfig.protocol``):

- ``toolkit`` (default): Hugging Face's own position ids (RoBERTa's start after the padding index),
  the token-type embedding added at every position, the prompt alone read as ``<mask> P_1..P_P``,
  and the backbone in eval mode (no dropout), so a run is deterministic for a seed.
- ``paper``: exactly the original code's input (thunlp/Model_Emotion, ``framework/roberta.py``):
  position ids 0..L-1 over the whole sequence (so the slot gets RoBERTa's position row 0 and P_1
  the padding row), no token-type embedding on the prompt vectors, the prompt alone read as
  ``<mask> P_1..P_P <s>``, roberta-base's hard-coded label ids, and dropout active in the frozen
  backbone while training.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext

import torch
from torch import nn

from model_emotion.errors import ToolkitError
from model_emotion.lm.architectures import mlm_head_modules, slot_only_last_block
from model_emotion.lm.batching import EncodedTask, encode
from model_emotion.lm.loading import has_mlm_head
from model_emotion.prompts.base import TrainablePrompt
from model_emotion.prompts.config import (
    PAPER_LABEL_IDS,
    PAPER_VOCAB_SIZE,
    PromptConfig,
    backbone_signature,
    max_text_positions,
)

logger = logging.getLogger(__name__)


class SoftPromptModel(TrainablePrompt):
    """A frozen backbone with a trainable soft prompt (and optional linear head)."""

    def __init__(self, backbone: nn.Module, tokenizer, config: PromptConfig):
        super().__init__()
        self.config = config
        self.tokenizer = tokenizer  # not a module: kept so that callers can encode texts for this prompt
        self.backbone = backbone
        backbone.requires_grad_(False)
        backbone.eval()
        self.encoder = backbone.base_model
        self.embeddings = backbone.get_input_embeddings()
        config.extra.setdefault("backbone", backbone_signature(backbone))
        hidden = self.embeddings.embedding_dim
        if tokenizer.mask_token_id is None:
            raise ToolkitError(f"the tokenizer of {config.model} has no mask token to mark the classification slot")
        self.register_buffer("mask_token_id", torch.tensor([tokenizer.mask_token_id]), persistent=False)
        if self.paper:
            # The original reads the prompt alone as ``<mask> P_1..P_P <s>``: the text's start token.
            start = tokenizer.cls_token_id if tokenizer.cls_token_id is not None else tokenizer.bos_token_id
            if start is None:
                raise ToolkitError(
                    f"the tokenizer of {config.model} has no start token (<s>/[CLS]) for {{--protocol}} paper"
                )
            self.register_buffer("start_token_id", torch.tensor([start]), persistent=False)
        limit = max_text_positions(backbone, tokenizer, config.protocol)
        if 1 + config.prompt_len + config.max_length > limit:
            raise ToolkitError(
                f"prompt too long: 1 slot + {{--prompt_len}} {config.prompt_len} + {{--max_length}} {config.max_length} "
                f"= {1 + config.prompt_len + config.max_length} positions, but {config.model} allows {limit}; "
                f"lower {{--prompt_len}} or {{--max_length}}"
            )

        generator = torch.Generator().manual_seed(config.seed)
        self.prompt = nn.Parameter(self._init_prompt(tokenizer, generator))  # [P, hidden]
        self.head: nn.Module | None = None
        self.head_modules: list[nn.Module] = []
        if config.head == "linear":
            self.head = self.linear_head(hidden, generator)
        else:
            if not has_mlm_head(backbone):
                raise ToolkitError(
                    f"{config.model} was loaded without a masked-LM head, which an MLM-verbalizer prompt "
                    f"needs: train with a linear head ({{stage:train}} --head linear)"
                )
            self.head_modules = mlm_head_modules(backbone)  # [] = unknown type: the full model's logits
            ids = self._paper_label_ids(backbone, tokenizer) if self.paper else None
            ids = ids or [self._label_token_ids(tokenizer, word) for word in config.verbalizer]
            width = max(len(x) for x in ids)
            table = torch.tensor([x + [x[-1]] * (width - len(x)) for x in ids])  # [2, width]
            weight = torch.tensor([[1.0 / len(x)] * len(x) + [0.0] * (width - len(x)) for x in ids])
            self.register_buffer("label_ids", table, persistent=False)
            self.register_buffer("label_weight", weight, persistent=False)

    @staticmethod
    def _label_token_ids(tokenizer, word: str) -> list[int]:
        # RoBERTa-style BPE marks a word start with a leading space; WordPiece ignores it.
        for form in (" " + word, word):
            ids = tokenizer(form, add_special_tokens=False)["input_ids"]
            if len(ids) == 1:
                return ids
        ids = tokenizer(" " + word, add_special_tokens=False)["input_ids"]
        if not ids:
            raise ToolkitError(f"verbalizer word {word!r} is empty after tokenization")
        logger.warning("label word %r is %d tokens; its logit is the mean over them", word, len(ids))
        return ids

    @staticmethod
    def _paper_label_ids(backbone: nn.Module, tokenizer) -> list[list[int]] | None:
        """roberta-base's hard-coded label ids of the original code, or None for another vocabulary."""
        if backbone.config.model_type != "roberta" or len(tokenizer) != PAPER_VOCAB_SIZE:
            return None
        spellings = tokenizer.convert_ids_to_tokens(list(PAPER_LABEL_IDS))
        logger.info("paper protocol: label ids %s = tokens %s (negative, positive)", list(PAPER_LABEL_IDS), spellings)
        return [[i] for i in PAPER_LABEL_IDS]

    def train(self, mode: bool = True):
        super().train(mode)
        # Frozen either way; the original code trained with the backbone's dropout active.
        self.backbone.train(mode and self.paper)
        return self

    alone_position = 0  # where activations are read when the input is the prompt alone: the slot

    def encode_task(self, texts, labels) -> EncodedTask:
        """Token ids of ``texts`` as this model reads them (special tokens, truncated to max_length)."""
        return encode(self.tokenizer, list(texts), labels, self.config.max_length)

    @property
    def extra_tokens(self) -> int:
        """Positions the model adds in front of every text: the slot and the soft prompt."""
        return 1 + self.config.prompt_len

    def prefix_embeds(self, batch_size: int) -> torch.Tensor:
        """``<mask> P_1..P_P`` for each row. [batch, 1 + P, hidden]"""
        slot = self.embeddings(self.mask_token_id).to(self.prompt.dtype)  # [1, hidden]
        prefix = torch.cat([slot, self.prompt], dim=0)  # [1 + P, hidden]
        return prefix.unsqueeze(0).expand(batch_size, -1, -1)

    def _inputs(
        self, input_ids: torch.Tensor | None, attention_mask: torch.Tensor | None, batch_size: int
    ) -> dict[str, torch.Tensor]:
        """The encoder's keyword inputs for ``<mask> P_1..P_P`` followed by the text.

        With ``input_ids`` None the input is the prompt alone: ``<mask> P_1..P_P`` (toolkit) or
        ``<mask> P_1..P_P <s>`` (paper). Returns inputs_embeds [batch, L, hidden], attention_mask
        [batch, L] and, under the paper protocol, position_ids [batch, L] = 0..L-1.
        """
        if input_ids is None:
            embeds = self.prefix_embeds(batch_size)
            if self.paper:
                start = self.embeddings(self.start_token_id).to(self.prompt.dtype)  # [1, hidden]
                embeds = torch.cat([embeds, start.unsqueeze(0).expand(batch_size, -1, -1)], dim=1)
            mask = torch.ones(embeds.shape[:2], dtype=torch.long, device=embeds.device)
        else:
            batch = input_ids.shape[0]
            text = self.embeddings(input_ids).to(self.prompt.dtype)  # [batch, T, hidden]
            embeds = torch.cat([self.prefix_embeds(batch), text], dim=1)
            ones = torch.ones(
                batch, 1 + self.config.prompt_len, dtype=attention_mask.dtype, device=attention_mask.device
            )
            mask = torch.cat([ones, attention_mask], dim=1)
        inputs = {"inputs_embeds": embeds.to(self.embeddings.weight.dtype), "attention_mask": mask}  # --dtype
        if self.paper:
            inputs["position_ids"] = torch.arange(embeds.shape[1], device=embeds.device).expand(embeds.shape[0], -1)
        return inputs

    @contextmanager
    def _paper_token_types(self) -> Iterator[None]:
        """Under the paper protocol, no token-type embedding on the prompt vectors (positions 1..P).

        The original adds it to the slot and the text tokens only; zeroing those rows of the
        token-type output is exact (no add-and-subtract rounding).
        """
        token_types = getattr(getattr(self.encoder, "embeddings", None), "token_type_embeddings", None)
        if not self.paper or token_types is None:
            yield
            return
        prompt = slice(1, 1 + self.config.prompt_len)

        def drop_prompt_rows(_module, _inputs, output):
            output = output.clone()  # [batch, L, hidden]
            output[:, prompt] = 0
            return output

        handle = token_types.register_forward_hook(drop_prompt_rows)
        try:
            yield
        finally:
            handle.remove()

    def encode(self, inputs: dict[str, torch.Tensor], slot_only: bool = True):
        """Run the backbone's encoder on ``_inputs``' output (the protocol's embeddings)."""
        # The slot-only last block has no attention dropout: skip it while dropout is active.
        slot_only = slot_only and not self.backbone.training
        with self._paper_token_types(), slot_only_last_block(self.backbone) if slot_only else nullcontext():
            return self.encoder(**inputs)

    def slot_hidden(
        self, input_ids: torch.Tensor | None = None, attention_mask: torch.Tensor | None = None, batch_size: int = 1
    ) -> torch.Tensor:
        """Hidden state at the classification slot. [batch, hidden]

        With ``input_ids=None`` the input is the prompt alone, where activations are read.
        """
        return self.hidden_from_inputs(self._inputs(input_ids, attention_mask, batch_size))

    def hidden_from_inputs(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """The slot's hidden state for ``_inputs``' output (possibly several prompts' rows stacked). [batch, hidden]"""
        return self.encode(inputs)[0][:, 0]

    def classify(self, hidden: torch.Tensor) -> torch.Tensor:
        """Two logits (negative, positive) from the slot's hidden state. [batch, 2]"""
        if self.head is not None:
            return self.head(hidden.to(self.head.weight.dtype))
        vocab_logits = hidden
        for module in self.head_modules:
            vocab_logits = module(vocab_logits)  # -> [batch, vocab]
        picked = vocab_logits[:, self.label_ids]  # [batch, 2, width]
        return (picked * self.label_weight).sum(-1)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        if self.head is None and not self.head_modules:
            return self._full_mlm_logits(input_ids, attention_mask)
        return self.classify(self.slot_hidden(input_ids, attention_mask))

    def _full_mlm_logits(self, input_ids, attention_mask):
        # Model types without a known MLM-head table entry: run the whole MLM model, read slot 0.
        with self._paper_token_types():
            logits = self.backbone(**self._inputs(input_ids, attention_mask, input_ids.shape[0])).logits[
                :, 0
            ]  # [batch, vocab]
        return (logits[:, self.label_ids] * self.label_weight).sum(-1)
