#!/usr/bin/env bash
# Create (once) and update the project's virtual environment in .venv with every backend that
# installs on this machine. torch is pinned to the CPU wheel that lies on this kind of machine;
# the package itself asks only for a range, so CUDA users keep their own build.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
if [ "${CONVBENCH_TORCH:-cpu}" = cpu ] && ! .venv/bin/python -c "import torch" 2>/dev/null; then
    .venv/bin/python -m pip install -q "torch==2.13.0"
fi
.venv/bin/python -m pip install -q -e ".[all,test]"
