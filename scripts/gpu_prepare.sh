#!/usr/bin/env bash
# Here, before a call of the device tool: fill .whl/ (git-ignored; name it in the call's `carry`)
# with what the GPU machine lacks. That machine has no internet; its python3 (3.12) already holds
# torch, jax, cupy, triton, scipy, pandas, matplotlib, click, rich, hypothesis and pytest.
#   - asv and asv_runner, with those of their needs the machine's image does not have;
#   - convbench.bundle: this repository's history, so that asv on the copy of the working tree
#     can tie results to the commit (scripts/gpu_session.sh unpacks it when no .git came along).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
rm -rf .whl && mkdir .whl
"$PYTHON" -m pip download -q --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    --platform manylinux1_x86_64 -d .whl "asv==0.6.6" "asv-runner==0.3.2"
# Already in the GPU image (its package list: /work/.library/device/KINDS.md); a second version
# of a package would stop the install there.
for present in build filelock packaging pyproject_hooks pyyaml PyYAML tabulate zipp; do
    rm -f .whl/"$present"-*.whl
done
git bundle create -q .whl/convbench.bundle HEAD
ls .whl && du -sh .whl
