"""Loading the frozen backbone and its tokenizer: folders, hub ids and GGUF files.

Encoders load with their masked-LM head when it is trained (``AutoModelForMaskedLM``) and as the
bare model otherwise; decoders (``architectures``' family ``decoder``) load as causal LMs. A
``.gguf`` file is de-quantised by transformers (which needs the ``gguf`` package) once; the
result is cached as an ordinary model folder under ``$ME_CACHE`` (default
``~/.cache/model_emotion``), keyed by the file's SHA-256, so later loads take about a second.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import json
import logging
import os
import shutil
import sys
import tempfile
from pathlib import Path

import torch
from torch import nn

from model_emotion.defaults import cache_dir
from model_emotion.errors import ConfigError, MissingDependencyError, ToolkitError
from model_emotion.lm.architectures import ARCHITECTURES, architecture

logger = logging.getLogger(__name__)

HEADS = ("mlm", "linear", "lm")  # mlm: an encoder's MLM verbalizer; lm: a decoder's LM-head verbalizer
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
GGUF_SUFFIX = ".gguf"


def has_mlm_head(model: nn.Module) -> bool:
    """Whether ``model`` carries an output (vocabulary) head over its base model."""
    return (
        hasattr(model, "get_output_embeddings")
        and model.get_output_embeddings() is not None
        and model.base_model is not model
    )


def is_decoder(model: nn.Module) -> bool:
    arch = ARCHITECTURES.get(getattr(model, "backbone", model).config.model_type)
    return arch is not None and arch.family == "decoder"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def _importable(package: str) -> bool:
    try:
        importlib.import_module(package)
    except ImportError:
        return False
    return True


def _find_gguf(name: str) -> Path | None:
    """The GGUF file that ``name`` designates: the file itself, or the only one in a folder without config.json."""
    path = Path(name).expanduser()
    if path.suffix.lower() == GGUF_SUFFIX:
        if not path.is_file():
            if name.count("/") == 2 and not name.startswith((".", "/", "~")):
                return _download_gguf(name)
            raise ToolkitError(f"{name}: no such GGUF file")
        return path
    if path.is_dir() and not (path / "config.json").exists():
        found = sorted(path.glob(f"*{GGUF_SUFFIX}"))
        if len(found) > 1:
            raise ConfigError(
                f"{path} holds several GGUF files ({', '.join(p.name for p in found)}); give the file path"
            )
        return found[0] if found else None
    return None


def _download_gguf(name: str) -> Path:
    """``owner/repo/file.gguf`` on the Hugging Face hub, downloaded to the hub cache."""
    from huggingface_hub import hf_hub_download

    owner, repo, filename = name.split("/")
    try:
        return Path(hf_hub_download(repo_id=f"{owner}/{repo}", filename=filename))
    except Exception as exc:  # the hub client raises many types (network, 404, auth)
        raise ToolkitError(f"cannot download {filename} from {owner}/{repo}: {str(exc).splitlines()[0]}") from None


CACHE_RECORD = "cache_record.json"


def _cache_problem(folder: Path, source: str) -> str | None:
    """Why a cache entry cannot be trusted (None when it can): it must record the digest of the GGUF
    file it came from and of each of its own files, and both must still match."""
    try:
        record = json.loads((folder / CACHE_RECORD).read_text())
    except (OSError, ValueError, RecursionError):
        return "no readable cache record"
    if not isinstance(record, dict) or record.get("gguf_sha256") != source:
        return "made from another GGUF file"
    files = record.get("files")
    present = {p.name for p in folder.iterdir() if p.is_file() and p.name != CACHE_RECORD}
    if not isinstance(files, dict) or set(files) != present:
        return "its files differ from its record"
    for name, digest in files.items():
        if _sha256(folder / name) != digest:
            return f"{name} changed since it was written"
    return None


def dequantised_folder(gguf: Path) -> Path:
    """A model folder (config, safetensors, tokenizer) of the de-quantised GGUF file, made once."""
    if not _importable("gguf"):
        raise MissingDependencyError(f"{gguf} is a GGUF file; reading it needs the gguf package: pip install gguf")
    if not _importable("accelerate"):
        raise MissingDependencyError(
            f"{gguf} is a GGUF file; transformers reads it with the accelerate package: pip install accelerate"
        )
    source = _sha256(gguf)
    folder = cache_dir() / f"gguf-{source[:32]}"
    if folder.is_dir():
        problem = _cache_problem(folder, source)
        if problem is None:
            return folder
        logger.warning("%s: %s; de-quantising %s again", folder, problem, gguf)
        stale = folder.with_name(f".stale-{folder.name}-{os.getpid()}")
        os.replace(folder, stale)
        shutil.rmtree(stale, ignore_errors=True)
    from safetensors.torch import save_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    logger.info("de-quantising %s once (cached in %s)", gguf, folder)
    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    except Exception as exc:  # noqa: BLE001 - truncated or crafted files fail in many ways inside the readers
        reason = (str(exc).splitlines() or [type(exc).__name__])[0][:200]
        raise ToolkitError(f"cannot read {gguf} as a GGUF model ({type(exc).__name__}: {reason})") from None
    # transformers refuses save_pretrained on a GGUF-loaded model: write the plain folder by hand.
    # Written beside the cache entry and renamed into place whole: a reader sees all of it or nothing.
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".gguf-", dir=folder.parent))
    try:
        save_model(model, str(tmp / "model.safetensors"))  # handles the tied embedding / LM head
        model.config.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        record = {"gguf_sha256": source, "files": {p.name: _sha256(p) for p in sorted(tmp.iterdir()) if p.is_file()}}
        (tmp / CACHE_RECORD).write_text(json.dumps(record, indent=1))
        try:
            os.replace(tmp, folder)
        except OSError:
            if not folder.is_dir():  # not a concurrent process that finished first
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


def resolve_model_name(name: str) -> str:
    """A loadable folder or hub id for ``name`` (GGUF files become their cached de-quantised folder)."""
    gguf = _find_gguf(name)
    if gguf is not None:
        return str(dequantised_folder(gguf))
    looks_local = name.startswith((".", "/", "~")) or Path(name).expanduser().exists() or name.count("/") > 1
    if looks_local and not Path(name).expanduser().is_dir():
        raise ToolkitError(
            f"{{--model}} {name}: no such folder (give a local model folder, a .gguf file or a hub id "
            f"like roberta-base)"
        )
    return str(Path(name).expanduser()) if looks_local else name


def _first_line(exc: Exception) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0]


@contextlib.contextmanager
def _quiet_transformers():
    """transformers' warnings off while loading; its bars only on a terminal (no carriage returns in logs)."""
    import transformers

    previous = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()
    bars = transformers.logging.is_progress_bar_enabled()
    if not sys.stderr.isatty():
        transformers.logging.disable_progress_bar()
    try:
        yield
    finally:
        transformers.logging.set_verbosity(previous)
        if bars:
            transformers.logging.enable_progress_bar()


def _from_pretrained(cls, name: str, **kwargs):
    """``cls.from_pretrained(name)`` with a loading failure said in one line."""
    try:
        return cls.from_pretrained(name, **kwargs)
    except (OSError, ValueError) as exc:
        raise ToolkitError(f"cannot load {{--model}} {name}: {_first_line(exc)}") from None


def _load_decoder(name: str, config, head: str, torch_dtype):
    from transformers import AutoModelForCausalLM

    if head == "mlm":
        raise ConfigError(f"{name} is a decoder ({config.model_type}): use {{--head}} lm (its LM head) or linear")
    model = _from_pretrained(AutoModelForCausalLM, name, dtype=torch_dtype)
    chosen = "linear" if head == "linear" else "lm"
    logger.info(
        "loaded %s (%s decoder, %d layers, %s), head: %s",
        name,
        config.model_type,
        config.num_hidden_layers,
        torch_dtype,
        chosen,
    )
    return model, chosen


def _load_encoder(name: str, config, head: str, torch_dtype):
    """The MLM model when its head is trained (and wanted), the bare encoder otherwise."""
    from transformers import AutoModel, AutoModelForMaskedLM

    if head == "lm":
        raise ConfigError(f"{{--head}} lm is for decoders; {name} is a {config.model_type} model: use mlm or linear")
    model, mlm_trained = None, False
    if head in ("auto", "mlm"):
        try:
            model, info = AutoModelForMaskedLM.from_pretrained(name, output_loading_info=True, dtype=torch_dtype)
            prefix = model.base_model_prefix
            mlm_trained = not [k for k in info.get("missing_keys", []) if not k.startswith(prefix)]
        except ValueError:
            model = None  # the architecture has no masked-LM class
        except OSError as exc:
            raise ToolkitError(f"cannot load {{--model}} {name}: {_first_line(exc)}") from None
    if head == "mlm" and not mlm_trained:
        raise ConfigError(
            f"model {name} has no trained masked-LM head, which an MLM-verbalizer prompt needs: "
            f"train with a linear head ({{stage:train}} --head linear), or use the model the prompt "
            f"was trained on"
        )
    if not mlm_trained:
        model = model.base_model if model is not None else _from_pretrained(AutoModel, name, dtype=torch_dtype)
    chosen = "mlm" if mlm_trained else "linear"
    logger.info(
        "loaded %s (%s, %d layers), head: %s", name, model.config.model_type, model.config.num_hidden_layers, chosen
    )
    return model, chosen


def load_backbone(name: str, head: str = "auto", dtype: str | None = None):
    """Load the frozen model and tokenizer once; returns ``(model, tokenizer, head)``.

    ``head="auto"`` picks the MLM verbalizer when an encoder's checkpoint has trained MLM-head
    weights, the linear head otherwise (e.g. sentence encoders such as all-MiniLM-L6-v2), and the
    LM-head verbalizer (``lm``) for decoders. ``dtype`` (float32, bfloat16, float16) sets the
    weights' type; default float32.
    """
    from transformers import AutoConfig, AutoTokenizer

    if head not in ("auto",) + HEADS:
        raise ConfigError(f"{{--head}} {head!r} unknown; choose one of auto, {', '.join(HEADS)}")
    if dtype is not None and dtype not in DTYPES:
        raise ConfigError(f"{{--dtype}} {dtype!r} unknown; choose one of {', '.join(DTYPES)}")
    torch_dtype = DTYPES[dtype or "float32"]
    name = resolve_model_name(name)
    with _quiet_transformers():
        try:
            tokenizer = AutoTokenizer.from_pretrained(name)
            config = AutoConfig.from_pretrained(name)
        except (OSError, ValueError) as exc:
            raise ToolkitError(f"cannot load the tokenizer of {{--model}} {name}: {_first_line(exc)}") from None
        arch = architecture(config.model_type)  # every stage needs the FFN layout: refuse unknown types now
        load = _load_decoder if arch.family == "decoder" else _load_encoder
        model, chosen = load(name, config, head, torch_dtype)
    return model, tokenizer, chosen
