"""Command-line plumbing shared by the stage scripts: flags, logging, devices, error printing."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
from pathlib import Path
from typing import Callable, Sequence

from .errors import ToolkitError

logger = logging.getLogger(__name__)

DEFAULT_MODEL = "roberta-base"


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors (no usage dump); ``--help`` still prints the full usage."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def env_default(name: str, default):
    """A flag's default: the environment variable ``name`` when set, else ``default``."""
    value = os.environ.get(name)
    return default if value in (None, "") else value


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


def parse_jobs(jobs: Sequence[str] | None, sentiment: str, seed: int) -> list[tuple[str, int]]:
    """``--jobs anger-1 joy-3 ...`` (several runs in one process, the model loaded once), or the single
    ``--sentiment`` / ``--random_seed`` pair."""
    if not jobs:
        return [(sentiment, seed)]
    out = []
    for job in jobs:
        emotion, _, number = job.rpartition("-")
        if not emotion or not number.isdigit():
            raise ToolkitError(f"--jobs entry {job!r} must look like EMOTION-SEED, e.g. anger-1")
        out.append((emotion, int(number)))
    return out


def add_jobs_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--jobs", type=str, nargs="+", default=None,
                        help="several EMOTION-SEED runs in one process (the model is loaded once); "
                             "overrides --sentiment/--random_seed. A failing job is reported and the others go on")


def run_jobs(jobs: list[tuple[str, int]], run_one: Callable[[str, int], None]) -> int:
    """Run each job; with several, report a failing one in one line and go on; exit code 1 if any failed."""
    if len(jobs) == 1:
        run_one(*jobs[0])
        return 0
    failed = []
    for emotion, seed in jobs:
        try:
            run_one(emotion, seed)
        except ToolkitError as exc:
            logger.error("%s-%d failed: %s", emotion, seed, exc)
            failed.append(f"{emotion}-{seed}")
    if failed:
        logger.error("%d of %d jobs failed: %s", len(failed), len(jobs), " ".join(failed))
    return 1 if failed else 0


def resolve_device(name: str | None):
    """``--device``: an explicit name, or cuda when available, else cpu."""
    import torch

    if name in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ToolkitError(f"--device {name!r} is not a device name (use cpu, cuda, cuda:1, ...)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ToolkitError(f"--device {name} asked for, but no CUDA device is available (use --device cpu)")
    return device


def add_model_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", "--pretrained_model", dest="model", type=str,
                        default=env_default("ME_MODEL", DEFAULT_MODEL),
                        help="Hugging Face hub id or local folder of the frozen model "
                             "(env ME_MODEL; default %(default)s)")


def add_data_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data_dir", type=str, default=env_default("ME_DATA_DIR", None),
                        help="local GoEmotions folder (train/dev/test.tsv + labels.txt, or the paper's "
                             "CSVs); default: the Hugging Face hub (env ME_DATA_DIR)")


def add_device_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", type=str, default=env_default("ME_DEVICE", None),
                        help="torch device (cpu, cuda, cuda:1); default: cuda if available, else cpu")


def add_protocol_args(parser: argparse.ArgumentParser, training: bool = False, evaluation: bool = False) -> None:
    """``--protocol`` (and the original code's quirks that only the paper protocol may switch on)."""
    default = "toolkit" if training else None
    parser.add_argument("--protocol", type=str, default=env_default("ME_PROTOCOL", default), choices=["toolkit", "paper"],
                        help="model input and training: the toolkit's own or exactly the original code's (see README); "
                             + ("default toolkit (env ME_PROTOCOL)" if training else
                                "default: the one the checkpoint was trained with (paper for the original code's checkpoints)"))
    if training or evaluation:
        parser.add_argument("--negative_sampling", type=str, default="exclusive" if training else None,
                            choices=["exclusive", "paper"],
                            help="negatives drawn from rows without the emotion, or the original code's draw with "
                                 "replacement from the whole split (only with --protocol paper); default "
                                 + ("exclusive" if training else "the checkpoint's, else exclusive"))
    if evaluation:
        parser.add_argument("--accuracy_mean", type=str, default="overall", choices=["overall", "per_batch"],
                            help="share of correct rows (default), or the original evaluation's mean of per-batch means "
                                 "over --eval_batch_size rows in task order (only with --protocol paper)")


def check_protocol_flags(args: argparse.Namespace) -> None:
    """The original code's quirks are reproduction aids: refuse them outside the paper protocol."""
    if getattr(args, "protocol", None) == "paper":
        return
    if getattr(args, "negative_sampling", None) == "paper":
        raise ToolkitError("--negative_sampling paper reproduces a bug of the original code; it needs --protocol paper")
    if getattr(args, "accuracy_mean", "overall") != "overall":
        raise ToolkitError("--accuracy_mean per_batch reproduces the original evaluation; it needs --protocol paper")


def add_checkpoint_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint_dir", type=Path, default=Path(env_default("ME_CHECKPOINT_DIR", "checkpoint")),
                        help="folder of {sentiment}-{seed}.pt prompt checkpoints (default %(default)s)")


def check_output_dir(path: str | os.PathLike, flag: str) -> Path:
    """Fail before any work when ``path`` cannot hold outputs: create it, and try a file in it."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=path, prefix=".write-test-", delete=True)
        probe.close()
    except OSError as exc:
        raise ToolkitError(f"{flag} {path} is not a writable folder ({exc.strerror or type(exc).__name__}); "
                           f"choose another location") from None
    return path


def setup_logging(log_file: str | os.PathLike | None = None, verbose: bool = False) -> None:
    """Log to stderr (through tqdm so bars stay intact) and, optionally, to a file."""
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
    if log_file is not None:
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        file_handler = logging.FileHandler(log_file, mode="w", encoding="utf-8")
        file_handler.setFormatter(fmt)
        root.addHandler(file_handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    for noisy in ("httpx", "urllib3", "filelock", "huggingface_hub", "datasets", "numba"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def run(main: Callable[[Sequence[str] | None], int | None], argv: Sequence[str] | None = None) -> int:
    """Run a script's ``main``; print a ToolkitError or Ctrl-C as one line and return the exit code."""
    prog = Path(sys.argv[0]).name
    try:
        return int(main(argv) or 0)
    except ToolkitError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted; finished outputs are kept, nothing half-written was left behind",
              file=sys.stderr)
        return 130
