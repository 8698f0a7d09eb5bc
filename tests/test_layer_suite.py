"""The Layer suite: the table of network layers (convbench.layers), its skip policy, and the asv
suite (benchmarks/layers.py) set up in this process with the records it writes."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import numpy as np
import pytest
from asv_runner.benchmarks.mark import SkipNotImplemented

import convbench
from benchmarks import layers as suite_module
from convbench import layers, records, suite
from convbench.agreement import tolerance
from convbench.layers import get_layer

METRICS = ["Layer.peakmem_op", "Layer.time_op", "Layer.track_gflops", "Layer.track_max_rel"]


@pytest.fixture
def written(tmp_path, monkeypatch):
    """The records the suite writes in this test, in order."""
    path = tmp_path / records.FILE
    monkeypatch.setenv(records.ENV, str(path))
    monkeypatch.setenv("CONVBENCH_COMMIT", "abc123")

    def read() -> list[dict]:
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines()]

    return read


# --- the table -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "output", "macs"),
    [
        ("resnet50.conv1", (1, 64, 112, 112), 112 * 112 * 64 * 3 * 49),
        ("resnet50.layer1.0.conv2", (1, 64, 56, 56), 56 * 56 * 64 * 64 * 9),
        ("resnet50.layer2.0.conv2", (1, 128, 28, 28), 28 * 28 * 128 * 128 * 9),
        ("resnet50.layer2.0.downsample.0", (1, 512, 28, 28), 28 * 28 * 512 * 256),
        ("mobilenet_v2.features.3.conv.1.0", (1, 144, 56, 56), 56 * 56 * 144 * 9),
        ("resnext50_32x4d.layer1.0.conv2", (1, 128, 56, 56), 56 * 56 * 128 * 4 * 9),
        ("deeplabv3_resnet50.backbone.layer3.1.conv2", (1, 256, 28, 28), 28 * 28 * 256 * 256 * 9),
        ("image.filter3x3", (1, 1, 256, 256), 256 * 256 * 9),
    ],
)
def test_each_layer_gives_the_networks_output_and_work(name, output, macs) -> None:
    layer = get_layer(name)
    assert layer.output_shape(1) == output
    assert layer.output_shape(16) == (16, *output[1:])
    assert layer.multiply_adds(1) == macs
    assert layer.flops(16) == 2 * 16 * macs


def test_the_table_has_every_kind_of_layer_the_suite_promises() -> None:
    by_name = {layer.name: layer for layer in layers.LAYERS}
    stem = by_name["resnet50.conv1"]
    assert (stem.in_channels, stem.out_channels, stem.kernel, stem.stride, stem.size) == (
        3,
        64,
        7,
        2,
        224,
    )
    assert any(
        layer.kernel == 3 and layer.stride == 1 and layer.groups == 1 for layer in layers.LAYERS
    )
    assert any(layer.kernel == 3 and layer.stride == 2 for layer in layers.LAYERS)
    assert any(layer.kernel == 1 for layer in layers.LAYERS)
    assert any(
        layer.groups == layer.in_channels == layer.out_channels > 1 for layer in layers.LAYERS
    )
    assert any(layer.groups == 32 for layer in layers.LAYERS)
    assert any(layer.dilation >= 2 for layer in layers.LAYERS)
    assert any(layer.in_channels == layer.out_channels == 1 for layer in layers.LAYERS)
    assert len(set(layers.NAMES)) == len(layers.LAYERS)
    assert all(layer.source for layer in layers.LAYERS)


def test_the_docs_table_is_the_layer_table() -> None:
    text = (Path(__file__).resolve().parents[1] / "docs" / "layers.md").read_text()
    for layer in layers.LAYERS:
        row = (
            f"| `{layer.name}` | {layer.in_channels} -> {layer.out_channels} | {layer.size}² | "
            f"{layer.kernel}x{layer.kernel} | {layer.stride} | {layer.dilation} | {layer.groups} "
            f"| {layer.multiply_adds(1) / 1e6:.1f} M |"
        )
        assert row in text
        assert text.count(f"| `{layer.name}` |") == 2  # the shapes, and the source


def test_an_unknown_layer_names_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"layer 'resnet50' must be one of: \['resnet50.conv1'"):
        get_layer("resnet50")


def test_a_layer_is_computed_with_same_padding_at_its_stride() -> None:
    spec = get_layer("resnext50_32x4d.layer1.0.conv2").spec
    assert (spec.mode, spec.stride, spec.dilation, spec.groups) == ("same", (1, 1), (1, 1), 32)
    assert get_layer("resnet50.conv1").spec.stride == (2, 2)
    assert get_layer("deeplabv3_resnet50.backbone.layer3.1.conv2").spec.dilation == (2, 2)


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
def test_inputs_are_seeded_normals_with_a_variance_preserving_kernel(dtype: str) -> None:
    layer = get_layer("resnet50.layer1.0.conv2")
    image, kernel = layer.inputs(2, dtype)
    again, _ = layer.inputs(2, dtype)
    assert image.shape == (2, 64, 56, 56) and kernel.shape == (64, 64, 3, 3)
    assert image.dtype.name == kernel.dtype.name == dtype
    assert np.array_equal(image, again)
    fan_in = 64 * 9
    assert math.isclose(
        float(np.std(kernel.astype(np.float64))), 1 / math.sqrt(fan_in), rel_tol=0.05
    )
    assert not np.array_equal(layer.inputs(2, dtype, seed=1)[0], image)


# --- the skip policy -----------------------------------------------------------------------------


def test_the_suites_backends_compute_every_layer_in_float32() -> None:
    # The suite takes those this machine may run (convbench.suite.grid_backends).
    assert list(suite.grid_backends(layers.BACKENDS)) == suite_module.Layer.params[1]
    for name in layers.BACKENDS:
        backend = convbench.get_backend(name)
        for layer in layers.LAYERS:
            shapes = (layer.image_shape(16), layer.kernel_shape)
            assert backend.layer_unsupported(layer.spec, *shapes, "float32") is None, (name, layer)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_low_precision_on_a_cpu_is_measured_on_one_image(dtype: str) -> None:
    torch_cpu = convbench.get_backend("torch-cpu")
    stem = get_layer("resnet50.conv1")
    assert layers.skip_reason(stem, torch_cpu, 1, dtype) is None
    assert layers.skip_reason(stem, torch_cpu, 16, dtype) == (
        f"{dtype} on a CPU is measured on one image: its error is what a CPU shows of it, and a "
        "batch would only add time to the suite"
    )
    assert layers.skip_reason(stem, torch_cpu, 16, "float32") is None
    assert layers.skip_reason(stem, convbench.get_backend("torch-cuda"), 16, dtype) is None


def test_float16_on_a_cpu_has_a_budget_of_its_own() -> None:
    atrous = get_layer("deeplabv3_resnet50.backbone.layer3.1.conv2")
    reason = layers.skip_reason(atrous, convbench.get_backend("jax-cpu"), 1, "float16")
    assert reason == (
        "float16 on a CPU has no vectorised kernel: 4.6e+08 multiply-adds "
        "(deeplabv3_resnet50.backbone.layer3.1.conv2 at batch 1) exceed the suite's budget of "
        "3e+08 for it (seconds per call)"
    )
    assert layers.skip_reason(atrous, convbench.get_backend("jax-cpu"), 1, "bfloat16") is None


def test_a_cpu_skips_what_exceeds_its_budget_and_a_gpu_does_not() -> None:
    atrous = get_layer("deeplabv3_resnet50.backbone.layer3.1.conv2")
    reason = layers.skip_reason(atrous, convbench.get_backend("torch-cpu"), 16, "float32")
    assert reason == (
        "on a CPU: 7.4e+09 multiply-adds (deeplabv3_resnet50.backbone.layer3.1.conv2 at batch 16) "
        "exceed the suite's budget of 4e+09 (seconds per call)"
    )
    assert layers.skip_reason(atrous, convbench.get_backend("torch-cuda"), 16, "float16") is None


def test_a_backend_without_layers_says_so() -> None:
    scipy = convbench.get_backend("scipy-correlate2d")
    layer = get_layer("resnet50.layer2.0.conv2")
    expected = scipy.layer_unsupported(
        layer.spec, layer.image_shape(1), layer.kernel_shape, "float32"
    )
    assert expected and layers.skip_reason(layer, scipy, 1, "float32") == expected


@pytest.mark.parametrize(
    ("metric", "measured_at"),
    [
        ("time_op", (1, 16)),
        ("track_gflops", (16,)),
        ("track_max_rel", (1,)),
        ("peakmem_op", (16,)),
    ],
)
def test_each_metric_is_measured_at_its_batches(metric: str, measured_at) -> None:
    for batch in layers.BATCHES:
        reason = layers.metric_skip_reason(metric, batch)
        assert (reason is None) == (batch in measured_at)


def asv_measures(metric: str, combo: tuple) -> bool:
    """Whether asv runs ``metric`` of the Layer suite for ``combo``: among its parameters (a
    metric may carry its own) and not in its ``skip_params``."""
    method = getattr(suite_module.Layer, metric)
    params = getattr(method, "params", suite_module.Layer.params)
    return combo in itertools.product(*params) and combo not in getattr(method, "skip_params", [])


def test_asv_leaves_out_the_metrics_a_batch_does_not_take_without_a_setup() -> None:
    combo_1 = ("image.filter3x3", "torch-cpu", 1, "float32")
    combo_16 = ("image.filter3x3", "torch-cpu", 16, "float32")
    assert [asv_measures("track_max_rel", c) for c in (combo_1, combo_16)] == [True, False]
    assert [asv_measures("peakmem_op", c) for c in (combo_1, combo_16)] == [False, True]
    assert [asv_measures("time_op", c) for c in (combo_1, combo_16)] == [True, True]
    assert [asv_measures("track_gflops", c) for c in (combo_1, combo_16)] == [False, True]
    assert suite_module.Layer.metrics() == [
        "peakmem_op",
        "time_op",
        "track_gflops",
        "track_max_rel",
    ]


# --- the suite in this process -------------------------------------------------------------------


def test_a_layer_case_set_up_is_ready_with_the_backends_facts(written) -> None:
    params = ("resnext50_32x4d.layer1.0.conv2", "torch-cpu", 1, "float32")
    case = suite_module.Layer()
    case.setup(*params)
    found = written()
    assert [(r["benchmark"], r["status"]) for r in found] == [
        ("Layer.peakmem_op", "skipped"),
        ("Layer.time_op", "ready"),
        ("Layer.track_gflops", "skipped"),
        ("Layer.track_max_rel", "ready"),
    ]
    assert found[0]["reason"] == layers.metric_skip_reason("peakmem_op", 1)
    assert found[2]["reason"] == layers.metric_skip_reason("track_gflops", 1)
    first = found[1]
    assert first["params"] == dict(zip(("layer", "backend", "batch", "dtype"), params, strict=True))
    assert (first["library"], first["device"], first["precision"]) == ("torch", "cpu", "float32")
    # Products per output: C_in / groups * kh * kw = 4 * 9.
    assert first["tolerance"] == tolerance("float32", 36)
    assert first["commit"] == "abc123"
    assert case.ready.prepared.output_shape == (1, 128, 56, 56)
    assert case.track_max_rel(*params) < 1e-6
    assert case.track_gflops(*params) > 0
    case.time_op(*params)
    assert len(written()) == 4


def test_track_gflops_is_the_layers_count_over_the_median_block(written, monkeypatch) -> None:
    params = ("image.filter3x3", "torch-cpu", 16, "float32")
    case = suite_module.Layer()
    case.setup(*params)
    inner = case.ready.inner
    seconds = iter([0.5, 0.1, 0.2, 0.3, 0.4])
    monkeypatch.setattr(suite_module.WallClock, "sample", lambda self, fn, number: next(seconds))
    flops = get_layer("image.filter3x3").flops(16)
    assert case.track_gflops(*params) == pytest.approx(flops / (0.3 / inner) / 1e9)


def test_a_case_over_the_budget_is_skipped_with_its_reason(written) -> None:
    layer = get_layer("deeplabv3_resnet50.backbone.layer3.1.conv2")
    reason = layers.skip_reason(layer, convbench.get_backend("torch-cpu"), 1, "float16")
    with pytest.raises(SkipNotImplemented, match="float16 on a CPU"):
        suite_module.Layer().setup(layer.name, "torch-cpu", 1, "float16")
    assert {
        (r["status"], r["reason"]) for r in written() if r["benchmark"] != "Layer.peakmem_op"
    } == {("skipped", reason)}


def test_a_gpu_backend_without_a_gpu_is_skipped_with_the_machines_reason(written) -> None:
    backend = convbench.get_backend("torch-cuda")
    if backend.unavailable_reason is None:
        pytest.skip("this machine has a CUDA device")
    with pytest.raises(SkipNotImplemented):
        suite_module.Layer().setup("resnet50.conv1", "torch-cuda", 16, "float32")
    found = {r["benchmark"]: (r["status"], r["reason"]) for r in written()}
    assert found["Layer.time_op"] == ("skipped", backend.unavailable_reason)
    assert found["Layer.peakmem_op"] == ("skipped", backend.unavailable_reason)
    assert found["Layer.track_max_rel"][1] == layers.metric_skip_reason("track_max_rel", 16)
