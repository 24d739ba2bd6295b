"""Re-run examples/quickstart.ipynb at its full size and commit-ready: its outputs come from the
current code, and its metadata records the toolkit version and a digest of the library's sources.

    ME_SHARED_DATA=../shared/data python scripts/regen_notebook.py

tests/test_notebook.py fails when the committed outputs were made by another toolkit version (stale),
so bumping the version means regenerating. To run the notebook headless without writing it back:
    jupyter nbconvert --to notebook --execute examples/quickstart.ipynb --output /tmp/run.ipynb
(or ``python -m nbclient``-style, as this script does).
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "examples" / "quickstart.ipynb"


def source_digest() -> str:
    """SHA-256 over the library's Python sources, in path order (what the outputs were made by)."""
    digest = hashlib.sha256()
    for path in sorted((ROOT / "model_emotion").rglob("*.py")):
        digest.update(path.relative_to(ROOT).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def main() -> int:
    import nbclient
    import nbformat

    sys.path.insert(0, str(ROOT))
    import model_emotion

    if not os.environ.get("ME_SHARED_DATA"):
        print("set ME_SHARED_DATA to the shared data folder", file=sys.stderr)
        return 2
    os.environ.pop("ME_QUICKSTART_QUICK", None)  # the full size
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    start = time.perf_counter()
    nbclient.NotebookClient(
        notebook, timeout=3600, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOK.parent)}}
    ).execute()
    notebook.metadata["model_emotion"] = {
        "version": model_emotion.__version__,
        "sources_sha256": source_digest(),
        "seconds": round(time.perf_counter() - start),
    }
    nbformat.write(notebook, NOTEBOOK)
    print(f"wrote {NOTEBOOK} ({notebook.metadata['model_emotion']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
