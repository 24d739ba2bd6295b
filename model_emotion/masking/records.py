"""The masked-evaluation result record (``{emotion}-{seed}.json``): its accuracies (today's nested
layout and the older flat one), its per-example correctness, and the mask names it is keyed by.
The evaluation stage writes these; the report and the staleness checks read them."""

from __future__ import annotations

import re

import numpy as np

from model_emotion.errors import ToolkitError
from model_emotion.io.run_folder import result_record
from model_emotion.lm.inference import mean_accuracy

MASK_KEY = re.compile(
    r"^(?P<attribute>.+)_top(?P<k>\d+)"
    r"(?:(?P<random>_random(?:_(?P<draw>\d+))?)|_permuted(?P<permuted>\d+))?$"
)


def accuracies_of(record: dict, source: str = "result") -> dict:
    """The accuracies of an eval result: ``record["accuracies"]`` ({"unmasked": a, mask name: a, ...}),
    or, in files written before that key existed, the top-level ``unmasked`` and mask-name keys."""
    nested = record.get("accuracies")
    if nested is None:
        return {k: v for k, v in record.items() if k == "unmasked" or MASK_KEY.match(k)}
    if not isinstance(nested, dict):
        raise ToolkitError(f"{source}: 'accuracies' is {type(nested).__name__}, not an object of accuracies")
    return nested


def mask_info(name: str) -> dict | None:
    """A mask name decoded: {name, attribute, k, kind (top, random, permuted), draw}; None when the
    name is not a mask name (``MASK_KEY``)."""
    match = MASK_KEY.match(name)
    if not match:
        return None
    kind = "random" if match["random"] else "permuted" if match["permuted"] else "top"
    draw = int(match["draw"] or 1) if kind == "random" else int(match["permuted"]) if kind == "permuted" else 0
    return {"name": name, "attribute": match["attribute"], "k": int(match["k"]), "kind": kind, "draw": draw}


def is_accuracy(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value <= 1


def encode_correct(hits) -> str:
    """Per-example correctness as the result JSON stores it: one '0'/'1' character per example, row order."""
    return "".join("1" if h else "0" for h in np.asarray(hits, dtype=bool).ravel())


def correct_of(
    record: dict, source: str = "result", n: int | None = None, per_batch: int | None = None
) -> dict[str, np.ndarray]:
    """The per-example correctness of an eval result ({name: [n] bool}; {} in files written before it
    existed). Each string must be 0/1 of one length (``n`` when given) and reproduce its accuracy
    (the mean, or the original's per-batch mean when ``per_batch`` is given or recorded): a result whose
    two records disagree is refused, naming both."""
    stored = record.get("correct")
    if stored is None:
        return {}
    if not isinstance(stored, dict):
        raise ToolkitError(f"{source}: 'correct' is {type(stored).__name__}, not an object of 0/1 strings")
    if per_batch is None:
        made_from = result_record(record)
        settings = made_from.get("settings") if isinstance(made_from, dict) else None
        per_batch = settings.get("per_batch") if isinstance(settings, dict) else None
        if per_batch is not None and (not isinstance(per_batch, int) or isinstance(per_batch, bool) or per_batch < 1):
            raise ToolkitError(f"{source}: the recorded per_batch {per_batch!r} is not a positive integer")
    accuracies = accuracies_of(record, source)
    out: dict[str, np.ndarray] = {}
    for name, text in stored.items():
        if not isinstance(text, str) or not text or text.strip("01"):
            raise ToolkitError(f"{source}: correct[{name!r}] is not a non-empty string of 0 and 1")
        if n is None:
            n = len(text)
        if len(text) != n:
            raise ToolkitError(f"{source}: correct[{name!r}] has {len(text)} examples, not {n}")
        hits = np.frombuffer(text.encode("ascii"), dtype=np.uint8) == ord("1")
        accuracy = accuracies.get(name)
        if not is_accuracy(accuracy) or abs(mean_accuracy(hits, per_batch) - accuracy) > 1e-9:
            raise ToolkitError(
                f"{source}: correct[{name!r}] gives accuracy {mean_accuracy(hits, per_batch):.6g} "
                f"but accuracies[{name!r}] is {accuracy!r}"
            )
        out[name] = hits
    n_examples = record.get("n_examples")
    if out and isinstance(n_examples, int) and n_examples != n:
        raise ToolkitError(f"{source}: n_examples is {n_examples} but correct holds {n} examples per mask")
    return out
