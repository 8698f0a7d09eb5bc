#!/usr/bin/env bash
# There, on the lent GPU machine: one stage per call of the device tool, each well inside a
# call's 10 minutes. Run scripts/gpu_prepare.sh here first and carry .whl:
#
#   bash scripts/gpu_session.sh check            # GPU, versions, property tests on the GPU backends
#   bash scripts/gpu_session.sh bench REGEX...   # slices of the asv suite (asv -b), one run each
#   bash scripts/gpu_session.sh fidelity         # timer and asv vs triton's do_bench, + report
#
# What comes back is under $OUT: logs, the worst errors of the property tests (errors.json), the
# machine's results folder as results.tgz (unpack it into results/ here and commit it; carry it
# to the next call as results/ travels with the working tree) and fidelity.csv.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${OUT:?OUT is unset: this runs on the device machine, through the device tool}"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl
# asv drops PYTHONPATH from the benchmarks' environment and passes ASV_PYTHONPATH instead.
export PYTHONPATH="/tmp/site:$PWD" ASV_PYTHONPATH="/tmp/site:$PWD"
export PYTHON=python3 CONVBENCH_NO_SETUP=1 PYTHONUNBUFFERED=1 MPLBACKEND=Agg
if [ ! -d .git ]; then
    git init -q && git fetch -q .whl/convbench.bundle "HEAD:refs/heads/main"
    git update-ref HEAD refs/heads/main
fi
MACHINE=${CONVBENCH_MACHINE:-$(python3 -c 'import convbench.environment as e; print(e.default_machine_name())')}
export CONVBENCH_MACHINE=$MACHINE
stage=${1:?stage: check, bench or fidelity}
shift
case "$stage" in
check)
    # Several frameworks share the GPU in this one process: JAX must not take 75% of it up front.
    export XLA_PYTHON_CLIENT_PREALLOCATE=false
    {
        nvidia-smi || echo "nvidia-smi: not found or failed"
        python3 -m convbench list --deep
        python3 -m convbench env --machine "$MACHINE" --output "$OUT/environment.json"
    } 2>&1 | tee "$OUT/check.log"
    CONVBENCH_ERROR_LOG="$OUT/errors.json" python3 -m pytest -q -p no:cacheprovider \
        tests/test_backends.py tests/test_gpu_logic.py tests/test_failures.py \
        -k "cuda or gpu or failure or record" 2>&1 | tee -a "$OUT/check.log"
    ;;
bench)
    # Slices of the suite (asv -b regexes), one asv run each: asv saves a run's results only when
    # it ends, so a slice cut off by the call's time limit loses itself alone. CONVBENCH_BUDGET
    # (default 540 s) bounds the whole stage; a slice gets what is left of it.
    [ $# -gt 0 ] || set -- '.'
    deadline=$((SECONDS + ${CONVBENCH_BUDGET:-540}))
    for slice in "$@"; do
        left=$((deadline - SECONDS))
        if [ "$left" -lt 60 ]; then
            echo "gpu_session: no time left for slice $slice" | tee -a "$OUT/bench.log"
            continue
        fi
        CONVBENCH_ASV_ONLY=1 timeout "$left" scripts/bench.sh -b "$slice" 2>&1 \
            | tee -a "$OUT/bench.log" \
            || echo "gpu_session: slice $slice stopped, status $?" | tee -a "$OUT/bench.log"
    done
    python3 -m convbench env --machine "$MACHINE"
    tar czf "$OUT/results.tgz" "results/$MACHINE"
    ;;
fidelity)
    export XLA_PYTHON_CLIENT_PREALLOCATE=false
    python3 scripts/gpu_fidelity.py --results results --machine "$MACHINE" \
        --output "$OUT/fidelity.csv" 2>"$OUT/fidelity.err" | tee "$OUT/fidelity.log"
    python3 -m convbench report results --output "$OUT/site" >/dev/null
    tar czf "$OUT/site.tgz" -C "$OUT" site && rm -rf "$OUT/site"
    ;;
*)
    echo "unknown stage $stage: check, bench or fidelity" >&2
    exit 2
    ;;
esac
