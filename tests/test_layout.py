"""The package's import picture: no circle among module-level imports, and the prompt models apart."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "model_emotion"


def module_imports() -> dict[str, set[str]]:
    """model_emotion module -> the package modules it imports at module level (not inside functions)."""
    graph = {}
    for path in PACKAGE.rglob("*.py"):
        name = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__")
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found = set()
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                    target = f"{base}.{node.module}" if node.module else base
                else:
                    target = node.module or ""
                if target.startswith("model_emotion"):
                    found.add(target)
                    found.update(f"{target}.{a.name}" for a in node.names)  # "from . import x" names modules
            elif isinstance(node, ast.Import):
                found.update(a.name for a in node.names if a.name.startswith("model_emotion"))
        graph[name] = found
    return {name: {t for t in targets if t in graph and t != name} for name, targets in graph.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    found, state, stack = [], {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                found.append(stack[stack.index(nxt) :] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return found


def test_no_import_circle():
    graph = module_imports()
    assert len(graph) > 30
    assert cycles(graph) == []


def test_a_circle_is_found():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c", "a"]]


def test_prompt_models_each_in_their_own_module():
    graph = module_imports()
    assert "model_emotion.prompt_model" not in graph["model_emotion.decoder_prompt"]
    assert "model_emotion.prompt_model" not in graph["model_emotion.encoder_prompt"]
    assert {"model_emotion.encoder_prompt", "model_emotion.decoder_prompt"} <= graph["model_emotion.prompt_model"]


def test_both_prompt_models_satisfy_the_protocol(tiny_bert):
    from model_emotion.loading import load_backbone
    from model_emotion.prompt_base import PromptModel
    from model_emotion.prompt_config import PromptConfig
    from model_emotion.prompt_model import build_prompt_model

    backbone, tokenizer, head = load_backbone(str(tiny_bert), "auto")
    model = build_prompt_model(backbone, tokenizer, PromptConfig(model="tiny", prompt_len=2, head=head, max_length=16))
    assert isinstance(model, PromptModel)


def test_flag_tables_in_the_docs_are_generated_from_the_parsers(monkeypatch):
    """docs/flags.md is what scripts/flag_tables.py renders from the parsers now (run it after a flag change)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("flag_tables", PACKAGE.parent / "scripts" / "flag_tables.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    text = module.render()
    assert "| `--maskPath` | `--mask_path` |" in text and "| `--n_boot` |" in text
    assert (PACKAGE.parent / "docs" / "flags.md").read_text() == text


def test_every_stage_names_its_output_with_output(tmp_path):
    """One name for the output location: --output in every stage that writes one place (train writes
    checkpoints and logs: --checkpoint_dir, --log_dir); the original spellings stay."""
    from model_emotion.commands import activations, masks, report, rsa
    from model_emotion.commands import eval as evaluate

    target = tmp_path / "out"
    assert rsa.parse_args(["--output", str(target)]).output == target
    assert masks.parse_args(["--output", str(target)]).PKL_File == target
    assert evaluate.parse_args(["--output", str(target)]).resultPath == target
    assert activations.parse_args(["--output", str(target)]).output_dir == target
    assert report.parse_args(["--output", str(target)]).output_dir == target
    assert masks.parse_args(["--PKL_File", str(target)]).PKL_File == target  # the original's flag
