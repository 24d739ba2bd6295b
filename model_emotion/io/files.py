"""File I/O shared by every stage: atomic writes, JSON, and the run metadata beside outputs."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import shutil
import socket
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from model_emotion.errors import ToolkitError

logger = logging.getLogger(__name__)


TMP_SUFFIX = ".tmp"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _pid_alive(pid: int) -> bool:
    """Whether a process of this PID runs on this host (a PID no system can have is not alive)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError, ValueError):
        return False
    except PermissionError:
        return True
    return True


def remove_stale_tmp(folder: str | os.PathLike) -> int:
    """Remove temporary files that a killed run left in ``folder`` (their process is gone).

    Temporary names carry the writer's PID (``.NAME.PID.XXXX.tmp``), so a live run's files stay.
    """
    removed = 0
    folder = Path(folder)
    if not folder.is_dir():
        return 0
    for item in folder.glob(f".*{TMP_SUFFIX}"):
        parts = item.name.split(".")
        pid = next((int(p) for p in reversed(parts[:-2]) if p.isdigit()), None)
        if pid is not None and pid != os.getpid() and not _pid_alive(pid) and item.is_file():
            item.unlink(missing_ok=True)
            removed += 1
    if removed:
        logger.info("removed %d stale temporary file(s) of an interrupted run in %s", removed, folder)
    return removed


@contextmanager
def atomic_path(path: str | os.PathLike, exclusive: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it into place only if the block succeeds.

    An interrupted or failing write therefore never leaves a half file at ``path`` and never
    touches an existing file there. The file gets the user's umask (not mkstemp's 0600). A link at
    ``path`` is replaced, never followed. ``exclusive=True`` refuses to replace an existing file,
    also one that another process created meanwhile (``FileExistsError``).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=TMP_SUFFIX, dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~_umask())
        if exclusive:
            os.link(tmp_path, path)  # atomic, and fails if path exists
        else:
            os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


EMPTY_LOCK_GRACE_S = 60.0  # versions before 0.4 created the lock, then wrote it: empty only for an instant


def _read_lock(lock: Path) -> dict | str:
    """The lock's record ({host, pid, start}), or a sentence saying what is wrong with it."""
    if lock.is_symlink() and not lock.exists():
        return "a dangling symbolic link"
    try:
        text = lock.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        return f"unreadable ({exc.strerror or type(exc).__name__})"
    if not text.strip():
        return "empty"
    try:
        record = json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        parts = text.split()  # the format before 0.4: "host pid"
        record = {"host": parts[0], "pid": parts[1]} if len(parts) == 2 else None
    if not isinstance(record, dict) or not isinstance(record.get("host"), str):
        return f"not a lock this toolkit wrote ({text[:40]!r})"
    pid = record.get("pid")
    if isinstance(pid, str) and pid.isdigit():
        pid = int(pid)
    if not isinstance(pid, int) or isinstance(pid, bool):
        return f"not a lock this toolkit wrote (pid {str(pid)[:40]!r})"
    return {**record, "pid": pid}


@contextmanager
def job_lock(path: str | os.PathLike) -> Iterator[None]:
    """Hold ``path.lock`` while one run writes ``path``; another run stops at once.

    The lock is written whole or not at all (a complete temporary file hard-linked into place, which
    fails if a lock exists) and records host, PID and start time. A lock of a process that is gone
    (same host), or an empty one older than a minute, is taken over; an unreadable, dangling or
    foreign lock, or one this very process holds, is reported as what it is.
    """
    lock = Path(f"{path}.lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    host = socket.gethostname()
    record = {"host": host, "pid": os.getpid(), "start": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    for _ in range(3):
        try:
            with atomic_path(lock, exclusive=True) as tmp:
                tmp.write_text(json.dumps(record), encoding="utf-8")
            break
        except FileExistsError:
            pass
        held = _read_lock(lock)
        if held == "empty" and time.time() - lock.stat().st_mtime > EMPTY_LOCK_GRACE_S:
            logger.warning("%s is empty (left by a run that failed while taking it); taking it over", lock)
            lock.unlink(missing_ok=True)
            continue
        if isinstance(held, str):
            raise ToolkitError(f"{path}: its lock {lock} is {held}; remove it if no run is writing {path}")
        if held["host"] == host and held["pid"] == os.getpid():
            raise ToolkitError(f"{path} is already being written by this process (is it listed twice?)")
        if held["host"] == host and not _pid_alive(held["pid"]):
            logger.info("%s: the run that held it (pid %s) is gone; taking it over", lock, held["pid"])
            lock.unlink(missing_ok=True)
            continue
        raise ToolkitError(
            f"{path} is being written by another run (pid {held['pid']} on {held['host']}, since "
            f"{held.get('start', '?')}, lock {lock}); wait for it, or remove the lock if that run is gone"
        )
    else:
        raise ToolkitError(f"{path}: could not take its lock {lock}; another run keeps taking it")
    try:
        yield
    finally:
        if _read_lock(lock) == record:
            lock.unlink(missing_ok=True)


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
        files = [item for item in sorted(stage.rglob("*")) if item.is_file()]
        # Check every target before moving any file: all of them are installed, or none.
        for item in files:
            target = path / item.relative_to(stage)
            if target.is_dir() and not target.is_symlink():
                raise ToolkitError(f"cannot write {target}: a folder of that name is in the way; nothing was written")
            if target.parent.exists() and not target.parent.is_dir():
                raise ToolkitError(f"cannot write {target}: {target.parent} is not a folder; nothing was written")
        for item in files:
            if item.is_file():
                target = path / item.relative_to(stage)
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(item, target)
                logger.info("wrote %s", target)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def torch_save(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` to ``path``; a failed write (full disk, quota) is an ``OSError`` as for any other
    output (torch reports it as a RuntimeError of its stream writer)."""
    import torch

    try:
        torch.save(obj, path)
    except RuntimeError as exc:
        if "write" not in str(exc).lower():
            raise
        raise OSError(f"{path}: {' '.join(str(exc).split())[:200]}") from None


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | os.PathLike, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def write_csv(path: str | os.PathLike, frame, **kwargs) -> None:
    """Write a pandas DataFrame atomically (``index=False`` unless given). Text cells and column names
    that a spreadsheet would run as a formula are written inert (``names.csv_safe``)."""
    from model_emotion.util.names import csv_safe

    kwargs.setdefault("index", False)
    frame = frame.rename(columns=lambda c: csv_safe(c) if isinstance(c, str) else c)
    text = [c for c in frame.columns if frame[c].dtype == object or str(frame[c].dtype).startswith("str")]
    if text:
        frame = frame.copy()
        for column in text:
            frame[column] = frame[column].map(csv_safe)
    if kwargs["index"] and frame.index.dtype == object:
        frame = frame.rename(index=csv_safe)
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, **kwargs)


def read_json(path: str | os.PathLike, kind: type | None = None) -> Any:
    """Parse a JSON file; ``kind`` (e.g. dict) is the type the top level must have."""
    path = Path(path)
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ToolkitError(f"file not found: {path}") from None
    except RecursionError:
        raise ToolkitError(f"{path}: its JSON nests too deeply") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ToolkitError(f"{path} is not valid JSON ({str(exc).splitlines()[0]})") from None
    except OSError as exc:
        raise ToolkitError(f"cannot read {path} ({exc.strerror or type(exc).__name__})") from None
    if kind is not None and not isinstance(value, kind):
        raise ToolkitError(f"{path} holds a JSON {type(value).__name__}, expected a JSON {kind.__name__}")
    return value


def read_csv(path: str | os.PathLike, what: str, required: Sequence[str] = (), **kwargs):
    """``pandas.read_csv`` for a user's file: any parse failure is one error naming the file and
    ``what`` it should be; ``required`` columns must be present and the table must have rows."""
    import pandas as pd

    path = Path(path)
    try:
        frame = pd.read_csv(path, **kwargs)
    except FileNotFoundError:
        raise ToolkitError(f"file not found: {path} ({what})") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError, OSError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ToolkitError(f"{path} is not {what} ({reason[:200]})") from None
    header = _header(path)
    twice = sorted({c for c in header if header.count(c) > 1})
    if twice:
        raise ToolkitError(f"{path} is not {what}: column {twice[0]!r} appears more than once")
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise ToolkitError(f"{path} is not {what}: no column {', '.join(map(repr, missing))}")
    if frame.empty:
        raise ToolkitError(f"{path} is not {what}: it has no rows")
    return frame


def _header(path: Path) -> list[str]:
    """The first row of a CSV file as written (pandas renames a repeated column to ``name.1``)."""
    import csv

    try:
        with open(path, newline="", encoding="utf-8", errors="replace") as handle:
            return next(csv.reader(handle), [])
    except (OSError, csv.Error):
        return []


def file_digest(path: str | os.PathLike) -> str:
    """SHA-256 of a file's content: what derived outputs record to tell when they went stale."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def versions() -> dict[str, str]:
    """Versions of the interpreter and the libraries whose numbers can change results."""
    out = {"python": sys.version.split()[0], "platform": platform.platform()}
    for name in ("torch", "transformers", "datasets", "numpy", "scipy", "pandas", "numba"):
        module = sys.modules.get(name)
        if module is not None:
            out[name] = getattr(module, "__version__", "unknown")
    from model_emotion import __version__

    out["model_emotion"] = __version__
    return out


def save_run_args(output_dir: str | os.PathLike, args: Any, name: str, **provenance: Any) -> Path:
    """Write the run's arguments and library versions as ``{name}_args.json`` in ``output_dir``;
    ``provenance`` (e.g. the digest of the input) goes in at the top level."""
    values = vars(args) if not isinstance(args, dict) else dict(args)
    record = {
        **provenance,
        "script": name,
        "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "argv": sys.argv,
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in values.items()},
        "versions": versions(),
    }
    path = Path(output_dir) / f"{name}_args.json"
    write_json(path, record)
    return path


META_FIELDS = {"num_layers": int, "d_ffn": int, "num_neurons": int, "alpha": float, "model": str, "protocol": str}


def meta_path(data_path: str | os.PathLike) -> Path:
    """``NAME_meta.json`` beside ``NAME.csv`` / ``NAME.pkl`` / ``NAME.npz``."""
    data_path = Path(data_path)
    return data_path.with_name(f"{data_path.stem}_meta.json")


def write_meta(data_path: str | os.PathLike, **fields: Any) -> Path:
    """The facts that travel with a data file (layers, FFN width, alpha, model, protocol, ...)."""
    path = meta_path(data_path)
    write_json(path, {k: v for k, v in fields.items() if v is not None})
    return path


MAX_LAYERS = 100_000


def read_meta(data_path: str | os.PathLike) -> dict:
    """The meta record beside ``data_path`` ({} when there is none); known fields are type-checked,
    a wrong one is dropped with a warning (the caller then derives it as before)."""
    path = meta_path(data_path)
    if not path.exists():
        return {}
    meta = read_json(path, dict)
    for name, kind in META_FIELDS.items():
        value = meta.get(name)
        if value is None:
            continue
        ok = (
            isinstance(value, kind) and not isinstance(value, bool)
            if kind is not float
            else isinstance(value, (int, float)) and not isinstance(value, bool) and value == value
        )
        if not ok or (kind is int and value < 1):
            logger.warning("%s: %s is %r, not a valid %s; ignored", path, name, value, kind.__name__)
            meta.pop(name)
    layers, width, neurons = meta.get("num_layers"), meta.get("d_ffn"), meta.get("num_neurons")
    if layers is not None and layers > MAX_LAYERS:
        raise ToolkitError(f"{path}: num_layers {layers} is above {MAX_LAYERS}; no model has that many")
    if layers and width and neurons and layers * width != neurons:
        raise ToolkitError(f"{path}: num_layers {layers} x d_ffn {width} is not its num_neurons {neurons}")
    if layers and neurons and neurons % layers:
        raise ToolkitError(f"{path}: num_layers {layers} does not divide its num_neurons {neurons}")
    return meta
