"""Default values that the library, the command-line flags and the shell runners share (no torch import)."""

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_MODEL = "roberta-base"  # the paper's model, the default of --model
MAX_COUNT = 2**31 - 1  # no count a flag takes (epochs, samples, batch sizes, k) is meaningful beyond this

# Decoders, instruction mode: the question asked per emotion, with {emotion}.
DEFAULT_TEMPLATE = "Does this text express {emotion}? Answer yes or no."
# Decoders: the fixed text after the text; its last token is the read slot.
DEFAULT_ANSWER_CUE = "\nAnswer:"


@dataclass(frozen=True)
class TrainDefaults:
    """Step 1's defaults (the paper's setup). ``train.py``'s flags, ``api.train_prompt`` and ``train.sh``
    (which passes a flag only when its variable is set) all take them from here."""

    epochs: int = 50
    prompt_len: int = 100
    lr: float = 2e-3
    train_batch_size: int = 8
    eval_batch_size: int = 32
    max_length: int = 256


TRAIN = TrainDefaults()


def cache_dir() -> Path:
    """Where de-quantised GGUF models and downloaded ratings are kept: ``$ME_CACHE`` or
    ``~/.cache/model_emotion`` (``~`` expanded in both)."""
    return Path(os.environ.get("ME_CACHE") or Path.home() / ".cache" / "model_emotion").expanduser()
