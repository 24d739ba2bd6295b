"""Nothing the README names is stale: every file and module path it mentions exists, and every flag it
mentions is a flag of some stage (or of a shell runner it documents)."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def all_flags() -> set[str]:
    """Every option string of every stage's parser (built as scripts/flag_tables.py builds them)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("flag_tables", ROOT / "scripts" / "flag_tables.py")
    tables = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tables)
    from model_emotion.commands import COMMANDS

    flags = set()
    for module_name, _, _ in COMMANDS.values():
        module = importlib.import_module(f"model_emotion.commands.{module_name}")
        flags |= {opt for action in tables._parser(module)._actions for opt in action.option_strings}
    return flags


OUTPUTS = {"summary.md"}  # files the stages write, named as outputs


def test_every_path_the_readme_names_exists():
    names = set(re.findall(r"`([\w./-]+\.(?:py|sh|md|ipynb|cff|toml|txt))`", README))
    names |= set(re.findall(r"\]\(([\w./-]+\.(?:md|ipynb))(?:#[\w-]*)?\)", README))
    missing = []
    for name in sorted(names - OUTPUTS):
        candidates = [ROOT / name, ROOT / "model_emotion" / name, ROOT / "scripts" / name, ROOT / "tests" / name]
        if not any(c.exists() for c in candidates) and not list(ROOT.glob(f"model_emotion/**/{name}")):
            missing.append(name)
    assert len(names) > 15 and missing == []


def test_every_module_the_readme_names_imports():
    import importlib

    modules = set(re.findall(r"\bmodel_emotion(?:\.\w+)+", README))
    for name in sorted(modules):
        try:
            importlib.import_module(name)
        except ModuleNotFoundError:
            parent, _, attr = name.rpartition(".")
            assert hasattr(importlib.import_module(parent), attr), name


def test_every_flag_the_readme_names_exists():
    named = set(re.findall(r"(?<![\w-])(--[a-z][A-Za-z_]+)", README))
    known = all_flags() | {"--help", "--version", "--no-deps", "--check"}
    assert named and sorted(named - known) == []


def test_the_docs_name_no_module_or_function_that_moved():
    """docs/*.md: every ``model_emotion/...py`` path exists and every dotted ``room.module.name`` resolves."""
    import importlib

    rooms = {p.name for p in (ROOT / "model_emotion").iterdir() if (p / "__init__.py").exists()}
    missing = []
    for doc in sorted((ROOT / "docs").glob("*.md")):
        text = doc.read_text()
        for path in re.findall(r"`(model_emotion/[\w/]+\.py)`", text):
            if not (ROOT / path).exists():
                missing.append(f"{doc.name}: {path}")
        for dotted in re.findall(r"`((?:model_emotion\.)?[a-z_]+\.[a-z_]+\.[A-Za-z_]+)`", text):
            parts = dotted.removeprefix("model_emotion.").split(".")
            if parts[0] not in rooms:
                continue
            try:
                module = importlib.import_module(f"model_emotion.{parts[0]}.{parts[1]}")
            except ImportError:
                missing.append(f"{doc.name}: {dotted}")
                continue
            if not hasattr(module, parts[2]):
                missing.append(f"{doc.name}: {dotted}")
    assert missing == []
