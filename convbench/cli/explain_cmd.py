"""``convbench explain``: why two results differ, from .npy files or from two backends, for 2-D
images or network layers."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import click
import numpy as np
from numpy.lib import format as npy_format

from convbench import atomic
from convbench.backends.base import BackendUnavailable
from convbench.explain import KERNEL_CODE, ORIENTATIONS, Explanation, checked_input, explain
from convbench.layers import NAMES as LAYER_NAMES
from convbench.layers import get_layer
from convbench.registry import get_backend
from convbench.spec import BOUNDARIES, MODES, OPS, ConvSpec

_WORDS = {"op": OPS, "mode": MODES, "boundary": BOUNDARIES}


def parse_spec(text: str) -> dict[str, str]:
    """``convolve,same,wrap`` -> ConvSpec fields; words in any order, each field at most once."""
    fields: dict[str, str] = {}
    for word in filter(None, (part.strip() for part in text.split(","))):
        field = next((name for name, words in _WORDS.items() if word in words), None)
        if field is None:
            accepted = [w for words in _WORDS.values() for w in words]
            raise click.BadParameter(f"{word!r} in {text!r} is not one of {accepted}")
        if field in fields:
            raise click.BadParameter(f"{text!r} gives the {field} twice")
        fields[field] = word
    return fields


def parse_shape(text: str) -> tuple[int, int]:
    """``512`` -> (512, 512); ``480x640`` -> (480, 640)."""
    parts = text.lower().split("x")
    try:
        sizes = tuple(int(part) for part in parts)
    except ValueError:
        sizes = ()
    if len(sizes) == 1:
        sizes = sizes * 2
    if len(sizes) != 2 or min(sizes) < 1:
        raise click.BadParameter(f"{text!r} is not a size N or HxW of positive integers")
    return sizes


# Version 3.0 is 2.0 with a utf-8 header: read as latin-1, only non-ASCII field names garble,
# never whether a field holds objects (all this reading asks before read_array).
_HEADER_READERS = {
    (1, 0): npy_format.read_array_header_1_0,
    (2, 0): npy_format.read_array_header_2_0,
    (3, 0): npy_format.read_array_header_2_0,
}


class NpyError(Exception):
    """A file that holds no array of numbers in .npy format; the message says what it is."""


def read_npy(path: str) -> np.ndarray:
    """The array in the .npy file at ``path``, or NpyError saying what else the file is. Never
    unpickles: a file of Python objects is refused, not run."""
    with open(path, "rb") as file:
        start = file.read(len(npy_format.MAGIC_PREFIX))
        if start != npy_format.MAGIC_PREFIX:
            what = (
                f"it begins with {start!r}, where np.save writes {npy_format.MAGIC_PREFIX!r}"
                if start
                else "it is empty"
            )
            raise NpyError(f"{path!r} is not an .npy file: {what}")
        file.seek(0)
        try:
            version = npy_format.read_magic(file)
            if version not in _HEADER_READERS:
                major, minor = version
                raise NpyError(
                    f"{path!r} is a version {major}.{minor} .npy file; convbench reads "
                    "versions 1.0 to 3.0"
                )
            dtype = _HEADER_READERS[version](file)[2]
            if dtype.hasobject:
                raise NpyError(
                    f"{path!r} holds Python objects (dtype {dtype}), not numbers: save a numeric "
                    "array, e.g. np.save(path, np.asarray(values, dtype=np.float32))"
                )
            file.seek(0)
            return npy_format.read_array(file, allow_pickle=False)
        except (ValueError, EOFError) as error:
            raise NpyError(f"{path!r} is not a readable .npy file: {error}") from error


class NpyArray(click.Path):
    """An .npy file holding what explain() accepts as ``what``; the value is the array."""

    name = "npy"

    def __init__(self, what: str) -> None:
        super().__init__(exists=True, dir_okay=False, readable=True)
        self.what = what

    def convert(self, value, param, ctx) -> np.ndarray:
        if isinstance(value, np.ndarray):
            return value
        path = super().convert(value, param, ctx)
        try:
            return checked_input(read_npy(path), self.what)
        except NpyError as error:
            self.fail(str(error), param, ctx)
        except OSError as error:
            self.fail(f"{path!r} cannot be read: {error.strerror}", param, ctx)
        except (TypeError, ValueError) as error:
            self.fail(f"{path!r}: {error}", param, ctx)


@dataclasses.dataclass(frozen=True)
class Layer:
    """A layer's stride, dilation and groups (all 1 for a plain 2-D convolution)."""

    stride: tuple[int, int] = (1, 1)
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1

    @property
    def fields(self) -> dict[str, object]:
        return dataclasses.asdict(self)

    @property
    def spec(self) -> ConvSpec | None:
        """What explain() is told: None for a plain 2-D convolution."""
        return None if self == Layer() else ConvSpec(**self.fields)


@dataclasses.dataclass(frozen=True)
class Inputs:
    """The four arrays explain() reads, and the layer they were computed as."""

    image: np.ndarray
    kernel: np.ndarray
    actual: np.ndarray
    expected: np.ndarray
    layer: Layer = Layer()

    def explain(self) -> Explanation:
        return explain(self.actual, self.expected, self.image, self.kernel, self.layer.spec)

    def arrays(self) -> dict[str, np.ndarray]:
        return {
            "image": self.image,
            "kernel": self.kernel,
            "actual": self.actual,
            "expected": self.expected,
        }


@dataclasses.dataclass(frozen=True)
class Generated:
    """A seeded random-normal image and kernel (the kernel from ``seed + 1``)."""

    shape: tuple[int, int]
    kernel_shape: tuple[int, int]
    dtype: str
    seed: int

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        image = np.random.default_rng(self.seed).standard_normal(self.shape)
        kernel = np.random.default_rng(self.seed + 1).standard_normal(self.kernel_shape)
        return image.astype(self.dtype), kernel.astype(self.dtype)

    def __str__(self) -> str:
        shape, kshape = ("x".join(map(str, s)) for s in (self.shape, self.kernel_shape))
        return (
            f"image {shape} {self.dtype} (seed {self.seed}), kernel {kshape} (seed {self.seed + 1})"
        )


@dataclasses.dataclass(frozen=True)
class GeneratedLayer:
    """One image of a layer of convbench.layers, with its seeded inputs."""

    name: str
    dtype: str
    seed: int

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        return get_layer(self.name).inputs(1, self.dtype, self.seed)

    def __str__(self) -> str:
        layer = get_layer(self.name)
        return (
            f"layer {self.name}: image {layer.image_shape(1)} {self.dtype}, kernel "
            f"{layer.kernel_shape} (seed {self.seed})"
        )


@dataclasses.dataclass(frozen=True)
class Side:
    """What one backend is asked to compute: its spec, on the kernel in one orientation."""

    backend: str
    spec: ConvSpec
    transform: str

    def __str__(self) -> str:
        return f"{self.backend} {self.spec} on {KERNEL_CODE[self.transform]}"

    def run(self, image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
        try:
            backend = get_backend(self.backend)
        except ValueError as error:
            raise click.BadParameter(str(error), param_hint="'--backends'") from error
        oriented = np.ascontiguousarray(oriented_kernel(kernel, self.transform))
        try:
            return backend.prepare(image, oriented, self.spec).result()
        except ValueError as error:
            raise click.UsageError(str(error)) from error
        except (BackendUnavailable, NotImplementedError) as error:
            raise click.ClickException(str(error)) from error


def oriented_kernel(kernel: np.ndarray, transform: str) -> np.ndarray:
    """``kernel`` in orientation ``transform``; a layer's (4-D) kernel turns every plane, and
    only 'identity' and 'rot180' (a convolution) are asked of it."""
    if kernel.ndim == 2:
        return ORIENTATIONS[transform](kernel)
    if transform not in ("identity", "rot180"):
        raise click.BadParameter(
            f"{transform!r} is not an orientation of a layer's kernel; use identity or rot180",
            param_hint="'--transform-a' / '--transform-b'",
        )
    return kernel[..., ::-1, ::-1] if transform == "rot180" else kernel


def _from_files(files: dict[str, np.ndarray | None], save: str | None, layer: Layer) -> Inputs:
    """Files mode: the arrays of ACTUAL EXPECTED --image --kernel, all four required."""
    if save:
        raise click.UsageError("--save keeps the arrays of a --backends run")
    if any(array is None for array in files.values()):
        raise click.UsageError(
            "give ACTUAL EXPECTED .npy files with --image and --kernel, or --backends A B"
        )
    return Inputs(**files, layer=layer)


def _from_backends(
    sides: tuple[Side, Side],
    generated: Generated | GeneratedLayer,
    layer: Layer,
    save: str | None,
    quiet: bool,
) -> Inputs:
    """Backends mode: run each side on the generated case, saying what ran unless ``quiet``, and
    keep the four arrays in the folder ``save``."""
    folder = _save_folder(save)
    image, kernel = generated.arrays()
    results = {}
    for label, side in zip(("actual", "expected"), sides, strict=True):
        results[label] = side.run(image, kernel)
        if not quiet:
            click.echo(f"{label:<8} = {side}")
    if not quiet:
        click.echo(f"{generated}\n")
    inputs = Inputs(image, kernel, **results, layer=layer)
    if folder is not None:
        for label, array in inputs.arrays().items():
            _save_npy(folder / f"{label}.npy", array)
    return inputs


def _save_folder(save: str | None) -> Path | None:
    """The --save folder, created before anything runs so that a bad path fails first."""
    if not save:
        return None
    folder = Path(save)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise click.BadParameter(
            f"cannot create folder {save!r}: {error.strerror}", param_hint="'--save'"
        ) from error
    return folder


def _save_npy(path: Path, array: np.ndarray) -> None:
    def write(temporary: Path) -> None:
        # A file object, not the path: np.save would append '.npy' to the temporary's name.
        with open(temporary, "wb") as file:
            np.save(file, array)

    try:
        atomic.write_with(path, write)
    except OSError as error:
        raise click.BadParameter(
            f"cannot write {str(path)!r}: {error.strerror}", param_hint="'--save'"
        ) from error


def _spec_option(name: str, help_text: str):
    return click.option(
        name,
        callback=lambda ctx, param, value: {} if value is None else parse_spec(value),
        metavar="OP,MODE,BOUNDARY",
        help=help_text,
    )


def _transform_option(name: str, help_text: str):
    return click.option(
        name,
        type=click.Choice(list(ORIENTATIONS)),
        default="identity",
        show_default=True,
        help=help_text,
    )


def _shape_option(name: str, default: str, help_text: str):
    return click.option(
        name,
        default=default,
        show_default=True,
        callback=lambda ctx, param, value: parse_shape(value),
        help=help_text,
    )


def _layer_of(
    stride: tuple[int, int] | None,
    dilation: tuple[int, int] | None,
    groups: int | None,
    name: str | None,
) -> Layer:
    """The layer asked for: --layer's own, or --stride, --dilation and --groups (not both)."""
    given = {"stride": stride, "dilation": dilation, "groups": groups}
    if name is not None:
        if any(value is not None for value in given.values()):
            raise click.UsageError("--layer sets the stride, dilation and groups itself")
        table = get_layer(name)
        return Layer((table.stride,) * 2, (table.dilation,) * 2, table.groups)
    return Layer(**{field: value for field, value in given.items() if value is not None})


@click.command("explain")
@click.argument("actual", required=False, type=NpyArray("actual"))
@click.argument("expected", required=False, type=NpyArray("expected"))
@click.option("--image", type=NpyArray("image"), help="Image .npy (H, W).")
@click.option("--kernel", type=NpyArray("kernel"), help="Kernel .npy (KH, KW).")
@click.option(
    "--backends",
    nargs=2,
    metavar="A B",
    help="Run backend A (actual) and B (expected) on one generated case instead of reading files.",
)
@_shape_option("--size", "512", "Generated image: N or HxW.")
@_shape_option("--kernel-size", "3", "Generated kernel: K or KHxKW.")
@click.option(
    "--layer",
    "layer_name",
    type=click.Choice(LAYER_NAMES),
    help="With --backends: one image of this network layer (convbench.layers) instead.",
)
@click.option(
    "--stride",
    callback=lambda ctx, param, value: None if value is None else parse_shape(value),
    help="Both results' stride: N or HxW (a layer's, or a 2-D image's) [1].",
)
@click.option(
    "--dilation",
    callback=lambda ctx, param, value: None if value is None else parse_shape(value),
    help="Both results' dilation: N or HxW [1].",
)
@click.option("--groups", type=click.IntRange(min=1), help="Both results' groups (a layer's) [1].")
@click.option(
    "--dtype",
    type=click.Choice(["float32", "float64", "float16"]),
    default="float32",
    show_default=True,
    help="Compute dtype of the generated image (and kernel).",
)
@click.option("--seed", default=0, show_default=True, help="Image seed; the kernel uses seed + 1.")
@_spec_option("--spec", "Spec of both sides, e.g. convolve,same,wrap [correlate,same,fill].")
@_spec_option("--spec-a", "Spec words for A alone; they replace the same fields of --spec.")
@_spec_option("--spec-b", "Spec words for B alone; they replace the same fields of --spec.")
@_transform_option("--transform-a", "Kernel orientation handed to A, e.g. transpose: kernel.T.")
@_transform_option("--transform-b", "Kernel orientation handed to B.")
@click.option("--json", "as_json", is_flag=True, help="Print the Explanation's fields as JSON.")
@click.option(
    "--save",
    type=click.Path(file_okay=False, writable=True),
    help="With --backends: write image, kernel, actual and expected .npy files to this folder.",
)
def explain_command(
    actual: np.ndarray | None,
    expected: np.ndarray | None,
    image: np.ndarray | None,
    kernel: np.ndarray | None,
    backends: tuple[str, str] | None,
    size: tuple[int, int],
    kernel_size: tuple[int, int],
    layer_name: str | None,
    stride: tuple[int, int] | None,
    dilation: tuple[int, int] | None,
    groups: int | None,
    dtype: str,
    seed: int,
    spec: dict[str, str],
    spec_a: dict[str, str],
    spec_b: dict[str, str],
    transform_a: str,
    transform_b: str,
    as_json: bool,
    save: str | None,
) -> None:
    """Explain why two convolution results differ.

    Either ACTUAL EXPECTED .npy files with --image and --kernel, or --backends A B, which runs
    both backends on one seeded random-normal case (A gives actual, B expected; each side takes
    --spec, or its own --spec-a/--spec-b, and --transform-a/--transform-b). Layers: 4-D files
    (image N,C_in,H,W; kernel C_out,C_in/groups,kh,kw; results N,C_out,H_out,W_out) with
    --stride, --dilation and --groups, or --backends with --layer NAME.

    Exit status: 0 when explained (identical results included), 1 when no known relation
    accounts for the difference or a backend could not run, 2 for bad usage.
    """
    files = {"image": image, "kernel": kernel, "actual": actual, "expected": expected}
    layer = _layer_of(stride, dilation, groups, layer_name)
    if backends:
        if any(array is not None for array in files.values()):
            raise click.UsageError("give either ACTUAL EXPECTED --image --kernel, or --backends")
        sides = (
            Side(backends[0], ConvSpec(**{**spec, **spec_a}, **layer.fields), transform_a),
            Side(backends[1], ConvSpec(**{**spec, **spec_b}, **layer.fields), transform_b),
        )
        generated = (
            GeneratedLayer(layer_name, dtype, seed)
            if layer_name
            else Generated(size, kernel_size, dtype, seed)
        )
        inputs = _from_backends(sides, generated, layer, save, as_json)
    else:
        if layer_name:
            raise click.UsageError("--layer generates a case for --backends")
        inputs = _from_files(files, save, layer)
    try:
        explanation = inputs.explain()
    except ValueError as error:  # shapes that do not go together (a layer's, checked here)
        raise click.UsageError(str(error)) from error
    if as_json:
        click.echo(json.dumps(dataclasses.asdict(explanation), indent=1))
    else:
        click.echo(explanation.message)
    if not explanation.explained:
        raise SystemExit(1)
