"""Settings that several stages share, each declared once here (a function per setting, since every
config class needs its own dataclass field)."""

from __future__ import annotations

from pathlib import Path

from model_emotion.defaults import DEFAULT_MODEL
from model_emotion.util.settings import setting

DTYPES = ("float32", "bfloat16", "float16")


def model():
    return setting(
        DEFAULT_MODEL,
        "Hugging Face hub id, local folder or .gguf file of the frozen model (env ME_MODEL; default %(default)s)",
        flags=("--model", "--pretrained_model"),
        env="ME_MODEL",
    )


def dtype():
    return setting(
        None,
        "type of the frozen weights (default float32; bfloat16 halves a decoder's memory, "
        "on CUDA bf16 autocast is used either way); activations are read in float32",
        kind="str",
        choices=(None,) + DTYPES,
    )


def data_dir():
    return setting(
        None,
        "local GoEmotions folder (train/dev/test.tsv + labels.txt, or the paper's "
        "CSVs); default: the Hugging Face hub (env ME_DATA_DIR)",
        kind="str",
        env="ME_DATA_DIR",
    )


def checkpoint_dir():
    return setting(
        Path("checkpoint"),
        "folder of {sentiment}-{seed}.pt prompt checkpoints (default %(default)s)",
        env="ME_CHECKPOINT_DIR",
    )


def device():
    return setting(
        None, "torch device (cpu, cuda, cuda:1); default: cuda if available, else cpu", kind="str", env="ME_DEVICE"
    )


def checkpoint_protocol():
    return setting(
        None,
        "model input and training: the toolkit's own or exactly the original code's (see README); "
        "default: the one the checkpoint was trained with (paper for the original code's checkpoints)",
        kind="str",
        choices=(None, "toolkit", "paper"),
        env="ME_PROTOCOL",
    )


def state():
    return setting("best", "which prompt of the checkpoint", choices=("best", "final"))


def overwrite(help_text: str):
    return setting(False, help_text)
