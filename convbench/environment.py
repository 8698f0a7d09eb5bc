"""The hardware and software a machine's results came from, beside asv's own ``machine.json``.

asv records the CPU, OS and RAM of a machine but nothing about GPUs, CUDA, cuDNN, library
versions or the settings that change speed and numbers (thread counts, TF32, cudnn.benchmark).
``collect_environment`` gathers those; ``convbench env`` writes them to
``results/<machine>/convbench-environment.json``, next to the machine's asv results. The keys are
a contract with the report: machine, collected, cpu, cores, memory_gib, gpu, driver, cuda, cudnn,
python, versions, backends, timing (how the asv suites take a sample) and the two ceilings of the
host CPU's roofline (``convbench.roofline.from_environment`` reads them):
memory_bandwidth_gbs (the best numpy copy: the report's bandwidth floor for this machine) with
memory_bandwidth_method, and peak_gflops, per dtype (float32, float64) the best large matrix
multiply of the installed BLAS libraries (``convbench.backends.peak.PeakRate``: gflops, library,
size, threads, method, other_cores).

Never call this in asv's forkserver process (the benchmarks' module level): asking a backend for
its device or settings initialises CUDA, and a child forked after that cannot use the GPU.
"""

from __future__ import annotations

import dataclasses
import datetime
import os
import platform
import re
import shutil
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from convbench.backends.peak import peak_rate
from convbench.registry import get_backend, list_backends
from convbench.suite import TIMING
from convbench.timing import copy_bandwidth

ENVIRONMENT_FILE = "convbench-environment.json"
# The run-to-run spread of timings on a machine (scripts/reproducibility.py --save), beside it.
REPRODUCIBILITY_FILE = "convbench-reproducibility.json"
# The copy whose rate is the bandwidth ceiling: large enough to miss every cache.
BANDWIDTH_BYTES = 256 * 2**20
BANDWIDTH_REPEATS = 5
BANDWIDTH_METHOD = (
    f"numpy.copyto of {BANDWIDTH_BYTES // 2**20} MiB (bytes read + written over the time), "
    f"best of {BANDWIDTH_REPEATS}, one thread"
)
# The dtypes whose peak floating-point rate is measured.
PEAK_DTYPES = ("float32", "float64")

# Library label -> the distributions that provide it (TensorFlow ships under several names).
LIBRARIES = {
    "numpy": ("numpy",),
    "scipy": ("scipy",),
    "torch": ("torch",),
    "tensorflow": ("tensorflow", "tensorflow-cpu", "tensorflow-gpu", "tf-nightly"),
    "jax": ("jax",),
    "jaxlib": ("jaxlib",),
    "asv": ("asv",),
    "asv_runner": ("asv_runner",),
    "convbench": ("convbench",),
}


def library_versions() -> dict[str, str | None]:
    """Installed version of each library in ``LIBRARIES`` (None when absent); imports nothing."""
    found: dict[str, str | None] = {}
    for label, distributions in LIBRARIES.items():
        found[label] = None
        for distribution in distributions:
            try:
                found[label] = version(distribution)
                break
            except PackageNotFoundError:
                continue
    return found


def cpu_model() -> str:
    """The CPU's marketing name from /proc/cpuinfo, else what ``platform`` knows."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def memory_gib() -> float | None:
    """Physical memory in GiB, rounded to 0.1."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None
    return round(total / 2**30, 1)


def nvidia_smi() -> dict[str, str | None]:
    """First GPU's name and driver version from ``nvidia-smi``; both None without one."""
    command = shutil.which("nvidia-smi")
    if command is None:
        return {"gpu": None, "driver": None}
    try:
        out = subprocess.run(
            [command, "--query-gpu=name,driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return {"gpu": None, "driver": None}
    lines = [line for line in out.splitlines() if line.strip()]
    if not lines:
        return {"gpu": None, "driver": None}
    name, _, driver = lines[0].partition(",")
    gpus = f"{len(lines)} x {name.strip()}" if len(lines) > 1 else name.strip()
    return {"gpu": gpus, "driver": driver.strip() or None}


def cuda_versions(settings: dict[str, dict[str, str]]) -> dict[str, str | None]:
    """CUDA and cuDNN versions as the available GPU backends report them (torch first)."""
    found: dict[str, str | None] = {"cuda": None, "cudnn": None}
    for key in found:
        for backend_settings in settings.values():
            value = backend_settings.get(key)
            if value not in (None, "None", ""):
                found[key] = value
                break
    return found


def backend_records() -> dict[str, dict[str, Any]]:
    """Per backend: whether it runs here, why not, and its speed- or number-changing settings."""
    records: dict[str, dict[str, Any]] = {}
    for status in list_backends(deep=True):
        settings: dict[str, str] = {}
        reason = status.reason
        if status.available:
            try:
                backend = get_backend(status.name)
                # The report judges agreement in the arithmetic the backend says it runs
                # (TF32 only where the device and the flags allow it).
                settings = backend.settings() | {
                    f"precision.{dtype}": backend.precision(dtype) for dtype in backend.dtypes
                }
            except Exception as error:  # a backend that cannot report is recorded, not fatal
                reason = f"settings() failed: {error}"
        records[status.name] = {
            "available": status.available,
            "reason": reason,
            "settings": settings,
        }
    return records


def _slug(text: str) -> str:
    text = re.sub(r"\((r|tm|c)\)|\bcpu\b|\bprocessor\b|@.*$", " ", text.lower())
    return re.sub(r"[^a-z0-9]+", "-", text).strip("-")


def default_machine_name() -> str:
    """A stable, descriptive machine name: ``<gpu or cpu>-<cores>core-<cpu model>``."""
    gpu = nvidia_smi()["gpu"]
    device = _slug(gpu) if gpu else "cpu"
    return f"{device}-{os.cpu_count()}core-{_slug(cpu_model())}"


def collect_environment(machine: str | None = None) -> dict[str, Any]:
    """Everything that identifies where a machine's results came from (see module docstring)."""
    backends = backend_records()
    smi = nvidia_smi()
    settings = {name: record["settings"] for name, record in backends.items()}
    return {
        "machine": machine or default_machine_name(),
        "collected": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "memory_gib": memory_gib(),
        "gpu": smi["gpu"],
        "driver": smi["driver"],
        **cuda_versions(settings),
        "python": platform.python_version(),
        "versions": library_versions(),
        "backends": backends,
        "memory_bandwidth_gbs": copy_bandwidth(BANDWIDTH_BYTES, BANDWIDTH_REPEATS),
        "memory_bandwidth_method": BANDWIDTH_METHOD,
        "peak_gflops": peak_rates(),
        "timing": TIMING,
    }


def peak_rates() -> dict[str, dict[str, Any]]:
    """Per dtype of ``PEAK_DTYPES``, the machine's peak rate and what gave it (a ``PeakRate`` less
    its dtype, which is the key)."""
    rates = {}
    for dtype in PEAK_DTYPES:
        fields = dataclasses.asdict(peak_rate(dtype))
        del fields["dtype"]
        rates[dtype] = fields
    return rates


def environment_path(results_dir: str | os.PathLike[str], machine: str) -> Path:
    """Where a machine's environment record lives: beside its asv results."""
    return Path(results_dir) / machine / ENVIRONMENT_FILE
