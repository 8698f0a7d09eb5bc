"""Shared fixtures. torch is imported before TensorFlow in one process (see tensorflow_conv)."""

from __future__ import annotations

import importlib.util
import json
import os

import pytest

if importlib.util.find_spec("torch") is not None:
    import torch  # noqa: F401

import convbench
from convbench.registry import BUILTIN
from tests.strategies import EXAMPLES, WORST

BUILTIN_NAMES = [decl.name for decl in BUILTIN]


@pytest.fixture(params=BUILTIN_NAMES)
def backend(request: pytest.FixtureRequest) -> convbench.Backend:
    """Every built-in backend; an unavailable one skips with its reason."""
    found = convbench.get_backend(request.param)
    if found.unavailable_reason:
        pytest.skip(f"{request.param}: {found.unavailable_reason}")
    return found


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print the worst error per backend and dtype that the property tests saw
    (and write it where CONVBENCH_ERROR_LOG points)."""
    if not WORST:
        return
    terminalreporter.section("worst max_rel vs the float64 reference (property tests)")
    for (name, dtype), worst in sorted(WORST.items()):
        terminalreporter.write_line(f"{name:20s} {dtype:9s} {worst:.3g}")
    terminalreporter.write_line(f"examples run: {dict(EXAMPLES)} total {sum(EXAMPLES.values())}")
    log = os.environ.get("CONVBENCH_ERROR_LOG")
    if log:
        rows = [{"backend": n, "dtype": d, "max_rel": w} for (n, d), w in sorted(WORST.items())]
        with open(log, "w") as out:
            json.dump({"worst": rows, "examples": dict(EXAMPLES)}, out, indent=1)
