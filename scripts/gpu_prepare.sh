#!/usr/bin/env bash
# On a machine with internet, for a GPU machine without it whose python3 already holds the
# frameworks (torch, JAX, CuPy, ...) and convbench's needs (numpy, scipy, pandas, click, rich,
# pytest, hypothesis; the report is built back home): fill .whl/ (git-ignored) with what that
# machine still lacks.
# Then copy the working tree, .whl/ included, to the GPU machine and run scripts/gpu_session.sh
# there (docs/gpu.md).
#   - asv and asv_runner wheels for the GPU machine's Python, with those of their needs it lacks;
#   - convbench.bundle: this repository's history, so that asv there can tie results to a commit
#     when the copy arrives without .git (scripts/gpu_session.sh unpacks it);
#   - git/: this machine's git with the libraries it links besides libc, used there only when no
#     git runs (it needs a glibc at least as new as this machine's).
#
# CONVBENCH_GPU_PYTHON: the GPU machine's Python version (default 3.12).
# CONVBENCH_GPU_HAS: packages the GPU machine's Python already has; their wheels are left out so
#   that its own versions stay in use (default: build filelock packaging pyproject_hooks pyyaml
#   tabulate zipp).
# PYTHON: the interpreter whose pip downloads the wheels (default .venv/bin/python).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
GPU_PYTHON=${CONVBENCH_GPU_PYTHON:-3.12}
GPU_HAS=${CONVBENCH_GPU_HAS:-build filelock packaging pyproject_hooks pyyaml tabulate zipp}
rm -rf .whl && mkdir .whl
"$PYTHON" -m pip download -q --only-binary=:all: --python-version "$GPU_PYTHON" --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    --platform manylinux1_x86_64 -d .whl "asv==0.6.6" "asv-runner==0.3.2"
for present in $GPU_HAS; do
    find .whl -maxdepth 1 -iname "$present-*.whl" -delete
done
git bundle create -q .whl/convbench.bundle HEAD
mkdir -p .whl/git/lib
cp "$(command -v git)" .whl/git/git.bin
ldd .whl/git/git.bin | awk '/=> \// && $1 !~ /^libc\.so/ {print $3}' | xargs -I{} cp -L {} .whl/git/lib/
cat >.whl/git/git <<'SH'
#!/bin/sh
here=$(dirname "$(readlink -f "$0")")
LD_LIBRARY_PATH="$here/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" exec "$here/git.bin" "$@"
SH
chmod +x .whl/git/git
ls .whl && du -sh .whl
