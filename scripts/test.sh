#!/usr/bin/env bash
# Set up .venv (nothing to do when it is up to date), then run pytest: the whole suite, or what the
# arguments say (scripts/test.sh -q tests/test_spec.py). CI runs it without arguments (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/python -m pytest "$@"
