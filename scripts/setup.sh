#!/usr/bin/env bash
# Create .venv (once) and install convbench into it, editable, with every extra and the test tools.
#
# It installs only when the set-up it would do has changed: after a successful install a stamp in
# .venv holds a hash of pyproject.toml, this script and CONVBENCH_TORCH, and a later call whose
# hash matches returns at once (pip's own check of an unchanged environment takes seconds and
# needs the package index). A fresh clone has no .venv, so it always installs.
#
# torch: unless .venv already holds a torch, torch==2.13.0 is installed from your pip index (on
# Linux, PyPI's wheel brings CUDA libraries; for the CPU-only wheel install it into .venv first,
# from https://download.pytorch.org/whl/cpu). CONVBENCH_TORCH=own skips the pin and lets the
# `torch` extra's range choose. PYTHON names the interpreter that creates .venv (python3).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
TORCH=${CONVBENCH_TORCH:-pinned}
STAMP=.venv/.convbench-setup
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
wanted=$(cat pyproject.toml scripts/setup.sh <(echo "torch=$TORCH") | sha256sum | cut -d' ' -f1)
if [ "$(cat "$STAMP" 2>/dev/null)" = "$wanted" ]; then
    exit 0
fi
rm -f "$STAMP"
.venv/bin/python -m pip install -q --upgrade pip
if [ "$TORCH" != own ] && ! .venv/bin/python -c "import torch" 2>/dev/null; then
    .venv/bin/python -m pip install -q "torch==2.13.0"
fi
.venv/bin/python -m pip install -q -e ".[all,test]"
echo "$wanted" >"$STAMP"
