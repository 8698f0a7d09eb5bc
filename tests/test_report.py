"""The report, built from the fixture results in tests/data/results (made-up numbers written in
asv's own format, with a records file for fixture-gpu, by tests/data/make_fixture.py). Expected
numbers and facts are read from the raw JSON files independently of convbench's loader."""

from __future__ import annotations

import ast
import collections
import functools
import itertools
import json
import math
import re
import shutil
import subprocess
import sys
import tempfile
from importlib.metadata import EntryPoint
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from markupsafe import escape

from convbench import records, registry
from convbench.agreement import CEILING
from convbench.cli import main
from convbench.report import (
    bandwidths,
    build_model,
    build_report,
    html,
    load_environments,
    load_results,
    tables,
)
from convbench.timing import format_seconds
from tests.data.make_fixture import ACME, COMMIT, CPU_B, MACHINES, AcmeNPU

FIXTURE = Path(__file__).parent / "data" / "results"
REPORT = Path(__file__).parent.parent / "convbench" / "report"


def stored(machine: str, benchmark: str) -> list:
    """A benchmark's row (values, params, ...), straight from the asv JSON file."""
    (path,) = (FIXTURE / machine).glob("f1c7*.json")
    return json.loads(path.read_text())["results"][benchmark]


def raw(machine: str, benchmark: str, backend: str, size: int, kernel: int, dtype: str):
    """The stored value of one case."""
    values, params = stored(machine, benchmark)[:2]
    cases = list(itertools.product(*params))
    return values[cases.index((repr(backend), repr(size), repr(kernel), repr(dtype)))]


def recorded(machine: str, benchmark: str, **params) -> dict:
    """The fixture run's record of one case, straight from the records file."""
    lines = (FIXTURE / machine / records.FILE).read_text().splitlines()
    (found,) = [
        r
        for r in map(json.loads, lines)
        if r["benchmark"] == benchmark and r["params"] == params and r["commit"] == COMMIT
    ]
    return found


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
def model(frame, environments):
    return build_model(frame, environments, bandwidths(environments, list(MACHINES), None))


# The tables of the newer sections: computed once, or once per pair of machines.
ONCE_EACH = ("timings", "timing_trust", "ceilings", "roofline_points", "use_this", "crossover")
ONCE_PER_PAIR = ("machine_ratios", "environment_diff")


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, collections.Counter]:
    """The report of the fixture, and how often each table was computed while building it."""
    calls: collections.Counter = collections.Counter()

    def counted(name, function):
        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            calls[name] += 1
            return function(*args, **kwargs)

        return wrapper

    out = tmp_path_factory.mktemp("site")
    with pytest.MonkeyPatch.context() as patch:
        for name in ("op_times", "fastest", "throughput", "cpu_vs_gpu", "gpu_losses"):
            patch.setattr(tables, name, counted(name, getattr(tables, name)))
        for name in ("settings_sweep", "agreement", "not_run", "counts", "backends"):
            patch.setattr(tables, name, counted(name, getattr(tables, name)))
        for name in (*ONCE_EACH, *ONCE_PER_PAIR):
            patch.setattr(tables, name, counted(name, getattr(tables, name)))
        index = build_report(FIXTURE, out, measure=None)
    assert index == out / "index.html"
    return index, calls


@pytest.fixture(scope="module")
def page(built) -> str:
    return built[0].read_text()


@pytest.fixture(scope="module")
def prose(page) -> str:
    """The page with every run of white space one space, as a browser shows its sentences."""
    return " ".join(page.split())


def test_loader_reads_every_case_with_its_status(frame):
    conv = frame[(frame.suite == "Conv") & (frame.metric == "time_op")]
    assert set(frame.machine) == {"fixture-cpu", CPU_B, "fixture-gpu"}
    # machines x backends x sizes x kernels x dtypes, and fixture-cpu-b's grid of its own
    assert len(conv) == 2 * 6 * 3 * 2 * 2 + 4 * 3 * 4 * 1
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


def test_facts_come_from_the_case_records(frame):
    row = one(
        frame,
        machine="fixture-gpu",
        suite="Conv",
        metric="track_max_rel",
        backend="torch-cuda",
        size=256,
        kernel=7,
        dtype="float32",
    )
    record = recorded(
        "fixture-gpu",
        "Conv.track_max_rel",
        backend="torch-cuda",
        size=256,
        kernel=7,
        dtype="float32",
    )
    for fact in records.FACTS:
        assert row[fact] == record[fact], fact
    assert (row.library, row.device, row.cpu_twin, row.precision) == (
        "torch",
        "gpu",
        "torch-cpu",
        "tf32",
    )
    assert row.recorded and frame[frame.machine == "fixture-gpu"].recorded.all()


def test_old_results_without_records_know_no_facts(frame):
    old = frame[frame.machine == "fixture-cpu"]
    assert not old.recorded.any()
    for fact in ("library", "device", "cpu_twin", "tolerance", "setting", "default_setting"):
        assert old[fact].isna().all(), fact
    # The one fact such results still hold: the environment record's precision per dtype.
    precision = old[old.suite == "Conv"].groupby(["backend", "dtype"]).precision.first()
    assert precision[("torch-cpu", "float32")] == "float32"
    assert precision[("torch-cpu", "float16")] == "float16"
    assert pd.isna(precision[("tensorflow-cpu", "float32")])


def test_records_of_another_commit_do_not_count(frame):
    row = one(
        frame,
        machine="fixture-gpu",
        suite="Conv",
        metric="time_op",
        backend=ACME,
        size=64,
        kernel=3,
        dtype="float16",
    )
    # The records file also holds an older commit's "failed" record of this case, written last.
    assert (row.status, row.reason) == ("skipped", AcmeNPU().dtype_unsupported("float16"))


def test_failed_rows_carry_the_recorded_reason(frame):
    def reason(machine, suite, backend, dtype):
        failed = frame[
            (frame.machine == machine)
            & (frame.suite == suite)
            & (frame.backend == backend)
            & (frame.dtype == dtype)
            & (frame.status == "failed")
        ]
        (found,) = set(failed.reason.fillna("none"))
        return found

    # From the records file (fixture-gpu) and from an old run's failures file (fixture-cpu),
    # where Transfer's failure has only an older commit's line: no reason.
    assert reason("fixture-gpu", "Transfer", ACME, "float32") == (
        "RuntimeError: acme DMA queue full (fixture)"
    )
    oom = "out of memory: ResourceExhaustedError: OOM when allocating (fixture)"
    assert reason("fixture-cpu", "Conv", "tensorflow-cpu", "float16") == oom
    assert reason("fixture-cpu", "Transfer", "tensorflow-cpu", "float16") == "none"
    assert frame[frame.status == "ok"].reason.isna().all()


def test_op_times_hold_the_stored_medians(frame):
    times = tables.op_times(frame).set_index(["machine", "backend", "size", "kernel", "dtype"])
    for key in [
        ("fixture-cpu", "torch-cpu", 1024, 3, "float32"),
        ("fixture-gpu", "torch-cuda", 256, 7, "float16"),
        ("fixture-gpu", ACME, 64, 7, "float32"),
    ]:
        expected = raw(key[0], "conv.Conv.time_op", *key[1:])
        assert times.loc[key, "seconds"] == pytest.approx(expected, rel=1e-12)


def test_throughput_shares_the_floor_only_for_backends_recorded_on_the_cpu(frame):
    times = tables.op_times(frame)
    flow = tables.throughput(times, {"fixture-cpu": 10.0, "fixture-gpu": 40.0})
    row = one(
        flow, machine="fixture-gpu", backend="torch-cpu", size=1024, kernel=3, dtype="float32"
    )
    seconds = raw("fixture-gpu", "conv.Conv.time_op", "torch-cpu", 1024, 3, "float32")
    gbps = 4 * (2 * 1024 * 1024 + 9) / seconds / 1e9
    assert row.gb_per_s == pytest.approx(gbps)
    assert row.of_bandwidth == pytest.approx(gbps / 40.0)
    # A GPU reads its own memory; a backend of results without records may be on either.
    assert flow[flow.device == "gpu"].of_bandwidth.isna().all()
    assert flow[flow.machine == "fixture-cpu"].of_bandwidth.isna().all()
    assert flow[flow.machine == "fixture-cpu"].gb_per_s.notna().all()


def test_cpu_vs_gpu_pairs_each_gpu_backend_with_its_recorded_twin(frame):
    pairs = tables.cpu_vs_gpu(frame)
    assert set(zip(pairs.cpu_backend, pairs.gpu_backend, strict=True)) == {
        ("torch-cpu", "torch-cuda"),
        ("tensorflow-cpu", "tensorflow-gpu"),
        ("scipy-correlate2d", ACME),
    }
    assert set(pairs.cpu_machine) == {"fixture-cpu", CPU_B, "fixture-gpu"}
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


def test_agreement_judges_against_the_recorded_tolerance(frame):
    agree = tables.agreement(frame)
    bad = agree[agree.ok.eq(False)]
    assert bad[["machine", "backend", "size", "kernel", "dtype"]].values.tolist() == [
        ["fixture-gpu", "tensorflow-gpu", 1024, 7, "float16"]
    ]
    acme = one(agree, machine="fixture-gpu", backend=ACME, size=64, kernel=3, dtype="float32")
    record = recorded(
        "fixture-gpu", "Conv.track_max_rel", backend=ACME, size=64, kernel=3, dtype="float32"
    )
    assert (acme.precision, acme.tolerance) == ("bfloat16", record["tolerance"])
    # bfloat16 with 9 terms: 8 u sqrt(9) = 0.094 would pass, the ceiling stops it at 1/16.
    assert acme.tolerance == pytest.approx(min(8 * 2.0**-8 * 3, CEILING))
    stored = raw("fixture-gpu", "conv.Conv.track_max_rel", ACME, 64, 3, "float32")
    assert acme.max_rel == pytest.approx(stored) and bool(acme.ok)
    # Results without records: shown, with no verdict.
    old = agree[agree.machine == "fixture-cpu"]
    assert len(old) > 0 and old.ok.isna().all() and old.ratio.isna().all()


def test_not_run_gives_each_recorded_reason_and_says_when_none_was(frame, environments):
    missing = tables.not_run(frame, environments)
    keys = zip(missing.machine, missing.backend, missing.status, strict=True)
    reasons = collections.defaultdict(set)
    for key, reason in zip(keys, missing.reason, strict=True):
        reasons[key].add(reason)
    assert reasons[("fixture-gpu", ACME, "skipped")] == {AcmeNPU().dtype_unsupported("float16")}
    assert reasons[("fixture-gpu", "scipy-correlate2d", "skipped")] == {
        "scipy-correlate2d is not available: not installed on this fixture"
    }
    assert reasons[("fixture-cpu", "scipy-correlate2d", "skipped")] == {tables.NO_REASON}
    assert reasons[("fixture-cpu", "torch-cuda", "skipped")] == {
        f"{tables.NO_REASON}; the machine's environment record says torch-cuda was not "
        "available: not installed on this fixture"
    }
    # Old settings variants have no backend on record: they are listed by their variant.
    assert reasons[("fixture-cpu", "torch-cuda tf32=True cudnn_benchmark=True", "skipped")] == {
        tables.NO_REASON
    }
    failed = missing[(missing.machine == "fixture-cpu") & (missing.status == "failed")]
    assert dict(zip(failed.reason, failed.benchmarks, strict=True)) == {
        "out of memory: ResourceExhaustedError: OOM when allocating (fixture)": (
            "Conv.peakmem_op, Conv.time_op, Conv.track_max_rel"
        ),
        tables.NO_MESSAGE: "Transfer.time_end_to_end",
    }


def stored_statuses() -> collections.Counter:
    """Results of the convolution suites by status, counted in the raw asv files."""
    found: collections.Counter = collections.Counter()
    for machine in MACHINES:
        (path,) = (FIXTURE / machine).glob("f1c7*.json")
        for name, row in json.loads(path.read_text())["results"].items():
            if name.startswith("conv."):
                for value in row[0]:
                    found["failed" if value is None else "skipped" if value != value else "ok"] += 1
    return found


def test_one_count_of_skipped_and_failed_results(model, prose):
    expected = stored_statuses()
    assert (model.counts.skipped, model.counts.failed) == (expected["skipped"], expected["failed"])
    grouped = model.not_run.groupby("status").results.sum()
    assert (grouped["skipped"], grouped["failed"]) == (expected["skipped"], expected["failed"])
    glance = re.search(r"Not run: (\d+) skipped results and (\d+) failed results", prose)
    section = re.search(r"(\d+) skipped results in \d+ groups", prose)
    failed = re.search(r"(\d+) failed results in \d+ groups", prose)
    assert glance and section and failed
    assert int(glance[1]) == int(section[1]) == expected["skipped"]
    assert int(glance[2]) == int(failed[1]) == expected["failed"]


def test_failed_rows_of_old_results_use_the_failures_file_only_for_their_commit(frame):
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


def test_settings_sweep_takes_default_and_precision_from_the_records(frame):
    sweep = tables.settings_sweep(frame)
    assert set(sweep.machine) == {"fixture-gpu"}  # fixture-cpu skipped them all
    assert set(sweep.backend) == {"torch-cuda"}
    assert len(sweep) == 4 * 2  # variants x kernels
    default = sweep[sweep["default"]]
    assert set(default.variant) == {"torch-cuda tf32=True cudnn_benchmark=False"}
    assert set(default.setting) == {"tf32=True cudnn_benchmark=False"}
    assert (default.vs_default == 1).all()
    fast = one(sweep, setting="tf32=True cudnn_benchmark=True", kernel=7)
    assert fast.vs_default == pytest.approx(8)
    full = one(sweep, setting="tf32=False cudnn_benchmark=False", kernel=7)
    assert full.max_rel == pytest.approx(2.0**-24 * 7)
    # Each setting's error is judged in the arithmetic its record names: TF32 or float32.
    assert full.precision == "float32" and full.ratio == pytest.approx(1 / 8)
    tf32 = one(sweep, setting="tf32=True cudnn_benchmark=True", kernel=3)
    assert tf32.precision == "tf32" and tf32.tolerance == pytest.approx(8 * 2.0**-11 * 3)
    # The settings suite stays out of the default-settings tables.
    assert len(tables.op_times(frame)) == len(
        frame[(frame.suite == "Conv") & (frame.status == "ok") & (frame.metric == "time_op")]
    )


def test_backends_table_holds_each_backend_s_recorded_facts(model):
    rows = model.backends.set_index(["machine", "backend"])
    acme = rows.loc[("fixture-gpu", ACME)]
    assert (acme.library, acme.device, acme.cpu_twin) == ("acme", "gpu", "scipy-correlate2d")
    assert acme.precision == {"float16": None, "float32": "bfloat16"}
    assert (acme.ok, acme.skipped, acme.failed) == (23, 24, 1)
    old = rows.loc[("fixture-cpu", "torch-cpu")]
    assert pd.isna(old.library) and pd.isna(old.device) and old.recorded == 0
    assert old.precision == {"float16": "float16", "float32": "float32"}


def test_settings_section_shows_every_setting(page):
    assert 'id="settings"' in page
    assert "torch-cuda tf32=True cudnn_benchmark=False (default)" in page
    assert "torch-cuda tf32=False cudnn_benchmark=True" in page
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
    # Three machines' time plots and rooflines, fixture-cpu-b's crossover (the one machine with
    # an FFT backend) and the speedup plot.
    assert page.count("<svg") == 8


def test_every_table_is_computed_once_per_report(built):
    _, calls = built
    pairs = len(MACHINES) * (len(MACHINES) - 1) // 2
    assert {name: calls.pop(name) for name in ONCE_PER_PAIR} == dict.fromkeys(ONCE_PER_PAIR, pairs)
    assert set(calls.values()) == {1}, calls
    assert len(calls) == 10 + len(ONCE_EACH)


def test_page_holds_the_fixture_numbers(page):
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
        tables.NO_REASON,
        "out of memory: ResourceExhaustedError",
        "Where the GPU loses",
        "blocks of launches (fixture)",
        "40 GB/s",
        ">no tolerance recorded<",
    ):
        assert text in page


def test_third_party_backend_shows_what_its_object_says(monkeypatch, page):
    """acme@npu.v2, registered through the entry-point group and named like no built-in
    backend: the page gives the library, device, CPU twin, precision and skip reason that the
    backend object gives (and that the run recorded), never anything read from its name."""
    point = EntryPoint(ACME, "tests.data.make_fixture:AcmeNPU", registry.ENTRY_POINT_GROUP)
    monkeypatch.setattr(registry, "_entry_point_backends", lambda: {point.name: point})
    registry.get_backend.cache_clear()
    try:
        backend = registry.get_backend(ACME)
        facts = records.backend_facts(backend, "float32", (64, 64), (3, 3))
        float16 = backend.dtype_unsupported("float16")
    finally:
        registry.get_backend.cache_clear()
    assert (facts["library"], facts["device"], facts["cpu_twin"]) == (
        "acme",
        "gpu",
        "scipy-correlate2d",
    )
    row = (
        f"<tr><td>fixture-gpu</td><td>{ACME}</td><td>{facts['library']}</td>"
        f"<td>{facts['device']}</td><td>{facts['cpu_twin']}</td>"
        f"<td>float16: unknown · float32: {facts['precision']}</td>"
    )
    assert row in page
    assert f"<td>{ACME}</td><td>{escape(float16)}</td>" in page
    assert f"<td>scipy-correlate2d @ fixture-cpu</td><td>{ACME} @ fixture-gpu</td>" in page


def test_results_without_records_read_unknown(page, prose):
    row = (
        "<tr><td>fixture-cpu</td><td>torch-cpu</td><td>unknown</td><td>unknown</td>"
        "<td>unknown</td><td>float16: float16 · float32: float32</td>"
    )
    assert row in page
    assert "29 without a recorded tolerance (no verdict)" in prose


def test_results_text_is_escaped_everywhere(model):
    """A backend named like markup or mathtext reaches the page, figures included, as text."""
    name = "<script>alert(1)</script> $x$"
    results = model.results
    chosen = results[(results.machine == "fixture-cpu") & (results.kernel == 3)]
    renamed = chosen.assign(backend=chosen.backend.replace("torch-cpu", name))
    text = html.page(build_model(renamed, {}, {}))
    assert "<script" not in text
    assert "<td>&lt;script&gt;alert(1)&lt;/script&gt; $x$</td>" in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt; $x$ float32</text>" in text  # the legend
    # fixture-cpu alone has no records: its agreement has no verdict.
    assert "Agreement: no result has a recorded tolerance; 15 are shown" in " ".join(text.split())


def test_templates_are_package_files_with_autoescape():
    environment = html.templates()
    assert environment.autoescape is True
    names = set(environment.list_templates())
    assert {"page.html", "macros.html", "glance.html", "not_run.html"} <= names
    assert names == {p.name for p in (REPORT / "templates").iterdir()}


def test_report_code_imports_no_suite_or_backend_module():
    """The report reads what the run recorded: it never asks today's grid or a backend."""
    forbidden = ("convbench.suite", "convbench.backends")
    for path in [*REPORT.rglob("*.py"), *(REPORT / "templates").iterdir()]:
        text = path.read_text()
        assert not any(name in text for name in forbidden), path
        if path.suffix != ".py":
            continue
        assert "html.escape" not in text and not re.search(r"<(td|tr|table|h\d|li|p)\b", text)
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ImportFrom) and node.module == "convbench":
                assert {a.name for a in node.names}.isdisjoint({"suite", "backends"}), path


def test_report_command_writes_index(tmp_path):
    result = CliRunner().invoke(
        main,
        [
            "report",
            str(FIXTURE / "fixture-cpu"),
            "--output",
            str(tmp_path / "site"),
            "--no-measure-bandwidth",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "Machine fixture-cpu" in (tmp_path / "site" / "index.html").read_text()
    assert "asv publish" in result.output


def test_report_command_exit_codes(tmp_path):
    runner = CliRunner()
    assert runner.invoke(main, ["report", str(tmp_path / "absent")]).exit_code == 2
    empty = runner.invoke(main, ["report", str(tmp_path), "-o", str(tmp_path / "s")])
    assert empty.exit_code == 1
    assert "no readable asv results" in empty.output


@pytest.mark.browser
def test_page_renders_in_headless_chromium(built, tmp_path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("chromium is not installed (apt-get install chromium)")
    index, _ = built
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


def test_glance_answers_the_three_questions(prose):
    assert "fastest backend is <b>torch-cuda</b> in 12 of the 12 cases" in prose
    # fixture-gpu's 42 tracked results and fixture-cpu-b's 32 (4 backends x 2 sizes x 4 kernels)
    agreement = "Agreement: 73 of 74 results with a recorded tolerance within it; <b>1 outside</b>"
    assert agreement in prose


def test_benchmarks_of_other_suites_are_left_to_asv(frame):
    assert stored("fixture-cpu", "explain.time_explain")[0] == [0.15]
    assert not frame.suite.str.contains("explain").any()
    # Sizes stay whole numbers (nullable: a layer has none), never floats like 4096.0.
    assert frame["size"].dtype == "Int64" and frame["size"].notna().all()


def test_reading_results_needs_no_plotting_stack():
    """``convbench compare`` reads results and tables: matplotlib and Jinja2 load with the page."""
    code = (
        "import sys; from convbench.report import load_results, tables; "
        "print(sorted(m for m in ('matplotlib', 'jinja2') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
