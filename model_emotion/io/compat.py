"""Everything kept only so that older files and flags still work, in one place, each item with the
version that may remove it. Nothing else in the package reads an old format.

| item | kept since | may be removed in |
|---|---|---|
| ``legacy_record``: the activations folder's ``provenance.json`` and the input digests in ``NAME_args.json`` (rank tables, masks), read as today's record | 0.4.1 | 0.6 |
| ``old_result_record``: the ``provenance`` key of eval results, read as today's ``made_from`` | 0.4.1 | 0.6 |
| eval results with flat accuracies (``unmasked`` and mask names at the top level; ``masking.records.accuracies_of``) | 0.3 | 0.6 |
| locks written empty then filled (``io.files.EMPTY_LOCK_GRACE_S``) | 0.4 | 0.6 |
| ``gen_mask.py --attributes`` as the list of columns (now ``--attribute_names``; ``MaskConfig.attributes_old``) | 0.4 | 0.6 |
| the module paths of 0.4 (``model_emotion.plots``, ``.human``, ``.run_folder`` from the package root: ``__init__._MODULES``) | 0.5 | 0.7 |
"""

from __future__ import annotations

import os
from pathlib import Path

from model_emotion.errors import ToolkitError
from model_emotion.io.files import read_json

LEGACY_ACTIVATIONS = "provenance.json"  # the activations folder's record before 0.4.1: {csv name: {...}}


def legacy_record(output: str | os.PathLike) -> dict | None:
    """The record that versions before 0.4.1 kept for ``output``, in today's form (None if none):
    an activation CSV's entry in its folder's ``provenance.json``; a searchlight rank table's or masks
    file's input digest in ``NAME_args.json``; an eval result's ``provenance`` key (``result_record``)."""
    output = Path(output)
    folder_record = output.parent / LEGACY_ACTIVATIONS
    if output.suffix == ".csv" and folder_record.exists():
        try:
            entry = read_json(folder_record, dict).get(output.name)
        except ToolkitError:
            return {"inputs": None}
        if entry is not None and not isinstance(entry, dict):
            return {"inputs": None}
        if entry is not None:
            settings = {k: v for k, v in entry.items() if k not in ("checkpoint_sha256", "csv_sha256")}
            record = {"inputs": {"checkpoint": entry.get("checkpoint_sha256")}, "settings": settings}
            if entry.get("csv_sha256") is not None:
                record["output_sha256"] = entry["csv_sha256"]
            return record
    args_path = output.with_name(f"{output.stem}_args.json")
    if args_path.exists():
        try:
            args = read_json(args_path, dict)
        except ToolkitError:
            return {"inputs": None}
        inputs = {
            name: args[key]
            for key, name in (("activations_sha256", "activations"), ("rank_sha256", "rank_table"))
            if args.get(key) is not None
        }
        settings = args.get("args") if isinstance(args.get("args"), dict) else {}
        return {"inputs": inputs, "settings": settings}
    return None


def old_result_record(result: dict) -> dict | None:
    """The ``provenance`` key that eval results held before 0.4.1, in today's record form; None if absent."""
    old = result.get("provenance")
    if old is None:
        return None
    if not isinstance(old, dict) or not isinstance(old.get("settings"), dict):
        return {"inputs": None}
    settings = dict(old["settings"])
    inputs = {"masks": settings.pop("masks_sha256", None), "checkpoint": settings.pop("checkpoint_sha256", None)}
    record = {"inputs": inputs, "settings": settings}
    for key in ("examples_sha256", "resolved"):
        if key in old:
            record[key] = old[key]
    return record
