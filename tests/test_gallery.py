"""The gallery of real disagreements (docs/gallery.md, printed by scripts/gallery.py): each case,
reproduced with the libraries that disagreed, gets explain's answer with the fields and words the
page shows; the page holds the code that ran and the fields it printed."""

from __future__ import annotations

import inspect
import textwrap
from pathlib import Path

import numpy as np
import pytest

from tests.scripts import load_script

ROOT = Path(__file__).resolve().parents[1]
# torch warns that an even kernel's padding='same' copies the input: the case is that call.
pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")


gallery = load_script("gallery")
ENTRIES = {entry.reproduce.__name__: entry for entry in gallery.CASES}


@pytest.fixture(scope="module")
def answers():
    """Each case reproduced and explained once: name -> (Reproduced, Explanation)."""
    return {name: gallery.run(entry) for name, entry in ENTRIES.items()}


def words(found) -> str:
    return " ".join(found.message.split())


def test_keras_vs_scipy_is_the_kernels_orientation(answers) -> None:
    reproduced, found = answers["keras_vs_scipy"]
    assert not np.allclose(reproduced.actual, reproduced.expected)
    assert found.explained and found.transform == "antitranspose"
    assert (found.offset, found.boundary, found.mode, found.padding) == ((0, 0), None, None, None)
    assert found.precision == "rounding"
    assert "cross-correlation vs convolution, a transposed kernel" in words(found)
    assert "rotating the kernel 180 degrees alone fixes only the convolution part" in words(found)
    assert "expected = scipy.signal.convolve2d(image, kernel.T, mode='same')" in found.message


def test_torch_same_with_an_even_kernel_sits_one_pixel_from_convolve2d(answers) -> None:
    _, found = answers["even_kernel_same"]
    assert found.explained and found.transform is None and found.offset == (1, 1)
    assert found.precision == "rounding"
    assert "a shift of (1, 1) pixels" in words(found)
    assert "for an even kernel size K" in words(found)


def test_scipy_correlate_and_correlate2d_sit_one_pixel_apart(answers) -> None:
    _, found = answers["correlate_vs_correlate2d"]
    assert found.explained and found.transform is None and found.offset == (1, 1)
    assert found.precision in ("exact", "rounding")
    assert "even kernel size K" in words(found)


def test_stride_2_same_is_a_padding_difference(answers) -> None:
    reproduced, found = answers["stride_2_same"]
    assert reproduced.actual.shape == reproduced.expected.shape == (1, 64, 2, 2)
    assert found.explained and found.transform is None
    assert found.padding == (((0, 1), (0, 1)), ((1, 1), (1, 1)))
    assert found.precision in ("exact", "rounding")
    said = words(found)
    assert "actual pads 0 before and 1 after on both axes, as TensorFlow's 'SAME' does" in said
    assert "'SAME' puts the odd one after" in said
    assert "Expected pads 1 on both sides, as torch's padding=1 does" in said
    assert "windows sit 1 pixel apart" in said
    assert "actual   = F.conv2d(F.pad(x, (0, 1, 0, 1)), w, stride=2)" in found.message


def test_tf32_is_reduced_precision(answers) -> None:
    _, found = answers["tf32_conv"]
    assert found.explained and found.precision == "reduced"
    assert (found.transform, found.offset, found.padding) == (None, (0, 0), None)
    assert "reduced precision at TF32/float16 level" in words(found)
    assert "torch.backends.cudnn.allow_tf32 = False" in words(found)


def test_near_zero_outputs_blow_up_the_elementwise_error_only(answers) -> None:
    reproduced, found = answers["near_zero_outputs"]
    cpu, gpu = reproduced.actual.astype(np.float64), reproduced.expected
    elementwise = np.abs(gpu - cpu) / np.abs(cpu)
    assert elementwise.max() > 10 and np.abs(gpu - cpu).max() < 1e-2
    assert found.explained and found.precision == "reduced" and found.padding is None
    notes = "\n".join(reproduced.notes)
    assert "convbench.agreement(cpu, float64 reference)" in notes and "ok=True" in notes
    assert notes.count("ok=True") == 2


def test_every_case_of_the_page_shows_its_code_and_its_fields(answers) -> None:
    page = (ROOT / "docs" / "gallery.md").read_text()
    for name, entry in ENTRIES.items():
        reproduced, found = answers[name]
        assert f"## {entry.title}" in page
        assert textwrap.dedent(inspect.getsource(entry.reproduce)).rstrip() in page
        fields_line = gallery.output(entry, reproduced, found).splitlines()[
            len(reproduced.notes) + bool(reproduced.notes)
        ]
        assert fields_line in page, fields_line
