"""What defines a prompt model: ``PromptConfig`` (validated on construction, stored in every checkpoint),
its enumerations, and the facts about a backbone a prompt depends on (its signature, its positions)."""

from __future__ import annotations

import string
from dataclasses import asdict, dataclass, field

from torch import nn

from model_emotion.defaults import DEFAULT_ANSWER_CUE, DEFAULT_TEMPLATE
from model_emotion.errors import ConfigError
from model_emotion.lm.architectures import position_offset
from model_emotion.lm.loading import HEADS

PROMPT_INITS = ("vocab", "mask", "normal")
DEFAULT_VERBALIZER = ("negative", "positive")
PROTOCOLS = ("toolkit", "paper")
# soft: a trained soft prompt; instruction (decoders): a natural-language question, nothing trained.
PROMPT_MODES = ("soft", "instruction")

# The original code reads roberta-base's vocabulary logits at these ids (its comment: "positive":
# 22173, "negative": 33407), not at the tokenised label words. Used under --protocol paper when the
# tokenizer is roberta-base's (RoBERTa type, 50265 entries); the spellings are logged at run time.
PAPER_LABEL_IDS = (33407, 22173)
PAPER_VOCAB_SIZE = 50265


@dataclass
class PromptConfig:
    """What defines a soft prompt; validated on construction and stored in every checkpoint."""

    model: str
    prompt_len: int = 100
    head: str = "mlm"
    verbalizer: tuple[str, ...] = DEFAULT_VERBALIZER
    prompt_init: str = "vocab"
    max_length: int = 256
    seed: int = 1
    sentiment: str | None = None
    protocol: str = "toolkit"
    prompt_mode: str = "soft"
    template: str = DEFAULT_TEMPLATE  # instruction mode: the question, with {emotion}
    answer_cue: str = DEFAULT_ANSWER_CUE  # decoders: the fixed suffix after the text, read at its last token
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.protocol not in PROTOCOLS:
            raise ConfigError(f"{{--protocol}} {self.protocol!r} unknown; choose one of {', '.join(PROTOCOLS)}")
        if self.prompt_mode not in PROMPT_MODES:
            raise ConfigError(
                f"{{--prompt_mode}} {self.prompt_mode!r} unknown; choose one of {', '.join(PROMPT_MODES)}"
            )
        if self.prompt_mode == "instruction":
            check_template(self.template)
            self.prompt_len = 0  # nothing trained
        elif self.prompt_len < 1:
            raise ConfigError(f"{{--prompt_len}} {self.prompt_len} must be at least 1")
        if self.head not in HEADS:
            raise ConfigError(f"{{--head}} {self.head!r} unknown; choose one of {', '.join(HEADS)}")
        if self.prompt_init not in PROMPT_INITS:
            raise ConfigError(
                f"{{--prompt_init}} {self.prompt_init!r} unknown; choose one of {', '.join(PROMPT_INITS)}"
            )
        if self.head in ("mlm", "lm") and len(self.verbalizer) != 2:
            raise ConfigError(
                f"{{--verbalizer}} needs two label words (negative class, positive class), got {list(self.verbalizer)}"
            )
        if self.max_length < 2:
            raise ConfigError(f"{{--max_length}} {self.max_length} must be at least 2")
        self.verbalizer = tuple(self.verbalizer)

    def to_dict(self) -> dict:
        out = asdict(self)
        out["verbalizer"] = list(self.verbalizer)
        return out

    @classmethod
    def from_dict(cls, values: dict) -> PromptConfig:
        known = {k: v for k, v in values.items() if k in cls.__dataclass_fields__}
        return cls(**known)


SIGNATURE_FIELDS = ("model_type", "hidden_size", "num_hidden_layers", "intermediate_size", "vocab_size")


def check_paper_quirks(
    protocol: str | None,
    negative_sampling: str | None = None,
    accuracy_mean: str = "overall",
    multi_prompt: bool = False,
) -> None:
    """The one owner of the protocol's cross-setting rules. The original code's quirks are
    reproduction aids, allowed only under the paper protocol; and batched training (``multi_prompt``)
    keeps the backbone in eval mode, which the paper protocol (dropout while training) cannot."""
    if protocol != "paper" and negative_sampling == "paper":
        raise ConfigError(
            "{--negative_sampling} paper reproduces a bug of the original code; it needs {--protocol} paper"
        )
    if protocol != "paper" and accuracy_mean != "overall":
        raise ConfigError("{--accuracy_mean} per_batch reproduces the original evaluation; it needs {--protocol} paper")
    if multi_prompt and protocol == "paper":
        raise ConfigError(
            "{--multi_prompt} keeps the backbone in eval mode; {--protocol} paper trains with dropout, "
            "which would make a row depend on the other jobs' rows: train those jobs one by one"
        )


def check_template(template: str) -> str:
    """An instruction template must name ``{emotion}`` and no other field."""
    try:
        fields = {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
    except ValueError as exc:
        raise ConfigError(
            f"{{--template}} {template!r} is not a valid format string ({exc}); write {{emotion}} where "
            f"the emotion goes and double other braces"
        ) from None
    if fields != {"emotion"}:
        raise ConfigError(
            f"{{--template}} {template!r} must contain {{emotion}} (and no other {{field}}); got "
            f"{sorted(fields) or 'no field'}"
        )
    return template


def backbone_signature(model: nn.Module) -> dict:
    """What a prompt depends on: checkpoints record it, and loading onto another model is refused."""
    return {name: getattr(model.config, name, None) for name in SIGNATURE_FIELDS}


def max_text_positions(model: nn.Module, tokenizer, protocol: str = "toolkit") -> int:
    """How many positions the backbone accepts in total (the paper protocol counts from 0)."""
    config = model.config
    limit = getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None)
    if limit is None:
        return 1 << 30
    if protocol == "toolkit":
        limit -= position_offset(model)
    return int(limit)
