#!/usr/bin/env bash
# On a GPU machine without internet whose python3 already holds the frameworks: the GPU run in
# stages, each within a time budget. Fill .whl/ with scripts/gpu_prepare.sh on a connected machine
# and copy the working tree with it (docs/gpu.md). OUT names the folder for what to bring back:
# logs, the worst errors of the property tests (errors.json), the machine's results folder
# (results.tgz: asv's results and the run records that scripts/bench.sh has the suites write to
# convbench-records.jsonl) and fidelity.csv.
#
#   bash scripts/gpu_session.sh check            # GPU, versions, environment, property tests
#   bash scripts/gpu_session.sh bench REGEX...   # slices of the asv suite (asv -b), one run each
#   bash scripts/gpu_session.sh fidelity         # timer and asv vs triton's do_bench and events
#
# The whole GPU run as three commands, most important first, each within the default budget:
#
#   bash scripts/gpu_session.sh plan 1    # check, then the GPU backends' Conv times and errors
#   bash scripts/gpu_session.sh plan 2    # settings, transfers, batches, peak memory on the GPU
#   bash scripts/gpu_session.sh plan 3    # timing fidelity, then torch-cpu on the same machine
#
# A command keeps to one deadline, CONVBENCH_BUDGET seconds (540) after it started: each step is
# killed at the deadline, the log says how long each took, and CONVBENCH_RESERVE seconds (30) are
# left for packing $OUT. Unpack results.tgz at the root of your checkout (tar xzf results.tgz) to
# put the machine's results beside the others.
set -euo pipefail
deadline=${CONVBENCH_DEADLINE:-$(($(date +%s) + ${CONVBENCH_BUDGET:-540}))}
export CONVBENCH_DEADLINE=$deadline
cd "$(dirname "$0")/.."
: "${OUT:?OUT is unset: name the folder for logs and results, e.g. OUT=/tmp/convbench-gpu}"
mkdir -p "$OUT"

# Seconds left before the deadline, less the reserve.
left() { echo $((deadline - $(date +%s) - ${CONVBENCH_RESERVE:-30})); }
# Run "$@" within what is left (killed, with its children, at the deadline); log its duration.
within() {
    local start=$SECONDS rc=0 budget
    budget=$(left)
    if [ "$budget" -lt 20 ]; then
        echo "gpu_session: no time left for: $*"
        return 0
    fi
    timeout -k 10 "$budget" "$@" || rc=$?
    echo "gpu_session: $((SECONDS - start)) s, status $rc: $*"
}

if [ "${1:-}" = plan ]; then
    # The calls, each one process sharing one deadline; every step runs whatever the last did.
    self=scripts/gpu_session.sh
    case "${2:?plan 1, 2 or 3}" in
    1)
        bash "$self" check
        bash "$self" bench "Conv\.time_op\('torch-cuda'" \
            "Conv\.track_max_rel\('(torch-cuda|cupy-gpu|jax-gpu)'" \
            "Conv\.time_op\('cupy-gpu'" "Conv\.time_op\('jax-gpu'"
        ;;
    2)
        bash "$self" bench "ConvSettings" "Transfer\.\w+\('(torch-cuda|cupy-gpu|jax-gpu)'" \
            "ConvBatch\.\w+\('(torch-cuda|cupy-gpu|jax-gpu)'" \
            "Conv\.peakmem_op\('(torch-cuda|cupy-gpu|jax-gpu)'"
        ;;
    3)
        CONVBENCH_RESERVE=$((${CONVBENCH_RESERVE:-30} + 120)) bash "$self" fidelity
        bash "$self" bench "(Conv\.time_op|Transfer\.\w+)\('torch-cpu'"
        ;;
    *)
        echo "plan: 1, 2 or 3" >&2
        exit 2
        ;;
    esac
    exit 0
fi

if [ ! -d /tmp/site/asv ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl
fi
# asv drops PYTHONPATH from the benchmarks' environment and passes ASV_PYTHONPATH instead.
export PYTHONPATH="/tmp/site:$PWD" ASV_PYTHONPATH="/tmp/site:$PWD"
export PYTHON=python3 CONVBENCH_NO_SETUP=1 PYTHONUNBUFFERED=1 MPLBACKEND=Agg
if ! git --version >/dev/null 2>&1; then
    echo "gpu_session: no git here; using the one carried in .whl/git"
    export PATH="$PWD/.whl/git:$PATH"
fi
if [ ! -d .git ]; then
    git init -q && git fetch -q .whl/convbench.bundle "HEAD:refs/heads/main"
    git update-ref HEAD refs/heads/main
fi
MACHINE=${CONVBENCH_MACHINE:-$(python3 -c 'import convbench.environment as e; print(e.default_machine_name())')}
export CONVBENCH_MACHINE=$MACHINE
mkdir -p "results/$MACHINE"
stage=${1:?stage: plan, check, bench or fidelity}
shift
case "$stage" in
check)
    # Several frameworks share the GPU in this one process: JAX must not take 75% of it up front.
    export XLA_PYTHON_CLIENT_PREALLOCATE=false
    {
        nvidia-smi || echo "nvidia-smi: not found or failed"
        within python3 -m convbench list --deep
        # The machine's record, beside its results: GPU, driver, CUDA, cuDNN, versions, settings.
        within python3 -m convbench env --machine "$MACHINE"
        cp "results/$MACHINE/convbench-environment.json" "$OUT/environment.json" || true
    } 2>&1 | tee "$OUT/check.log"
    CONVBENCH_ERROR_LOG="$OUT/errors.json" within python3 -m pytest -q -p no:cacheprovider \
        tests/test_backends.py tests/test_gpu_logic.py tests/test_suite_records.py \
        -k "cuda or gpu or failure or record" 2>&1 | tee -a "$OUT/check.log"
    ;;
bench)
    # Slices of the suite (asv -b regexes), one asv run each: asv saves a run's results only when
    # it ends, so a slice cut off at the deadline loses itself alone.
    [ $# -gt 0 ] || set -- '.'
    for slice in "$@"; do
        CONVBENCH_ASV_ONLY=1 within scripts/bench.sh -b "$slice" 2>&1 | tee -a "$OUT/bench.log"
    done
    if [ ! -f "results/$MACHINE/convbench-environment.json" ]; then
        within python3 -m convbench env --machine "$MACHINE" 2>&1 | tee -a "$OUT/bench.log"
    fi
    tar czf "$OUT/results.tgz" "results/$MACHINE"
    ;;
fidelity)
    export XLA_PYTHON_CLIENT_PREALLOCATE=false
    within python3 scripts/gpu_fidelity.py --results results --machine "$MACHINE" \
        --output "$OUT/fidelity.csv" 2>"$OUT/fidelity.err" | tee "$OUT/fidelity.log"
    ;;
*)
    echo "unknown stage $stage: plan, check, bench or fidelity" >&2
    exit 2
    ;;
esac
