"""The report's judgement of its numbers and the sections built on it: how far each timing can
be trusted, machine against machine, each CPU's roofline, and the backend to use per case.

Pure functions are tested on small frames written here, with exact expected values; the page
and the fixture (tests/data/results, written by tests/data/make_fixture.py) show them laid out.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from markupsafe import escape

from convbench.load import BUSY_CORES
from convbench.report import (
    bandwidths,
    build_model,
    html,
    load_environments,
    load_results,
    plots,
    tables,
)
from convbench.report.results import COLUMNS, COUNTS, FLOATS
from convbench.timing import MIN_SAMPLES, WIDE_SPREAD, format_seconds
from tests.data.make_fixture import CPU_B, FFT, MACHINES, NOISY, SPEED, op_time

FIXTURE = Path(__file__).parent / "data" / "results"
CPU, GPU = "fixture-cpu", "fixture-gpu"


def result(
    seconds: float = 1e-3,
    spread: float = 0.02,
    samples: int = 10,
    machine: str = "m",
    backend: str = "b",
    size: int = 256,
    kernel: int = 3,
    dtype: str = "float32",
    suite: str = "Conv",
    metric: str = "time_op",
    **facts,
) -> dict:
    """One row of the long results frame: a timing of ``seconds`` whose interquartile range is
    ``spread`` of it, centred on it."""
    kind = "track" if metric.startswith("track") else "time"
    half = seconds * spread / 2
    return {
        **dict.fromkeys(COLUMNS),
        "machine": machine,
        "suite": suite,
        "metric": metric,
        "kind": kind,
        "backend": backend,
        "batch": 1,
        "size": size,
        "kernel": kernel,
        "dtype": dtype,
        "value": seconds,
        "q25": seconds - half if kind == "time" else None,
        "q75": seconds + half if kind == "time" else None,
        "samples": samples if kind == "time" else None,
        "status": "ok",
        "recorded": True,
        **facts,
    }


def frame(*rows: dict) -> pd.DataFrame:
    types = {name: float for name in FLOATS} | dict.fromkeys(COUNTS, "Int64")
    return pd.DataFrame(list(rows), columns=COLUMNS).astype(types)


# --- trust ---------------------------------------------------------------------------------


def test_a_quiet_timing_with_enough_samples_is_trusted():
    assert tables.noisy_reasons(WIDE_SPREAD, MIN_SAMPLES, BUSY_CORES) == ()
    assert tables.noisy_reasons(math.nan, math.nan, math.nan) == ()  # unknown says nothing


def test_each_reason_for_a_noisy_timing_is_named():
    assert tables.noisy_reasons(0.3, 7, 0.0) == ("wide spread: IQR is 30% of the median (> 10%)",)
    assert tables.noisy_reasons(0.0, 3, 0.0) == (
        "only 3 samples: too few to bound the median (at least 6)",
    )
    assert tables.noisy_reasons(0.0, 7, 0.9) == (
        "busy machine: other processes used 0.90 cores while measured (> 0.25)",
    )
    assert len(tables.noisy_reasons(0.3, 3, 0.9)) == 3


@given(
    spread=st.floats(0, 1),
    samples=st.integers(1, 50),
    other=st.floats(0, 4),
)
def test_noisy_exactly_when_a_threshold_is_passed(spread, samples, other):
    noisy = spread > WIDE_SPREAD or samples < MIN_SAMPLES or other > BUSY_CORES
    assert bool(tables.noisy_reasons(spread, samples, other)) == noisy


def test_trust_adds_spread_noisy_and_why_to_timings():
    rows = tables.trust(
        frame(result(spread=0.02), result(spread=0.5), result(samples=2), result(other_cores=1.0))
    )
    assert rows.spread.round(12).tolist() == [0.02, 0.5, 0.02, 0.02]
    assert rows.noisy.tolist() == [False, True, True, True]
    assert rows.why_noisy.iloc[0] == ""
    assert rows.why_noisy.iloc[1].startswith("wide spread")
    assert rows.why_noisy.iloc[2].startswith("only 2 samples")
    assert rows.why_noisy.iloc[3].startswith("busy machine")


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ((1.0, 2.0), (1.5, 3.0), True),
        ((1.0, 2.0), (2.0, 3.0), True),  # touching ranges overlap
        ((1.0, 2.0), (2.1, 3.0), False),
        ((1.0, 2.0), (math.nan, 3.0), None),
    ],
)
def test_tied_when_interquartile_ranges_overlap(a, b, expected):
    assert tables.tied(*a, *b) is expected
    assert tables.tied(*b, *a) is expected


def test_fastest_says_when_the_runner_up_is_tied_or_a_time_noisy():
    times = tables.op_times(
        frame(
            result(1.00e-3, backend="a", size=64),
            result(1.01e-3, backend="b", size=64),  # within a's 2% spread
            result(1.0e-3, backend="a", size=256),
            result(2.0e-3, backend="b", size=256, spread=0.5),  # noisy
        )
    )
    best = tables.fastest(times).set_index("size")
    assert best.loc[64, ["fastest", "runner_up", "tied", "noisy"]].tolist() == [
        "a",
        "b",
        True,
        False,
    ]
    assert best.loc[256, ["tied", "noisy"]].tolist() == [False, True]
    assert best.loc[256, "margin"] == pytest.approx(2.0)


def test_fixture_timings_carry_asv_s_samples_and_the_records_load(model):
    times = model.times.set_index(["machine", "backend", "size", "kernel", "dtype"])
    # 7 samples each, 3 for the one NOISY says has few; load only where records say it.
    assert times.samples.value_counts().to_dict() == {7.0: len(times) - 1, 3.0: 1}
    assert times.loc[(CPU_B, "tensorflow-cpu", 64, 3, "float32"), "samples"] == 3
    b = times.loc[CPU_B]
    assert set(b.other_cores) == {0.03, 0.9}
    assert times.loc[(CPU_B, "torch-cpu", 256, 7, "float32"), "other_cores"] == 0.9
    assert times.loc[[CPU, GPU]].other_cores.isna().all()
    assert set(b.threads) == {1.0, MACHINES[CPU_B]["threads"]}
    noisy = model.times[model.times.noisy]
    found = {tuple(r) for r in noisy[["machine", "backend", "size", "kernel", "dtype"]].values}
    assert found == set(NOISY)


def test_fixture_trust_is_counted_per_machine(model):
    trust = model.trust.set_index("machine")
    columns = ["timings", "noisy", "wide_spread", "busy", "few_samples", "load_recorded"]
    assert trust.loc[CPU, columns].tolist() == [60, 0, 0, 0, 0, 0]
    assert trust.loc[CPU_B, columns].tolist() == [48, 3, 1, 1, 1, 48]
    assert trust.loc[GPU, columns].tolist() == [95, 1, 1, 0, 0, 0]
    assert trust.loc[CPU_B, "most_other_cores"] == 0.9
    assert trust.loc[CPU_B, "threads"] == "1, 8"


def test_a_gpu_speedup_on_a_noisy_time_is_marked(model):
    pairs = model.pairs
    chosen = pairs[
        (pairs.gpu_backend == "torch-cuda")
        & (pairs.cpu_machine == CPU)
        & (pairs.kernel == 3)
        & (pairs.dtype == "float32")
    ].set_index("size")
    assert chosen.noisy.tolist() == [True, False, False]  # torch-cuda's 64x64 time is noisy
    assert not chosen.tied.any()


def test_a_loss_on_a_tied_or_noisy_case_says_so():
    pairs = pd.DataFrame(
        {
            "cpu_machine": "c",
            "cpu_backend": "x",
            "gpu_machine": "g",
            "gpu_backend": "y",
            "kernel": 3,
            "dtype": "float32",
            "size": [64, 256, 1024],
            "speedup": [0.5, 0.9, 3.0],
            "speedup_end_to_end": [0.4, 0.8, 0.9],
            "tied": pd.array([False, True, False], dtype="boolean"),
            "noisy": [False, False, False],
            "tied_end_to_end": pd.array([False, False, pd.NA], dtype="boolean"),
            "noisy_end_to_end": [False, False, True],
        }
    )
    (row,) = tables.gpu_losses(pairs).itertuples()
    assert (row.op_loses_up_to, row.op_caveat) == (256, "tied")
    assert (row.end_to_end_loses_up_to, row.end_to_end_caveat) == (1024, "noisy")


# --- machine vs machine --------------------------------------------------------------------


def test_machine_ratios_give_both_times_spreads_and_whether_tied():
    df = frame(
        result(2.0e-3, machine="a", spread=0.04),
        result(1.0e-3, machine="b", spread=0.02),
        result(1.0e-3, machine="a", kernel=7),
        result(1.01e-3, machine="b", kernel=7, spread=0.5),
        result(1.0e-3, machine="a", kernel=15),  # on one machine only: no ratio
    )
    ratios = tables.machine_ratios(df, "a", "b")
    assert ratios.kernel.tolist() == [3, 7]
    assert ratios.ratio.tolist() == pytest.approx([2.0, 1.0 / 1.01])
    assert ratios.spread_a.tolist() == pytest.approx([0.04, 0.02])
    assert ratios.spread_b.tolist() == pytest.approx([0.02, 0.5])
    assert ratios.tied.tolist() == [False, True]
    assert ratios.noisy.tolist() == [False, True]
    assert list(ratios.columns) == tables.RATIO_COLUMNS


def test_machine_ratios_name_an_unknown_machine():
    with pytest.raises(ValueError, match=r"machine 'c' has no Conv.time_op result; one of \['a'\]"):
        tables.machine_ratios(frame(result(machine="a")), "a", "c")


def test_fixture_machines_differ_where_their_libraries_do(model):
    ratios = model.ratios[(model.ratios.machine_a == CPU) & (model.ratios.machine_b == CPU_B)]
    by = ratios.set_index(["backend", "size", "kernel"])
    # scipy's single thread is as fast on both; the threaded libraries are faster on cpu-b.
    assert by.xs("scipy-correlate2d").ratio.tolist() == pytest.approx([1.0] * 6)
    assert by.xs("scipy-correlate2d").tied.all()
    torch = by.loc[("torch-cpu", 1024, 7)]
    assert torch.ratio == pytest.approx(SPEED[(CPU_B, "torch-cpu")])
    assert not torch.tied and not torch.noisy
    assert by.loc[("torch-cpu", 256, 7)].noisy  # busy while measured on cpu-b
    assert len(ratios) == 3 * 3 * 2  # common backends x sizes x kernels, float32


def test_environment_diff_lists_only_what_differs():
    a = {
        "machine": "a",
        "collected": "yesterday",
        "cpu": "Xeon",
        "cores": 2,
        "gpu": None,
        "memory_bandwidth_gbs": 10.0,
        "cpu_flags": ["avx2", "fma"],
        "versions": {"torch": "2.1", "numpy": "2.0"},
        "backends": {
            "torch-cpu": {"available": True, "settings": {"torch.threads": "2"}},
            "torch-cuda": {"available": False, "reason": "no GPU", "settings": {}},
        },
    }
    b = {
        **a,
        "machine": "b",
        "collected": "today",
        "cores": 8,
        "memory_bandwidth_gbs": 25.123456,
        "cpu_flags": ["fma", "avx512f", "avx2"],
        "versions": {"torch": "2.2", "numpy": "2.0"},
        "backends": {
            "torch-cpu": {"available": True, "settings": {"torch.threads": "8"}},
            "torch-cuda": {"available": True, "settings": {}},
        },
        "peak_gflops": {"float32": {"gflops": 400.0, "library": "torch", "threads": 8}},
    }
    diff = tables.environment_diff(a, b)
    assert diff.values.tolist() == [
        ["cores", "2", "8"],
        ["memory bandwidth (GB/s)", "10", "25.12"],
        ["CPU flags, only here", "none", "avx512f"],
        ["torch version", "2.1", "2.2"],
        ["torch-cpu: torch.threads", "2", "8"],
        ["torch-cuda available", "no: no GPU", "yes"],
        ["peak GFLOP/s, float32", "not recorded", "400 (torch, 8 threads)"],
    ]
    assert tables.environment_diff(a, dict(a, machine="z")).empty
    missing = tables.environment_diff(None, {"cpu": "Xeon", "gpu": None})
    assert missing.values.tolist() == [
        ["CPU", "not recorded", "Xeon"],
        ["GPU", "not recorded", "none"],
    ]


# --- roofline ------------------------------------------------------------------------------


def test_peak_is_read_only_where_it_is_a_positive_number():
    assert tables.peak_gflops({"peak_gflops": {"float32": {"gflops": 400}}}, "float32") == 400
    for bad in (None, "fast", -1.0, 0, math.inf, True, {"gflops": 1}):
        environment = {"peak_gflops": {"float32": {"gflops": bad}}}
        assert math.isnan(tables.peak_gflops(environment, "float32")), bad
    assert math.isnan(tables.peak_gflops({"peak_gflops": [400]}, "float32"))
    assert math.isnan(tables.peak_gflops({}, "float64"))


def roofline_case():
    """Three machines' 256x256 3x3 float32 timings of 1 ms: one recorded on the CPU under both
    ceilings, one without a record on a machine with no GPU (bandwidth only) and a GPU result."""
    df = frame(
        result(machine="both", device="cpu"),
        result(machine="no-peak"),
        result(machine="gpu", device="gpu"),
        result(machine="gpu", backend="unrecorded"),
    )
    environments = {
        "both": {"gpu": None, "peak_gflops": {"float32": {"gflops": 10.0}}},
        "no-peak": {"gpu": None},
        "gpu": {"gpu": "A GPU"},
    }
    times = tables.op_times(df)
    limits = tables.ceilings(times, environments, {"both": 20.0, "no-peak": 20.0, "gpu": 5.0})
    return tables.roofline_points(times, environments, limits), limits


def test_ceilings_per_machine_and_dtype():
    _, limits = roofline_case()
    both = limits.set_index("machine").loc["both"]
    assert (both.peak_gflops, both.bandwidth_gbs, both.ridge) == (10.0, 20.0, 0.5)
    assert math.isnan(limits.set_index("machine").loc["no-peak", "peak_gflops"])


def test_roofline_points_charge_the_direct_work_under_each_ceiling():
    placed, _ = roofline_case()
    assert placed.machine.tolist() == ["both", "no-peak"]  # nothing that ran on a GPU
    flops = 2 * 9 * 256 * 256
    moved = 4 * (2 * 256 * 256 + 9)
    intensity = flops / moved
    assert placed.intensity.tolist() == pytest.approx([intensity] * 2)
    assert placed.gflops.tolist() == pytest.approx([flops / 1e-3 / 1e9] * 2)
    both, no_peak = placed.itertuples()
    # min(peak 10, 2.25 flop/byte x 20 GB/s = 45): the peak bounds it.
    assert (both.bound, both.limit) == (10.0, "compute")
    assert both.of_bound == pytest.approx(flops / 1e-3 / 1e9 / 10.0)
    assert no_peak.bound == pytest.approx(intensity * 20.0)
    assert no_peak.limit == "memory (no peak recorded)"


def test_fixture_roofline_has_the_peak_of_fixture_cpu_b_only(model):
    limits = model.ceilings.set_index(["machine", "dtype"])
    assert limits.loc[(CPU_B, "float32"), ["peak_gflops", "bandwidth_gbs"]].tolist() == [
        400.0,
        25.0,
    ]
    assert limits.drop(CPU_B).peak_gflops.isna().all()
    placed = model.roofline
    assert set(placed.machine) == set(MACHINES)
    assert set(placed[placed.machine == GPU].backend) == {"torch-cpu"}
    fft = placed[(placed.machine == CPU_B) & (placed.backend == FFT)].set_index(["size", "kernel"])
    seconds = op_time(FFT, 1024, 31, "float32", machine=CPU_B)
    assert fft.loc[(1024, 31), "gflops"] == pytest.approx(2 * 31 * 31 * 1024 * 1024 / seconds / 1e9)


# --- the fastest way -----------------------------------------------------------------------


def agreeing(backend: str, max_rel: float, size: int = 256, kernel: int = 3) -> dict:
    return result(
        max_rel, backend=backend, size=size, kernel=kernel, metric="track_max_rel", tolerance=1e-3
    )


def test_use_this_is_the_fastest_that_agrees_never_one_that_does_not():
    df = frame(
        result(1.0e-3, backend="wrong"),
        result(2.0e-3, backend="right"),
        result(2.01e-3, backend="close"),
        result(9.0e-3, backend="slow"),
        agreeing("wrong", 1.0),
        agreeing("right", 1e-4),
        agreeing("close", 1e-4),
        agreeing("slow", 1e-4),
    )
    (row,) = tables.use_this(tables.op_times(df), tables.agreement(df)).itertuples()
    assert (row.backend, row.verified, row.agreement_at) == ("right", True, "")
    assert (row.tied, row.mismatched, row.candidates) == ("close", "wrong", 4)


def test_use_this_takes_the_nearest_tracked_size_and_says_so():
    df = frame(
        result(1.0e-3, backend="a", size=1024),
        result(2.0e-3, backend="b", size=1024),
        agreeing("a", 1e-4, size=64),
        agreeing("a", 1e-4, size=256),
    )
    (row,) = tables.use_this(tables.op_times(df), tables.agreement(df)).itertuples()
    assert (row.backend, row.verified, row.agreement_at) == ("a", True, "256x256")


def test_use_this_without_any_verdict_is_unverified():
    df = frame(result(1.0e-3, backend="a"), result(2.0e-3, backend="b"))
    (row,) = tables.use_this(tables.op_times(df), tables.agreement(df)).itertuples()
    assert (row.backend, row.verified, row.agreement_at) == ("a", False, "")


def test_fixture_use_this_switches_to_the_fft_for_large_kernels(model):
    chosen = model.use_this[model.use_this.machine == CPU_B].set_index(["size", "kernel"])
    assert chosen.loc[(1024, 3), "backend"] == "torch-cpu"
    for kernel in (7, 15, 31):
        assert chosen.loc[(1024, kernel), ["backend", "agreement_at"]].tolist() == [
            FFT,
            "256x256",  # agreement is tracked up to 256x256 on fixture-cpu-b
        ]
    assert chosen.loc[(256, 7), ["backend", "agreement_at"]].tolist() == [FFT, ""]
    assert chosen.verified.all()


def test_crossover_puts_the_best_direct_against_the_best_fft():
    df = frame(
        result(4e-3, backend="d1", kernel=7, arithmetic="direct"),
        result(3e-3, backend="d2", kernel=7, arithmetic="direct"),
        result(1e-3, backend="f", kernel=7, arithmetic="fft"),
        result(1e-3, backend="d1", kernel=3, arithmetic="direct"),
        result(1.01e-3, backend="f", kernel=3, arithmetic="fft", spread=0.3),
        result(1e-3, backend="unknown", kernel=3),  # no arithmetic recorded: left out
    )
    rows = tables.crossover(tables.op_times(df)).set_index("kernel")
    assert rows.loc[7, ["backend_direct", "backend_fft"]].tolist() == ["d2", "f"]
    assert rows.loc[7, "fft_speedup"] == pytest.approx(3.0)
    assert rows.loc[3, "fft_speedup"] == pytest.approx(1 / 1.01)
    assert rows.tied.tolist() == [True, False] and rows.noisy.tolist() == [True, False]


def test_fixture_fft_wins_from_7x7_at_1024(model):
    crossing = model.crossover[
        (model.crossover.machine == CPU_B) & (model.crossover["size"] == 1024)
    ]
    wins = crossing.set_index("kernel").fft_speedup > 1
    assert wins.to_dict() == {3: False, 7: True, 15: True, 31: True}
    assert model.crossover[model.crossover.machine != CPU_B].backend_fft.isna().all()


def test_crossover_sizes_are_the_largest_and_a_quarter_of_it():
    def times(sizes_kernels):
        return tables.op_times(frame(*(result(size=s, kernel=k) for s, k in sizes_kernels)))

    grid = [(s, k) for s in (64, 256, 1024, 4096) for k in (3, 7)]
    assert html.crossover_choice(times(grid)) == ("float32", [1024, 4096])
    assert html.crossover_choice(times([(64, 3), (64, 7), (512, 3), (512, 7)])) == (
        "float32",
        [64, 512],
    )
    assert html.crossover_choice(times([(64, 3), (256, 3)])) == ("float32", [])


# --- figures -------------------------------------------------------------------------------


def test_noisy_points_are_drawn_hollow():
    figure, ax = plt.subplots()
    plots.points(ax, [1, 2, 3], [1, 2, 3], [False, True, False], "#ff0000")
    filled, hollow = ax.lines
    assert filled.get_xdata().tolist() == [1, 3] and filled.get_markerfacecolor() == "#ff0000"
    assert hollow.get_xdata().tolist() == [2] and hollow.get_markerfacecolor() == "white"
    plt.close(figure)


# --- the page ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def model():
    environments = load_environments(FIXTURE)
    return build_model(
        load_results(FIXTURE), environments, bandwidths(environments, list(MACHINES), None)
    )


@pytest.fixture(scope="module")
def page(model) -> str:
    return html.page(model)


@pytest.fixture(scope="module")
def prose(page) -> str:
    return " ".join(page.split())


def test_page_counts_noisy_timings_at_a_glance(prose):
    assert (
        f"Trust on <b>{CPU_B}</b>: <b>3 of 48 timings noisy</b> (1 with a wide spread, 1 with too"
        " few samples, 1 on a busy machine); background load recorded for 48." in prose
    )
    assert f"Trust on <b>{CPU}</b>: none of its 60 timings is noisy" in prose
    # a reason that occurs nowhere is not named
    assert f"Trust on <b>{GPU}</b>: <b>1 of 95 timings noisy</b> (1 with a wide spread);" in prose


def test_a_noisy_time_is_marked_in_its_cell_with_why(page, model):
    seconds = op_time(FFT, 1024, 31, "float32", machine=CPU_B)
    why = model.times[model.times.noisy & (model.times.backend == FFT)].why_noisy.item()
    assert why == "wide spread: IQR is 30% of the median (> 10%)"
    title = str(escape(why))
    cell = re.search(
        rf'<td class="num noisy" title="{re.escape(title)}">{re.escape(format_seconds(seconds))} '
        r"· [^<]* !</td>",
        page,
    )
    assert cell, "the every-case cell of the noisy FFT timing"
    # its roofline cell: the share of the bound, then why it is noisy
    assert f'title="90% of the compute bound (peak GFLOP/s); {title}">' in page
    # and in the list of noisy timings, with the figures behind the verdict
    assert f"<td>{title}</td>" in page and '<td class="num">30%</td>' in page


def test_the_machine_pair_section_shows_what_differs_and_the_ratios(page, prose):
    assert f"<h3>{CPU} vs {CPU_B}</h3>" in page
    assert "<tr><td>CPU flags, only here</td><td>none</td><td>avx512f</td></tr>" in page
    assert "<tr><td>torch-cpu: torch.threads</td><td>2</td><td>8</td></tr>" in page
    assert (
        "<tr><td>peak GFLOP/s, float32</td><td>not recorded</td>"
        "<td>400 (torch, 8 threads, other load 0.03 cores)</td></tr>" in page
    )
    assert (
        f"Time on {CPU} / time on {CPU_B}: 18 cases ran on both, 6 tied within the spread, "
        "2 resting on a noisy time." in prose
    )
    assert '<td class="num">~1x (3% | 3%)</td>' in page  # scipy: tied within the spread
    assert '<td class="num">2.5x (3% | 3%)</td>' in page  # torch-cpu on more cores


def test_the_roofline_section_names_its_ceilings(page):
    assert "<li>float32: memory 25 GB/s; peak 400 GFLOP/s (ridge at 16 flop/byte)</li>" in page
    assert "<li>float32: memory 10 GB/s; no peak GFLOP/s recorded</li>" in page
    assert "only the bandwidth line is drawn" in " ".join(page.split())
    # and the environment section gives the peak and the flags as recorded
    peak = "400 (torch, 8 threads, other load 0.03 cores)"
    assert f"<tr><td>peak GFLOP/s, float32</td><td>{peak}</td></tr>" in page
    assert "<tr><td>CPU flags</td><td>avx2 avx512f fma sse4_2</td></tr>" in page


def test_the_fastest_way_section_names_each_case_s_backend(page, prose):
    seconds = op_time(FFT, 1024, 7, "float32", machine=CPU_B)
    assert f"{FFT} {format_seconds(seconds)} (agrees at 256x256)" in page
    assert "no crossover between direct sums and FFT methods to show" in prose
    assert f">{CPU_B}: float32, time against kernel size</text>" in page
    assert "No result on this machine has an agreement verdict" in prose  # fixture-cpu's


# --- network layers ------------------------------------------------------------------------


def layer_row(metric: str, backend: str, batch: int, value: float, **facts) -> dict:
    fields = {"layer": "resnet50.conv1", "batch": batch, "size": None, "kernel": None}
    return result(value, suite="Layer", metric=metric, backend=backend, **{**fields, **facts})


LAYER_ROWS = [
    layer_row("time_op", "torch-cpu", 1, 4e-3, device="cpu", precision="float32"),
    layer_row("time_op", "tensorflow-cpu", 1, 5e-3, device="cpu", precision="float32"),
    layer_row("time_op", "torch-cpu", 16, 80e-3, spread=0.5, device="cpu"),
    layer_row("time_op", "tensorflow-cpu", 16, 60e-3, device="cpu"),
    layer_row("track_gflops", "torch-cpu", 16, 47.0),
    layer_row("track_gflops", "tensorflow-cpu", 16, 63.0),
    layer_row("track_max_rel", "torch-cpu", 1, 2e-7, tolerance=1e-5),
    layer_row("track_max_rel", "tensorflow-cpu", 1, 3e-5, tolerance=1e-5),
    layer_row("peakmem_op", "torch-cpu", 16, 700 * 2**20),
    layer_row("time_op", "jax-cpu", 16, math.nan, status="skipped", reason="over budget"),
]


def test_layer_results_join_time_rate_agreement_and_memory_per_layer_and_backend():
    rows = tables.layer_results(frame(*LAYER_ROWS)).set_index(["backend", "batch"])
    assert list(rows.index) == [
        ("tensorflow-cpu", 1),
        ("tensorflow-cpu", 16),
        ("torch-cpu", 1),
        ("torch-cpu", 16),
    ]
    torch16 = rows.loc[("torch-cpu", 16)]
    assert torch16.seconds == 80e-3 and torch16.gflops == 47.0 and torch16.noisy
    assert torch16.peak_bytes == 700 * 2**20
    # Agreement is tracked on one image and holds at every batch.
    assert torch16.max_rel == 2e-7 and bool(torch16.ok)
    assert rows.loc[("tensorflow-cpu", 16)].ratio == pytest.approx(3.0)
    assert not rows.loc[("tensorflow-cpu", 1)].ok
    # GFLOP/s is measured at the training batch only.
    assert math.isnan(rows.loc[("torch-cpu", 1)].gflops)


def test_the_fastest_backend_per_layer_batch_and_dtype_is_named_with_its_rate():
    best = tables.layer_fastest(tables.layer_results(frame(*LAYER_ROWS))).set_index("batch")
    assert best.loc[1].fastest == "torch-cpu" and best.loc[1].margin == pytest.approx(1.25)
    assert best.loc[16].fastest == "tensorflow-cpu" and best.loc[16].gflops == 63.0
    # The runner-up's time is noisy: the order is marked as resting on it.
    assert best.loc[16].noisy and not best.loc[1].noisy


def test_the_page_shows_the_layers_with_the_fastest_named(model):
    extra = frame(*(dict(row, machine=CPU) for row in LAYER_ROWS))
    environments = load_environments(FIXTURE)
    layered = build_model(
        pd.concat([model.results, extra], ignore_index=True),
        environments,
        bandwidths(environments, list(MACHINES), None),
    )
    prose = " ".join(html.page(layered).split())
    section = prose.split('<h2 id="layers">Network layers</h2>')[1].split("<h2")[0]
    assert f"<h3>{CPU}</h3>" in section
    assert (
        '<tr><td>resnet50.conv1</td><td class="num">1</td><td>float32</td><td class="num">'
        'torch-cpu (1.25x)</td><td class="num">4 ms</td><td class="num">\u2013</td></tr>' in section
    )
    # torch-cpu's batch of 16 is noisy, and its spread reaches tensorflow-cpu's: tied, marked.
    assert (
        '<td class="num">16</td><td>float32</td><td class="num noisy" title="the winner&#39;s or '
        'the runner-up&#39;s time is noisy">tensorflow-cpu (~1.33x) !</td><td class="num">60 ms'
        '</td><td class="num">63</td>' in section
    )
    assert "Time, GFLOP/s, agreement and peak memory of all 4 layer results" in section
    assert '<td class="num">700 MiB</td>' in section
    assert "3e-05 (3 of tol.)" in section
    assert '<a href="#layers">layers</a>' in prose
    glance = prose.split("<h2>At a glance</h2>")[1].split("<h2")[0]
    line = glance.split(f"<li>Network layers on <b>{CPU}</b>:")[1].split("</li>")[0]
    assert "of the 2 layer cases (1 tied within the spread), 1 resting on a noisy time" in line
    assert {"<b>torch-cpu</b> in 1", "<b>tensorflow-cpu</b> in 1"} <= set(
        line.split(" of the")[0].replace("the fastest backend is ", "").strip().split(", ")
    )
    assert "the highest rate 63 GFLOP/s (tensorflow-cpu, resnet50.conv1, batch 16, float32)" in line
    assert "agreement 1 of 2 within the tolerance, <b>1 outside</b>" in line
    # Without Layer results the section says so.
    bare = " ".join(html.page(model).split())
    assert "No Layer results" in bare.split('<h2 id="layers">')[1].split("<h2")[0]
