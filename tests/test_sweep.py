"""convbench.sweep without the CLI: cases, failure records, the up-front refusal, the stream and
output files, signals, and the worker's answers on scipy."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from convbench.agreement import tolerance, tolerance_for
from convbench.backends.base import BackendUnavailable
from convbench.registry import get_backend
from convbench.spec import ConvSpec
from convbench.sweep import (
    STREAM_SUFFIX,
    WRITERS,
    Case,
    Output,
    OutputError,
    SweepOptions,
    build_cases,
    death,
    failure,
    load_stream,
    read_records,
    refusal,
    run_sweep,
    stop_signals,
    sweep,
)

SPEC = ConvSpec()


def case(size: int = 16, kernel: int = 3, dtype: str = "float32", batch: int = 1, **spec) -> Case:
    return Case("scipy-correlate2d", size, kernel, dtype, batch, ConvSpec(**spec))


def test_cases_sharing_inputs_are_adjacent():
    cases = build_cases(["a", "b"], [8, 16], [3], ["float32", "float64"], 1, SPEC)
    assert [(c.backend, c.size, c.dtype) for c in cases] == [
        ("a", 8, "float32"), ("b", 8, "float32"), ("a", 8, "float64"), ("b", 8, "float64"),
        ("a", 16, "float32"), ("b", 16, "float32"), ("a", 16, "float64"), ("b", 16, "float64"),
    ]  # fmt: skip


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
