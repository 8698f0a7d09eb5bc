"""What a case needs in memory, and whether this machine has it: asked before running the case.

At its peak a case holds, in host memory: the image and kernel as the caller made them; the
prepared case's own copy of them (``check_inputs``); the backend's output in the image's dtype;
the float64 reference (kept while every backend of a group of cases runs on the same inputs);
the backend's workspace (``Backend.workspace_bytes``: an explicitly padded copy, an im2col
buffer); and the blocks in which ``reference`` and ``agreement`` work. ``case_memory`` adds these
up; ``memory_refusal`` compares the sum with what the system says is available and words the
refusal, so a sweep can skip a case up front instead of meeting the kernel's OOM killer halfway
through it. Device (GPU) memory is not counted here.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, fields
from pathlib import Path

from convbench.agreement import BLOCK_ELEMENTS as COMPARISON_BLOCK
from convbench.backends.base import Backend, default_workspace
from convbench.reference import slab_elements
from convbench.spec import ConvSpec, numpy_dtype

GIB = 2**30
# agreement holds about a dozen float64 temporaries of one block at a time.
COMPARISON_TEMPORARIES = 16
# reference holds a block's slab of the padded image in the image's dtype and in float64 (and
# its magnitude for error_scale), the block and a tap's product.
SLAB_COPIES = 4


@dataclass(frozen=True)
class CaseMemory:
    """Host memory of one case, in bytes, by what holds it."""

    inputs: int
    prepared: int
    output: int
    reference: int
    workspace: int
    blocks: int

    @property
    def total(self) -> int:
        return sum(getattr(self, f.name) for f in fields(self))


def _size(shape: tuple[int, ...]) -> int:
    return math.prod(shape)


def case_memory(
    image_shape: tuple[int, ...],
    kernel_shape: tuple[int, ...],
    dtype: str,
    spec: ConvSpec | None = None,
    backend: Backend | None = None,
) -> CaseMemory:
    """The host memory a case needs, by part. Without a ``backend``, its workspace is
    ``Backend.workspace_bytes``'s default."""
    spec = ConvSpec() if spec is None else spec
    itemsize = numpy_dtype(dtype).itemsize
    inputs = (_size(image_shape) + _size(kernel_shape)) * itemsize
    outputs = _size(spec.output_shape(image_shape, kernel_shape))
    if backend is None:
        workspace = default_workspace(image_shape, kernel_shape, dtype, spec)
    else:
        workspace = backend.workspace_bytes(image_shape, kernel_shape, dtype, spec)
    slab = slab_elements(image_shape, kernel_shape, spec) * 8
    comparison = COMPARISON_TEMPORARIES * COMPARISON_BLOCK * 8
    return CaseMemory(
        inputs=inputs,
        prepared=inputs,
        output=outputs * itemsize,
        reference=outputs * 8,
        workspace=workspace,
        blocks=max(SLAB_COPIES * slab, comparison),
    )


def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _cgroup_room(root: Path = Path("/sys/fs/cgroup")) -> int | None:
    """Bytes left under this process's cgroup memory limit, or None when there is no limit.

    A container's /proc/meminfo shows the host's memory; its limit is the cgroup's (v2:
    memory.max and memory.current; v1: memory/memory.limit_in_bytes and usage_in_bytes, where
    "no limit" reads as a number near 2**63).
    """
    for limit_file, usage_file in (
        (root / "memory.max", root / "memory.current"),
        (root / "memory" / "memory.limit_in_bytes", root / "memory" / "memory.usage_in_bytes"),
    ):
        limit, usage = _read_int(limit_file), _read_int(usage_file)
        if limit is not None and usage is not None and limit < 2**60:
            return max(limit - usage, 0)
    return None


def available_memory(meminfo: Path = Path("/proc/meminfo")) -> int:
    """Bytes this process can still take: the kernel's MemAvailable (memory free or reclaimable
    without swapping), else ``os.sysconf``'s free pages, and never more than a cgroup's limit
    leaves."""
    found = None
    try:
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                found = int(line.split()[1]) * 1024
                break
    except OSError:
        pass
    if found is None:
        found = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    room = _cgroup_room()
    return found if room is None else min(found, room)


def memory_refusal(
    image_shape: tuple[int, ...],
    kernel_shape: tuple[int, ...],
    dtype: str,
    spec: ConvSpec | None = None,
    backend: Backend | None = None,
    *,
    available: int | None = None,
) -> str | None:
    """Why this case should not run here ("needs about X GiB, Y GiB available"), or None when it
    fits. ``available`` defaults to ``available_memory()``."""
    needed = case_memory(image_shape, kernel_shape, dtype, spec, backend)
    room = available_memory() if available is None else available
    if needed.total <= room:
        return None
    who = f"{backend.name} " if backend is not None else ""
    return (
        f"{who}{dtype} {'x'.join(map(str, image_shape))} image with a "
        f"{'x'.join(map(str, kernel_shape))} kernel needs about {needed.total / GIB:.1f} GiB "
        f"(workspace {needed.workspace / GIB:.1f} GiB), {room / GIB:.1f} GiB available"
    )
