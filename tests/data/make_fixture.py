"""Writes tests/data/results: a TEST FIXTURE, not measurements.

Two made-up machines, ``fixture-cpu`` and ``fixture-gpu``, in asv's own results format (written
through ``asv.results.Results``, so the files are exactly what ``asv run`` stores), with the
convbench suites' class and parameter names and a ``convbench-environment.json`` each. The
numbers come from a simple cost model below so that the report's plots have plausible shapes; the
tests read the expected numbers back from these files. Skipped cases are NaN and failed cases
null, as asv stores them.

    python tests/data/make_fixture.py      # rewrites tests/data/results
"""

from __future__ import annotations

import datetime
import itertools
import json
import shutil
from pathlib import Path

from asv import util
from asv.results import Results
from asv.runner import BenchmarkResult

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
}
# Host<->device copy rate of the made-up GPU machine, bytes per second.
PCIE = 1.2e10

MACHINES = {
    "fixture-cpu": {
        "backends": ["scipy-correlate2d", "tensorflow-cpu", "torch-cpu"],
        "cpu": "Fixture CPU (test data, not a measurement)",
        "cores": 2,
        "memory_gib": 8.0,
        "gpu": None,
        "bandwidth": 10.0,
    },
    "fixture-gpu": {
        "backends": ["torch-cpu", "torch-cuda", "tensorflow-gpu"],
        "cpu": "Fixture CPU 16-core (test data, not a measurement)",
        "cores": 16,
        "memory_gib": 128.0,
        "gpu": "Fixture GPU (test data, not a measurement)",
        "bandwidth": 40.0,
    },
}


def skipped(backend: str, dtype: str) -> bool:
    return backend.startswith("scipy") and dtype == "float16"


def failed(machine: str, backend: str, size: int, kernel: int, dtype: str) -> bool:
    return (machine, backend, size, kernel, dtype) == (
        "fixture-cpu",
        "tensorflow-cpu",
        1024,
        7,
        "float16",
    )


# The settings sweep on the GPU machine: torch-cuda's variants, as (speed factor, TF32 on).
SETTINGS = {
    "torch-cuda tf32=True cudnn_benchmark=False": (1.0, True),  # torch's default
    "torch-cuda tf32=True cudnn_benchmark=True": (1 / 8, True),
    "torch-cuda tf32=False cudnn_benchmark=False": (1.5, False),
    "torch-cuda tf32=False cudnn_benchmark=True": (1 / 5, False),
}
# Failures with a recorded reason, as the suites write them to convbench-failures.jsonl: the
# tensorflow-cpu failure of Conv (recorded by its setup). Transfer's failure of the same case
# has a record of an older commit only, so the report shows "no reason recorded" for it.
FAILURES = {
    "fixture-cpu": [
        {
            "benchmark": "Conv.setup",
            "backend": "tensorflow-cpu",
            "size": 1024,
            "kernel": 7,
            "dtype": "float16",
            "reason": "out of memory: ResourceExhaustedError: OOM when allocating (fixture)",
            "commit": COMMIT,
        },
        {
            "benchmark": "Transfer.setup",
            "backend": "tensorflow-cpu",
            "size": 1024,
            "kernel": 7,
            "dtype": "float16",
            "reason": "an older run's failure: the report must ignore it",
            "commit": "0" * 40,
        },
    ]
}


def op_time(backend: str, size: int, kernel: int, dtype: str, batch: int = 1) -> float:
    overhead, rate = COST[backend]
    half = 0.6 if dtype == "float16" and ("cuda" in backend or "gpu" in backend) else 1.0
    return overhead + half * batch * size * size * kernel * kernel / rate


def max_rel(backend: str, size: int, kernel: int, dtype: str) -> float:
    unit = {"float32": 2.0**-24, "float16": 2.0**-11}[dtype]
    if backend in ("torch-cuda", "tensorflow-gpu") and dtype == "float32":
        unit = 2.0**-11  # TF32
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
    return factor * op_time("torch-cuda", size, kernel, "float32")


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


def value_for(machine: str, metric: str, case: tuple) -> float | None:
    if metric == "time_explain":
        return 0.15  # a benchmark of another suite, without the convolution parameters
    if metric.startswith("ConvSettings."):
        return settings_value(machine, metric, *case)
    if metric == "ConvBatch.time_op":
        backend, batch, size, kernel, dtype = case
    else:
        backend, size, kernel, dtype = case
        batch = 1
    if backend not in MACHINES[machine]["backends"] or skipped(backend, dtype):
        return float("nan")
    if failed(machine, backend, size, kernel, dtype):
        return None
    if metric == "Conv.track_max_rel":
        return max_rel(backend, size, kernel, dtype)
    if metric == "Conv.peakmem_op":
        return float(50 * 2**20 + 4 * batch * size * size * (3 if "cu" in backend else 2))
    seconds = op_time(backend, size, kernel, dtype, batch)
    if metric == "Transfer.time_end_to_end" and ("cuda" in backend or "gpu" in backend):
        seconds += 2 * size * size * 4 / PCIE + 2e-5
    return seconds


def write_machine(machine: str, benchmarks: dict[str, dict]) -> None:
    info = MACHINES[machine]
    folder = HERE / machine
    folder.mkdir(parents=True)
    util.write_json(folder / "machine.json", {"machine": machine, "cpu": info["cpu"]}, 1)
    env_name = "existing-py_fixture"
    results = Results(
        {"machine": machine, "python": "3.11"}, {}, COMMIT, 1767225600000, "3.11", env_name, {}
    )
    for name, bench in benchmarks.items():
        metric = name.split(".", 1)[1]
        cases = list(itertools.product(*[[eval(v) for v in vs] for vs in bench["params"]]))
        values = [value_for(machine, metric, case) for case in cases]
        timed = bench["type"] == "time"
        samples = [
            [v * (1 + 0.02 * j) for j in (-2, -1, 0, 1, 2)] if timed and v == v and v else None
            for v in values
        ]
        number = [1 if s else None for s in samples]
        result = BenchmarkResult(values, samples, number, 0, "", None)
        results.add_result(bench, result, started_at=DATE, duration=1.0)
    results.save(HERE)
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
        "versions": {"numpy": "fixture", "scipy": "fixture", "torch": "fixture"},
        "backends": {
            name: {
                "available": name in info["backends"],
                "reason": None if name in info["backends"] else "not installed on this fixture",
                "settings": {"cudnn.allow_tf32": "True", "cudnn.benchmark": "False"}
                if name == "torch-cuda"
                else ({"tf32": "True"} if name == "tensorflow-gpu" else {}),
            }
            for name in COST
        },
    }
    (folder / "convbench-environment.json").write_text(json.dumps(environment, indent=1) + "\n")
    lines = [json.dumps(record) + "\n" for record in FAILURES.get(machine, [])]
    if lines:
        (folder / "convbench-failures.jsonl").write_text("".join(lines))


def main() -> None:
    shutil.rmtree(HERE, ignore_errors=True)
    backends = list(COST)
    conv_names = ["backend", "size", "kernel", "dtype"]
    conv_params = [backends, SIZES, KERNELS, DTYPES]
    batch_params = [["torch-cpu", "torch-cuda"], BATCHES, [256], [3], ["float32"]]
    benchmarks = {
        "conv.Conv.time_op": benchmark(
            "conv.Conv.time_op", "time", "seconds", conv_names, conv_params
        ),
        "conv.Conv.peakmem_op": benchmark(
            "conv.Conv.peakmem_op", "memory", "bytes", conv_names, conv_params
        ),
        "conv.Conv.track_max_rel": benchmark(
            "conv.Conv.track_max_rel", "track", "relative error", conv_names, conv_params
        ),
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
    for machine in MACHINES:
        write_machine(machine, benchmarks)
    util.write_json(HERE / "benchmarks.json", benchmarks, 2)


if __name__ == "__main__":
    main()
