"""convbench.sweep without the CLI: cases, failure records, the up-front refusal, the stream and
output files, signals, and the worker's answers on scipy."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import convbench.sweep as sweep_module
from convbench.agreement import tolerance, tolerance_for
from convbench.backends.base import BackendUnavailable
from convbench.registry import get_backend
from convbench.spec import ConvSpec
from convbench.sweep import (
    PASS_FIELDS,
    STREAM_SUFFIX,
    WRITERS,
    Case,
    Outcome,
    Output,
    OutputError,
    SweepOptions,
    build_cases,
    death,
    failure,
    give_threads,
    load_stream,
    merge_passes,
    needs_remeasure,
    read_records,
    refusal,
    run_sweep,
    shared_worker,
    stop_signals,
    sweep,
)

SPEC = ConvSpec()


def case(
    size: int = 16, kernel: int = 3, dtype: str = "float32", batch: int = 1, threads=None, **spec
) -> Case:
    return Case("scipy-correlate2d", size, kernel, dtype, batch, ConvSpec(**spec), threads)


def test_cases_sharing_inputs_are_adjacent():
    cases = build_cases(["a", "b"], [8, 16], [3], ["float32", "float64"], 1, SPEC)
    assert [(c.backend, c.size, c.dtype) for c in cases] == [
        ("a", 8, "float32"), ("b", 8, "float32"), ("a", 8, "float64"), ("b", 8, "float64"),
        ("a", 16, "float32"), ("b", 16, "float32"), ("a", 16, "float64"), ("b", 16, "float64"),
    ]  # fmt: skip


def test_cases_per_thread_count_are_grouped_and_a_gpu_case_comes_once():
    cases = build_cases(["torch-cpu", "torch-cuda"], [8], [3], ["float32"], 1, SPEC, [1, 2])
    assert [(c.backend, c.threads) for c in cases] == [
        ("torch-cpu", 1), ("torch-cuda", None), ("torch-cpu", 2),
    ]  # fmt: skip


def test_cases_without_thread_counts_have_none():
    cases = build_cases(["torch-cpu"], [8], [3], ["float32"], 1, SPEC)
    assert [c.threads for c in cases] == [None]


def test_a_case_names_its_thread_count():
    one = Case("torch-cpu", 64, 5, "float32", 1, SPEC, threads=2)
    assert str(one) == "torch-cpu[size=64,kernel=5,dtype=float32,threads=2]"


def test_a_case_names_itself_and_its_record_fields():
    one = Case("torch-cpu", 64, 5, "float16", 4, ConvSpec(op="convolve", mode="full"))
    assert str(one) == "torch-cpu[size=64,kernel=5,dtype=float16,batch=4]"
    assert one.fields() == {
        "backend": "torch-cpu", "size": 64, "kernel": 5, "dtype": "float16", "batch": 4,
        "op": "convolve", "mode": "full", "boundary": "fill",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("error", "status", "reason"),
    [
        (NotImplementedError("no float16"), "unsupported", "no float16"),
        (BackendUnavailable("no GPU"), "unsupported", "no GPU"),
        (SystemExit(3), "error", "the backend called sys.exit(3)"),
        (KeyboardInterrupt(), "error", "the backend raised KeyboardInterrupt"),
        (MemoryError("big"), "error", "out of memory: MemoryError: big"),
        (ValueError("bad\nsecond line"), "error", "ValueError: bad"),
    ],
)
def test_failure_records_the_status_and_reason(error, status, reason):
    record = failure(case(), error, {"library": "scipy"}).record
    assert (record["status"], record["reason"], record["library"]) == (status, reason, "scipy")
    assert record["precision"] is None  # a fact not given is None, never guessed


@pytest.mark.parametrize(
    ("exitcode", "reason"),
    [
        (-signal.SIGSEGV, "worker process died with signal SIGSEGV"),
        (-signal.SIGABRT, "worker process died with signal SIGABRT"),
        (
            -signal.SIGKILL,
            "worker process died with signal SIGKILL (the system's out-of-memory killer sends it)",
        ),
        (0, "worker process exited with status 0 while running the case"),
        (1, "worker process exited with status 1 while running the case"),
    ],
)
def test_death_says_how_the_worker_ended(exitcode, reason):
    assert death(exitcode) == reason


def test_a_case_larger_than_memory_is_refused_up_front():
    huge = case(size=10**6)
    backend = get_backend("scipy-correlate2d")
    reason = refusal(backend, huge)
    assert reason is not None and reason.startswith(
        "scipy-correlate2d float32 1000000x1000000 image with a 3x3 kernel needs about"
    )
    assert refusal(backend, case()) is None
    (outcome,) = [o for _, o in sweep([huge])]
    assert outcome.record["status"] == "unsupported"
    # The same words, but for the memory available, which moves between two readings.
    assert outcome.record["reason"].rsplit(",", 1)[0] == reason.rsplit(",", 1)[0]
    assert outcome.record["library"] == "scipy"  # the worker's facts come with the refusal


def test_inputs_a_spec_cannot_take_fail_every_backend_of_the_group():
    # A 5x5 kernel on a 2x2 image has no 'valid' output.
    cases = build_cases(["scipy-correlate2d", "torch-cpu"], [2], [5], ["float32"], 1,
                        ConvSpec(mode="valid"))  # fmt: skip
    records = [o.record for _, o in sweep(cases)]
    assert [r["status"] for r in records] == ["error", "error"]
    assert all(r["reason"].startswith("ValueError") for r in records)


def test_the_worker_answers_with_the_result_the_timing_and_the_facts():
    cases = build_cases(["scipy-correlate2d"], [16], [3], ["float32", "float64"], 1, SPEC)
    outcomes = [o for _, o in sweep(cases, SweepOptions(min_run_time=0.0), keep_output=True)]
    for outcome, dtype in zip(outcomes, ["float32", "float64"], strict=True):
        record = outcome.record
        assert outcome.output.dtype == np.dtype(dtype) and outcome.output.shape == (16, 16)
        assert record["status"] == "ok" and record["ok"] is True
        assert record["library"] == "scipy" and record["device"] == "cpu"
        assert record["precision"] == dtype and record["cpu_twin"] is None
        assert record["max_rel"] <= record["tolerance"]
        assert 0 < record["q25_s"] <= record["median_s"] <= record["q75_s"]
        assert record["samples"] >= 5


TRUST = [
    "median_s", "q25_s", "q75_s", "spread", "ci_low_s", "ci_high_s", "samples", "number",
    "overhead", "threads", "busy_threads", "other_cores", "cores", "load_average_start",
    "load_average_end", "noisy", "noisy_reasons",
]  # fmt: skip


@pytest.fixture(scope="module")
def threaded() -> dict[tuple[str, int], dict]:
    """torch-cpu and scipy timed at 1 and 2 threads, by (backend, threads asked)."""
    cases = build_cases(["torch-cpu", "scipy-correlate2d"], [16], [3], ["float32"], 1, SPEC, [1, 2])
    records = [o.record for _, o in sweep(cases, SweepOptions(min_run_time=0.0))]
    return {(r["backend"], r["threads_asked"]): r for r in records}


def test_every_timing_carries_the_facts_of_its_measurement(threaded):
    for record in threaded.values():
        assert record["status"] == "ok", record["reason"]
        assert set(TRUST) <= set(record)
        assert isinstance(record["noisy"], bool) and record["passes"] == 1
        assert isinstance(record["noisy_reasons"], str)  # '; '-joined for a flat table
        assert record["noisy"] == (record["noisy_reasons"] != "")
        assert record["cores"] >= 1 and record["other_cores"] >= 0
        assert record["ci_low_s"] <= record["median_s"] <= record["ci_high_s"]


@pytest.mark.parametrize("count", [1, 2])
def test_a_cpu_backend_runs_with_the_thread_count_asked(threaded, count):
    torch = threaded["torch-cpu", count]
    assert (torch["threads_asked"], torch["threads"]) == (count, count)
    # scipy's loops run one thread whatever is asked, and the record says so.
    scipy = threaded["scipy-correlate2d", count]
    assert (scipy["threads_asked"], scipy["threads"]) == (count, 1)


def test_a_library_without_a_thread_control_records_no_count():
    class Plugin:
        library = "numpy"

    assert give_threads(Plugin(), 2) is None
    assert give_threads(get_backend("torch-cuda"), None) is None  # a GPU case asks none


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc/<pid>/environ")
def test_the_worker_starts_with_the_thread_count_in_its_environment():
    (record,) = [o.record for _, o in sweep([case(8, threads=3)], SweepOptions(min_run_time=0.0))]
    worker = shared_worker(3)
    environ = Path(f"/proc/{worker._process.pid}/environ").read_bytes().split(b"\0")
    assert {b"OMP_NUM_THREADS=3", b"TF_NUM_INTRAOP_THREADS=3", b"PJRT_NPROC=3"} <= set(environ)
    assert record["threads_asked"] == 3
    assert shared_worker(1) is not worker  # another count: another worker


def timed(median: float, noisy: bool, status: str = "ok") -> dict:
    return {"status": status, "median_s": median, "noisy": noisy, "spread": 0.5 if noisy else 0.01,
            "noisy_reasons": "wide spread" if noisy else "", "passes": 1}  # fmt: skip


@pytest.mark.parametrize(
    ("first", "second", "reported"),
    [
        (timed(2.0, True), timed(3.0, False), 2),  # the second is trusted: slower or not
        (timed(2.0, True), timed(1.0, True), 2),  # both noisy: the faster
        (timed(2.0, True), timed(3.0, True), 1),
        (timed(2.0, True), {"status": "error", "reason": "boom"}, 1),  # the second did not run
    ],
)
def test_merge_passes_reports_one_pass_and_keeps_both(first, second, reported):
    merged = merge_passes(first, second)
    assert merged["reported_pass"] == reported and merged["passes"] == 2
    assert merged["median_s"] == (first, second)[reported - 1]["median_s"]
    for number, record in ((1, first), (2, second)):
        for name in PASS_FIELDS:
            assert merged[f"pass{number}_{name}"] == record.get(name)


@pytest.mark.parametrize(
    ("record", "again"),
    [
        (timed(1.0, True), True),
        (timed(1.0, False), False),
        (timed(1.0, True, "mismatch"), True),
        ({"status": "error", "noisy": None}, False),
        ({"status": "unsupported"}, False),
    ],
)
def test_only_noisy_timings_are_measured_again(record, again):
    assert needs_remeasure(record) is again


def fake_sweep(passes: list[list[dict]]):
    """A ``sweep`` that answers the cases of each call with the next list of records."""
    calls = iter(passes)

    def answer(cases, options=None, *, stop=None, announce=None, keep_output=False):
        for case, record in zip(cases, next(calls), strict=True):
            if announce is not None:
                announce(case)
            yield case, Outcome({**case.fields(), **record})

    return answer


def test_run_sweep_measures_the_noisy_cases_again_and_streams_both(tmp_path, monkeypatch):
    first = [timed(1.0, True), timed(1.0, False), timed(5.0, True)]
    monkeypatch.setattr(
        sweep_module, "sweep", fake_sweep([first, [timed(0.5, True), timed(4.0, False)]])
    )
    output, steps = Output(tmp_path / "out.jsonl"), []
    run = run_sweep([case(8), case(9), case(10)], output=output, announce=steps.append,
                    remeasure=True)  # fmt: skip
    assert [(s.case.size, s.done, s.planned, s.remeasure) for s in steps] == [
        (8, 0, 3, False), (9, 1, 3, False), (10, 2, 3, False), (8, 3, 5, True), (10, 4, 5, True),
    ]  # fmt: skip
    assert [r["median_s"] for r in run.records] == [0.5, 1.0, 4.0]
    assert [r["passes"] for r in run.records] == [2, 1, 2]
    assert [r.get("pass1_median_s") for r in run.records] == [1.0, None, 5.0]
    assert load_stream(output.path) == run.records
    assert not output.stream.exists()


def test_run_sweep_measures_once_unless_asked(monkeypatch):
    monkeypatch.setattr(sweep_module, "sweep", fake_sweep([[timed(1.0, True)]]))
    run = run_sweep([case(8)])
    assert run.records[0]["noisy"] and run.records[0]["passes"] == 1


def test_an_unsupported_dtype_is_the_backends_reason():
    (outcome,) = [o for _, o in sweep([case(dtype="float16")])]
    assert outcome.record["status"] == "unsupported"
    assert "float16 would be silently upcast" in outcome.record["reason"]
    assert outcome.record["library"] == "scipy"


RECORDS = [
    {"backend": "a", "size": 8, "status": "ok", "median_s": 1e-3, "reason": None, "ok": True},
    {"backend": "b", "size": 8, "status": "error", "median_s": math.nan, "reason": "boom"},
]


@pytest.mark.parametrize("suffix", sorted(WRITERS))
def test_records_written_are_read_back(tmp_path, suffix):
    path = tmp_path / f"records{suffix}"
    WRITERS[suffix](RECORDS, path)
    frame = read_records(path)
    assert frame.backend.tolist() == ["a", "b"]
    assert frame.status.tolist() == ["ok", "error"]
    assert frame.median_s.iloc[0] == 1e-3 and pd.isna(frame.median_s.iloc[1])


def test_a_stream_loses_only_its_torn_last_line(tmp_path):
    stream = tmp_path / f"out.csv{STREAM_SUFFIX}"
    stream.write_text(json.dumps(RECORDS[0]) + "\n" + json.dumps(RECORDS[0])[:20])
    assert load_stream(stream) == [RECORDS[0]]
    assert read_records(stream).backend.tolist() == ["a"]


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("out.xlsx", "must end in one of ['.csv', '.json', '.jsonl', '.parquet']"),
        ("out", "must end in one of"),
    ],
)
def test_output_suffix_is_checked(tmp_path, name, message):
    with pytest.raises(OutputError, match=message.replace("[", r"\[").replace("]", r"\]")):
        Output(tmp_path / name).check()


def test_output_that_is_a_folder_is_refused(tmp_path):
    (tmp_path / "out.csv").mkdir()
    with pytest.raises(OutputError, match="is a folder"):
        Output(tmp_path / "out.csv").check()


def test_output_folder_is_made_when_missing(tmp_path):
    Output(tmp_path / "new" / "deeper" / "out.csv").check()
    assert (tmp_path / "new" / "deeper").is_dir()
    assert list((tmp_path / "new" / "deeper").iterdir()) == []  # the probe leaves nothing


def test_run_sweep_writes_the_output_and_drops_the_stream(tmp_path):
    output = Output(tmp_path / "out.jsonl")
    run = run_sweep([case(8), case(9)], SweepOptions(min_run_time=0.0), output)
    assert run.stopped_by is None and run.write_error is None and run.planned == 2
    assert [r["size"] for r in load_stream(output.path)] == [8, 9]
    assert not output.stream.exists()
    assert sorted(os.listdir(tmp_path)) == ["out.jsonl"]  # no temporary left


def test_a_signal_inside_stop_signals_sets_stop_and_raises_nothing():
    before = signal.getsignal(signal.SIGINT)
    with stop_signals() as stop:
        assert stop.signal is None
        os.kill(os.getpid(), signal.SIGTERM)
        os.kill(os.getpid(), signal.SIGINT)
        assert stop.signal == signal.SIGINT  # the last one received
    assert signal.getsignal(signal.SIGINT) is before


def test_a_stopped_sweep_runs_no_further_case():
    with stop_signals() as stop:
        os.kill(os.getpid(), signal.SIGINT)
        assert list(sweep([case(8), case(9)], stop=stop)) == []


def test_the_host_result_comes_back_only_when_asked():
    ((_, outcome),) = list(sweep([case(8)], SweepOptions(min_run_time=0.0)))
    assert outcome.output is None and outcome.record["status"] == "ok"


def test_an_fft_backend_is_judged_by_its_own_tolerance():
    fft = Case("scipy-fftconvolve", 64, 7, "float32", 1, SPEC)
    ((_, outcome),) = list(sweep([fft], SweepOptions(min_run_time=0.0)))
    backend = get_backend("scipy-fftconvolve")
    expected = tolerance_for(backend, "float32", fft.image_shape, fft.kernel_shape)
    assert outcome.record["status"] == "ok", outcome.record["reason"]
    assert outcome.record["tolerance"] == expected
    assert expected != tolerance("float32", 49)  # not the direct method's


def test_the_driver_imports_no_framework():
    code = (
        "import sys\n"
        "from convbench.spec import ConvSpec\n"
        "from convbench.sweep import Case, SweepOptions, sweep\n"
        "cases = [Case('torch-cpu', 8, 3, 'float32', 1, ConvSpec())]\n"
        "(record,) = [o.record for _, o in sweep(cases, SweepOptions(min_run_time=0.0))]\n"
        "print(record['status'], sorted({'torch', 'tensorflow', 'jax'} & set(sys.modules)))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split("\n")[-2] == "ok []"
