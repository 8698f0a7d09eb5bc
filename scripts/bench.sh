#!/usr/bin/env bash
# The main job: set up .venv, run the default asv suite on the backends this machine has, record
# the machine's hardware, versions and backend settings beside its results, publish the asv site.
#
#   scripts/bench.sh                 # full run (about 14 minutes on 2 quiet CPU cores once
#                                    #   installed, the noisy timings' second pass included)
#   scripts/bench.sh --quick         # one call per case: a smoke run (about 3.5 minutes on 2 cores)
#   scripts/bench.sh -b 'Conv\.time_op'   # extra arguments go to `asv run`
#
# CONVBENCH_MACHINE names the machine (default: <gpu or cpu>-<cores>core-<cpu model>, e.g.
# cpu-2core-intel-xeon); results land in results/<machine>/, the site in html/.
#
# The suites take as parameters the backends this machine may run (the others are listed in the
# report with the reason the environment record gives); CONVBENCH_ASV_BACKENDS=all takes every
# built-in backend, each that cannot run recorded as skipped, or names a comma-separated few.
#
# CONVBENCH_NO_SETUP=1 skips the set-up and runs with $PYTHON (default python3) as it is, e.g. on a
# machine without internet whose python already has the frameworks (scripts/gpu_session.sh).
#
# Numbers a user can trust: before asv starts, wait up to CONVBENCH_QUIET_WAIT seconds (120; 0
# looks once) for other processes to leave the CPUs, then go on either way (the suites record the
# load each timing saw); asv's progress lines get the time elapsed and an estimate of the time
# left; at the end the timings that came out noisy are run once more, their samples added to
# the first pass's (asv --append-samples). CONVBENCH_NO_REMEASURE=1, or a --quick run (one sample
# per case), skips that second pass.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${CONVBENCH_NO_SETUP:-}" ]; then
    scripts/setup.sh
    PATH="$PWD/.venv/bin:$PATH"
fi
PYTHON=${PYTHON:-python3}

MACHINE=${CONVBENCH_MACHINE:-$("$PYTHON" -c 'import convbench.environment as e; print(e.default_machine_name())')}
# `asv machine --machine NAME --yes` would store the name alone: store asv's detected facts too.
"$PYTHON" - "$MACHINE" <<'PY'
import sys
from asv.machine import Machine, MachineCollection
MachineCollection.save(sys.argv[1], {**Machine.get_defaults(), "machine": sys.argv[1]})
PY
# asv keeps one number per case and nothing about it: the suites write what the run knew of each
# case here (convbench.records: library, device, precision, tolerance; why a case was skipped or,
# for a case that raised, failed), beside the machine's results, for the report. Each record
# names its commit; the report takes those of the results' commit.
export CONVBENCH_RECORDS="$PWD/results/$MACHINE/convbench-records.jsonl"
CONVBENCH_COMMIT=$(git rev-parse HEAD)
export CONVBENCH_COMMIT
mkdir -p "results/$MACHINE"
if ! "$PYTHON" -m convbench.quiet --wait "${CONVBENCH_QUIET_WAIT:-120}"; then
    echo "bench.sh: starting on a busy machine: its timings will be marked noisy" >&2
fi
# --python=same: benchmark the installed .venv; --set-commit-hash: results of an "existing"
# environment are saved only when tied to a commit; --record-samples: keep the samples, for the
# second pass to add to. Unbuffered, so that asv's lines reach the progress filter as they come.
asv_run() {
    PYTHONUNBUFFERED=1 "$PYTHON" -m asv run --python=same --machine "$MACHINE" \
        --set-commit-hash "$CONVBENCH_COMMIT" --record-samples "$@" 2>&1 |
        "$PYTHON" scripts/asv_trust.py progress
}
if ! asv_run "$@"; then
    echo "bench.sh: asv run reported failed benchmarks (see above); publishing the rest" >&2
fi
QUICK=""
for arg in "$@"; do
    case "$arg" in --quick | -q) QUICK=1 ;; esac
done
if [ -z "${CONVBENCH_NO_REMEASURE:-}" ] && [ -z "$QUICK" ]; then
    mapfile -t AGAIN < <("$PYTHON" scripts/asv_trust.py noisy "results/$MACHINE" --commit "$CONVBENCH_COMMIT")
    if [ "${#AGAIN[@]}" -gt 0 ]; then
        echo "bench.sh: measuring the $((${#AGAIN[@]} / 2)) noisy timings again, keeping every sample"
        if ! asv_run --append-samples "${AGAIN[@]}"; then
            echo "bench.sh: the second pass reported failed benchmarks (see above)" >&2
        fi
    fi
fi
# CONVBENCH_ASV_ONLY=1: stop here (a slice of a longer run; scripts/gpu_session.sh).
if [ -n "${CONVBENCH_ASV_ONLY:-}" ]; then
    exit 0
fi
# The run-to-run spread the report states for this machine: the same cases timed by three fresh
# processes (about a minute; not for a --quick run).
if [ -z "$QUICK" ] && [ -z "${CONVBENCH_NO_REPRODUCIBILITY:-}" ]; then
    "$PYTHON" scripts/reproducibility.py --save "results/$MACHINE" ||
        echo "bench.sh: the run-to-run spread could not be measured (see above)" >&2
fi
"$PYTHON" -m convbench env --machine "$MACHINE"
"$PYTHON" -m asv publish
# convbench's own report: every machine under results/, side by side, in one offline page.
"$PYTHON" -m convbench report results --output site
echo "bench.sh: report at $PWD/site/index.html; asv's history site in html/ (asv preview)"
