"""Why two convolution results differ: ``explain(actual, expected, image, kernel)``.

The image and kernel are known, so every result they can give is *generated* and each array is
located among the candidates (``search``): the kernel orientation, boundary, output mode and
shift that reproduce it. The relation between the two results is the composition of where each
one sits, and what is left after it is the precision; ``message`` says all this in words, with
the scipy calls that reproduce each result.

Precision. Each located result's error is ``max|result - reference| / max|reference|`` against
the float64 reference of its candidate; ``n = kh * kw`` products are summed per output and
``tolerance(p, n) = 8 * u_p * sqrt(n)`` is convbench.agreement's bound (``u_p`` its unit roundoff):

- ``exact``: nothing is left; each result equals its reference rounded to its dtype, or (same
  kernel orientation) the two hold bit-identical values wherever neither touches a border;
- ``rounding``: both errors within ``tolerance("float32", n)``, or ``tolerance("float64", n)``
  when both arrays are float64: the accumulation error of the arrays' own dtype;
- ``reduced``: within ``tolerance("bfloat16", n)``: TF32, float16 or bfloat16 arithmetic (the
  message names an array's own float16/bfloat16 dtype, else says TF32/float16 when within
  ``tolerance("tf32", n)`` and bfloat16 beyond);
- anything larger is not explained. Nor is a residual that is mostly a common factor (a scaled
  result: the least-squares scale ``s`` has ``|s - 1| > 2**-6`` and removing it halves the
  error): lower precision rounds, it does not rescale. ``precision`` is ``"unknown"`` when
  ``explained`` is False.

Layers. With a 4-D image ``(N, C_in, H, W)``, kernel ``(C_out, C_in // groups, kh, kw)`` and
results ``(N, C_out, H_out, W_out)``, or with a ``spec`` whose stride, dilation or groups are not
1 (a 2-D image is then one image of one channel), the results are located among the zero
paddings and the two kernel orientations (as given, or every plane rotated 180 degrees) at the
spec's stride, dilation and groups (``layer``): ``padding`` holds the two paddings when they
differ, and ``n = C_in / groups * kh * kw`` products make an output. The precision is judged on
the first image of the batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from convbench.explain import layer, message
from convbench.explain.layer import LayerSearch, Pad
from convbench.explain.message import KERNEL_CODE
from convbench.explain.search import (
    ORIENTATIONS,
    TRANSFORMS,
    Search,
    compose,
    related,
    relative,
    residual,
)
from convbench.spec import ConvSpec, check_shapes

__all__ = [
    "KERNEL_CODE",
    "ORIENTATIONS",
    "TRANSFORMS",
    "Explanation",
    "checked_input",
    "compose",
    "explain",
    "relative",
]


@dataclass(frozen=True)
class Explanation:
    """How ``expected`` relates to ``actual``; ``str()`` is the message. See the module doc."""

    explained: bool
    transform: str | None
    offset: tuple[int, int]
    boundary: tuple[str, str] | None
    mode: tuple[str, str] | None
    precision: str
    message: str
    # A layer's paddings, (actual's, expected's), each ((top, bottom), (left, right)), when they
    # differ; None otherwise, and for 2-D results, whose padding is told by offset and mode.
    padding: tuple[Pad, Pad] | None = None

    def __str__(self) -> str:
        return self.message


def checked_input(value: np.ndarray, what: str) -> np.ndarray:
    """``value`` as an array explain() accepts (non-empty, 2-D or a layer's 4-D, real numbers),
    or ValueError / TypeError naming ``what``."""
    array = np.asarray(value)
    if array.ndim not in (2, 4) or array.size == 0:
        raise ValueError(
            f"{what} must be a non-empty 2-D array; got shape {array.shape} "
            "(or a layer's 4-D arrays: image (N, C_in, H, W), kernel (C_out, C_in // groups, "
            "kh, kw), results (N, C_out, H_out, W_out); explain one image of a 3-D batch at a "
            "time: result[b], image[b])"
        )
    if array.dtype.kind not in "iuf" and array.dtype.name != "bfloat16":
        raise TypeError(f"{what} dtype {array.dtype} is not a real number type")
    return array


def explain(
    actual: np.ndarray,
    expected: np.ndarray,
    image: np.ndarray,
    kernel: np.ndarray,
    spec: ConvSpec | None = None,
) -> Explanation:
    """Why ``expected`` differs from ``actual``, both computed from ``image`` and ``kernel``.

    Finds the kernel orientation, shift, boundary and output mode that relate the two results,
    classifies what is left (``exact``, ``rounding``, ``reduced``) and says it in a message with
    the scipy calls that reproduce each result. Unrelated or rescaled arrays are not explained;
    two arrays equal to within rounding are, even when they do not come from image and kernel.

    ``spec``: the stride, dilation and groups both results were computed with (a layer; see the
    module doc); its op, mode and boundary are what the search finds, so they are not read.
    """
    if spec is not None and not isinstance(spec, ConvSpec):
        raise TypeError(f"spec must be a convbench.ConvSpec or None, got {type(spec).__name__}")
    arrays = {
        "actual": checked_input(actual, "actual"),
        "expected": checked_input(expected, "expected"),
    }
    image, kernel = checked_input(image, "image"), checked_input(kernel, "kernel")
    if image.ndim == 4 or not (spec is None or spec.is_plain):
        return _explain_layer(arrays, image, kernel, spec or ConvSpec())
    if any(x.ndim != 2 for x in arrays.values()) or kernel.ndim != 2:
        shapes = ", ".join(f"{side} {x.shape}" for side, x in {**arrays, "kernel": kernel}.items())
        raise ValueError(
            f"a 2-D image {image.shape} needs a 2-D kernel and 2-D results; got {shapes}"
        )
    search = Search(image.astype(np.float64), kernel.astype(np.float64))
    wide = {side: x.astype(np.float64) for side, x in arrays.items()}
    located = {side: search.locate(x) for side, x in wide.items()}
    found = related(located, wide)
    if found is not None:
        fits, relation = found
        left = residual(arrays, fits, search.terms, image.shape)
        words = message.explained(arrays, fits, relation, left, search.terms)
        return Explanation(
            True,
            relation.transform,
            relation.offset,
            relation.boundary,
            relation.mode,
            left.precision,
            words,
        )
    equal = message.plainly_equal(arrays, wide, search.terms)
    if equal is not None:
        return _without_structure(True, *equal)
    words = message.unexplained(arrays, wide, located, search, kernel.shape)
    return _without_structure(False, "unknown", words)


def _explain_layer(
    arrays: dict[str, np.ndarray], image: np.ndarray, kernel: np.ndarray, spec: ConvSpec
) -> Explanation:
    """explain() for a layer, or for 2-D inputs at a stride or dilation (as N = C = 1)."""
    planes = image.ndim == 2
    if planes:
        image, kernel = image[None, None], kernel[None, None]
        arrays = {side: x[None, None] if x.ndim == 2 else x for side, x in arrays.items()}
    check_shapes(image.shape, kernel.shape, spec)
    search = LayerSearch(image, kernel.astype(np.float64), spec)
    located = {side: search.locate(x) for side, x in arrays.items()}
    # The first image of each in float64: what the precision is judged on (a batch of a layer's
    # outputs in float64 would be hundreds of MiB).
    first = {side: x[:1].astype(np.float64) for side, x in arrays.items()}
    shapes = {side: x.shape for side, x in arrays.items()}
    found = layer.related(
        located, shapes, {side: x[0] for side, x in first.items()}, search.geometry
    )
    if found is not None:
        fits, relation = found
        left = layer.residual(arrays, fits, search.terms)
        words = message.layer_explained(arrays, fits, relation, left, search.geometry, planes)
        return Explanation(
            explained=True,
            transform=relation.transform,
            offset=relation.offset,
            boundary=None,
            mode=relation.mode,
            precision=left.precision,
            message=words,
            padding=relation.padding,
        )
    # Rarely reached (results that are no candidate of this layer): the whole arrays compared.
    whole = {side: x.astype(np.float64) for side, x in arrays.items()}
    equal = message.plainly_equal(arrays, whole, search.terms)
    if equal is not None:
        return _without_structure(True, *equal)
    words = message.layer_unexplained(arrays, first, located, search)
    return _without_structure(False, "unknown", words)


def _without_structure(explained: bool, precision: str, words: str) -> Explanation:
    return Explanation(explained, None, (0, 0), None, None, precision, words)
