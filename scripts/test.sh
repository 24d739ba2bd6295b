#!/usr/bin/env bash
# Set up, then run the test suite (offline; needs the shared data: ME_SHARED_DATA or ../shared/data).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 ME_OFFLINE=1
exec "${PYTHON:-python}" -m pytest -q "$@"
