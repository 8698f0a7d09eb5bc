"""The environment record written beside each machine's asv results (a contract with the report)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from convbench import environment, roofline
from convbench.cli import main
from convbench.registry import BUILTIN

KEYS = {
    "machine",
    "collected",
    "cpu",
    "cores",
    "memory_gib",
    "gpu",
    "driver",
    "cuda",
    "cudnn",
    "python",
    "versions",
    "backends",
    "memory_bandwidth_gbs",
    "memory_bandwidth_method",
    "peak_gflops",
    "timing",
}


@pytest.fixture(scope="module")
def record() -> dict:
    return environment.collect_environment("test-machine")


def test_record_has_exactly_the_contract_keys(record):
    assert set(record) == KEYS
    assert record["machine"] == "test-machine"
    assert record["cores"] >= 1 and record["memory_gib"] > 0
    assert record["cpu"]
    assert "10 ms" in record["timing"] and "one device wait" in record["timing"]
    json.dumps(record)  # JSON as it stands


def test_the_roofline_ceilings_are_recorded_with_their_method(record):
    assert record["memory_bandwidth_gbs"] > 0
    assert record["memory_bandwidth_method"].startswith("numpy.copyto of 256 MiB")
    assert set(record["peak_gflops"]) == {"float32", "float64"}
    for dtype, rate in record["peak_gflops"].items():
        assert set(rate) == {"gflops", "library", "size", "threads", "method", "other_cores"}
        assert rate["gflops"] > 0 and rate["library"] in ("numpy", "torch")
        size = rate["size"]
        assert f"{rate['library']}.matmul of two {size}x{size} {dtype}" in rate["method"]
        assert roofline.from_environment(record, dtype) == roofline.Roofline(
            rate["gflops"], record["memory_bandwidth_gbs"]
        )


def test_versions_name_every_library_without_importing(record):
    assert set(record["versions"]) >= {"numpy", "scipy", "torch", "tensorflow", "jax", "asv"}
    assert record["versions"]["numpy"] and record["versions"]["asv"]


def test_every_builtin_backend_is_recorded_with_its_settings(record):
    assert set(record["backends"]) >= {decl.name for decl in BUILTIN}
    for name, backend in record["backends"].items():
        assert set(backend) == {"available", "reason", "settings"}, name
        if backend["available"]:
            assert backend["settings"], name
        else:
            assert backend["reason"], name
    scipy = record["backends"]["scipy-correlate2d"]
    assert scipy["available"] and scipy["settings"]["scipy"] == record["versions"]["scipy"]


def test_without_a_gpu_the_gpu_fields_are_null(record):
    if record["gpu"] is None:
        assert record["driver"] is None
        assert not record["backends"]["torch-cuda"]["available"]


@pytest.mark.parametrize(
    ("model", "slug"),
    [
        ("Intel(R) Xeon(R) Processor", "intel-xeon"),
        ("Intel(R) Xeon(R) CPU E5-2680 v4 @ 2.40GHz", "intel-xeon-e5-2680-v4"),
        ("AMD EPYC 7763 64-Core Processor", "amd-epyc-7763-64-core"),
        ("NVIDIA H100 80GB HBM3", "nvidia-h100-80gb-hbm3"),
    ],
)
def test_machine_names_are_stable_slugs(model, slug):
    assert environment._slug(model) == slug


def test_default_machine_name_says_device_cores_and_cpu():
    name = environment.default_machine_name()
    device, cores, cpu = name.split("-", 2)[0], name.split("-")[1], name.split("-", 2)[2]
    assert device == "cpu" or environment.nvidia_smi()["gpu"]
    assert cores.endswith("core") and cpu


def test_cli_writes_the_record_where_asked(tmp_path):
    out = tmp_path / "results" / "m" / environment.ENVIRONMENT_FILE
    result = CliRunner().invoke(main, ["env", "--machine", "m", "--output", str(out)])
    assert result.exit_code == 0, result.output
    written = json.loads(out.read_text())
    assert set(written) == KEYS and written["machine"] == "m"
    assert str(out) in result.output


def test_default_path_is_beside_the_asv_results():
    path = environment.environment_path("results", "cpu-2core-x")
    assert path.as_posix() == "results/cpu-2core-x/convbench-environment.json"
