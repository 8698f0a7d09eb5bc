"""The gallery of real disagreements (docs/gallery.md): each reported case reproduced with the
libraries that disagreed, and what ``convbench.explain`` says about it.

Every output on the page is printed by this script from the code shown beside it:

    python scripts/gallery.py                          # each case's explanation, to the terminal
    python scripts/gallery.py --write docs/gallery.md  # the whole page, regenerated

TF32 has no CPU implementation: it is emulated by rounding the float32 inputs to TF32's 10
mantissa bits (to nearest) and computing in float32, which is what tensor cores do with the
products (exact in float32) and their float32 sums.
"""

from __future__ import annotations

import argparse
import inspect
import platform
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
import scipy
import scipy.signal

import convbench
from convbench import atomic
from convbench.backends.tensorflow_conv import import_tensorflow
from convbench.explain import Explanation
from convbench.layers import get_layer
from convbench.spec import ConvSpec


@dataclass(frozen=True)
class Reproduced:
    """Two results that disagree, what they were computed from, and the facts printed beside
    explain's answer."""

    actual: np.ndarray
    expected: np.ndarray
    image: np.ndarray
    kernel: np.ndarray
    spec: ConvSpec | None = None
    notes: tuple[str, ...] = ()

    def explain(self) -> Explanation:
        return convbench.explain(self.actual, self.expected, self.image, self.kernel, self.spec)


def keras():
    """Keras on TensorFlow (imported after torch: see import_tensorflow)."""
    import_tensorflow()
    import keras as keras_module

    return keras_module


def tf32(x: np.ndarray) -> np.ndarray:
    """float32 ``x`` with its mantissa rounded to TF32's 10 bits (to nearest, ties away)."""
    bits = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)
    return ((bits + np.uint32(0x1000)) & np.uint32(0xFFFFE000)).view(np.float32)


def nchw(x: np.ndarray) -> np.ndarray:
    """A Keras/TensorFlow NHWC array in torch's (and convbench's) NCHW layout."""
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def keras_vs_scipy() -> Reproduced:
    rng = np.random.default_rng(0)
    image = rng.standard_normal((8, 8)).astype(np.float32)
    kernel = rng.standard_normal((3, 3)).astype(np.float32)
    layer = keras().layers.Conv2D(1, 3, padding="same", use_bias=False)
    layer.build((None, 8, 8, 1))
    layer.set_weights([kernel[:, :, None, None]])  # (kh, kw, C_in, C_out)
    actual = np.asarray(layer(image[None, :, :, None]))[0, :, :, 0]
    expected = scipy.signal.convolve2d(image, kernel.T, mode="same")
    return Reproduced(actual, expected, image, kernel)


def even_kernel_same() -> Reproduced:
    import torch

    rng = np.random.default_rng(0)
    image = rng.standard_normal((32, 32)).astype(np.float32)
    kernel = rng.standard_normal((4, 4)).astype(np.float32)
    x, w = torch.from_numpy(image)[None, None], torch.from_numpy(kernel)[None, None]
    actual = torch.nn.functional.conv2d(x, w, padding="same")[0, 0].numpy()
    # "a convolution with the kernel rotated is a correlation"
    expected = scipy.signal.convolve2d(image, np.rot90(kernel, 2), mode="same")
    return Reproduced(actual, expected, image, kernel)


def correlate_vs_correlate2d() -> Reproduced:
    rng = np.random.default_rng(0)
    image = rng.standard_normal((16, 16))
    kernel = rng.standard_normal((4, 4))
    actual = scipy.signal.correlate2d(image, kernel, mode="same")
    expected = scipy.signal.correlate(image, kernel, mode="same")
    return Reproduced(actual, expected, image, kernel)


def stride_2_same() -> Reproduced:
    import torch

    torch.manual_seed(0)
    torch_layer = torch.nn.Conv2d(3, 64, kernel_size=3, stride=2, padding=1, bias=False)
    weight = torch_layer.weight.detach().numpy()  # (C_out, C_in, kh, kw)
    keras_layer = keras().layers.Conv2D(
        64, kernel_size=3, strides=2, padding="same", use_bias=False
    )
    keras_layer.build((None, 4, 4, 3))
    keras_layer.set_weights([weight.transpose(2, 3, 1, 0)])  # (kh, kw, C_in, C_out)
    image = np.random.default_rng(0).random((1, 4, 4, 3), dtype=np.float32)  # NHWC
    actual = nchw(np.asarray(keras_layer(image)))
    expected = torch_layer(torch.from_numpy(nchw(image))).detach().numpy()
    return Reproduced(actual, expected, nchw(image), weight, ConvSpec(stride=2))


def tf32_conv() -> Reproduced:
    import torch

    layer = get_layer("resnet50.layer1.0.conv2")
    image, weight = layer.inputs(batch=1, dtype="float32")
    conv2d = torch.nn.functional.conv2d
    actual = conv2d(torch.from_numpy(image), torch.from_numpy(weight), padding=1).numpy()
    # What cuDNN computes with torch.backends.cudnn.allow_tf32 = True on an Ampere GPU
    expected = conv2d(torch.from_numpy(tf32(image)), torch.from_numpy(tf32(weight)), padding=1)
    return Reproduced(actual, expected.numpy(), image, weight)


def near_zero_outputs() -> Reproduced:
    rng = np.random.default_rng(0)
    image = rng.standard_normal((1, 224, 224, 3)).astype(np.float32)  # NHWC
    kernel = (rng.standard_normal((7, 7, 3, 64)) / np.sqrt(7 * 7 * 3)).astype(np.float32)
    layer = keras().layers.Conv2D(64, kernel_size=7, strides=2, padding="valid", use_bias=False)
    layer.build(image.shape)
    layer.set_weights([kernel])
    cpu = nchw(np.asarray(layer(image)))
    # The GPU of the report: TF32 inputs (TensorFlow's default for float32 convolutions there)
    layer.set_weights([tf32(kernel)])
    gpu = nchw(np.asarray(layer(tf32(image))))
    weight = np.ascontiguousarray(kernel.transpose(3, 2, 0, 1))  # OIHW
    spec = ConvSpec(mode="valid", stride=2)
    reference = convbench.reference(nchw(image), weight, spec)
    difference = np.abs(gpu.astype(np.float64) - cpu)
    relative = difference / np.abs(cpu)
    terms = 7 * 7 * 3
    judged = {
        "cpu": convbench.agreement(cpu, reference, terms=terms),
        "gpu": convbench.agreement(gpu, reference, terms=terms, precision="tf32"),
    }
    notes = (
        f"max |gpu - cpu|         = {difference.max():.3e}",
        f"max |gpu - cpu| / |cpu| = {relative.max():.3e} (where cpu = "
        f"{cpu.flat[np.argmax(relative)]:.1e}; |outputs| from {np.abs(cpu).min():.1e} to "
        f"{np.abs(cpu).max():.1f})",
        *(
            f"convbench.agreement({side}, float64 reference): max_rel {found.max_rel:.2e}, "
            f"{found.precision} tolerance {found.tolerance:.2e}, ok={found.ok}"
            for side, found in judged.items()
        ),
    )
    return Reproduced(cpu, gpu, nchw(image), weight, spec, notes)


@dataclass(frozen=True)
class Entry:
    """One case of the page: its title, the report and what was said there (markdown), the code
    that reproduces it, and what to read in explain's answer."""

    title: str
    report: str
    reproduce: Callable[[], Reproduced]
    reading: str
    fields: tuple[str, ...] = field(default=("transform", "offset", "padding", "precision"))


CASES = (
    Entry(
        "1. Keras Conv2D vs scipy.signal.convolve2d",
        "A Stack Overflow question, *Different 2D convolution results between keras and scipy* "
        "(Keras 2.3.1 on TensorFlow 1.14, scipy 1.3.0): a one-filter `Conv2D(padding='same')` "
        "with a 3x3 kernel and `scipy.signal.convolve2d(image, kernel.T, mode='same')` on an 8x8 "
        "image gave different numbers, and rotating the kernel 180 degrees was said to fix it.",
        keras_vs_scipy,
        "Two things differ, and a rotation fixes only one: Keras cross-correlates, and the "
        "`.T` transposed the kernel. explain names the composition, `antitranspose`.",
    ),
    Entry(
        "2. Even kernels: 'same' sits one pixel apart",
        "torch's `padding='same'` ([pytorch PR #45667](https://github.com/pytorch/pytorch/pull/"
        "45667)) pads an even kernel's extra row and column after, as TensorFlow and "
        "`correlate2d` do; `convolve2d` puts it before. The same trap inside scipy: "
        "[scipy #1968](https://github.com/scipy/scipy/issues/1968), *correlate2d's output does "
        "not agree with correlate's output*, still so in scipy 1.17 (second example).",
        even_kernel_same,
        "Rotating the kernel turns the convolution into a correlation, but its 'same' window "
        "stays one pixel off: a shift of (1, 1) that no kernel orientation removes.",
    ),
    Entry(
        "2b. scipy.signal.correlate vs correlate2d",
        "[scipy #1968](https://github.com/scipy/scipy/issues/1968): with an even kernel, "
        "`correlate(image, kernel, 'same')` and `correlate2d(image, kernel, 'same')` differ by "
        "a shift.",
        correlate_vs_correlate2d,
        "`correlate` centres its 'same' output as `convolve2d` does (it is a convolution with "
        "the kernel rotated), `correlate2d` as the frameworks do: one pixel apart.",
    ),
    Entry(
        "3. Stride 2: 'SAME' is not torch's padding=1",
        "[keras-team/keras #19291](https://github.com/keras-team/keras/issues/19291), *Conv2D "
        "Layer in PyTorch and Keras. Issue with padding elements*: `keras.layers.Conv2D(64, 3, "
        "strides=2, padding='same')` and `torch.nn.Conv2d(3, 64, 3, stride=2, padding=1)` with "
        "the same weights on a 4x4x3 input gave different outputs of the same shape; the "
        "maintainers' answer was `F.pad(x, (0, 1, 0, 1))` before a 'valid' torch convolution.",
        stride_2_same,
        "The field `padding` holds the two paddings: TensorFlow's 'SAME' needs one pixel at "
        "stride 2 on an even size and puts it after; torch's `padding=1` pads both sides, so "
        "every window sits one pixel off, not only at the border. The fix is the maintainers'.",
    ),
    Entry(
        "4. TF32 on Ampere GPUs",
        "[pytorch #107514](https://github.com/pytorch/pytorch/issues/107514), *conv2d wrong "
        "results on 3090/3090ti*: float32 convolutions on an RTX 3090 differed from the CPU's, "
        "and the difference went away with `torch.backends.cudnn.allow_tf32 = False`. Emulated "
        "here on a CPU (see the note at the top) on a ResNet-50 conv2_x layer.",
        tf32_conv,
        "Same padding, same kernel: only the precision differs, and by more than float32 "
        "rounding, at the size of TF32's 10-bit mantissa.",
    ),
    Entry(
        "5. Near-zero outputs: a relative error that explodes",
        "[tensorflow #117677](https://github.com/tensorflow/tensorflow/issues/117677), *Conv2D "
        "produces inconsistent results between GPU and CPU (large relative error ~9.59e+02)*: "
        "`Conv2D(filters=64, kernel_size=7, strides=2, padding='valid', use_bias=False)` in "
        "float32 on an RTX 3090 and on a CPU, max absolute error 1.19e-04, max relative error "
        "9.59e+02, judged against float32's 1.19e-07. The GPU side is emulated as in case 4 "
        "(TensorFlow also uses TF32 for float32 convolutions on Ampere GPUs by default).",
        near_zero_outputs,
        "The element-wise relative error divides by each output: most of the 109x109x64 are of "
        "order one, but some are nearly zero, and any rounding there is 'huge'. "
        "convbench's `max_rel` divides by the largest output, so both sides are within their "
        "precision's tolerance; what remains between them is TF32's rounding, not a bug.",
    ),
)


def run(entry: Entry) -> tuple[Reproduced, Explanation]:
    reproduced = entry.reproduce()
    return reproduced, reproduced.explain()


def output(entry: Entry, reproduced: Reproduced, found: Explanation) -> str:
    """What the page shows under the code: the notes, the fields, and explain's message."""
    fields = ", ".join(f"{name}={getattr(found, name)!r}" for name in entry.fields)
    lines = [*reproduced.notes, *([""] if reproduced.notes else [])]
    lines += [f"explained={found.explained!r}, {fields}", "", found.message]
    return "\n".join(lines)


def versions() -> str:
    import keras as keras_module
    import torch

    tf = import_tensorflow()
    cpu = _cpu_model()
    return (
        f"Generated by `python scripts/gallery.py --write docs/gallery.md` on {date.today()}, "
        f"on {cpu} ({platform.machine()}), Python {platform.python_version()}, numpy "
        f"{np.__version__}, scipy {scipy.__version__}, torch {torch.__version__}, TensorFlow "
        f"{tf.__version__}, Keras {keras_module.__version__}."
    )


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or "an unknown CPU"


INTRO = """# A gallery of real disagreements

Each case below is a disagreement reported in public, reproduced with the libraries that
disagreed (or, for a GPU, with the arithmetic it used, emulated on the CPU), followed by what
`convbench.explain` says about the two results. The code shown is the code that ran; the output
under it is what it printed. Each case is also a test (`tests/test_gallery.py`) that holds
explain to the fields shown.

TF32 has no CPU implementation: it is emulated by rounding the float32 inputs to TF32's 10
mantissa bits (to nearest) and computing in float32, as tensor cores sum exact float32 products
in float32.
"""


def page() -> str:
    parts = [INTRO, _fill(versions()), ""]
    for entry in CASES:
        reproduced, found = run(entry)
        source = textwrap.dedent(inspect.getsource(entry.reproduce))
        parts += [
            f"## {entry.title}",
            "",
            _fill(entry.report),
            "",
            "```python",
            source.rstrip(),
            "```",
            "",
            "```",
            output(entry, reproduced, found),
            "```",
            "",
            _fill(entry.reading),
            "",
        ]
    return "\n".join(parts)


def _fill(text: str) -> str:
    return textwrap.fill(text, width=100, break_on_hyphens=False, break_long_words=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", metavar="PATH", help="write the whole page (docs/gallery.md)")
    args = parser.parse_args()
    if args.write:
        atomic.write_text(Path(args.write), page())
        return
    for entry in CASES:
        reproduced, found = run(entry)
        print(f"== {entry.title}\n{output(entry, reproduced, found)}\n")


if __name__ == "__main__":
    main()
