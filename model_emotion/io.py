"""File I/O shared by every stage: atomic writes, JSON, and the run metadata beside outputs."""

from __future__ import annotations

import json
import logging
import os
import platform
import shutil
import sys
import tempfile
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

from .errors import ToolkitError

logger = logging.getLogger(__name__)


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it into place only if the block succeeds.

    An interrupted or failing write therefore never leaves a half file at ``path`` and never
    touches an existing file there.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


@contextmanager
def staged_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty staging folder beside ``path``; on success move its files into ``path``.

    For stages that write many files (the report): a failure part-way leaves ``path`` untouched.
    """
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=".staging-", dir=path))
    try:
        yield stage
        for item in sorted(stage.rglob("*")):
            if item.is_file():
                target = path / item.relative_to(stage)
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(item, target)
                logger.info("wrote %s", target)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | os.PathLike, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def write_csv(path: str | os.PathLike, frame, **kwargs) -> None:
    """Write a pandas DataFrame atomically (``index=False`` unless given)."""
    kwargs.setdefault("index", False)
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, **kwargs)


def read_json(path: str | os.PathLike) -> Any:
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ToolkitError(f"file not found: {path}") from None
    except json.JSONDecodeError as exc:
        raise ToolkitError(f"{path} is not valid JSON ({exc})") from None


def versions() -> dict[str, str]:
    """Versions of the interpreter and the libraries whose numbers can change results."""
    out = {"python": sys.version.split()[0], "platform": platform.platform()}
    for name in ("torch", "transformers", "datasets", "numpy", "scipy", "pandas", "numba"):
        module = sys.modules.get(name)
        if module is not None:
            out[name] = getattr(module, "__version__", "unknown")
    from . import __version__

    out["model_emotion"] = __version__
    return out


def save_run_args(output_dir: str | os.PathLike, args: Any, name: str) -> Path:
    """Write the run's arguments and library versions as ``{name}_args.json`` in ``output_dir``."""
    values = vars(args) if not isinstance(args, dict) else dict(args)
    record = {
        "script": name,
        "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "argv": sys.argv,
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in values.items()},
        "versions": versions(),
    }
    path = Path(output_dir) / f"{name}_args.json"
    write_json(path, record)
    return path
