"""What the search found, in words: the causes, the precision, and the scipy calls that
reproduce each result."""

from __future__ import annotations

import textwrap

import numpy as np

from convbench.agreement import tolerance
from convbench.explain.search import (
    Fit,
    Located,
    Relation,
    Residual,
    Search,
    compose,
    output_shapes,
    rank,
    rel_error,
    rounding_level,
    scaled,
)
from convbench.spec import ConvSpec

KERNEL_CODE = {
    "identity": "kernel",
    "rot180": "np.rot90(kernel, 2)",
    "transpose": "kernel.T",
    "antitranspose": "np.rot90(kernel, 2).T",
    "flipud": "np.flipud(kernel)",
    "fliplr": "np.fliplr(kernel)",
    "rot90": "np.rot90(kernel)",
    "rot270": "np.rot90(kernel, 3)",
}
_LOW_DTYPES = ("float16", "bfloat16")
_OP_WORDS = {"correlate": "a cross-correlation", "convolve": "a convolution"}
_BOUNDARY_WORDS = {
    "fill": "pads with zeros (boundary='fill')",
    "wrap": "wraps around periodically (boundary='wrap': numpy 'wrap', torch 'circular')",
    "symm": "mirrors the image with the edge sample repeated (boundary='symm': numpy "
    "'symmetric', tf.pad SYMMETRIC; torch's 'reflect' is not this)",
}
_REST_WORDS = {
    "transpose": (
        "a transposed kernel",
        "expected's kernel is actual's transposed: rows and columns swapped, as `.T` does "
        "(a stray .T, or weights read as (width, height)).",
    ),
    "flipud": (
        "a kernel flipped upside down",
        "expected's kernel is actual's with its rows in reverse order (np.flipud): half of a "
        "convolution's 180-degree rotation, as from an image or weights stored bottom-up.",
    ),
    "rot90": (
        "a kernel turned by 90 degrees",
        "expected's kernel is actual's rotated a quarter turn (np.rot90), a transpose plus a "
        "flip: usually weights laid out in another axis order.",
    ),
}


def scipy_call(fit: Fit, shape: tuple[int, int]) -> tuple[str, str]:
    """(op, code) of the scipy.signal call that gives the located result, simplest kernel first."""
    a, b = fit.kshape
    options = []
    for op in ("correlate", "convolve"):
        name = fit.orientation if op == "correlate" else compose(fit.orientation, "rot180")
        pad = ConvSpec(op=op, mode=fit.mode).padding(fit.kshape)
        if (fit.top, fit.left) == (a - 1 - pad.top, b - 1 - pad.left):
            options.append((rank(name), op, name))
    border = fit.sees_border and fit.boundary != "fill"
    boundary = f", boundary='{fit.boundary}'" if border else ""
    if options:
        _, op, name = min(options)
        return op, f"scipy.signal.{op}2d(image, {KERNEL_CODE[name]}, mode='{fit.mode}'{boundary})"
    rows, cols = f"{fit.top}:{fit.top + shape[0]}", f"{fit.left}:{fit.left + shape[1]}"
    code = KERNEL_CODE[fit.orientation]
    return (
        "correlate",
        f"scipy.signal.correlate2d(image, {code}, mode='full'{boundary})[{rows}, {cols}]",
    )


def _wrap(text: str) -> str:
    return textwrap.fill(
        text, width=100, initial_indent="- ", subsequent_indent="  ", break_on_hyphens=False
    )


def _causes(
    relation: Relation, calls: dict[str, tuple[str, str]], fits: dict[str, Fit], shapes
) -> list[tuple[str, str]]:
    """(headline phrase, explanation) for each structural difference."""
    causes = []
    transform = relation.transform or "identity"
    flip = transform in ("rot180", "antitranspose", "fliplr", "rot270")
    rest = compose(transform, "rot180") if flip else transform
    if flip:
        (op_a, _), (op_e, _) = calls["actual"], calls["expected"]
        who = (
            f"actual is {_OP_WORDS[op_a]} and expected {_OP_WORDS[op_e]}"
            if op_a != op_e
            else "expected's kernel is actual's rotated 180 degrees, which is what convolving "
            "instead of cross-correlating does"
        )
        causes.append(
            (
                "cross-correlation vs convolution",
                f"Cross-correlation vs convolution: {who}. A convolution "
                "(scipy.signal.convolve2d) rotates the kernel 180 degrees before sliding it; a "
                "cross-correlation (scipy.signal.correlate2d, and what tf.nn.conv2d, Keras Conv2D "
                "and torch.nn.functional.conv2d compute despite the name) does not.",
            )
        )
    if rest != "identity":
        headline, words = _REST_WORDS[rest]
        causes.append((headline, f"{headline[0].upper()}{headline[1:]}: {words}"))
    if flip and rest != "identity":
        code = KERNEL_CODE[transform].replace("kernel", "k")
        causes.append(
            (
                "",
                f"Together: for actual's kernel k, expected used {code} "
                f"(transform='{transform}'), so rotating the kernel 180 degrees alone fixes only "
                "the convolution part.",
            )
        )
    if relation.mode:
        (m_a, m_e), (dy, dx) = relation.mode, relation.offset
        causes.append(
            (
                f"'{m_a}' vs '{m_e}' output size",
                f"Output size: actual is the '{m_a}' result {shapes['actual']} and expected the "
                f"'{m_e}' one {shapes['expected']} ('full' keeps every output that overlaps the "
                "image, 'same' the image's size, 'valid' only windows inside it); "
                f"expected[i + {dy}, j + {dx}] lines up with actual[i, j].",
            )
        )
    elif any(relation.offset):
        dy, dx = relation.offset
        shifted = [(d, k) for d, k in zip(relation.offset, fits["actual"].kshape, strict=True) if d]
        even_same = fits["actual"].mode == "same" and all(
            abs(d) == 1 and k % 2 == 0 for d, k in shifted
        )
        why = (
            "for an even kernel size K, correlate2d 'same' and the framework 'SAME' padding "
            "(TensorFlow, Keras, torch) pad (K-1)//2 before and K//2 after, while convolve2d "
            "'same' pads K//2 before: their windows sit one pixel apart, so rotating the "
            "kernel alone cannot make them match."
            if even_same
            else "the two were padded or cropped differently."
        )
        causes.append(
            (
                f"a shift of ({dy}, {dx}) pixels",
                f"A shift: expected[i + {dy}, j + {dx}] lines up with actual[i, j]; {why}",
            )
        )
    if relation.boundary:
        b_a, b_e = relation.boundary
        causes.append(
            (
                f"a different border ('{b_a}' vs '{b_e}')",
                "Border: the results agree away from the edges; there actual "
                f"{_BOUNDARY_WORDS[b_a]} and expected {_BOUNDARY_WORDS[b_e]}.",
            )
        )
    return causes


def _residual_words(arrays: dict[str, np.ndarray], left: Residual, terms: int) -> tuple[str, str]:
    """(headline phrase, explanation) for what the structure leaves."""
    error, level = left.error, left.level
    rounding = tolerance(level, terms)
    if left.precision == "exact":
        return "nothing else: the numbers are identical", ""
    if left.precision == "rounding":
        return (
            f"{level} rounding (max_rel {error:.2g})",
            f"Precision: what remains (max_rel {error:.2g}) is {level} accumulation rounding "
            f"(within {rounding:.2g} for {terms}-term sums).",
        )
    low = [(side, x.dtype.name) for side, x in arrays.items() if x.dtype.name in _LOW_DTYPES]
    if low:
        side, which = low[0]
        cause = (
            f"{side} is stored in {which}, whose own rounding this is: compare it with "
            f"convbench.agreement(..., precision='{which}')."
        )
    else:
        which = "TF32/float16" if error <= tolerance("tf32", terms) else "bfloat16"
        cause = (
            "float32 work on tensor cores with TF32 (turn it off with "
            "torch.backends.cudnn.allow_tf32 = False or "
            "tf.config.experimental.enable_tensor_float_32_execution(False)), or float16/bfloat16 "
            "arithmetic inside. Compare such results with convbench.agreement(..., "
            "precision='tf32')."
        )
    return (
        f"reduced precision at {which} level (max_rel {error:.2g})",
        f"Reduced precision: what remains (max_rel {error:.2g}) is more than {level} rounding "
        f"({rounding:.2g}) and of {which} size: {cause}",
    )


def explained(
    arrays: dict[str, np.ndarray],
    fits: dict[str, Fit],
    relation: Relation,
    left: Residual,
    terms: int,
) -> str:
    """The message for two results related by ``relation``, with ``left`` remaining."""
    shapes = {side: x.shape for side, x in arrays.items()}
    calls = {side: scipy_call(fit, shapes[side]) for side, fit in fits.items()}
    causes = _causes(relation, calls, fits, shapes)
    residual, residual_why = _residual_words(arrays, left, terms)
    headline = [phrase for phrase, _ in causes if phrase]
    if headline:
        summary = f"Explained: {', '.join(headline)}; beyond that, {residual}."
    else:
        summary = f"Explained: the same computation; {residual}."
    width = max(len(side) for side in calls)
    lines = [summary]
    why = [_wrap(text) for _, text in causes] + ([_wrap(residual_why)] if residual_why else [])
    if why:
        lines += ["", "Why:", *why]
    lines += [
        "",
        "Fix: these scipy calls reproduce each result (import numpy as np, scipy.signal):",
    ]
    lines += [f"  {side:<{width}} = {code}" for side, (_, code) in calls.items()]
    if causes:
        lines.append("so use actual's call in place of expected's to get actual's numbers.")
    return "\n".join(lines)


def plainly_equal(
    arrays: dict[str, np.ndarray], wide: dict[str, np.ndarray], terms: int
) -> tuple[str, str] | None:
    """(precision, message) when the two results are equal up to their rounding, whatever they
    were computed from; else None. ``wide``: the two in float64."""
    if arrays["actual"].shape != arrays["expected"].shape:
        return None
    level = rounding_level(arrays)
    error = rel_error(wide["actual"], wide["expected"])
    if error > tolerance(level, terms):
        return None
    if error == 0:
        return "exact", "Explained: the two results are identical; nothing to explain."
    return (
        "rounding",
        f"Explained: the two results are equal up to {level} rounding (max_rel {error:.2g}); "
        "nothing to explain.",
    )


def unexplained(
    arrays: dict[str, np.ndarray],
    wide: dict[str, np.ndarray],
    located: dict[str, Located],
    search: Search,
    kernel_shape: tuple[int, int],
) -> str:
    """The message when no relation accounts for the difference: what each result is closest to."""
    image_shape = search.image.shape
    lines = ["Not explained: no known relation accounts for the difference."]
    for side, found in located.items():
        x = arrays[side]
        fit = found.fits[0] if found.fits else found.closest
        if fit is None:
            sizes = ", ".join(
                f"{mode} {shape}"
                for mode, shape in output_shapes(image_shape, kernel_shape).items()
            )
            words = (
                f"{side} has shape {x.shape}, not a convolution size for image {image_shape} and "
                f"kernel {kernel_shape}: {sizes}."
            )
            lines.append(_wrap(words))
            continue
        call = scipy_call(fit, x.shape)[1]
        factor = scaled(wide[side], fit)
        if factor is not None:
            words = (
                f"{side} is {call} multiplied by {factor:.4g}: a rescaled result, not a "
                "convolution convention nor lost precision."
            )
        elif found.fits:
            words = f"{side} is {call}."
        else:
            words = (
                f"{side} is no orientation, boundary, mode or shift of this convolution: the "
                f"closest, {call}, is off by max_rel {fit.error:.2g} (even bfloat16 arithmetic "
                f"stays within {search.cap:.2g})."
            )
        lines.append(_wrap(words))
    lines.append("Check that both results were computed from this image and kernel.")
    return "\n".join(lines)
