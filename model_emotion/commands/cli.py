"""Command-line plumbing shared by the stage scripts: flags, logging, devices, error printing."""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from model_emotion.defaults import MAX_COUNT
from model_emotion.errors import ToolkitError, one_line
from model_emotion.util.names import MAX_SEED  # numpy's and torch's seed range

logger = logging.getLogger(__name__)


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors (no usage dump); ``--help`` still prints the full usage."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _number(text: str, kind, what: str):
    try:
        value = kind(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
    if kind is float and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def positive_int(text: str) -> int:
    value = _number(text, int, "an integer")
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    if value > MAX_COUNT:
        raise argparse.ArgumentTypeError(f"{value} must be at most {MAX_COUNT}")
    return value


def positive_int_or_auto(text: str) -> int | str:
    return "auto" if text == "auto" else positive_int(text)


def seed_int(text: str) -> int:
    value = _number(text, int, "an integer seed")
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"seed {value} must be in 0..{MAX_SEED}")
    return value


def expand_bracket_lists(argv: Sequence[str], options: Sequence[str]) -> list[str]:
    """Accept the original README's list syntax for list-valued ``options``.

    ``--thresholds=[500, 1000, 1500]`` is split by the shell into ``--thresholds=[500,``,
    ``1000,`` and ``1500]``; this rewrites it to ``--thresholds 500 1000 1500`` so argparse's
    ``nargs="+"`` reads it. Plain ``--thresholds 500 1000`` passes through unchanged.
    """
    out: list[str] = []
    in_list = False
    for token in argv:
        head, sep, tail = token.partition("=")
        if not in_list and sep and head in options and tail.lstrip().startswith("["):
            out.append(head)
            token, in_list = tail, True
        if in_list:
            closed = token.rstrip().endswith("]")
            out.extend(part for part in token.replace("[", " ").replace("]", " ").replace(",", " ").split())
            in_list = not closed
        else:
            out.append(token)
    return out


def add_job_flags(parser: argparse.ArgumentParser, default_emotion: str, default_seed: int) -> None:
    """The (emotion, seed) jobs of train.py and eval_mask_neuron.py: the original single
    ``--sentiment``/``--random_seed`` pair, or ``--jobs EMOTION-SEED ...`` (``names.parse_jobs``
    turns them into the config's ``jobs``)."""
    parser.add_argument(
        "--sentiment",
        "--emotion",
        type=str,
        default=default_emotion,
        help="emotion of the prompt (one of the 27 GoEmotions labels; default %(default)s, the original script's)",
    )
    parser.add_argument(
        "--random_seed",
        "--seed",
        type=seed_int,
        default=default_seed,
        help="seed of the prompt: its negatives, initialisation and batch order",
    )
    parser.add_argument(
        "--jobs",
        type=str,
        nargs="+",
        default=None,
        help="several EMOTION-SEED runs in one process (the model is loaded once); "
        "overrides --sentiment/--random_seed. A failing job is reported and the others go on",
    )


def setup_logging(verbose: bool = False) -> None:
    """Log to stderr through tqdm, so progress bars stay intact (a job's file log: ``job_log``)."""
    from tqdm import tqdm

    class TqdmHandler(logging.Handler):
        def emit(self, record):
            try:
                tqdm.write(self.format(record), file=sys.stderr)
            except Exception:  # noqa: BLE001 - logging must never raise
                self.handleError(record)

    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S")
    console = TqdmHandler()
    console.setFormatter(fmt)
    root.addHandler(console)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    for noisy in ("httpx", "urllib3", "filelock", "huggingface_hub", "datasets", "numba"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def run(main: Callable[[Sequence[str] | None], int | None], argv: Sequence[str] | None = None) -> int:
    """Run a script's ``main``; print any failure as one line and return the exit code.

    Bad input (ToolkitError) exits 2; a failed write (full disk, permissions) exits 2 and says that
    finished outputs are kept; anything else is a bug: one line, exit 1, and the traceback with
    ``ME_DEBUG=1``.
    """
    prog = Path(sys.argv[0]).name
    try:
        return int(main(argv) or 0)
    except ToolkitError as exc:
        print(f"{prog}: error: {one_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted; finished outputs are kept, nothing half-written was left behind", file=sys.stderr)
        return 130
    except OSError as exc:
        where = f" {exc.filename}" if getattr(exc, "filename", None) else ""
        print(
            f"{prog}: error: cannot write or read{where}: {exc.strerror or one_line(exc)}; outputs finished "
            f"before this are kept, nothing half-written was left behind",
            file=sys.stderr,
        )
        return 2
    except Exception as exc:  # noqa: BLE001 - the last line of defence: never a traceback for a user
        if os.environ.get("ME_DEBUG"):
            raise
        print(
            f"{prog}: error: unexpected {one_line(exc)[:500]} (a bug; rerun with ME_DEBUG=1 for the traceback "
            f"and please report it)",
            file=sys.stderr,
        )
        return 1
