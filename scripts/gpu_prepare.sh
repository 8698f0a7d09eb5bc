#!/usr/bin/env bash
# Here, before a call of the device tool: fill .whl/ (git-ignored; name it in the call's `carry`)
# with what the GPU machine lacks. That machine has no internet; its python3 (3.12) already holds
# torch, jax, cupy, triton, scipy, pandas, matplotlib, click, rich, hypothesis and pytest.
#   - asv and asv_runner, with those of their needs the machine's image does not have;
#   - convbench.bundle: this repository's history, so that asv on the copy of the working tree
#     can tie results to the commit (scripts/gpu_session.sh unpacks it when no .git came along);
#   - git/: a git that runs there, in case the image has none.
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
# asv needs git, and the image's list of tools does not promise it: carry this machine's git
# (Debian 12, glibc 2.36, older than the image's) with the libraries it links beside libc, for
# scripts/gpu_session.sh to use where no git runs there.
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
