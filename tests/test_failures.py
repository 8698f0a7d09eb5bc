"""A failure's reason in one line, out of memory named as such; failures files of older runs."""

from __future__ import annotations

import json

import pytest

from convbench import failures


class FakeOutOfMemoryError(RuntimeError):
    """Named like torch's and CuPy's errors."""


@pytest.mark.parametrize(
    ("error", "oom"),
    [
        (FakeOutOfMemoryError("CUDA out of memory. Tried to allocate 64.00 GiB"), True),
        (RuntimeError("RESOURCE_EXHAUSTED: Out of memory while trying to allocate"), True),
        (RuntimeError("OOM when allocating tensor with shape[16,1,8192,8192]"), True),
        (MemoryError(), True),
        (ValueError("kernel must be 2-D"), False),
    ],
)
def test_out_of_memory_is_recognised_whichever_framework_raised_it(error, oom):
    assert failures.is_out_of_memory(error) is oom
    assert failures.describe(error).startswith("out of memory: ") is oom
    assert type(error).__name__ in failures.describe(error)


def test_describe_keeps_the_first_line():
    error = RuntimeError("first line\nthe traceback of a C++ library\nmore")
    assert failures.describe(error) == "RuntimeError: first line"


def test_describe_is_one_bounded_line():
    described = failures.describe(ValueError("x" * 2 * failures.MAX_MESSAGE))
    assert described == f"ValueError: {'x' * (failures.MAX_MESSAGE - len('ValueError: '))}"


def test_an_older_failures_file_is_read_without_its_torn_last_line(tmp_path):
    path = tmp_path / failures.FILE
    line = {"benchmark": "Conv.setup", "backend": "torch-cuda", "reason": "out of memory: x"}
    path.write_text(json.dumps(line) + '\n{"torn": ')
    assert failures.load(path) == [line]
    assert failures.load(tmp_path / "absent.jsonl") == []
