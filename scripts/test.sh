#!/usr/bin/env bash
# Set up the machine, then lint, type-check and run the tests. Extra arguments go to pytest,
# e.g. `scripts/test.sh -m "not slow"` for the fast, offline subset.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check lib tests
.venv/bin/ruff format --check lib tests
.venv/bin/mypy
.venv/bin/fsnbuild lock --check --variant sklearn --variant tensorflow
exec .venv/bin/pytest "$@"
