"""Command-line plumbing shared by the stage scripts: flags, logging, devices, error printing."""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from .errors import ToolkitError
from .names import MAX_SEED  # numpy's and torch's seed range

logger = logging.getLogger(__name__)

DEFAULT_MODEL = "roberta-base"


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors (no usage dump); ``--help`` still prints the full usage."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


MAX_COUNT = 2**31 - 1  # no count a flag takes (epochs, samples, batch sizes, k) is meaningful beyond this


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


def nonneg_int(text: str) -> int:
    value = _number(text, int, "an integer")
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} must be 0 or more")
    if value > MAX_COUNT:
        raise argparse.ArgumentTypeError(f"{value} must be at most {MAX_COUNT}")
    return value


def bounded_int(limit: int, why: str):
    """An argparse type: an integer in 0..limit, the limit explained by ``why`` in the error."""

    def parse(text: str) -> int:
        value = nonneg_int(text)
        if value > limit:
            raise argparse.ArgumentTypeError(f"{value} is above {limit} ({why})")
        return value

    return parse


def seed_int(text: str) -> int:
    value = _number(text, int, "an integer seed")
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"seed {value} must be in 0..{MAX_SEED}")
    return value


FLOAT32_MAX = 3.4028234e38  # parameters are float32: larger factors overflow


def positive_float(text: str) -> float:
    value = _number(text, float, "a number")
    if value <= 0 or value > FLOAT32_MAX:
        raise argparse.ArgumentTypeError(f"{value:g} must be greater than 0 and at most {FLOAT32_MAX:g}")
    return value


def nonneg_float(text: str) -> float:
    value = _number(text, float, "a number")
    if value < 0 or value > FLOAT32_MAX:
        raise argparse.ArgumentTypeError(f"{value:g} must be between 0 and {FLOAT32_MAX:g}")
    return value


def probability(text: str) -> float:
    value = _number(text, float, "a number")
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"{value:g} must be between 0 and 1 (exclusive)")
    return value


def percent(text: str) -> float:
    value = _number(text, float, "a number")
    if not 0 < value <= 100:
        raise argparse.ArgumentTypeError(f"{value:g} must be a percentage in (0, 100]")
    return value


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
        from .names import check_emotion_name

        return [(check_emotion_name(sentiment, "--sentiment"), seed)]
    out = []
    for job in jobs:
        emotion, number = parse_run_name(job, "--jobs entry")
        if (emotion, number) in out:
            raise ToolkitError(f"--jobs lists {job} twice")
        out.append((emotion, number))
    return out


def parse_run_name(name: str, what: str = "name") -> tuple[str, int]:
    """``{emotion}-{seed}`` (file stems, --jobs entries) -> (emotion, seed), both validated."""
    from .data import split_run_name
    from .names import check_emotion_name

    run = split_run_name(name)
    if run is None:
        raise ToolkitError(f"{what} {name!r} must look like EMOTION-SEED, e.g. anger-1")
    if run[1] > MAX_SEED:
        raise ToolkitError(f"{what} {name!r}: seed must be in 0..{MAX_SEED}")
    return check_emotion_name(run[0], what), run[1]


def add_jobs_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--jobs",
        type=str,
        nargs="+",
        default=None,
        help="several EMOTION-SEED runs in one process (the model is loaded once); "
        "overrides --sentiment/--random_seed. A failing job is reported and the others go on",
    )


def run_jobs(jobs: list[tuple[str, int]], run_one: Callable[[str, int], None], what: str = "jobs") -> int:
    """Run each job, logging after each one ``what`` done/total, the time so far and an estimate of the
    time left; with several, report a failing one in one line and go on; exit code 1 if any failed."""
    from .progress import Progress

    if len(jobs) == 1:
        run_one(*jobs[0])
        return 0
    failed = []
    progress = Progress(what, len(jobs))
    for emotion, seed in jobs:
        name = f"{emotion}-{seed}"
        try:
            run_one(emotion, seed)
        except KeyboardInterrupt:
            raise
        except Exception as exc:  # noqa: BLE001 - one job's failure, whatever it is, must not stop the others
            logger.error("%s failed: %s", name, _one_line(exc))
            failed.append(name)
        progress.step(name, failed=name in failed)
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
    if device.type not in ("cpu", "cuda", "mps", "xpu"):
        raise ToolkitError(f"--device {name!r} cannot run the model (use cpu, cuda, cuda:1, ...)")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ToolkitError(f"--device {name} asked for, but no CUDA device is available (use --device cpu)")
    return device


def add_model_args(parser: argparse.ArgumentParser, dtype: bool = True) -> None:
    """``--model`` and, for stages that load the weights (``dtype``), ``--dtype``."""
    parser.add_argument(
        "--model",
        "--pretrained_model",
        dest="model",
        type=str,
        default=env_default("ME_MODEL", DEFAULT_MODEL),
        help="Hugging Face hub id, local folder or .gguf file of the frozen model (env ME_MODEL; default %(default)s)",
    )
    if not dtype:
        return
    parser.add_argument(
        "--dtype",
        type=str,
        default=None,
        choices=["float32", "bfloat16", "float16"],
        help="type of the frozen weights (default float32; bfloat16 halves a decoder's memory, "
        "on CUDA bf16 autocast is used either way); activations are read in float32",
    )


def add_data_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data_dir",
        type=str,
        default=env_default("ME_DATA_DIR", None),
        help="local GoEmotions folder (train/dev/test.tsv + labels.txt, or the paper's "
        "CSVs); default: the Hugging Face hub (env ME_DATA_DIR)",
    )


def add_device_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--device",
        type=str,
        default=env_default("ME_DEVICE", None),
        help="torch device (cpu, cuda, cuda:1); default: cuda if available, else cpu",
    )


def add_protocol_args(parser: argparse.ArgumentParser, training: bool = False, evaluation: bool = False) -> None:
    """``--protocol`` (and the original code's quirks that only the paper protocol may switch on)."""
    default = "toolkit" if training else None
    parser.add_argument(
        "--protocol",
        type=str,
        default=env_default("ME_PROTOCOL", default),
        choices=["toolkit", "paper"],
        help="model input and training: the toolkit's own or exactly the original code's (see README); "
        + (
            "default toolkit (env ME_PROTOCOL)"
            if training
            else "default: the one the checkpoint was trained with (paper for the original code's checkpoints)"
        ),
    )
    if training or evaluation:
        parser.add_argument(
            "--negative_sampling",
            type=str,
            default="exclusive" if training else None,
            choices=["exclusive", "paper"],
            help="negatives drawn from rows without the emotion, or the original code's draw with "
            "replacement from the whole split (only with --protocol paper); default "
            + ("exclusive" if training else "the checkpoint's, else exclusive"),
        )
    if evaluation:
        parser.add_argument(
            "--accuracy_mean",
            type=str,
            default="overall",
            choices=["overall", "per_batch"],
            help="share of correct rows (default), or the original evaluation's mean of per-batch means "
            "over --eval_batch_size rows in task order (only with --protocol paper)",
        )


def add_checkpoint_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--checkpoint_dir",
        type=Path,
        default=Path(env_default("ME_CHECKPOINT_DIR", "checkpoint")),
        help="folder of {sentiment}-{seed}.pt prompt checkpoints (default %(default)s)",
    )


def check_output_dir(path: str | os.PathLike, flag: str) -> Path:
    """Fail before any work when ``path`` cannot hold outputs: create it, try a file in it, and remove
    the temporary files that a killed run left there."""
    from .io import remove_stale_tmp

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
    from .io import atomic_path

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
                logging.LogRecord(__name__, logging.ERROR, __file__, 0, "failed: %s", (_one_line(exc),), None)
            )
        finally:
            root.removeHandler(handler)
            handler.close()
    if failure is not None:
        raise failure


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


def _one_line(exc: BaseException) -> str:
    """One line for the command line: a ToolkitError's settings spelled as flags (``--name``)."""
    if isinstance(exc, ToolkitError):
        return exc.for_cli()
    return f"{type(exc).__name__}: {' '.join(str(exc).split())}"


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
        print(f"{prog}: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted; finished outputs are kept, nothing half-written was left behind", file=sys.stderr)
        return 130
    except OSError as exc:
        where = f" {exc.filename}" if getattr(exc, "filename", None) else ""
        print(
            f"{prog}: error: cannot write or read{where}: {exc.strerror or _one_line(exc)}; outputs finished "
            f"before this are kept, nothing half-written was left behind",
            file=sys.stderr,
        )
        return 2
    except Exception as exc:  # noqa: BLE001 - the last line of defence: never a traceback for a user
        if os.environ.get("ME_DEBUG"):
            raise
        print(
            f"{prog}: error: unexpected {_one_line(exc)[:500]} (a bug; rerun with ME_DEBUG=1 for the traceback "
            f"and please report it)",
            file=sys.stderr,
        )
        return 1
