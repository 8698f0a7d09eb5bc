"""Bounded memory of the reference and the comparison; the case memory estimate and refusal."""

from __future__ import annotations

import subprocess
import sys
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import convbench
from convbench.backends.base import DEFAULT_WORKSPACE_COPIES
from convbench.memory import GIB, _cgroup_room, available_memory, case_memory, memory_refusal
from convbench.reference import error_scale
from convbench.spec import ConvSpec

MIB = 2**20


def _peak(call: Callable[[], object]) -> int:
    """Peak bytes allocated (numpy reports to tracemalloc) while ``call`` runs."""
    tracemalloc.start()
    try:
        call()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


# 1024 x 2048 float32: a 16 MiB float64 result. Before blocks, the reference took two more
# float64 outputs (32 MiB) and the comparison about 22 float32 outputs (176 MiB).
IMAGE = np.random.default_rng(0).standard_normal((1024, 2048), dtype=np.float32)
KERNEL = np.random.default_rng(1).standard_normal((7, 7), dtype=np.float32)


def test_reference_needs_little_beyond_its_result() -> None:
    result_bytes = IMAGE.size * 8
    assert _peak(lambda: convbench.reference(IMAGE, KERNEL)) - result_bytes < 4 * MIB


def test_error_scale_needs_no_output() -> None:
    assert _peak(lambda: error_scale(IMAGE, KERNEL)) < 4 * MIB


def test_agreement_works_in_blocks() -> None:
    ref = convbench.reference(IMAGE, KERNEL)
    actual = ref.astype(np.float32)
    assert _peak(lambda: convbench.agreement(actual, ref, terms=KERNEL.size)) < 16 * MIB


def test_case_memory_by_part() -> None:
    found = case_memory((100, 200), (3, 5), "float32", ConvSpec(mode="full"))
    padded, outputs = (100 + 4) * (200 + 8), (100 + 2) * (200 + 4)
    assert found.inputs == found.prepared == (100 * 200 + 15) * 4
    assert found.output == outputs * 4
    assert found.reference == outputs * 8
    assert found.workspace == DEFAULT_WORKSPACE_COPIES * padded * 4
    assert found.total == sum(
        (found.inputs, found.prepared, found.output, found.reference, found.workspace, found.blocks)
    )
    assert 0 < found.blocks < 32 * MIB


def test_case_memory_grows_with_batch_and_dtype() -> None:
    one = case_memory((64, 64), (3, 3), "float32")
    assert case_memory((4, 64, 64), (3, 3), "float32").output == 4 * one.output
    assert case_memory((64, 64), (3, 3), "float64").output == 2 * one.output
    assert case_memory((64, 64), (3, 3), "float16").reference == one.reference


def test_torch_cpu_counts_its_im2col_buffer() -> None:
    backend = convbench.get_backend("torch-cpu")
    if backend.unavailable_reason:
        pytest.skip(backend.unavailable_reason)
    spec = ConvSpec()
    im2col = case_memory((512, 512), (15, 15), "float64", spec, backend)
    padded = (512 + 14) ** 2 * 8
    assert im2col.workspace == padded + (15 * 15 + 1) * 512 * 512 * 8
    # Asked of the backend object, not of its name: the default is far smaller.
    assert case_memory((512, 512), (15, 15), "float64", spec).workspace < im2col.workspace / 10


def test_refusal_names_need_and_room() -> None:
    spec = ConvSpec()
    need = case_memory((8192, 8192), (3, 3), "float32", spec).total
    reason = memory_refusal((8192, 8192), (3, 3), "float32", spec, available=2 * GIB)
    assert reason == (
        f"float32 8192x8192 image with a 3x3 kernel needs about {need / GIB:.1f} GiB "
        f"(workspace 1.0 GiB), 2.0 GiB available"
    )
    assert memory_refusal((8192, 8192), (3, 3), "float32", spec, available=need) is None
    assert memory_refusal((64, 64), (3, 3), "float32") is None


def test_refusal_names_the_backend() -> None:
    backend = convbench.get_backend("scipy-correlate2d")
    reason = memory_refusal((2, 4096, 4096), (5, 5), "float64", backend=backend, available=0)
    assert reason is not None and reason.startswith("scipy-correlate2d float64 2x4096x4096 image")


def test_available_memory_reads_memavailable(tmp_path: Path) -> None:
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       8000000 kB\nMemAvailable:    3000000 kB\n")
    room = _cgroup_room()
    expected = 3000000 * 1024 if room is None else min(3000000 * 1024, room)
    assert available_memory(meminfo) == expected


def test_available_memory_without_meminfo_asks_sysconf(tmp_path: Path) -> None:
    found = available_memory(tmp_path / "absent")
    assert 0 < found <= available_memory() * 2 + GIB


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"memory.max": "4294967296", "memory.current": "1073741824"}, 3 * GIB),
        ({"memory.max": "max", "memory.current": "1073741824"}, None),
        (
            {
                "memory/memory.limit_in_bytes": "2147483648",
                "memory/memory.usage_in_bytes": "536870912",
            },
            GIB + GIB // 2,
        ),
        (
            {
                "memory/memory.limit_in_bytes": "9223372036854771712",
                "memory/memory.usage_in_bytes": "536870912",
            },
            None,
        ),
        ({"memory.max": "1000", "memory.current": "5000"}, 0),
        ({}, None),
    ],
)
def test_cgroup_limit(tmp_path: Path, files: dict[str, str], expected: int | None) -> None:
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text(text + "\n")
    assert _cgroup_room(tmp_path) == expected


MEASURE = """
import numpy as np, convbench
from convbench.memory import case_memory
def status(key):
    return next(int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith(key))
backend = convbench.get_backend("scipy-correlate2d")
backend.prepare(np.ones((8, 8)), np.ones((3, 3))).result()
start = status("VmRSS")
open("/proc/self/clear_refs", "w").write("5")  # the peak so far becomes the present
rng = np.random.default_rng(0)
x, k = rng.standard_normal((1024, 1024)), rng.standard_normal((5, 5))
ref = convbench.reference(x, k)
out = backend.prepare(x, k).result()
convbench.agreement(out, ref, terms=25)
print(status("VmHWM") - start, case_memory(x.shape, k.shape, "float64", backend=backend).total)
"""


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux's /proc")
def test_estimate_covers_a_measured_case() -> None:
    done = subprocess.run(
        [sys.executable, "-c", MEASURE], capture_output=True, text=True, check=True
    )
    measured, estimated = map(int, done.stdout.split())
    assert measured <= estimated <= 4 * measured, done.stdout
