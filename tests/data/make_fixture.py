"""Writes tests/data/results: a TEST FIXTURE, not measurements.

Three made-up machines, ``fixture-cpu``, ``fixture-cpu-b`` and ``fixture-gpu``, in asv's own
results format (written through ``asv.results.Results``, so the files are exactly what ``asv
run`` stores), with the convbench suites' class and parameter names and a
``convbench-environment.json`` each. The numbers come from a simple cost model below so that the
report's plots have plausible shapes; the tests read the expected numbers back from these files.
Skipped cases are NaN and failed cases null, as asv stores them. Every timing has 7 samples 1%
apart (a 3% spread) except the ``NOISY`` ones.

``fixture-gpu`` is a run that wrote per-case records (``convbench-records.jsonl``, through
``convbench.records``), with a third-party backend, ``acme@npu.v2`` (``AcmeNPU`` below, as a
plugin registers it through the ``convbench.backends`` entry points), whose name follows no
built-in pattern. ``fixture-cpu`` is older: results without records, with the failures file that
runs wrote before the records (``convbench-failures.jsonl``). ``fixture-cpu-b`` is a newer CPU
machine with a grid of its own (larger kernels, an FFT backend, agreement tracked up to 256x256
only), records that also say how each time was measured (other load, threads), and the only
environment record holding the peak GFLOP/s and CPU flags that differ from ``fixture-cpu``'s.

    python tests/data/make_fixture.py      # rewrites tests/data/results
"""

from __future__ import annotations

import datetime
import itertools
import json
import math
import shutil
from pathlib import Path

import numpy as np
from asv import util
from asv.results import Results
from asv.runner import BenchmarkResult

from convbench import records
from convbench.agreement import fft_points, fft_tolerance, tolerance
from convbench.backends.base import Backend, Plan

HERE = Path(__file__).parent / "results"
COMMIT = "f1c7f1c7" + "0" * 32  # a made-up commit: fixture data belongs to no real run
DATE = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
SIZES = [64, 256, 1024]
KERNELS = [3, 7]
DTYPES = ["float32", "float16"]
BATCHES = [1, 8]

# name: (seconds of fixed overhead, output pixels per second for a 1x1 kernel)
COST = {
    "scipy-correlate2d": (5e-6, 4e8),
    "tensorflow-cpu": (4e-5, 2e9),
    "torch-cpu": (1e-5, 3e9),
    "torch-cuda": (8e-6, 2e11),
    "tensorflow-gpu": (3e-5, 1e11),
    "acme@npu.v2": (2e-5, 5e10),
}
ACME = "acme@npu.v2"
# The FFT backend: (seconds of fixed overhead, n log2 n per second for n padded pixels), so it
# loses to the direct sums for 3x3 kernels and wins from 7x7 on.
FFT = "scipy-fftconvolve"
FFT_COST = (3e-5, 4e9)
CPU_B = "fixture-cpu-b"
# How many times faster a backend runs on a machine than the cost model says (1 elsewhere):
# fixture-cpu-b's threaded libraries have more cores; scipy's single thread is no faster.
SPEED = {(CPU_B, "torch-cpu"): 2.5, (CPU_B, "tensorflow-cpu"): 2.0}
# Timings that should not be trusted, and why: samples 10% apart (a 30% spread), 3 samples
# only, or other processes busy on 0.9 cores while measured (in the case's record).
NOISY = {
    (CPU_B, FFT, 1024, 31, "float32"): "spread",
    (CPU_B, "tensorflow-cpu", 64, 3, "float32"): "few samples",
    (CPU_B, "torch-cpu", 256, 7, "float32"): "busy",
    ("fixture-gpu", "torch-cuda", 64, 3, "float32"): "spread",
}


def to_bfloat16(x: np.ndarray) -> np.ndarray:
    """float32 values rounded to bfloat16's 8-bit mantissa (to nearest), kept as float32."""
    bits = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)
    rounded = (bits + np.uint32(0x7FFF) + ((bits >> 16) & 1)) & np.uint32(0xFFFF0000)
    return rounded.view(np.float32)


class AcmeNPU(Backend):
    """A third-party backend for the fixture: an accelerator that multiplies in bfloat16 and
    accumulates in float32 (emulated on the host), paired with scipy.signal's correlation."""

    library = "acme"
    cpu_twin = "scipy-correlate2d"
    dtypes = ("float32",)

    def __init__(self, name: str = ACME, device: str = "npu") -> None:
        super().__init__(name, device)

    def precision(self, dtype: str) -> str:
        if dtype not in self.dtypes:
            raise ValueError(f"{self.name} computes in {list(self.dtypes)}, not {dtype!r}")
        return "bfloat16"

    def _plan(self, image, kernel, spec):  # type: ignore[no-untyped-def]
        from scipy.signal import correlate2d

        weights = to_bfloat16(spec.correlation_kernel(kernel))
        host = to_bfloat16(spec.pad(image, kernel.shape))
        return Plan(
            host, np.asarray, lambda x: correlate2d(x, weights, "valid"), np.asarray, "explicit"
        )


# What a run records of each built-in backend (``records.backend_facts`` asks the backend object;
# the fixture states it): library, device, CPU twin. A GPU computes float32 in TF32.
BUILTIN_FACTS = {
    "scipy-correlate2d": ("scipy", "cpu", None),
    "tensorflow-cpu": ("tensorflow", "cpu", None),
    "torch-cpu": ("torch", "cpu", None),
    "torch-cuda": ("torch", "gpu", "torch-cpu"),
    "tensorflow-gpu": ("tensorflow", "gpu", "tensorflow-cpu"),
    FFT: ("scipy", "cpu", None),
}
# Host<->device copy rate of the made-up GPU machine, bytes per second.
PCIE = 1.2e10

MACHINES = {
    "fixture-cpu": {
        "records": False,
        "backends": ["scipy-correlate2d", "tensorflow-cpu", "torch-cpu"],
        "cpu": "Fixture CPU (test data, not a measurement)",
        "cores": 2,
        "memory_gib": 8.0,
        "gpu": None,
        "bandwidth": 10.0,
        "flags": ["avx2", "fma", "sse4_2"],
        "versions": {"numpy": "fixture", "scipy": "fixture", "torch": "fixture"},
        "threads": 2,
    },
    CPU_B: {
        "records": True,
        "backends": ["scipy-correlate2d", "tensorflow-cpu", "torch-cpu", FFT],
        "cpu": "Fixture CPU B 8-core (test data, not a measurement)",
        "cores": 8,
        "memory_gib": 32.0,
        "gpu": None,
        "bandwidth": 25.0,
        "flags": ["avx2", "avx512f", "fma", "sse4_2"],
        "versions": {"numpy": "fixture-2", "scipy": "fixture", "torch": "fixture-2"},
        "threads": 8,
        "peak": {"float32": 400.0, "float64": 200.0},
        # Its own grid: larger kernels, the FFT backend, float32 only; agreement is tracked
        # up to TRACKED_UP_TO.
        "grid": {
            "backends": ["scipy-correlate2d", "tensorflow-cpu", "torch-cpu", FFT],
            "sizes": [64, 256, 1024],
            "kernels": [3, 7, 15, 31],
            "dtypes": ["float32"],
        },
    },
    "fixture-gpu": {
        "records": True,
        "backends": ["torch-cpu", "torch-cuda", "tensorflow-gpu", ACME],
        "cpu": "Fixture CPU 16-core (test data, not a measurement)",
        "cores": 16,
        "memory_gib": 128.0,
        "gpu": "Fixture GPU (test data, not a measurement)",
        "bandwidth": 40.0,
        "versions": {"numpy": "fixture", "scipy": "fixture", "torch": "fixture"},
        "threads": 16,
    },
}
TRACKED_UP_TO = 256
NOT_TRACKED = f"agreement is tracked up to {TRACKED_UP_TO}x{TRACKED_UP_TO} (fixture)"
# Cores other processes kept busy while a case of fixture-cpu-b was timed, as its records say.
QUIET_CORES = 0.03
BUSY_CORES = 0.9


def not_tracked(machine: str, metric: str, size: int) -> bool:
    """Whether the grid of ``machine`` leaves ``metric`` untracked for images of ``size``."""
    return machine == CPU_B and metric == "Conv.track_max_rel" and size > TRACKED_UP_TO


def skip_reason(machine: str, backend: str, dtype: str) -> str | None:
    """Why a case is not measured on ``machine``, as the suites would record it; None when it is."""
    if backend not in MACHINES[machine]["backends"]:
        return f"{backend} is not available: not installed on this fixture"
    if backend == ACME:
        return AcmeNPU().dtype_unsupported(dtype)
    if backend == "scipy-correlate2d" and dtype == "float16":
        return "scipy-correlate2d does not compute in float16 (fixture)"
    return None


# Failed cases: (machine, backend, size, kernel, dtype) -> the suites where the case failed, each
# with the reason the run wrote down (None: none was). fixture-cpu's reason for Conv is in its
# failures file (written by Conv.setup), with an older commit's line for Transfer that the report
# must ignore; fixture-gpu's is in its records.
OOM = "out of memory: ResourceExhaustedError: OOM when allocating (fixture)"
FAILED = {
    ("fixture-cpu", "tensorflow-cpu", 1024, 7, "float16"): {"Conv": OOM, "Transfer": None},
    ("fixture-gpu", ACME, 1024, 7, "float32"): {
        "Transfer": "RuntimeError: acme DMA queue full (fixture)"
    },
}
OLD_COMMIT = "0" * 40
FAILURES_FILE = {
    "fixture-cpu": [
        {
            "benchmark": "Conv.setup",
            "backend": "tensorflow-cpu",
            "size": 1024,
            "kernel": 7,
            "dtype": "float16",
            "reason": OOM,
            "commit": COMMIT,
        },
        {
            "benchmark": "Transfer.setup",
            "backend": "tensorflow-cpu",
            "size": 1024,
            "kernel": 7,
            "dtype": "float16",
            "reason": "an older run's failure: the report must ignore it",
            "commit": OLD_COMMIT,
        },
    ]
}

# The settings sweep on the GPU machine: torch-cuda's variants, as (speed factor, TF32 on); the
# first is torch's default.
SETTINGS_BACKEND = "torch-cuda"
SETTINGS = {
    "torch-cuda tf32=True cudnn_benchmark=False": (1.0, True),
    "torch-cuda tf32=True cudnn_benchmark=True": (1 / 8, True),
    "torch-cuda tf32=False cudnn_benchmark=False": (1.5, False),
    "torch-cuda tf32=False cudnn_benchmark=True": (1 / 5, False),
}
DEFAULT_VARIANT = next(iter(SETTINGS))


def device_of(backend: str) -> str:
    return AcmeNPU().device_kind if backend == ACME else BUILTIN_FACTS[backend][1]


def facts(machine: str, backend: str, dtype: str, size: int, kernel: int) -> dict:
    """The facts a run on ``machine`` records of ``backend`` in ``dtype`` for one case
    (``records.FACTS``): the third-party backend's asked of its object, as the suites ask every
    backend."""
    if backend == ACME:
        return records.backend_facts(AcmeNPU(), dtype, (256, 256), (kernel, kernel))
    library, device, twin = BUILTIN_FACTS[backend]
    precision = None  # a framework that is not installed cannot say
    if backend in MACHINES[machine]["backends"]:
        precision = "tf32" if device == "gpu" and dtype == "float32" else dtype
    arithmetic = tol = None
    if precision is not None and backend == FFT:
        arithmetic = "fft"
        tol = fft_tolerance(precision, fft_points((size, size), (kernel, kernel)))
    elif precision is not None:
        arithmetic, tol = "direct", tolerance(precision, kernel * kernel)
    return {
        "library": library,
        "device": device,
        "cpu_twin": twin,
        "precision": precision,
        "arithmetic": arithmetic,
        "tolerance": tol,
    }


def op_time(
    backend: str, size: int, kernel: int, dtype: str, batch: int = 1, machine: str = ""
) -> float:
    if backend == FFT:
        overhead, rate = FFT_COST
        points = (size + kernel - 1) ** 2
        seconds = overhead + batch * points * math.log2(points) / rate
    else:
        overhead, rate = COST[backend]
        half = 0.6 if dtype == "float16" and device_of(backend) == "gpu" else 1.0
        seconds = overhead + half * batch * size * size * kernel * kernel / rate
    return seconds / SPEED.get((machine, backend), 1.0)


def max_rel(backend: str, size: int, kernel: int, dtype: str) -> float:
    if backend == FFT:
        return fft_tolerance(dtype, fft_points((size, size), (kernel, kernel))) / 10
    unit = {"float32": 2.0**-24, "float16": 2.0**-11}[dtype]
    if device_of(backend) == "gpu" and dtype == "float32":
        unit = 2.0**-8 if backend == ACME else 2.0**-11  # bfloat16, TF32
    error = unit * kernel * (1.0 + size / 4096)
    if (backend, size, kernel, dtype) == ("tensorflow-gpu", 1024, 7, "float16"):
        error *= 40  # one case over its tolerance, so the report shows a failure
    return error


def settings_value(machine: str, metric: str, variant: str, size: int, kernel: int) -> float:
    if machine != "fixture-gpu":
        return float("nan")
    factor, tf32 = SETTINGS[variant]
    if metric == "ConvSettings.track_max_rel":
        return (2.0**-11 if tf32 else 2.0**-24) * kernel
    return factor * op_time(SETTINGS_BACKEND, size, kernel, "float32", machine=machine)


def benchmark(name: str, kind: str, unit: str, param_names: list[str], params: list) -> dict:
    return {
        "name": name,
        "type": kind,
        "unit": unit,
        "param_names": param_names,
        "params": [[repr(v) for v in values] for values in params],
        "version": "fixture",
        "code": "# test fixture",
    }


def value_for(machine: str, metric: str, case: dict) -> float | None:
    if metric == "time_explain":
        return 0.15  # a benchmark of another suite, without the convolution parameters
    if metric.startswith("ConvSettings."):
        return settings_value(machine, metric, case["variant"], case["size"], case["kernel"])
    backend, size, kernel, dtype = case["backend"], case["size"], case["kernel"], case["dtype"]
    batch = case.get("batch", 1)
    if skip_reason(machine, backend, dtype):
        return float("nan")
    if metric.split(".")[0] in FAILED.get((machine, backend, size, kernel, dtype), {}):
        return None
    if not_tracked(machine, metric, size):
        return float("nan")
    if metric == "Conv.track_max_rel":
        return max_rel(backend, size, kernel, dtype)
    if metric == "Conv.peakmem_op":
        gpu = device_of(backend) == "gpu"
        return float(50 * 2**20 + 4 * batch * size * size * (3 if gpu else 2))
    seconds = op_time(backend, size, kernel, dtype, batch, machine)
    if metric == "Transfer.time_end_to_end" and device_of(backend) == "gpu":
        seconds += 2 * size * size * 4 / PCIE + 2e-5
    return seconds


def record(machine: str, metric: str, case: dict, value: float | None) -> dict:
    """The record the suites write of one benchmark (``metric``, e.g. 'Conv.time_op') and case."""
    status = "failed" if value is None else ("skipped" if value != value else "ready")
    size, kernel = case["size"], case["kernel"]
    terms = kernel**2
    if "variant" in case:
        tf32 = SETTINGS[case["variant"]][1]
        found = {
            **facts(machine, SETTINGS_BACKEND, "float32", size, kernel),
            "precision": "tf32" if tf32 else "float32",
            "tolerance": tolerance("tf32" if tf32 else "float32", terms),
        }
        return {
            **records.make(
                metric,
                case,
                status,
                backend=SETTINGS_BACKEND,
                setting=case["variant"].partition(" ")[2],
                default_setting=case["variant"] == DEFAULT_VARIANT,
                facts=found,
            ),
            "commit": COMMIT,
        }
    backend, dtype = case["backend"], case["dtype"]
    reason = None
    if status == "skipped":
        tracked = not not_tracked(machine, metric, size)
        reason = skip_reason(machine, backend, dtype) if tracked else NOT_TRACKED
    elif status == "failed":
        key = (machine, backend, size, kernel, dtype)
        reason = FAILED[key][metric.split(".")[0]]
    written = {
        **records.make(
            metric,
            case,
            status,
            backend=backend,
            reason=reason,
            facts=facts(machine, backend, dtype, size, kernel),
        ),
        "commit": COMMIT,
    }
    if machine == CPU_B and metric == "Conv.time_op" and status == "ready":
        busy = NOISY.get((machine, backend, size, kernel, dtype)) == "busy"
        threads = 1 if library_of(backend) == "scipy" else MACHINES[machine]["threads"]
        written.update(
            other_cores=BUSY_CORES if busy else QUIET_CORES,
            threads=threads,
            busy_threads=threads,
        )
    return written


def library_of(backend: str) -> str:
    return "acme" if backend == ACME else BUILTIN_FACTS[backend][0]


def samples_of(machine: str, metric: str, case: dict, value: float) -> list[float]:
    """The samples asv would store of a timing whose median is ``value``."""
    key = (machine, *(case.get(name) for name in ("backend", "size", "kernel", "dtype")))
    noisy = NOISY.get(key) if metric == "Conv.time_op" else None
    if noisy == "spread":
        return [value * (1 + 0.1 * j) for j in range(-3, 4)]
    if noisy == "few samples":
        return [value * (1 + 0.01 * j) for j in (-1, 0, 1)]
    return [value * (1 + 0.01 * j) for j in range(-3, 4)]


def stale_record() -> dict:
    """A record of an older commit that contradicts the current one: the report must ignore it."""
    case = {"backend": ACME, "size": 64, "kernel": 3, "dtype": "float16"}
    stale = records.make(
        "Conv.time_op",
        case,
        "failed",
        backend=ACME,
        reason="an older run's failure: the report must ignore it",
    )
    return {**stale, "commit": OLD_COMMIT}


# Settings each environment record holds per backend; torch-cpu's precision per dtype is what a
# report of results without records can still show.
ENVIRONMENT_SETTINGS = {
    "torch-cuda": {"cudnn.allow_tf32": "True", "cudnn.benchmark": "False"},
    "tensorflow-gpu": {"tf32": "True"},
    "torch-cpu": {"precision.float32": "float32", "precision.float16": "float16"},
}


def write_machine(machine: str, benchmarks: dict[str, dict]) -> None:
    info = MACHINES[machine]
    folder = HERE / machine
    folder.mkdir(parents=True)
    util.write_json(folder / "machine.json", {"machine": machine, "cpu": info["cpu"]}, 1)
    env_name = "existing-py_fixture"
    results = Results(
        {"machine": machine, "python": "3.11"}, {}, COMMIT, 1767225600000, "3.11", env_name, {}
    )
    written = []
    for name, bench in benchmarks.items():
        metric = name.split(".", 1)[1]
        cases = [
            dict(zip(bench["param_names"], combo, strict=True))
            for combo in itertools.product(*[[eval(v) for v in vs] for vs in bench["params"]])
        ]
        values = [value_for(machine, metric, case) for case in cases]
        if bench["param_names"]:
            written += [record(machine, metric, c, v) for c, v in zip(cases, values, strict=True)]
        timed = bench["type"] == "time"
        samples = [
            samples_of(machine, metric, c, v) if timed and v == v and v else None
            for c, v in zip(cases, values, strict=True)
        ]
        number = [1 if s else None for s in samples]
        result = BenchmarkResult(values, samples, number, 0, "", None)
        results.add_result(bench, result, started_at=DATE, duration=1.0)
    results.save(HERE)
    if info["records"]:
        stale = [stale_record()] if machine == "fixture-gpu" else []
        records.append([*written, *stale], folder / records.FILE)
    environment = {
        "machine": machine,
        "collected": "2026-01-01T00:00:00+00:00",
        "fixture": "TEST FIXTURE: made-up numbers, not a measurement",
        "cpu": info["cpu"],
        "cores": info["cores"],
        "memory_gib": info["memory_gib"],
        "memory_bandwidth_gbs": info["bandwidth"],
        "timing": "blocks of launches (fixture)",
        "gpu": info["gpu"],
        "driver": "000.00 (fixture)" if info["gpu"] else None,
        "cuda": "12.x (fixture)" if info["gpu"] else None,
        "cudnn": "9.x (fixture)" if info["gpu"] else None,
        "python": "3.11 (fixture)",
        "versions": info["versions"],
        "backends": {
            name: {
                "available": name in info["backends"],
                "reason": None if name in info["backends"] else "not installed on this fixture",
                "settings": {
                    **ENVIRONMENT_SETTINGS.get(name, {}),
                    **({"torch.threads": str(info["threads"])} if name == "torch-cpu" else {}),
                },
            }
            for name in [*COST, *([FFT] if FFT in info["backends"] else [])]
        },
    }
    if "flags" in info:
        environment["cpu_flags"] = info["flags"]
    if "peak" in info:
        environment["peak_gflops"] = {
            dtype: {
                "gflops": gflops,
                "library": "torch",
                "size": 2048,
                "threads": info["threads"],
                "method": "best of 3 matrix multiplies (fixture)",
                "other_cores": QUIET_CORES,
            }
            for dtype, gflops in info["peak"].items()
        }
    (folder / "convbench-environment.json").write_text(json.dumps(environment, indent=1) + "\n")
    lines = [json.dumps(failure) + "\n" for failure in FAILURES_FILE.get(machine, [])]
    if lines:
        (folder / "convbench-failures.jsonl").write_text("".join(lines))


def conv_benchmarks(backends: list[str], sizes, kernels, dtypes) -> dict[str, dict]:
    """The ``Conv`` suite's benchmarks over one grid."""
    names = ["backend", "size", "kernel", "dtype"]
    params = [backends, sizes, kernels, dtypes]
    metrics = [
        ("time_op", "time", "seconds"),
        ("peakmem_op", "memory", "bytes"),
        ("track_max_rel", "track", "relative error"),
    ]
    return {
        f"conv.Conv.{metric}": benchmark(f"conv.Conv.{metric}", kind, unit, names, params)
        for metric, kind, unit in metrics
    }


def main() -> None:
    shutil.rmtree(HERE, ignore_errors=True)
    backends = list(COST)
    conv_names = ["backend", "size", "kernel", "dtype"]
    conv_params = [backends, SIZES, KERNELS, DTYPES]
    batch_params = [["torch-cpu", "torch-cuda"], BATCHES, [256], [3], ["float32"]]
    benchmarks = {
        **conv_benchmarks(backends, SIZES, KERNELS, DTYPES),
        "conv.ConvBatch.time_op": benchmark(
            "conv.ConvBatch.time_op",
            "time",
            "seconds",
            ["backend", "batch", "size", "kernel", "dtype"],
            batch_params,
        ),
        "conv.Transfer.time_end_to_end": benchmark(
            "conv.Transfer.time_end_to_end", "time", "seconds", conv_names, conv_params
        ),
        "conv.ConvSettings.time_op": benchmark(
            "conv.ConvSettings.time_op",
            "time",
            "seconds",
            ["variant", "size", "kernel"],
            [list(SETTINGS), [1024], KERNELS],
        ),
        "conv.ConvSettings.track_max_rel": benchmark(
            "conv.ConvSettings.track_max_rel",
            "track",
            "relative error",
            ["variant", "size", "kernel"],
            [list(SETTINGS), [1024], KERNELS],
        ),
        "explain.time_explain": benchmark("explain.time_explain", "time", "seconds", [], []),
    }
    for machine, info in MACHINES.items():
        grid = info.get("grid")
        # A machine with a grid of its own ran the Conv suite alone, over that grid.
        own = conv_benchmarks(**grid) if grid else benchmarks
        write_machine(machine, own)
    util.write_json(HERE / "benchmarks.json", benchmarks, 2)


if __name__ == "__main__":
    main()
