#!/usr/bin/env bash
# Lint and format check (ruff, configured in pyproject.toml); CI runs it before the tests.
# `ruff format .` then `ruff check --fix .` repairs most of what it reports.
set -euo pipefail
cd "$(dirname "$0")/.."
"${PYTHON:-python}" -m ruff check .
"${PYTHON:-python}" -m ruff format --check .
