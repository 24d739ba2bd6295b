"""The prompt-model factory: ``build_prompt_model`` picks the encoder model (``encoder_prompt``) or the
decoder model (``decoder_prompt``) that fits a loaded backbone. The config lives in ``prompt_config``,
the shared base and the ``PromptModel`` protocol in ``prompt_base``."""

from __future__ import annotations

from torch import nn

from model_emotion.errors import ConfigError
from model_emotion.lm.loading import is_decoder
from model_emotion.prompts.base import PromptModel
from model_emotion.prompts.config import PromptConfig
from model_emotion.prompts.decoder import DecoderPromptModel
from model_emotion.prompts.encoder import SoftPromptModel


def build_prompt_model(backbone: nn.Module, tokenizer, config: PromptConfig) -> PromptModel:
    """The prompt model that fits the backbone: ``SoftPromptModel`` for encoders, ``DecoderPromptModel``
    (``decoder_prompt``) for decoders."""
    if is_decoder(backbone):
        return DecoderPromptModel(backbone, tokenizer, config)
    if config.prompt_mode != "soft":
        raise ConfigError(
            f"{{--prompt_mode}} {config.prompt_mode} needs a decoder LM; {config.model} is a "
            f"{backbone.config.model_type} encoder"
        )
    if config.head == "lm":
        raise ConfigError(f"{{--head}} lm is for decoders; {config.model} is an encoder: use mlm or linear")
    return SoftPromptModel(backbone, tokenizer, config)
