"""Running a stage's jobs: one (emotion, seed) after another with progress and one-line failures, a
job's own log file, and the check that an output folder can be written before any work."""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from model_emotion.errors import ToolkitError, one_line
from model_emotion.io.files import atomic_path, remove_stale_tmp
from model_emotion.util.names import run_name
from model_emotion.util.progress import Progress

logger = logging.getLogger(__name__)


def run_jobs(jobs: list[tuple[str, int]], run_one: Callable[[str, int], None], what: str = "jobs") -> int:
    """Run each job, logging after each one ``what`` done/total, the time so far and an estimate of the
    time left; with several, report a failing one in one line and go on; exit code 1 if any failed."""
    if len(jobs) == 1:
        run_one(*jobs[0])
        return 0
    failed = []
    progress = Progress(what, len(jobs))
    for emotion, seed in jobs:
        name = run_name(emotion, seed)
        try:
            run_one(emotion, seed)
        except KeyboardInterrupt:
            raise
        except Exception as exc:  # noqa: BLE001 - one job's failure, whatever it is, must not stop the others
            logger.error("%s failed: %s", name, one_line(exc))
            failed.append(name)
        progress.step(name, failed=name in failed)
    if failed:
        logger.error("%d of %d jobs failed: %s", len(failed), len(jobs), " ".join(failed))
    return 1 if failed else 0


def check_output_dir(path: str | os.PathLike, flag: str) -> Path:
    """Fail before any work when ``path`` cannot hold outputs: create it, try a file in it, and remove
    the temporary files that a killed run left there."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=path, prefix=".write-test-", delete=True)
        probe.close()
    except OSError as exc:
        raise ToolkitError(
            f"{flag} {path} is not a writable folder ({exc.strerror or type(exc).__name__}); choose another location"
        ) from None
    remove_stale_tmp(path)
    return path


@contextmanager
def job_log(path: str | os.PathLike) -> Iterator[None]:
    """Log one job to ``path``, written like every other output: to a temporary file moved into place
    at the end, also after a failure (whose one-line reason ends the log), so a link at ``path`` is
    replaced, never followed."""
    root = logging.getLogger()
    failure: BaseException | None = None
    with atomic_path(path) as tmp:
        handler = logging.FileHandler(tmp, mode="w", encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S"))
        root.addHandler(handler)
        try:
            yield
        except BaseException as exc:  # noqa: BLE001 - kept in the log, then raised again below
            failure = exc
            handler.handle(
                logging.LogRecord(__name__, logging.ERROR, __file__, 0, "failed: %s", (one_line(exc),), None)
            )
        finally:
            root.removeHandler(handler)
            handler.close()
    if failure is not None:
        raise failure
