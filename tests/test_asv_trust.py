"""scripts/asv_trust.py: the times added to asv's progress lines, and the noisy timings found in
an asv results folder (the fixture's second CPU machine), judged as the report judges them."""

from __future__ import annotations

import ast
import io
import re
from pathlib import Path

import pytest

from convbench.report import load_results, tables
from tests.scripts import load_script

ROOT = Path(__file__).resolve().parents[1]
MACHINE = ROOT / "tests" / "data" / "results" / "fixture-cpu-b"
COMMIT = "f1c7f1c7" + "0" * 32


asv_trust = load_script("asv_trust")


@pytest.mark.parametrize(
    ("line", "elapsed", "shown"),
    [
        ("[25.00%] ··· conv.Conv.time_op  ok", 60.0,
         "[25.00%] ··· conv.Conv.time_op  ok   [1:00 elapsed, about 3:00 left]"),
        ("[ 0.00%] · For convbench", 5.0, "[ 0.00%] · For convbench   [0:05 elapsed]"),
        ("[100.00%] ··· done", 3725.0, "[100.00%] ··· done   [1:02:05 elapsed, about 0:00 left]"),
        ("· Running 3 total benchmarks", 1.0, "· Running 3 total benchmarks"),
        ("              backend   size", 9.0, "              backend   size"),
    ],
)  # fmt: skip
def test_progress_lines_get_the_time_elapsed_and_left(line, elapsed, shown):
    assert asv_trust.with_times(line, elapsed) == shown


def test_progress_passes_every_line_through():
    times = iter([0.0, 0.0, 30.0])
    out = io.StringIO()
    asv_trust.progress(["· Running 2 total benchmarks\n", "[50.00%] ··· a  ok\n"], out,
                       clock=lambda: next(times))  # fmt: skip
    assert out.getvalue().splitlines() == [
        "· Running 2 total benchmarks",
        "[50.00%] ··· a  ok   [0:30 elapsed, about 0:30 left]",
    ]


def asv_name(benchmark: str, params: tuple[str, ...]) -> str:
    """How asv names one combination when it matches ``--bench`` against it."""
    return f"{benchmark}({', '.join(params)})"


def test_a_regex_selects_its_combination_alone():
    params = ("'scipy-fftconvolve'", "1024", "31", "'float32'")
    regex = asv_trust.Timing("conv.Conv.time_op", params, ("wide spread",)).regex
    assert re.search(regex, asv_name("conv.Conv.time_op", params))
    others = [
        asv_name("conv.Conv.time_op", ("'scipy-fftconvolve'", "1024", "3", "'float32'")),
        asv_name("conv.Conv.time_op", ("'scipy-fftconvolve'", "10240", "31", "'float32'")),
        asv_name("conv.ConvBatch.time_op", params),
    ]
    assert not any(re.search(regex, name) for name in others)


def test_the_noisy_timings_are_the_reports():
    report = tables.timings(load_results(MACHINE))
    expected = {
        (row.suite, row.metric, row.backend, row.size, row.kernel, row.dtype)
        for row in report[report.noisy].itertuples()
    }
    found = [t for t in asv_trust.timings(MACHINE, COMMIT) if t.why]
    assert len(found) == len(expected) == 3
    for timing in found:
        suite, metric = timing.benchmark.split(".")[-2:]
        backend, size, kernel, dtype = map(ast.literal_eval, timing.params)  # asv's reprs
        assert (suite, metric, backend, size, kernel, dtype) in expected


def test_noisy_prints_bench_arguments_and_says_why():
    out, err = io.StringIO(), io.StringIO()
    assert asv_trust.noisy(MACHINE, COMMIT, out, err) == 0
    lines = out.getvalue().splitlines()
    assert lines[::2] == ["--bench"] * 3
    assert all(line.startswith("^conv\\.Conv\\.time_op\\(") for line in lines[1::2])
    assert err.getvalue() == (
        "3 of 48 timings are noisy (busy machine 1, too few samples 1, wide spread 1)\n"
    )


def test_another_commit_has_no_timings():
    assert list(asv_trust.timings(MACHINE, "0" * 40)) == []
