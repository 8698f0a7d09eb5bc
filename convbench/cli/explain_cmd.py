"""``convbench explain``: why two results differ, from .npy files or from two backends."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import click
import numpy as np

from convbench.backends.base import BackendUnavailable
from convbench.explain import KERNEL_CODE, ORIENTATIONS, explain
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


def _load(path: str) -> np.ndarray:
    return np.load(path, allow_pickle=False)


def _run_side(name: str, image: np.ndarray, kernel: np.ndarray, spec: ConvSpec) -> np.ndarray:
    try:
        backend = get_backend(name)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--backends") from error
    try:
        return backend.prepare(image, kernel, spec).result()
    except ValueError as error:
        raise click.UsageError(str(error)) from error
    except (BackendUnavailable, NotImplementedError) as error:
        raise click.ClickException(str(error)) from error


@click.command("explain")
@click.argument("actual", required=False, type=click.Path(exists=True, dir_okay=False))
@click.argument("expected", required=False, type=click.Path(exists=True, dir_okay=False))
@click.option("--image", type=click.Path(exists=True, dir_okay=False), help="Image .npy (H, W).")
@click.option("--kernel", type=click.Path(exists=True, dir_okay=False), help="Kernel .npy.")
@click.option(
    "--backends",
    nargs=2,
    metavar="A B",
    help="Run backend A (actual) and B (expected) on one generated case instead of reading files.",
)
@click.option("--size", default="512", show_default=True, help="Generated image: N or HxW.")
@click.option("--kernel-size", default="3", show_default=True, help="Generated kernel: K or KHxKW.")
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
    type=click.Path(file_okay=False),
    help="With --backends: write image, kernel, actual and expected .npy files to this folder.",
)
def explain_command(
    actual: str | None,
    expected: str | None,
    image: str | None,
    kernel: str | None,
    backends: tuple[str, str] | None,
    size: str,
    kernel_size: str,
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
    --spec, or its own --spec-a/--spec-b, and --transform-a/--transform-b).

    Exit status: 0 when explained (identical results included), 1 when no known relation
    accounts for the difference or a backend could not run, 2 for bad usage.
    """
    if backends:
        if actual or expected or image or kernel:
            raise click.UsageError("give either ACTUAL EXPECTED --image --kernel, or --backends")
        rng_image, rng_kernel = np.random.default_rng(seed), np.random.default_rng(seed + 1)
        image_array = rng_image.standard_normal(parse_shape(size)).astype(dtype)
        kernel_array = rng_kernel.standard_normal(parse_shape(kernel_size)).astype(dtype)
        sides = {
            "actual": (backends[0], ConvSpec(**{**spec, **spec_a}), transform_a),
            "expected": (backends[1], ConvSpec(**{**spec, **spec_b}), transform_b),
        }
        results = {}
        for side, (name, side_spec, transform) in sides.items():
            oriented = np.ascontiguousarray(ORIENTATIONS[transform](kernel_array))
            results[side] = _run_side(name, image_array, oriented, side_spec)
            if not as_json:
                click.echo(f"{side:<8} = {name} {side_spec} on {KERNEL_CODE[transform]}")
        if not as_json:
            shape = "x".join(map(str, image_array.shape))
            kshape = "x".join(map(str, kernel_array.shape))
            click.echo(f"image {shape} {dtype} (seed {seed}), kernel {kshape} (seed {seed + 1})\n")
        if save:
            folder = Path(save)
            folder.mkdir(parents=True, exist_ok=True)
            arrays = {"image": image_array, "kernel": kernel_array, **results}
            for label, array in arrays.items():
                np.save(folder / f"{label}.npy", array)
    else:
        if save:
            raise click.UsageError("--save keeps the arrays of a --backends run")
        if not (actual and expected and image and kernel):
            raise click.UsageError(
                "give ACTUAL EXPECTED .npy files with --image and --kernel, or --backends A B"
            )
        image_array, kernel_array = _load(image), _load(kernel)
        results = {"actual": _load(actual), "expected": _load(expected)}
    try:
        explanation = explain(results["actual"], results["expected"], image_array, kernel_array)
    except (TypeError, ValueError) as error:
        raise click.UsageError(str(error)) from error
    if as_json:
        click.echo(json.dumps(dataclasses.asdict(explanation), indent=1))
    else:
        click.echo(explanation.message)
    if not explanation.explained:
        raise SystemExit(1)
