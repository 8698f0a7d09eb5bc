"""The report on damaged results: a copy of the fixture (tests/data/results) with one file
corrupted at a time. Each test checks what is kept (the other machine, the other benchmarks and
cases, exactly as in the intact fixture) and what is said (a problem naming the damaged file),
not only that nothing raised."""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from convbench import failures, records
from convbench.cli import main
from convbench.environment import ENVIRONMENT_FILE, REPRODUCIBILITY_FILE
from convbench.report import (
    NoResults,
    ResultsWarning,
    bandwidths,
    build_model,
    html,
    load_results,
    plots,
    read_model,
    read_results,
    results,
    tables,
)
from tests.data.make_fixture import CPU_B

FIXTURE = Path(__file__).parent / "data" / "results"
RESULTS_FILE = "f1c7f1c7-existing-py_fixture.json"
CPU = "fixture-cpu"
GPU = "fixture-gpu"
TIME = "conv.Conv.time_op"
FIRST_CASE = "backend=scipy-correlate2d, size=64, kernel=3, dtype=float32"


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    """The fixture's two machines these tests damage (fixture-cpu and fixture-gpu), without
    the third: what is kept of a damaged results dir is then "the other machine"."""
    return Path(
        shutil.copytree(
            FIXTURE,
            tmp_path_factory.mktemp("base") / "results",
            ignore=shutil.ignore_patterns(CPU_B),
        )
    )


@pytest.fixture(scope="module")
def pristine(base):
    return read_results(base)


@pytest.fixture
def copy(base, tmp_path) -> Path:
    """A copy of the fixture results to damage."""
    return Path(shutil.copytree(base, tmp_path / "results"))


def rows(frame: pd.DataFrame, machine: str, **equal) -> pd.DataFrame:
    chosen = frame[frame.machine == machine]
    for column, value in equal.items():
        chosen = chosen[chosen[column] == value]
    return chosen.reset_index(drop=True)


def same(actual: pd.DataFrame, expected: pd.DataFrame) -> None:
    """The same rows with the same values (a column's dtype may follow the rows left)."""
    pd.testing.assert_frame_equal(
        actual.reset_index(drop=True), expected.reset_index(drop=True), check_dtype=False
    )


def said(loaded, path: Path) -> list[str]:
    """What the problems say of ``path``."""
    return [p.what for p in loaded.problems if p.path == str(path)]


def stored(path: Path) -> dict:
    return json.loads(path.read_text())


def store(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data))


def edit_benchmark(path: Path, name: str, edit: Callable[[dict], None]) -> None:
    """Change one benchmark's stored columns (``result``, ``params``, ``stats_q_25``, ...)."""
    data = stored(path)
    columns = data["result_columns"]
    # asv leaves out a row's trailing empty columns.
    row = dict(itertools.zip_longest(columns, data["results"][name]))
    edit(row)
    data["results"][name] = [row[c] for c in columns]
    store(path, data)


def write_bytes(text: bytes) -> Callable[[Path], None]:
    return lambda path: path.write_bytes(text)


def write_json(value: object) -> Callable[[Path], None]:
    return lambda path: path.write_text(json.dumps(value))


def changed(**fields) -> Callable[[Path], None]:
    return lambda path: store(path, {**stored(path), **fields})


UNREADABLE = {
    "truncated": (lambda path: path.write_text(path.read_text()[:5000]), "not JSON"),
    "empty": (write_bytes(b""), "empty"),
    "a JSON list": (write_json([1, 2, 3]), "a JSON list, not an object"),
    "binary garbage": (write_bytes(bytes(range(128, 256)) * 4), "not UTF-8 text"),
    "not an asv file": (write_json({"notes": "rerun on Monday"}), "version=None"),
    "an older format": (changed(version=1), "version=1, not asv's format 2"),
    "no commit": (changed(commit_hash=None), "commit_hash=None is not text"),
    "results a list": (changed(results=[]), "results=[] is not an object"),
    "a row not a list": (
        lambda path: store(path, {**stored(path), "results": {TIME: 5}}),
        "asv cannot read it",
    ),
    "another machine": (
        changed(params={"machine": "elsewhere", "python": "3.11"}),
        "its machine is 'elsewhere', its folder's is 'fixture-cpu'",
    ),
}


@pytest.mark.parametrize("damage", UNREADABLE, ids=list(UNREADABLE))
def test_an_unreadable_results_file_is_skipped_and_named(copy, pristine, damage):
    corrupt, words = UNREADABLE[damage]
    path = copy / CPU / RESULTS_FILE
    corrupt(path)
    loaded = read_results(copy)
    assert set(loaded.results.machine) == {GPU}  # fixture-cpu had this one file
    same(rows(loaded.results, GPU), rows(pristine.results, GPU))
    (what,) = said(loaded, path)
    assert what.startswith("skipped: ") and words in what, what
    assert len(loaded.problems) == 1


@pytest.mark.parametrize("folder", [CPU, "."])
def test_an_extra_json_file_is_named_and_changes_nothing(copy, pristine, folder):
    notes = copy / folder / "notes.json"
    notes.write_text(json.dumps({"notes": "the GPU was shared that day"}))
    loaded = read_results(copy)
    same(loaded.results, pristine.results)
    assert said(loaded, notes) == ["skipped: version=None, not asv's format 2"]
    assert len(loaded.problems) == 1


BENCHMARKS_DAMAGE = {
    "missing": (lambda path: path.unlink(), "missing"),
    "truncated": (lambda path: path.write_text(path.read_text()[:300]), "not JSON"),
    "a list": (write_json([]), "a JSON list, not an object"),
}


@pytest.mark.parametrize("damage", BENCHMARKS_DAMAGE, ids=list(BENCHMARKS_DAMAGE))
def test_without_benchmarks_json_the_suites_parameter_names_serve(copy, pristine, damage):
    corrupt, words = BENCHMARKS_DAMAGE[damage]
    path = copy / "benchmarks.json"
    corrupt(path)
    loaded = read_results(copy)
    # Units come from benchmarks.json only; everything else is read the same.
    same(loaded.results.drop(columns="unit"), pristine.results.drop(columns="unit"))
    (what,) = said(loaded, path)
    assert what.startswith(words) and what.endswith(": the suites' own parameter names are used")


def test_a_benchmarks_json_entry_without_parameter_names_is_left_out(copy, pristine):
    path = copy / "benchmarks.json"
    store(path, {**stored(path), TIME: {"param_names": "backend, size"}})
    loaded = read_results(copy)
    same(loaded.results.drop(columns="unit"), pristine.results.drop(columns="unit"))
    assert said(loaded, path) == [f"{TIME} has no list of parameter names: left out"]


MACHINE_DAMAGE = {
    "missing": (lambda path: path.unlink(), "missing"),
    "binary garbage": (write_bytes(b"\xff\xfe\x00garbage"), "not UTF-8 text"),
    "truncated": (lambda path: path.write_text('{"machine": "fix'), "not JSON"),
    "no name": (
        write_json({"machine": ["fixture-cpu"], "version": 1}),
        "machine=['fixture-cpu'] is not a machine name",
    ),
}


@pytest.mark.parametrize("damage", MACHINE_DAMAGE, ids=list(MACHINE_DAMAGE))
def test_without_machine_json_the_results_name_their_machine(copy, pristine, damage):
    corrupt, words = MACHINE_DAMAGE[damage]
    path = copy / CPU / "machine.json"
    corrupt(path)
    loaded = read_results(copy)
    same(loaded.results, pristine.results)
    (what,) = said(loaded, path)
    assert what.startswith(words) and what.endswith("the results files' own machine name is used")


def test_a_machine_json_naming_another_machine_skips_its_results(copy, pristine):
    store(copy / CPU / "machine.json", {"machine": "impostor", "version": 1})
    loaded = read_results(copy)
    same(loaded.results, rows(pristine.results, GPU))
    assert said(loaded, copy / CPU / RESULTS_FILE) == [
        "skipped: its machine is 'fixture-cpu', its folder's is 'impostor'"
    ]


def test_an_unreadable_environment_is_skipped_and_named(copy, pristine):
    path = copy / CPU / ENVIRONMENT_FILE
    path.write_text(path.read_text()[:100])
    loaded = read_results(copy)
    assert set(loaded.environments) == {GPU}
    same(rows(loaded.results, GPU), rows(pristine.results, GPU))
    # fixture-cpu has no records: its precision came from the environment record alone.
    old = rows(loaded.results, CPU)
    same(old.drop(columns="precision"), rows(pristine.results, CPU).drop(columns="precision"))
    assert old.precision.isna().all()
    (what,) = said(loaded, path)
    assert what.startswith("skipped: not JSON")


def test_environment_fields_of_the_wrong_type_are_left_out(copy, pristine):
    path = copy / GPU / ENVIRONMENT_FILE
    environment = stored(path)
    environment["memory_bandwidth_gbs"] = "fast"
    environment["versions"] = ["torch"]
    environment["backends"]["torch-cpu"] = "yes"
    environment["backends"]["torch-cuda"]["settings"] = 3
    store(path, environment)
    loaded = read_results(copy)
    kept = loaded.environments[GPU]
    assert "memory_bandwidth_gbs" not in kept and "versions" not in kept
    assert "torch-cpu" not in kept["backends"] and "settings" not in kept["backends"]["torch-cuda"]
    assert kept["cpu"] == environment["cpu"]
    assert said(loaded, path) == [
        "memory_bandwidth_gbs='fast' is not a positive number; versions=['torch'] is not an "
        "object; backends.torch-cpu is not an object; backends.torch-cuda.settings=3 is not an "
        "object: left out"
    ]
    assert math.isnan(bandwidths(loaded.environments, [GPU], measure=None)[GPU][0])
    same(loaded.results, pristine.results)


BAD_LINES = {
    "torn": ('{"benchmark": "Conv.time_op", "par', "not JSON (Unterminated string"),
    "a list": ("[1, 2]", "not a JSON object with a benchmark name and a params object"),
    "a number": ("42", "not a JSON object with a benchmark name and a params object"),
    "benchmark a list": (
        '{"benchmark": ["Conv.time_op"], "params": {}}',
        "not a JSON object with a benchmark name and a params object",
    ),
    "params a list": (
        '{"benchmark": "Conv.time_op", "params": ["torch-cpu"]}',
        "not a JSON object with a benchmark name and a params object",
    ),
    "binary": ("\udcff\udcfe garbage", "not JSON (Expecting value"),
}


def append_line(path: Path, line: str) -> int:
    """Append ``line`` to a JSON-lines file; its line number."""
    text = path.read_text()
    path.write_text(text + line + "\n", errors="surrogateescape")
    return len(text.splitlines()) + 1


@pytest.mark.parametrize("line", BAD_LINES, ids=list(BAD_LINES))
def test_a_bad_records_line_is_skipped_and_named(copy, pristine, line):
    text, words = BAD_LINES[line]
    path = copy / GPU / records.FILE
    number = append_line(path, text)
    loaded = read_results(copy)
    same(loaded.results, pristine.results)
    (what,) = said(loaded, path)
    assert what.startswith(f"line {number} skipped: {words}"), what


NO_REASON_LINE = "skipped: a failure needs a benchmark and a reason"
FAILURE_LINES = {
    "torn": (BAD_LINES["torn"][0], "line {number} skipped: not JSON (Unterminated string"),
    "a list": ("[1, 2]", "line {number} skipped: not a JSON object"),
    "a number": ("42", "line {number} skipped: not a JSON object"),
    "binary": (BAD_LINES["binary"][0], "line {number} skipped: not JSON (Expecting value"),
    "benchmark a list": (
        '{"benchmark": ["Conv.setup"], "reason": "x"}',
        "{'benchmark': ['Conv.setup'], 'reason': 'x'} ",
    ),
    "no reason": (
        '{"benchmark": "Conv.setup", "backend": "torch-cpu"}',
        "{'backend': 'torch-cpu', 'benchmark': 'Conv.setup'} ",
    ),
}


@pytest.mark.parametrize("line", FAILURE_LINES, ids=list(FAILURE_LINES))
def test_a_bad_failures_line_is_skipped_and_named(copy, pristine, line):
    text, words = FAILURE_LINES[line]
    path = copy / CPU / failures.FILE
    number = append_line(path, text)
    loaded = read_results(copy)
    (what,) = said(loaded, path)
    assert what.startswith(words.replace("{number}", str(number))), what
    if words.startswith("{"):  # a JSON object, shown as it is, that says nothing usable
        assert what.endswith(NO_REASON_LINE)
    same(loaded.results, pristine.results)


def test_a_failure_without_a_reason_is_named_and_its_case_says_none_was_recorded(copy, pristine):
    path = copy / CPU / failures.FILE
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    del lines[0]["reason"]  # the OOM of tensorflow-cpu 1024x1024 k=7 float16
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    loaded = read_results(copy)
    (what,) = said(loaded, path)
    assert what.endswith("skipped: a failure needs a benchmark and a reason")
    failed = rows(loaded.results, CPU, suite="Conv", status="failed")
    assert len(failed) == 3 and failed.reason.isna().all()
    missing = rows(tables.not_run(loaded.results, loaded.environments), CPU, status="failed")
    assert set(missing.reason) == {tables.NO_MESSAGE}
    same(loaded.results.drop(columns="reason"), pristine.results.drop(columns="reason"))


def rewrite_record(path: Path, benchmark: str, params: dict, edit: Callable[[dict], None]):
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    (record,) = [r for r in lines if r["benchmark"] == benchmark and r["params"] == params]
    edit(record)
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))


SKIPPED_CASE = {"backend": "scipy-correlate2d", "size": 64, "kernel": 3, "dtype": "float32"}


def test_a_record_without_a_reason_reads_no_reason_recorded(copy, pristine):
    path = copy / GPU / records.FILE
    rewrite_record(path, "Conv.time_op", SKIPPED_CASE, lambda r: r.pop("reason"))
    loaded = read_results(copy)
    row = rows(loaded.results, GPU, suite="Conv", metric="time_op", **SKIPPED_CASE)
    assert row.status.tolist() == ["skipped"] and row.reason.isna().all()
    missing = tables.not_run(loaded.results, loaded.environments)
    found = rows(missing, GPU, backend="scipy-correlate2d")
    unsaid = found[found.reason.str.startswith(tables.NO_REASON)]
    assert unsaid.results.tolist() == [1]
    # A missing field is unknown by design (older records lack newer facts): nothing to warn.
    assert loaded.problems == ()


def test_record_fields_of_the_wrong_type_read_as_unknown(copy, pristine):
    path = copy / GPU / records.FILE
    case = {"backend": "torch-cuda", "size": 256, "kernel": 7, "dtype": "float32"}

    def damage(record):
        record.update(tolerance="tight", library=["torch"], status=["ready"], reason=7)

    rewrite_record(path, "Conv.track_max_rel", case, damage)
    loaded = read_results(copy)
    row = rows(loaded.results, GPU, suite="Conv", metric="track_max_rel", **case).iloc[0]
    assert pd.isna(row.tolerance) and pd.isna(row.library)
    assert row.device == "gpu" and row.precision == "tf32"  # the record's other facts stand
    assert said(loaded, path) == [
        "the record of Conv.track_max_rel (backend=torch-cuda, size=256, kernel=7, "
        "dtype=float32): status=['ready'] is not one of ['ready', 'skipped', 'failed']; "
        "reason=7 is not text; library=['torch'] is not text; tolerance='tight' is not a "
        "positive number: read as unknown"
    ]
    others = loaded.results.index != rows_index(loaded.results, **case)
    same(loaded.results[others], pristine.results[others])


def rows_index(frame: pd.DataFrame, **case) -> int:
    (index,) = frame[
        (frame.machine == GPU)
        & (frame.suite == "Conv")
        & (frame.metric == "track_max_rel")
        & (frame[list(case)] == pd.Series(case)).all(axis=1)
    ].index
    return index


SHAPES = {
    "short value list": (
        lambda row: row["result"].pop(),
        "71 values for 72 parameter combinations",
    ),
    "long value list": (
        lambda row: row["result"].append(1.0),
        "73 values for 72 parameter combinations",
    ),
    "params of the wrong length": (
        lambda row: row["params"].pop(),
        "3 parameter lists for its 4 parameters (backend, size, kernel, dtype)",
    ),
    "params not lists": (
        lambda row: row.update(params="backend size"),
        "its params are not lists of parameter values",
    ),
    "a value that is no literal": (
        lambda row: row["params"][0].__setitem__(0, "scipy-correlate2d"),
        "its parameter value 'scipy-correlate2d' is no literal",
    ),
    "a size that is no integer": (
        lambda row: row["params"][1].__setitem__(0, "'big'"),
        "its size 'big' is not a positive integer",
    ),
    "a result that is no list": (
        lambda row: row.update(result=0.5),
        "its result is not a list of values",
    ),
}


@pytest.mark.parametrize("shape", SHAPES, ids=list(SHAPES))
def test_a_benchmark_whose_values_do_not_fit_its_parameters_is_skipped(copy, pristine, shape):
    edit, words = SHAPES[shape]
    path = copy / CPU / RESULTS_FILE
    edit_benchmark(path, TIME, edit)
    loaded = read_results(copy)
    assert said(loaded, path) == [f"{TIME} skipped: {words}"]
    cpu_time = (pristine.results.machine == CPU) & (pristine.results.metric == "time_op")
    cpu_time &= pristine.results.suite == "Conv"
    same(loaded.results, pristine.results[~cpu_time])
    # No failure is invented: the skipped benchmark's one real failure is the one gone.
    assert tables.counts(loaded.results).failed == tables.counts(pristine.results).failed - 1


def set_first_value(value) -> Callable[[dict], None]:
    return lambda row: row["result"].__setitem__(0, value)


IMPOSSIBLE = {
    "negative time": (TIME, -1e-3, "-0.001", "a time must be a positive, finite number"),
    "zero time": (TIME, 0.0, "0.0", "a time must be a positive, finite number"),
    "infinite time": (TIME, math.inf, "inf", "a time must be a positive, finite number"),
    "minus infinite time": (TIME, -math.inf, "-inf", "a time must be a positive, finite number"),
    "text for a time": (TIME, "fast", "'fast'", "not a number"),
    "true for a time": (TIME, True, "True", "not a number"),
    "negative memory": (
        "conv.Conv.peakmem_op",
        -4096,
        "-4096",
        "a memory peak must be finite, not negative",
    ),
    "negative error": (
        "conv.Conv.track_max_rel",
        -1e-7,
        "-1e-07",
        "an error (max_rel) cannot be negative",
    ),
}


@pytest.mark.parametrize("case", IMPOSSIBLE, ids=list(IMPOSSIBLE))
def test_an_impossible_value_is_set_aside_with_where_it_came_from(copy, pristine, case):
    benchmark, value, shown, why = IMPOSSIBLE[case]
    path = copy / CPU / RESULTS_FILE
    edit_benchmark(path, benchmark, set_first_value(value))
    loaded = read_results(copy)
    assert loaded.impossible.to_dict("records") == [
        {
            "machine": CPU,
            "file": str(path),
            "benchmark": benchmark,
            "case": FIRST_CASE,
            "value": shown,
            "why": why,
        }
    ]
    assert said(loaded, path) == [
        f"{benchmark}: 1 impossible value(s) set aside, neither drawn nor counted ({why}: {shown})"
    ]
    suite, metric = benchmark.split(".")[1:]
    first = (
        (pristine.results.machine == CPU)
        & (pristine.results.suite == suite)
        & (pristine.results.metric == metric)
        & (pristine.results.backend == "scipy-correlate2d")
        & (pristine.results["size"] == 64)
        & (pristine.results.kernel == 3)
        & (pristine.results.dtype == "float32")
    )
    assert first.sum() == 1
    same(loaded.results, pristine.results[~first])
    assert tables.counts(loaded.results).ok == tables.counts(pristine.results).ok - 1


def test_nan_is_asv_s_skip_and_reads_skipped(copy, pristine):
    path = copy / CPU / RESULTS_FILE
    edit_benchmark(path, TIME, set_first_value(math.nan))
    loaded = read_results(copy)
    row = rows(loaded.results, CPU, suite="Conv", metric="time_op").iloc[0]
    assert (row.backend, row["size"], row.status) == ("scipy-correlate2d", 64, "skipped")
    assert loaded.problems == () and loaded.impossible.empty


def test_many_impossible_values_are_listed_each_and_summed_up_in_one_problem(copy):
    path = copy / CPU / RESULTS_FILE
    edit_benchmark(path, TIME, lambda row: row.update(result=[-1.0] * 72))
    loaded = read_results(copy)
    assert len(loaded.impossible) == 72
    assert said(loaded, path) == [
        f"{TIME}: 72 impossible value(s) set aside, neither drawn nor counted (a time must "
        "be a positive, finite number: -1.0, -1.0, -1.0, -1.0 and 68 more)"
    ]
    assert rows(loaded.results, CPU, suite="Conv", metric="time_op").empty


def test_a_spread_that_is_no_number_is_unknown(copy, pristine):
    path = copy / CPU / RESULTS_FILE

    def damage(row):
        row["stats_q_25"][0] = "low"
        row["stats_q_75"][0] = -1.0

    edit_benchmark(path, TIME, damage)
    loaded = read_results(copy)
    first = rows(loaded.results, CPU, suite="Conv", metric="time_op").iloc[0]
    assert math.isnan(first.q25) and math.isnan(first.q75) and first.status == "ok"
    same(loaded.results.drop(columns=["q25", "q75"]), pristine.results.drop(columns=["q25", "q75"]))


def test_load_results_gives_each_problem_as_a_warning(copy, pristine):
    notes = copy / CPU / "notes.json"
    notes.write_text("{}")
    with pytest.warns(ResultsWarning) as caught:
        frame = load_results(copy)
    same(frame, pristine.results)
    assert [str(w.message) for w in caught] == [
        f"{notes}: skipped: version=None, not asv's format 2"
    ]


def test_nothing_readable_is_no_results_with_every_problem(copy):
    for machine in (CPU, GPU):
        (copy / machine / RESULTS_FILE).write_text("{")
    with pytest.raises(NoResults) as raised:
        read_model(copy, measure=None)
    assert {p.path for p in raised.value.problems} == {
        str(copy / CPU / RESULTS_FILE),
        str(copy / GPU / RESULTS_FILE),
    }
    assert (
        str(raised.value)
        == f"no readable asv results under {str(copy)!r} (2 problem(s) with its files)"
    )


# --- names from the results are text -------------------------------------------------------


def rename_machine(root: Path, old: str, new: str) -> None:
    folder = root / old
    for name in ("machine.json", ENVIRONMENT_FILE):
        store(folder / name, {**stored(folder / name), "machine": new})
    path = folder / RESULTS_FILE
    data = stored(path)
    store(path, {**data, "params": {**data["params"], "machine": new}})


def keep_backends(root: Path, kept: set[str]) -> None:
    """Every results file under ``root`` with only the cases of ``kept`` backends, so that the
    page draws little."""
    meta = stored(root / "benchmarks.json")
    for path in root.glob(f"*/{RESULTS_FILE}"):
        data = stored(path)
        columns = data["result_columns"]
        for name, row in data["results"].items():
            if (meta.get(name, {}).get("param_names") or [""])[0] != "backend":
                continue
            stored_row = dict(itertools.zip_longest(columns, row))
            params = stored_row["params"]
            cases = list(itertools.product(*params))
            chosen = [i for i, case in enumerate(cases) if case[0].strip("'") in kept]
            for column, values in stored_row.items():
                if isinstance(values, list) and len(values) == len(cases) and column != "params":
                    stored_row[column] = [values[i] for i in chosen]
            params[0] = [p for p in params[0] if p.strip("'") in kept]
            data["results"][name] = [stored_row[c] for c in columns]
        store(path, data)


MATHTEXT = r"$\frac{1}$"
MARKUP = "<script>alert(1)</script>$x$"


def test_machine_names_are_shown_as_written_in_the_page_and_its_figures(copy):
    keep_backends(copy, {"torch-cpu", "torch-cuda"})
    rename_machine(copy, CPU, MATHTEXT)
    rename_machine(copy, GPU, MARKUP)
    model = read_model(copy, measure=None)
    assert model.machines == sorted([MATHTEXT, MARKUP]) and model.problems == ()
    assert not model.pairs.empty  # the speedup figure names both machines
    page = html.page(model)
    assert "<script" not in page
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt;$x$"
    assert f'<h2 id="m-{escaped}">Machine {escaped}</h2>' in page
    assert f'<h2 id="m-{MATHTEXT}">Machine {MATHTEXT}</h2>' in page
    # The figures' titles and legends hold the names as text (SVG <text>, escaped), not
    # mathtext: a fraction would have been drawn as paths and lost the dollar signs.
    assert f">{MATHTEXT}: time per op (lower is better)</text>" in page
    assert f">{escaped}: time per op (lower is better)</text>" in page
    assert f"torch-cuda@{escaped} vs torch-cpu@{MATHTEXT}, k=3 float32</text>" in page
    assert f">{escaped}: roofline of its CPU</text>" in page
    assert f"<h3>{MATHTEXT} vs {escaped}</h3>" in page


# --- convbench report ---------------------------------------------------------------------


@pytest.fixture
def quick_figures(monkeypatch):
    """Figures drawn as empty SVGs: these tests are about what is said, not what is drawn."""
    for name in ("time_vs_size", "speedups", "roofline", "crossover"):
        monkeypatch.setattr(plots, name, lambda *args: "<svg></svg>")


def test_report_command_warns_of_each_problem_and_writes_the_page(copy, tmp_path, quick_figures):
    notes = copy / GPU / "notes.json"
    notes.write_text("[]")
    append_line(copy / GPU / records.FILE, '{"benchmark": "Conv.ti')
    edit_benchmark(copy / CPU / RESULTS_FILE, TIME, set_first_value(-2.5))
    out = tmp_path / "site"
    result = CliRunner().invoke(
        main, ["report", str(copy), "-o", str(out), "--no-measure-bandwidth"]
    )
    assert result.exit_code == 0, result.output
    problems = read_results(copy).problems
    assert len(problems) == 3
    assert result.stderr.splitlines() == [f"warning: {p}" for p in problems]
    assert "report: " in result.stdout and "Traceback" not in result.output
    page = (out / "index.html").read_text()
    prose = " ".join(page.split())
    assert '<section class="problems" id="problems">' in page
    assert "<h2>Problems with the recorded data</h2> <p>3 problems." in prose
    for problem in problems:
        assert f"<li><code>{problem.path}</code>: {problem.what}</li>" in page
    row = f"<td>{CPU}</td><td>{copy / CPU / RESULTS_FILE}</td><td>{TIME}</td><td>{FIRST_CASE}</td>"
    assert f"{row}<td>-2.5</td>" in page
    assert "<b>1 impossible value</b> set aside, not counted" in prose
    # The intact machine is all there.
    assert "Machine fixture-gpu" in page and "Machine fixture-cpu" in page


def test_report_command_on_intact_results_says_no_problem(tmp_path, quick_figures):
    out = tmp_path / "site"
    result = CliRunner().invoke(
        main, ["report", str(FIXTURE), "-o", str(out), "--no-measure-bandwidth"]
    )
    assert result.exit_code == 0 and result.stderr == ""
    assert 'id="problems"' not in (out / "index.html").read_text()


def test_report_command_without_readable_results_fails_in_one_line(copy, tmp_path):
    for machine in (CPU, GPU):
        (copy / machine / RESULTS_FILE).write_bytes(b"")
    result = CliRunner().invoke(main, ["report", str(copy), "-o", str(tmp_path / "site")])
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"warning: {copy / CPU / RESULTS_FILE}: skipped: empty",
        f"warning: {copy / GPU / RESULTS_FILE}: skipped: empty",
        f"Error: no readable asv results under {str(copy)!r} (2 problem(s) with its files)",
    ]
    assert not (tmp_path / "site").exists()


def test_report_command_with_an_unwritable_output_fails_in_one_line(tmp_path, quick_figures):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    out = blocker / "site"
    result = CliRunner().invoke(
        main, ["report", str(FIXTURE), "-o", str(out), "--no-measure-bandwidth"]
    )
    assert result.exit_code == 1
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"Error: cannot write {out / 'index.html'}: [Errno 20] Not a directory")


def test_a_killed_report_leaves_the_old_page_or_a_whole_new_one(copy, tmp_path):
    """kill -9 of `convbench report` once as soon as its temporary page appears (mid-write),
    then at random moments before that: index.html is the old page or a complete new one."""
    keep_backends(copy, {"torch-cpu"})
    shutil.rmtree(copy / GPU)
    out = tmp_path / "site"
    out.mkdir()
    old = "<!DOCTYPE html><html><body>the previous report</body></html>\n"
    index = out / "index.html"
    command = [sys.executable, "-m", "convbench", "report", str(copy), "-o", str(out)]
    command.append("--no-measure-bandwidth")
    moments = random.Random(7)
    until_write = None
    for attempt in range(3):
        index.write_text(old)
        started = time.monotonic()
        child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = None if attempt == 0 else started + moments.uniform(0, until_write)
        while child.poll() is None:
            writing = any(name.startswith(".index.html.") for name in os.listdir(out))
            if (deadline is None and writing) or (deadline and time.monotonic() >= deadline):
                child.send_signal(signal.SIGKILL)
                break
            time.sleep(0.001)
        child.wait()
        if attempt == 0:
            until_write = time.monotonic() - started
        page = index.read_text()
        assert page == old or (page.startswith("<!DOCTYPE html>") and page.endswith("</html>")), (
            attempt,
            len(page),
        )


# --- any damage ---------------------------------------------------------------------------


def assert_believable(loaded, pristine) -> None:
    """The intact machine as it was; every kept value of the damaged one a possible one."""
    same(rows(loaded.results, GPU), rows(pristine.results, GPU))
    ok = loaded.results[loaded.results.status == "ok"]
    times = ok[ok.kind == "time"].value
    assert ((times > 0) & times.map(math.isfinite)).all()
    assert (ok[ok.kind != "time"].value >= 0).all()
    assert set(loaded.results.status) <= {"ok", "skipped", "failed"}


@pytest.fixture(scope="module")
def scratch(base, tmp_path_factory) -> Path:
    return Path(shutil.copytree(base, tmp_path_factory.mktemp("fuzz") / "results"))


FUZZ = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(cut=st.integers(0, 40_000), noise=st.binary(max_size=64), at=st.integers(0, 40_000))
def test_any_cut_or_scribble_of_a_results_file_is_survived(scratch, pristine, cut, noise, at):
    path = scratch / CPU / RESULTS_FILE
    intact = (FIXTURE / CPU / RESULTS_FILE).read_bytes()
    try:
        path.write_bytes(intact[:cut] if not noise else intact[:at] + noise + intact[at:])
        loaded = read_results(scratch)
    finally:
        path.write_bytes(intact)
    assert_believable(loaded, pristine)
    assert str(path) in {p.path for p in loaded.problems} or rows(loaded.results, CPU).shape[0]


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)


@FUZZ
@given(where=st.data(), value=JSON)
def test_any_json_in_any_place_of_a_results_file_is_survived(scratch, pristine, where, value):
    path = scratch / CPU / RESULTS_FILE
    intact = stored(FIXTURE / CPU / RESULTS_FILE)
    data = json.loads(json.dumps(intact))
    key = where.draw(st.sampled_from([*data, *[("results", n) for n in data["results"]]]))
    if isinstance(key, tuple):
        row = data["results"][key[1]]
        row[where.draw(st.integers(0, len(row) - 1))] = value
    else:
        data[key] = value
    try:
        store(path, data)
        loaded = read_results(scratch)
    finally:
        store(path, intact)
    assert_believable(loaded, pristine)


@FUZZ
@given(lines=st.lists(JSON.map(json.dumps) | st.text(max_size=30), min_size=1, max_size=4))
def test_any_records_lines_are_survived(scratch, pristine, lines):
    path = scratch / GPU / records.FILE
    intact = (FIXTURE / GPU / records.FILE).read_text()
    try:
        path.write_text(intact + "\n".join(lines) + "\n", errors="surrogateescape")
        loaded = read_results(scratch)
    finally:
        path.write_text(intact)
    kept = ["machine", "suite", "metric", "backend", "size", "kernel", "dtype", "value", "status"]
    same(loaded.results[kept], pristine.results[kept])


@pytest.fixture(scope="module")
def pristine_model(pristine):
    machines = sorted(set(pristine.results.machine))
    environments = pristine.environments
    return build_model(pristine.results, environments, bandwidths(environments, machines, None))


# A peak rate per dtype as `convbench env` writes it, each field any JSON value.
PEAKS = st.dictionaries(
    st.sampled_from(["float32", "float16", "float64"]),
    st.fixed_dictionaries({"gflops": JSON, "library": JSON, "threads": JSON, "other_cores": JSON}),
)
ENVIRONMENT = st.dictionaries(
    st.sampled_from(
        [*results.ENVIRONMENT_FIELDS, "cpu", "cores", "memory_gib", "gpu", "cpu_flags"]
    ),
    JSON,
) | st.fixed_dictionaries({"peak_gflops": PEAKS, "memory_bandwidth_gbs": JSON, "gpu": JSON})


@FUZZ
@given(environment=JSON | ENVIRONMENT)
def test_any_environment_record_is_survived_by_the_page_s_sections(
    scratch, pristine, pristine_model, environment
):
    path = scratch / CPU / ENVIRONMENT_FILE
    intact = (FIXTURE / CPU / ENVIRONMENT_FILE).read_text()
    try:
        path.write_text(json.dumps(environment))
        loaded = read_results(scratch)
    finally:
        path.write_text(intact)
    same(rows(loaded.results, GPU), rows(pristine.results, GPU))
    environments = loaded.environments
    model = dataclasses.replace(
        pristine_model,
        environments=environments,
        bandwidth=bandwidths(environments, pristine_model.machines, None),
        not_run=tables.not_run(loaded.results, environments),
    )
    assert [e.machine for e in html.environment_section(model)] == sorted(environments)
    views = html.not_run_section(model)
    assert sum(len(view.table.rows) for view in views.values()) == len(model.not_run)
    # What differs from the other machine's record, and the roofline under any ceilings.
    differences = tables.environment_diff(environments.get(CPU), environments.get(GPU))
    assert all(isinstance(text, str) for text in differences[["fact", "a", "b"]].stack())
    floors = {machine: floor for machine, (floor, _) in model.bandwidth.items()}
    limits = tables.ceilings(model.times, environments, floors)
    assert ((limits.peak_gflops > 0) | limits.peak_gflops.isna()).all()
    placed = tables.roofline_points(model.times, environments, limits)
    assert ((placed.of_bound > 0) | placed.of_bound.isna()).all()
    model = dataclasses.replace(
        model, differences={(CPU, GPU): differences}, ceilings=limits, roofline=placed
    )
    (pair,) = html.machines_section(model)
    assert len(pair.differences.rows) == len(differences)


SPREAD = {
    "convbench_reproducibility": 1,
    "measured": "2026-11-25T18:55:10+00:00",
    "cpu": "AMD EPYC",
    "threads": 2,
    "runs": 3,
    "long_op_s": 1e-3,
    "goal": 0.03,
    "cases_held": 8,
    "median_difference": 0.011,
    "largest_difference": 0.065,
    "largest_case": "torch-cpu 1024x1024 k=3 float32",
    "most_other_cores": 0.03,
    "noisy": 0,
    "cases": [],
}


def test_a_machine_s_run_to_run_spread_is_stated_in_its_section(copy, quick_figures):
    store(copy / CPU / REPRODUCIBILITY_FILE, SPREAD)
    loaded = read_results(copy)
    assert loaded.problems == ()
    assert loaded.reproducibility[CPU]["median_difference"] == 0.011
    assert GPU not in loaded.reproducibility
    prose = " ".join(html.page(read_model(copy, measure=None)).split())
    cpu, gpu = (prose.split(f"Machine {name}</h2>")[1].split("<h2")[0] for name in (CPU, GPU))
    assert (
        "Run to run: the same 8 timings of 1 ms or more, each taken by 3 fresh processes on "
        "2026-11-25, differ by a median 1.1% (largest 6.5%, torch-cpu 1024x1024 k=3 float32); "
        "other processes took at most 0.03 cores meanwhile (within the 3% goal)." in cpu
    )
    assert (
        f"Run to run: not measured on this machine (python scripts/reproducibility.py --save "
        f"results/{GPU})" in gpu
    )


def test_a_run_to_run_spread_above_the_goal_says_so(copy, quick_figures):
    store(copy / CPU / REPRODUCIBILITY_FILE, {**SPREAD, "median_difference": 0.11})
    prose = " ".join(html.page(read_model(copy, measure=None)).split())
    assert "differ by a median 11.0%" in prose and "(above the 3% goal)" in prose


def test_a_damaged_run_to_run_spread_is_named_and_left_out(copy, pristine):
    path = copy / CPU / REPRODUCIBILITY_FILE
    store(path, {**SPREAD, "median_difference": "small", "runs": 0})
    loaded = read_results(copy)
    assert said(loaded, path) == [
        "runs=0 is not a count; median_difference='small' is not a number >= 0: left out"
    ]
    assert loaded.reproducibility[CPU]["median_difference"] is None
    same(loaded.results, pristine.results)
    path.write_text("{")
    loaded = read_results(copy)
    assert CPU not in loaded.reproducibility
    assert said(loaded, path)[0].startswith("skipped: not JSON")


def test_a_backend_left_out_of_a_machine_s_grid_is_listed_with_its_environment_reason(
    copy, quick_figures
):
    path = copy / CPU / ENVIRONMENT_FILE
    environment = stored(path)
    environment["backends"]["jax-gpu"] = {
        "available": False,
        "reason": "no NVIDIA GPU found on this machine (/dev/nvidia0 is absent)",
        "settings": {},
    }
    store(path, environment)
    model = read_model(copy, measure=None)
    left = model.left_out[model.left_out.machine == CPU]
    assert ["jax-gpu", "no NVIDIA GPU found on this machine (/dev/nvidia0 is absent)"] in (
        left[["backend", "reason"]].values.tolist()
    )
    # A backend with results on the machine (skipped ones included) is not "left out".
    assert not set(left.backend) & set(model.results[model.results.machine == CPU].backend)
    page = html.page(model)
    assert (
        f"<td>{CPU}</td><td>jax-gpu</td><td>no NVIDIA GPU found on this machine "
        "(/dev/nvidia0 is absent)</td>" in page
    )


def test_machine_vs_machine_gives_each_machine_s_run_to_run_spread(copy, quick_figures):
    store(copy / CPU / REPRODUCIBILITY_FILE, SPREAD)
    prose = " ".join(html.page(read_model(copy, measure=None)).split())
    pair = prose.split('<h2 id="machines">')[1].split('<h2 id="settings">')[0]
    assert "<th>run-to-run spread</th>" in pair
    assert '<td class="num">1.1% median, 6.5% largest</td>' in pair
    assert "<td>not measured</td>" in pair  # fixture-gpu
