"""The run folder: the name of every file the stages write and read, and its one staleness mechanism
(what an output was made from, recorded once, checked once).

Names (one owner; the stages, the report and the readers build paths only through these)::

    checkpoint/{emotion}-{seed}.pt                 step 1 (``checkpoint_path``)
    ACTS/{emotion}-{seed}.csv, {emotion}-all.csv   step 2 (``activation_csv``, ``emotion_sum_csv``)
    ACTS/activations.npz, ACTS/goemotions_prompt_tuning_accuracy.csv
    RANK.csv and RANK_tau.csv, RANK_p_value.csv, RANK_q_value.csv, RANK_summary.csv, the permutation
    test's RANK_perm_p_value.csv ... RANK_null.npz, the seed diagnostics (``rank_paths``)   step 3
    MASKS.pkl                                      step 4
    RESULTS/{emotion}-{seed}.json, .partial.json, eval_config.json                         step 5
    NAME_meta.json, NAME_args.json beside an output (``io.meta_path``, ``io.save_run_args``)

Every stage that skips work already done (activations, the searchlight, the masks, the masked
evaluation) asks the same question of an existing output: was it made from these inputs, with these
settings, and is it still the file that was written? The answer comes from one record::

    {"inputs": {"checkpoint": "<sha256>", ...},   # the files it was computed from, by content
     "settings": {"model": ..., "state": ...},    # every setting its numbers depend on
     "output_sha256": "<sha256>"}                 # the output itself when written (edited since: stale)

built by ``made_from`` and compared by ``changes`` (one rule for every stage). Where it lives:

- beside a table, masks file or activation CSV: in its ``NAME_meta.json`` (``io.meta_path``) under the
  key ``made_from``, with the facts that travel with the file (layers, FFN width, model, ...);
- inside a masked-evaluation result (``EMOTION-SEED.json``), under ``made_from``: those results travel
  alone (a colleague sends the JSON files), so the record goes with them.

Older run folders are still read (``legacy_record``): the activations' folder-wide ``provenance.json``,
the ``provenance`` key of eval results, and the input digests in ``NAME_args.json`` (searchlight,
masks) are turned into the same record. An output with no record at all was written by a version
before any of these and is trusted, as it always was (the log says so).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from model_emotion.errors import ToolkitError
from model_emotion.io import compat
from model_emotion.io.files import file_digest, meta_path, read_json
from model_emotion.util.names import run_name

logger = logging.getLogger(__name__)

RECORD_KEY = "made_from"
ACTIVATIONS_NPZ = "activations.npz"
ACCURACY_CSV = "goemotions_prompt_tuning_accuracy.csv"
EVAL_CONFIG = "eval_config.json"
# the tables beside a rank table RANK.csv: RANK{suffix}.csv (the null draws: .npz)
RANK_TABLES = {"tau": "_tau", "p": "_p_value", "q": "_q_value", "summary": "_summary"}
PERMUTATION_TABLES = {
    "perm_p": "_perm_p_value",
    "fwer_p": "_fwer_p_value",
    "fwer_global_p": "_fwer_global_p_value",
    "null_counts": "_null_counts",
    "null": "_null",
    "zstat": "_zstat",
    "maxt_survivors": "_maxt_survivors",
    "tail_fits": "_tail_fits",
}
SEED_TABLES = {"seed_reliability": "_seed_reliability", "seed_influence": "_seed_influence"}
NUISANCE_TABLES = {
    "nuisance_summary": "_nuisance_summary",
    "nuisance_survivors": "_nuisance_maxt_survivors",
    "nuisance_confounds": "_nuisance_confounds",
}


def checkpoint_path(folder: str | os.PathLike, emotion: str, seed: int) -> Path:
    return Path(folder) / f"{run_name(emotion, seed)}.pt"


def activation_csv(folder: str | os.PathLike, emotion: str, seed: int) -> Path:
    return Path(folder) / f"{run_name(emotion, seed)}.csv"


def emotion_sum_csv(folder: str | os.PathLike, emotion: str) -> Path:
    """The original code's per-emotion sum over seeds."""
    return Path(folder) / f"{emotion}-all.csv"


def result_path(folder: str | os.PathLike, emotion: str, seed: int) -> Path:
    return Path(folder) / f"{run_name(emotion, seed)}.json"


def partial_path(folder: str | os.PathLike, emotion: str, seed: int) -> Path:
    """An interrupted evaluation's progress, resumed from when its record matches."""
    return Path(folder) / f"{run_name(emotion, seed)}.partial.json"


def rank_table_path(rank_csv: str | os.PathLike, key: str) -> Path:
    """The table ``key`` (of RANK_TABLES, PERMUTATION_TABLES, SEED_TABLES) beside the rank table."""
    rank_csv = Path(rank_csv)
    suffix = {**RANK_TABLES, **PERMUTATION_TABLES, **SEED_TABLES, **NUISANCE_TABLES}[key]
    return rank_csv.with_name(f"{rank_csv.stem}{suffix}.{'npz' if key == 'null' else 'csv'}")


def rank_paths(rank_csv: str | os.PathLike) -> dict[str, Path]:
    """The rank table (``rank``) and every table the searchlight writes beside it, by key."""
    keys = [*RANK_TABLES, *PERMUTATION_TABLES, *SEED_TABLES, *NUISANCE_TABLES]
    return {"rank": Path(rank_csv), **{key: rank_table_path(rank_csv, key) for key in keys}}


def made_from(inputs: Mapping[str, str | os.PathLike | None], settings: Mapping[str, Any]) -> dict:
    """The record of an output computed from ``inputs`` (name -> file; a missing file is None) with
    ``settings`` (JSON values)."""
    digests = {}
    for name, path in inputs.items():
        digests[name] = file_digest(path) if path is not None and Path(path).is_file() else None
    return {"inputs": digests, "settings": dict(settings)}


def with_output(record: dict, output: str | os.PathLike) -> dict:
    """``record`` with the digest of the output as written (to tell a file edited since)."""
    return {**record, "output_sha256": file_digest(output)}


def changes(recorded: Any, current: dict, output: str | os.PathLike | None = None) -> list[str] | None:
    """What differs between an output's ``recorded`` record and the ``current`` one: None when there is no
    record (an older version wrote the output: trusted), [] when it is up to date, else the names of the
    inputs and settings that changed (``output`` when the file was edited since it was written; ``record``
    when the record is malformed). Inputs or settings the record does not name (added by a later version)
    are not compared."""
    if recorded is None:
        return None
    if not isinstance(recorded, dict) or not all(
        isinstance(recorded.get(part, {}), dict) for part in ("inputs", "settings")
    ):
        return ["record"]
    changed = []
    for part in ("inputs", "settings"):
        old = recorded.get(part, {})
        changed += [name for name, value in current[part].items() if name in old and old[name] != value]
    digest = recorded.get("output_sha256")
    if output is not None and digest is not None and Path(output).is_file() and digest != file_digest(output):
        changed.append("output")
    return changed


def is_current(output: str | os.PathLike, recorded: Any, current: dict, redo: str = "recomputing") -> bool:
    """``changes`` as a decision, logged in one line (``redo``: what the stage does instead, e.g.
    "evaluating again"): True to keep ``output``, False to make it again."""
    changed = changes(recorded, current, output)
    label = str(output)
    if changed is None:
        logger.info("%s exists (no record of its inputs: written by an older version); keeping it", label)
        return True
    if not changed:
        logger.info("%s exists and is up to date; skipping (pass --overwrite to redo it)", label)
        return True
    if changed == ["record"]:
        logger.info("%s has a malformed record of its inputs; %s", label, redo)
    elif changed == ["output"]:
        logger.info("%s was changed since it was written; %s", label, redo)
    else:
        logger.info("%s is stale (%s changed since); %s", label, ", ".join(changed), redo)
    return False


def read_record(output: str | os.PathLike) -> dict | None:
    """The record of ``output`` from its ``_meta.json``, else from the files of older versions; None if none."""
    path = meta_path(output)
    if path.exists():
        try:
            meta = read_json(path, dict)
        except ToolkitError as exc:
            logger.warning("%s; treating %s as made from unknown inputs", exc, output)
            return {"inputs": None}  # malformed: redone
        if RECORD_KEY in meta:
            return meta[RECORD_KEY]
    return compat.legacy_record(output)


def result_record(result: dict) -> dict | None:
    """The record inside an eval result (``made_from``), or the ``provenance`` key that versions before
    0.4.1 wrote, in today's form; None when it has neither."""
    if RECORD_KEY in result:
        return result[RECORD_KEY]
    return compat.old_result_record(result)
