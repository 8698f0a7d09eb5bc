"""The report, built from the fixture results in tests/data/results (made-up numbers written in
asv's own format by tests/data/make_fixture.py). Expected numbers are read from the raw JSON
files independently of convbench's loader."""

from __future__ import annotations

import itertools
import json
import math
import shutil
import subprocess
import tempfile
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from convbench.cli import main
from convbench.report import bandwidths, build_report, load_environments, load_results, tables
from convbench.timing import format_seconds

FIXTURE = Path(__file__).parent / "data" / "results"


def stored(machine: str, benchmark: str) -> list:
    """A benchmark's row (values, params, ...), straight from the asv JSON file."""
    (path,) = (FIXTURE / machine).glob("f1c7*.json")
    return json.loads(path.read_text())["results"][benchmark]


def raw(machine: str, benchmark: str, backend: str, size: int, kernel: int, dtype: str):
    """The stored value of one case."""
    values, params = stored(machine, benchmark)[:2]
    cases = list(itertools.product(*params))
    return values[cases.index((repr(backend), repr(size), repr(kernel), repr(dtype)))]


def one(frame, **equal):
    """The single row of ``frame`` whose columns hold the given values."""
    rows = frame[(frame[list(equal)] == pd.Series(equal)).all(axis=1)]
    assert len(rows) == 1, rows
    return rows.iloc[0]


@pytest.fixture(scope="module")
def frame():
    return load_results(FIXTURE)


@pytest.fixture(scope="module")
def environments():
    return load_environments(FIXTURE)


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> str:
    out = tmp_path_factory.mktemp("site")
    index = build_report(FIXTURE, out, measure=None)
    assert index == out / "index.html"
    return index.read_text()


def test_loader_reads_every_case_with_its_status(frame):
    conv = frame[(frame.suite == "Conv") & (frame.metric == "time_op")]
    assert set(frame.machine) == {"fixture-cpu", "fixture-gpu"}
    assert len(conv) == 2 * 5 * 3 * 2 * 2  # machines x backends x sizes x kernels x dtypes
    failed = conv[conv.status == "failed"]
    assert failed[["machine", "backend", "size", "kernel", "dtype"]].values.tolist() == [
        ["fixture-cpu", "tensorflow-cpu", 1024, 7, "float16"]
    ]
    stored = raw("fixture-cpu", "conv.Conv.time_op", "tensorflow-cpu", 1024, 7, "float16")
    assert stored is None  # asv's null: a failure
    skipped = raw("fixture-cpu", "conv.Conv.time_op", "scipy-correlate2d", 64, 3, "float16")
    assert math.isnan(skipped)  # asv's NaN: skipped
    assert set(frame.batch) == {1, 8}
    assert frame.loc[frame.status == "ok", "value"].notna().all()


def test_loader_reads_one_machine_folder(frame):
    one = load_results(FIXTURE / "fixture-gpu")
    assert set(one.machine) == {"fixture-gpu"}
    assert len(one) == len(frame[frame.machine == "fixture-gpu"])


def test_op_times_hold_the_stored_medians(frame):
    times = tables.op_times(frame).set_index(["machine", "backend", "size", "kernel", "dtype"])
    for key in [
        ("fixture-cpu", "torch-cpu", 1024, 3, "float32"),
        ("fixture-gpu", "torch-cuda", 256, 7, "float16"),
    ]:
        expected = raw(key[0], "conv.Conv.time_op", *key[1:])
        assert times.loc[key, "seconds"] == pytest.approx(expected, rel=1e-12)


def test_throughput_is_bytes_over_time_and_a_share_of_the_floor(frame):
    times = tables.op_times(frame)
    flow = tables.throughput(times, {"fixture-cpu": 10.0, "fixture-gpu": 40.0})
    row = one(
        flow, machine="fixture-cpu", backend="torch-cpu", size=1024, kernel=3, dtype="float32"
    )
    seconds = raw("fixture-cpu", "conv.Conv.time_op", "torch-cpu", 1024, 3, "float32")
    gbps = 4 * (2 * 1024 * 1024 + 9) / seconds / 1e9
    assert row.gb_per_s == pytest.approx(gbps)
    assert row.of_bandwidth == pytest.approx(gbps / 10.0)
    # A GPU reads its own memory: the host copy rate is no floor for it.
    assert flow[flow.backend == "torch-cuda"].of_bandwidth.isna().all()


def test_cpu_vs_gpu_pairs_a_library_across_devices_and_machines(frame):
    pairs = tables.cpu_vs_gpu(frame)
    assert set(zip(pairs.cpu_backend, pairs.gpu_backend, strict=True)) == {
        ("torch-cpu", "torch-cuda"),
        ("tensorflow-cpu", "tensorflow-gpu"),
    }
    assert set(pairs.cpu_machine) == {"fixture-cpu", "fixture-gpu"}
    row = one(
        pairs,
        cpu_machine="fixture-cpu",
        gpu_backend="torch-cuda",
        size=1024,
        kernel=7,
        dtype="float32",
    )
    cpu = raw("fixture-cpu", "conv.Conv.time_op", "torch-cpu", 1024, 7, "float32")
    gpu = raw("fixture-gpu", "conv.Conv.time_op", "torch-cuda", 1024, 7, "float32")
    e2e = raw("fixture-gpu", "conv.Transfer.time_end_to_end", "torch-cuda", 1024, 7, "float32")
    assert row.speedup == pytest.approx(cpu / gpu)
    assert row.speedup_end_to_end == pytest.approx(cpu / e2e)
    assert row.transfer_s == pytest.approx(e2e - gpu)


def test_gpu_losses_name_the_largest_image_where_the_cpu_wins(frame):
    pairs = tables.cpu_vs_gpu(frame)
    losses = tables.gpu_losses(pairs)
    row = one(
        losses,
        cpu_machine="fixture-cpu",
        gpu_backend="torch-cuda",
        kernel=3,
        dtype="float32",
    )
    chosen = pairs[
        (pairs.cpu_machine == "fixture-cpu")
        & (pairs.gpu_backend == "torch-cuda")
        & (pairs.kernel == 3)
        & (pairs.dtype == "float32")
    ]
    e2e_lost = chosen[chosen.speedup_end_to_end < 1]["size"]
    assert not e2e_lost.empty  # the fixture's transfers cost more than small CPU ops
    assert row.end_to_end_loses_up_to == e2e_lost.max()
    op_lost = chosen[chosen.speedup < 1]["size"]
    assert (math.isnan(row.op_loses_up_to) and op_lost.empty) or (
        row.op_loses_up_to == op_lost.max()
    )


def test_agreement_uses_the_documented_tolerance_and_tf32(frame, environments):
    agree = tables.agreement(frame, environments)
    bad = agree[~agree.ok]
    assert bad[["machine", "backend", "size", "kernel", "dtype"]].values.tolist() == [
        ["fixture-gpu", "tensorflow-gpu", 1024, 7, "float16"]
    ]
    cuda = agree[(agree.backend == "torch-cuda") & (agree.dtype == "float32")]
    assert set(cuda.precision) == {"tf32"}
    row = one(cuda, size=64, kernel=3)
    assert row.tolerance == pytest.approx(8 * 2.0**-11 * 3)
    stored = raw("fixture-gpu", "conv.Conv.track_max_rel", "torch-cuda", 64, 3, "float32")
    assert row.max_rel == pytest.approx(stored)


def test_not_run_lists_reasons(frame, environments):
    missing = tables.not_run(frame, environments)
    keys = zip(missing.machine, missing.backend, missing.status, strict=True)
    reasons = dict(zip(keys, missing.reason, strict=True))
    assert reasons[("fixture-cpu", "torch-cuda", "skipped")] == "not installed on this fixture"
    failed = missing[(missing.backend == "tensorflow-cpu") & (missing.status == "failed")]
    by_reason = dict(zip(failed.reason, failed.benchmarks, strict=True))
    # Conv's failure has its reason from convbench-failures.jsonl (written by Conv.setup);
    # Transfer's has only an older commit's record there, which does not count.
    oom = "out of memory: ResourceExhaustedError: OOM when allocating (fixture)"
    assert by_reason == {
        oom: "Conv.peakmem_op, Conv.time_op, Conv.track_max_rel",
        tables.NO_MESSAGE: "Transfer.time_end_to_end",
    }
    assert "NotImplementedError" in reasons[("fixture-cpu", "scipy-correlate2d", "skipped")]


def test_failed_rows_carry_the_recorded_reason(frame):
    row = one(
        frame,
        machine="fixture-cpu",
        suite="Conv",
        metric="time_op",
        backend="tensorflow-cpu",
        size=1024,
        kernel=7,
        dtype="float16",
    )
    assert row.status == "failed" and row.reason.startswith("out of memory: ")
    assert frame[frame.status != "failed"].reason.isna().all()


def test_settings_sweep_names_each_setting_and_compares_with_the_default(frame):
    sweep = tables.settings_sweep(frame)
    assert set(sweep.machine) == {"fixture-gpu"}
    assert set(sweep.backend) == {"torch-cuda"}
    assert len(sweep) == 4 * 2  # variants x kernels
    default = sweep[sweep["default"]]
    assert set(default.setting) == {"tf32=True cudnn_benchmark=False"}
    assert (default.vs_default == 1).all()
    fast = one(sweep, setting="tf32=True cudnn_benchmark=True", kernel=7)
    assert fast.vs_default == pytest.approx(8)
    assert fast["dtype"] == "float32"
    full = one(sweep, setting="tf32=False cudnn_benchmark=False", kernel=7)
    assert full.max_rel == pytest.approx(2.0**-24 * 7)
    assert one(sweep, setting="tf32=True cudnn_benchmark=False", kernel=7).max_rel == (
        pytest.approx(2.0**-11 * 7)
    )
    # Each setting's error is judged in the arithmetic it asks for: TF32 or full float32.
    assert full.precision == "float32" and full.ratio == pytest.approx(1 / 8)
    tf32 = one(sweep, setting="tf32=True cudnn_benchmark=True", kernel=3)
    assert tf32.precision == "tf32" and tf32.tolerance == pytest.approx(8 * 2.0**-11 * 3)
    assert tables.variant_precision("jax-gpu", "precision=default") == "tf32"
    assert tables.variant_precision("jax-gpu", "precision=highest") == "float32"
    assert tables.variant_precision("jax-cpu", "precision=default") == "float32"
    # The settings suite stays out of the default-settings tables.
    assert not tables.op_times(frame).empty
    assert len(tables.op_times(frame)) == len(
        frame[(frame.suite == "Conv") & (frame.status == "ok") & (frame.metric == "time_op")]
    )


def test_settings_section_shows_every_setting(page):
    assert 'id="settings"' in page
    assert "tf32=True cudnn_benchmark=False (default)" in page
    assert "tf32=False cudnn_benchmark=True" in page
    assert "(8x)" in page


def test_bandwidth_recorded_measured_here_or_unknown():
    environments = {"a": {"memory_bandwidth_gbs": 12.5}, "b": {}}
    found = bandwidths(environments, ["a", "b", "c"], measure=lambda: 7.0, host="b")
    assert found["a"] == (12.5, "recorded with the results")
    assert found["b"][0] == 7.0 and "measured on b" in found["b"][1]
    assert math.isnan(found["c"][0])


def test_page_is_self_contained(page):
    assert page.startswith("<!DOCTYPE html>")
    assert "<script" not in page
    assert 'src="http' not in page and 'href="http' not in page
    assert page.count("<svg") == 3  # two machines' time plots and the speedup plot


def test_page_holds_the_fixture_numbers(page, frame):
    assert "TEST FIXTURE" in page
    cpu = raw("fixture-cpu", "conv.Conv.time_op", "torch-cpu", 1024, 7, "float32")
    gpu = raw("fixture-gpu", "conv.Conv.time_op", "torch-cuda", 1024, 7, "float32")
    e2e = raw("fixture-gpu", "conv.Transfer.time_end_to_end", "torch-cuda", 1024, 7, "float32")
    assert f"{cpu / gpu:.3g}x · {cpu / e2e:.3g}x" in page
    assert format_seconds(cpu) in page
    max_rel = raw("fixture-gpu", "conv.Conv.track_max_rel", "tensorflow-gpu", 1024, 7, "float16")
    assert f"{max_rel:.2g}" in page
    assert page.count(">FAIL<") == 1
    for text in (
        "Fixture GPU (test data, not a measurement)",
        "cudnn.allow_tf32=True",
        "not installed on this fixture",
        tables.NO_MESSAGE,
        "out of memory: ResourceExhaustedError",
        "Where the GPU loses",
        "blocks of launches (fixture)",
        "40 GB/s",
    ):
        assert text in page


def test_report_command_writes_index(tmp_path):
    result = CliRunner().invoke(
        main, ["report", str(FIXTURE), "--output", str(tmp_path / "site"), "--no-measure-bandwidth"]
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "site" / "index.html").is_file()
    assert "asv publish" in result.output


def test_report_command_exit_codes(tmp_path):
    runner = CliRunner()
    assert runner.invoke(main, ["report", str(tmp_path / "absent")]).exit_code == 2
    empty = runner.invoke(main, ["report", str(tmp_path), "-o", str(tmp_path / "s")])
    assert empty.exit_code == 1
    assert "no asv results" in empty.output


@pytest.mark.browser
def test_page_renders_in_headless_chromium(tmp_path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("chromium is not installed (apt-get install chromium)")
    index = build_report(FIXTURE, tmp_path / "site", measure=None)
    shot = tmp_path / "shot.png"
    with tempfile.TemporaryDirectory() as profile:
        done = subprocess.run(
            [
                chromium,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                f"--user-data-dir={profile}",
                "--enable-logging=stderr",
                "--v=0",
                f"--screenshot={shot}",
                "--window-size=1400,3000",
                index.resolve().as_uri(),
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
    log = done.stdout + done.stderr
    assert shot.is_file() and shot.stat().st_size > 10_000, log
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "Uncaught" not in log and "ERROR:CONSOLE" not in log, log


def test_fastest_names_the_winner_and_its_margin(frame):
    best = one(
        tables.fastest(tables.op_times(frame)),
        machine="fixture-cpu",
        size=1024,
        kernel=3,
        dtype="float32",
    )
    torch = raw("fixture-cpu", "conv.Conv.time_op", "torch-cpu", 1024, 3, "float32")
    tf = raw("fixture-cpu", "conv.Conv.time_op", "tensorflow-cpu", 1024, 3, "float32")
    assert (best.fastest, best.runner_up) == ("torch-cpu", "tensorflow-cpu")
    assert best.margin == pytest.approx(tf / torch)


def test_glance_answers_the_three_questions(page):
    assert "fastest backend is <b>torch-cuda</b> in 12 of the 12 cases" in page
    assert "Agreement: 64 of 65 results within tolerance; <b>1 outside</b>" in page
    assert "Not run: 162 skipped and 3 failed Conv results" in page


def test_gpu_backends_pair_with_their_cpu_library():
    assert tables.library("torch-cuda") == tables.library("torch-cpu") == "torch"
    assert tables.library("cupy-gpu") == tables.library("scipy-correlate2d") == "scipy"
    assert tables.library("jax-gpu") == "jax"


def test_benchmarks_of_other_suites_are_left_to_asv(frame):
    assert stored("fixture-cpu", "explain.time_explain")[0] == [0.15]
    assert not frame.suite.str.contains("explain").any()
    assert frame["size"].dtype == "int64"  # no parameterless rows turning sizes into floats
