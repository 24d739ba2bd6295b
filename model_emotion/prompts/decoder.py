"""Prompts on decoder-only causal LMs (Llama, Qwen2, Mistral, GPT-2, SmolLM): soft and instruction.

A decoder reads left to right, so the class is read at the *last* real token of each row, after
the text:

- ``soft`` mode: ``[BOS] P_1..P_P text ANSWER_CUE``. P trainable vectors go in front of the text
  (after the BOS token when the tokenizer adds one), and the fixed answer cue (``"\\nAnswer:"`` by
  default, ``PromptConfig.answer_cue``) follows it. The read slot is the cue's last token.
- ``instruction`` mode (nothing trained): ``[BOS] "Text:" " " text "\\n" QUESTION ANSWER_CUE``,
  QUESTION being ``PromptConfig.template`` with the emotion filled in. The read slot is the cue's
  last token, the answer slot.

At the read slot the LM head's logits of the two verbalizer words (``--verbalizer``, default
" no"/" yes"; each must be one token) are the class logits, or a trainable linear head reads the
final hidden state. Rows are padded on the right and the read position is each row's last real
token: with causal attention a real token never sees padding, and the default position ids 0..L-1
are each row's own, so a row's logits do not depend on its batch neighbours (tested).

Activations (``get_active_neuron.py``) are read as for the encoder, with the prompt alone and no
text: ``[BOS] P ANSWER_CUE`` (soft) or ``[BOS] QUESTION ANSWER_CUE`` (instruction), at the last token.
The pieces (prefix, text, suffix) are tokenised separately and concatenated.
"""

from __future__ import annotations

import logging

import numpy as np
import torch
from torch import nn

from model_emotion.errors import ConfigError
from model_emotion.lm.architectures import architecture, get_module
from model_emotion.lm.batching import EncodedTask
from model_emotion.prompts.base import TrainablePrompt
from model_emotion.prompts.config import PromptConfig, backbone_signature, max_text_positions

logger = logging.getLogger(__name__)

DECODER_VERBALIZER = ("no", "yes")
INSTRUCTION_PREFIX = "Text:"


def single_token(tokenizer, word: str) -> int:
    """The one token id of a verbalizer word, preferring its word-initial (leading space) form."""
    for form in (" " + word.strip(), word):
        ids = tokenizer(form, add_special_tokens=False)["input_ids"]
        if len(ids) == 1:
            return int(ids[0])
    pieces = tokenizer.convert_ids_to_tokens(tokenizer(" " + word.strip(), add_special_tokens=False)["input_ids"])
    raise ConfigError(
        f"verbalizer word {word!r} is not a single token of this tokenizer (it is {pieces}); "
        f"choose words that are one token each, e.g. yes/no"
    )


def adds_bos(tokenizer) -> bool:
    bos = tokenizer.bos_token_id
    return bos is not None and tokenizer("a")["input_ids"][:1] == [bos]


class DecoderPromptModel(TrainablePrompt):
    """A frozen causal LM with a soft prompt (or an instruction) read at the last real token."""

    alone_position = -1  # activations of the prompt alone are read at its last token

    def __init__(self, backbone: nn.Module, tokenizer, config: PromptConfig):
        super().__init__()
        arch = architecture(backbone)
        if arch.family != "decoder":
            raise ConfigError(f"{config.model} is not a decoder")
        if config.protocol != "toolkit":
            raise ConfigError(
                f"{{--protocol}} {config.protocol} describes the original RoBERTa code; decoders use "
                f"{{--protocol}} toolkit"
            )
        if config.head == "mlm":
            config.head = "lm"  # the decoder's counterpart of the MLM verbalizer
        if config.prompt_mode == "soft" and config.prompt_init != "vocab":
            raise ConfigError(f"{{--prompt_init}} {config.prompt_init}: a decoder has no mask token; use vocab")
        self.config = config
        self.tokenizer = tokenizer
        self.backbone = backbone
        backbone.requires_grad_(False)
        backbone.eval()
        self.encoder = backbone.base_model  # blocks + final norm: returns normalised hidden states
        self.embeddings = backbone.get_input_embeddings()
        config.extra.setdefault("backbone", backbone_signature(backbone))
        hidden = self.embeddings.embedding_dim

        self.pad_id = next(i for i in (tokenizer.pad_token_id, tokenizer.eos_token_id, 0) if i is not None)
        self.bos = [tokenizer.bos_token_id] if adds_bos(tokenizer) else []
        cue = self._ids(config.answer_cue)
        if config.prompt_mode == "instruction":
            question = config.template.format(emotion=config.sentiment or "emotion")
            self.prefix_ids = self._ids(INSTRUCTION_PREFIX)
            self.suffix_ids = self._ids("\n" + question) + cue
            self.alone_ids = self.bos + self._ids(question) + cue
            self.text_lead = " "
        else:
            self.prefix_ids, self.suffix_ids = [], cue
            self.alone_ids = self.bos + cue  # after the soft prompt
            self.text_lead = ""
        if not self.alone_ids:
            if config.prompt_mode == "instruction":
                raise ConfigError("the answer cue and the template are both empty: nothing marks the read slot")
            raise ConfigError(
                f"{{--answer_cue}} is empty and the tokenizer of {config.model} adds no start token: nothing "
                f"follows the soft prompt to read it at; give a non-empty {{--answer_cue}}"
            )
        limit = max_text_positions(backbone, tokenizer)
        used = len(self.bos) + config.prompt_len + len(self.prefix_ids) + config.max_length + len(self.suffix_ids)
        if used > limit:
            raise ConfigError(
                f"prompt too long: {used} positions with {{--max_length}} {config.max_length}, but "
                f"{config.model} allows {limit}; lower {{--prompt_len}} or {{--max_length}}"
            )

        generator = torch.Generator().manual_seed(config.seed)
        self.prompt = nn.Parameter(self._init_prompt(tokenizer, generator))  # [P, hidden]
        self.head: nn.Module | None = None
        if config.head == "linear":
            self.head = self.linear_head(hidden, generator)
        else:
            output = backbone.get_output_embeddings()
            if output is None:
                raise ConfigError(f"{config.model} has no LM head; use {{--head}} linear")
            ids = [single_token(tokenizer, word) for word in config.verbalizer]
            logger.info("verbalizer %s = tokens %s", list(config.verbalizer), tokenizer.convert_ids_to_tokens(ids))
            self.register_buffer("label_ids", torch.tensor(ids), persistent=False)
        self.final_norm = get_module(self.encoder, arch.final_norm)

    def _ids(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"] if text else []

    def train(self, mode: bool = True):
        super().train(mode)
        self.backbone.train(False)  # frozen, no dropout
        return self

    def encode_task(self, texts, labels) -> EncodedTask:
        """``prefix text suffix`` token ids per row; the text is truncated to ``max_length`` tokens."""
        texts = [self.text_lead + t for t in texts]
        ids = (
            self.tokenizer(texts, add_special_tokens=False, truncation=True, max_length=self.config.max_length)[
                "input_ids"
            ]
            if texts
            else []
        )
        rows = [self.prefix_ids + row + self.suffix_ids for row in ids]
        return EncodedTask(rows, np.asarray(labels, dtype=np.int64), self.pad_id)

    @property
    def extra_tokens(self) -> int:
        """Positions the model adds in front of every row's ids: the BOS token and the soft prompt."""
        return len(self.bos) + self.config.prompt_len

    def _lead_embeds(self, batch_size: int, dtype: torch.dtype) -> torch.Tensor:
        """``[BOS] P_1..P_P`` for each row. [batch, extra_tokens, hidden]"""
        parts = [self.prompt.to(dtype)]
        if self.bos:
            bos = torch.tensor(self.bos, device=self.prompt.device)
            parts.insert(0, self.embeddings(bos).to(dtype))
        return torch.cat(parts).unsqueeze(0).expand(batch_size, -1, -1)

    def _inputs(
        self, input_ids: torch.Tensor | None, attention_mask: torch.Tensor | None, batch_size: int = 1
    ) -> dict[str, torch.Tensor]:
        """The base model's keyword inputs; with ``input_ids`` None, the prompt alone."""
        dtype = self.embeddings.weight.dtype
        if input_ids is None:
            alone = torch.tensor(self.alone_ids[len(self.bos) :], device=self.prompt.device)
            lead = self._lead_embeds(batch_size, dtype)
            tail = self.embeddings(alone).to(dtype).unsqueeze(0).expand(batch_size, -1, -1)
            embeds = torch.cat([lead, tail], dim=1)
            mask = torch.ones(embeds.shape[:2], dtype=torch.long, device=embeds.device)
        else:
            batch = input_ids.shape[0]
            embeds = torch.cat([self._lead_embeds(batch, dtype), self.embeddings(input_ids).to(dtype)], dim=1)
            ones = torch.ones(batch, self.extra_tokens, dtype=attention_mask.dtype, device=attention_mask.device)
            mask = torch.cat([ones, attention_mask], dim=1)
        return {"inputs_embeds": embeds, "attention_mask": mask, "use_cache": False}

    @staticmethod
    def read_positions(attention_mask: torch.Tensor) -> torch.Tensor:
        """Each row's last real position (rows are padded on the right). [batch]"""
        return attention_mask.sum(dim=1) - 1

    def read(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """The final hidden state at each row's read slot. [batch, hidden]"""
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), self.read_positions(attention_mask)]

    def slot_hidden(
        self, input_ids: torch.Tensor | None = None, attention_mask: torch.Tensor | None = None, batch_size: int = 1
    ) -> torch.Tensor:
        """Final hidden state at the read slot. [batch, hidden]"""
        return self.hidden_from_inputs(self._inputs(input_ids, attention_mask, batch_size))

    def hidden_from_inputs(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """The read slot's hidden state for ``_inputs``' output (possibly several prompts' rows stacked)."""
        return self.read(self.encoder(**inputs)[0], inputs["attention_mask"])

    def classify(self, hidden: torch.Tensor) -> torch.Tensor:
        """Two logits (negative, positive) from the read slot's hidden state. [batch, 2]"""
        if self.head is not None:
            return self.head(hidden.to(self.head.weight.dtype))
        output = self.backbone.get_output_embeddings()
        bias = None if getattr(output, "bias", None) is None else output.bias[self.label_ids]
        return nn.functional.linear(hidden, output.weight[self.label_ids], bias)  # only the two label rows

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.classify(self.slot_hidden(input_ids, attention_mask)).float()
