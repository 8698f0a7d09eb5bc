"""What the search found, in words: the causes, the precision, and the scipy calls that
reproduce each result."""

from __future__ import annotations

import textwrap

import numpy as np

from convbench.agreement import tolerance
from convbench.explain.layer import (
    Geometry,
    LayerFit,
    LayerLocated,
    LayerRelation,
    LayerSearch,
    Pad,
    convention,
)
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
_CORRELATION_WORDS = (
    "A convolution (scipy.signal.convolve2d) rotates the kernel 180 degrees before sliding it; a "
    "cross-correlation (scipy.signal.correlate2d, and what tf.nn.conv2d, Keras Conv2D and "
    "torch.nn.functional.conv2d compute despite the name) does not."
)
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
                f"Cross-correlation vs convolution: {who}. {_CORRELATION_WORDS}",
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


# --- layers ------------------------------------------------------------------------------------


def _pixels(count: int) -> str:
    return f"{count} pixel" if count == 1 else f"{count} pixels"


def _pair_text(pair: tuple[int, int]) -> str:
    return str(pair[0]) if pair[0] == pair[1] else f"({pair[0]}, {pair[1]})"


def padding_words(pad: Pad) -> str:
    """How ``pad`` pads, e.g. '0 before and 1 after on both axes', '1 on both sides'."""
    rows, cols = pad
    if rows == cols:
        before, after = rows
        if before == after:
            return "nothing" if before == 0 else f"{before} on both sides"
        return f"{before} before and {after} after on both axes"

    def axis(which: str, before: int, after: int) -> str:
        return f"the {which} {before} before and {after} after"

    return f"{axis('rows', *rows)}, {axis('columns', *cols)}"


def torch_call(fit: LayerFit, geometry: Geometry) -> str:
    """A torch.nn.functional.conv2d call (``F``; tensors ``x``, ``w``) that gives ``fit``."""
    (top, bottom), (left, right) = fit.padding
    weights = "w.flip(-2, -1)" if fit.orientation == "rot180" else "w"
    source = "x"
    options = []
    if geometry.stride != (1, 1):
        options.append(f"stride={_pair_text(geometry.stride)}")
    if top == bottom and left == right:
        if top or left:
            options.append(f"padding={_pair_text((top, left))}")
    else:
        source = f"F.pad(x, ({left}, {right}, {top}, {bottom}))"
    if geometry.dilation != (1, 1):
        options.append(f"dilation={_pair_text(geometry.dilation)}")
    if geometry.groups != 1:
        options.append(f"groups={geometry.groups}")
    return f"F.conv2d({', '.join([source, weights, *options])})"


def _convention_words(fit: LayerFit, geometry: Geometry, outputs: tuple[int, int]) -> str:
    """Who pads as ``fit`` does ('as ... does'), and why it is asymmetric when it is ('' if
    nobody by name)."""
    mode = convention(fit, geometry, outputs)
    (top, bottom), (left, right) = fit.padding
    torch_name = (
        f"torch's padding={_pair_text((top, left))}" if top == bottom and left == right else ""
    )
    if mode == "same" and fit.orientation == "identity":
        words = "as TensorFlow's 'SAME' does (Keras padding='same', convbench mode='same')"
        if torch_name:
            return f"{words}, and here {torch_name} too"
        uneven = []
        for axis, (before, after) in enumerate(fit.padding):
            if before == after:
                continue
            size, step = geometry.image_shape[2 + axis], geometry.stride[axis]
            total, kernel = geometry.same_total(axis), geometry.kernel_shape[2 + axis]
            why = (
                f"at stride {step} a {size}-pixel axis gives ceil({size} / {step}) = "
                f"{outputs[axis]} outputs, whose windows need {_pixels(total)} of padding"
                if step > 1
                else f"a {kernel}-pixel kernel needs {_pixels(total)} of padding"
            )
            if why not in uneven:
                uneven.append(why)
        return f"{words}: {'; '.join(uneven)}, and 'SAME' puts the odd one after"
    if mode == "same":
        return "as convbench's mode='same' of a convolution does: 'SAME' mirrored, as the kernel is"
    if mode in ("valid", "full"):
        return f"as mode='{mode}' does"
    return f"as {torch_name} does" if torch_name else ""


def _alignment_words(relation: LayerRelation, geometry: Geometry, shapes) -> str:
    (pa, pe), (sh, sw) = relation.padding, geometry.stride
    if shapes["actual"][2:] != shapes["expected"][2:]:
        return (
            f"So the output sizes differ: actual has {shapes['actual'][2]}x{shapes['actual'][3]} "
            f"outputs per channel and expected {shapes['expected'][2]}x{shapes['expected'][3]}."
        )
    if any(relation.offset) or all(
        (e[0] - a[0]) % s == 0 for a, e, s in zip(pa, pe, (sh, sw), strict=True)
    ):
        dy, dx = relation.offset
        return (
            f"expected[..., i + {dy}, j + {dx}] lines up with actual[..., i, j]: the values "
            "agree away from the border."
        )
    apart = max(abs(e[0] - a[0]) for a, e in zip(pa, pe, strict=True))
    return (
        f"The outputs have the same size, but at stride {_pair_text(geometry.stride)} their "
        f"windows sit {_pixels(apart)} apart: no window of one is a window of the other, so "
        "every output differs, not only the border."
    )


def layer_explained(
    arrays: dict[str, np.ndarray],
    fits: dict[str, LayerFit],
    relation: LayerRelation,
    left: Residual,
    geometry: Geometry,
    planes: bool,
) -> str:
    """The message for two layer results related by ``relation``, with ``left`` remaining.
    ``planes``: the inputs were 2-D images (shown to torch as one image of one channel)."""
    shapes = {side: x.shape for side, x in arrays.items()}
    causes = []
    if relation.transform:
        causes.append(
            (
                "cross-correlation vs convolution",
                "Cross-correlation vs convolution: expected's kernel is actual's with every "
                "plane rotated 180 degrees, which is what convolving instead of "
                f"cross-correlating does. {_CORRELATION_WORDS}",
            )
        )
    if relation.padding:
        pa, pe = relation.padding
        named = {side: _convention_words(fits[side], geometry, shapes[side][2:]) for side in fits}
        said = {
            side: f"{side} pads {padding_words(fit.padding)}"
            + (f", {named[side]}" if named[side] else "")
            for side, fit in fits.items()
        }
        causes.append(
            (
                f"a different padding ({padding_words(pa)} vs {padding_words(pe)})",
                f"Padding: {said['actual']}. {said['expected'][0].upper()}{said['expected'][1:]}. "
                + _alignment_words(relation, geometry, shapes),
            )
        )
    residual_phrase, residual_why = _residual_words(arrays, left, geometry.terms)
    headline = [phrase for phrase, _ in causes]
    if headline:
        summary = f"Explained: {', '.join(headline)}; beyond that, {residual_phrase}."
    else:
        summary = f"Explained: the same computation; {residual_phrase}."
    lines = [summary]
    why = [_wrap(text) for _, text in causes] + ([_wrap(residual_why)] if residual_why else [])
    if why:
        lines += ["", "Why:", *why]
    tensors = "[None, None]" if planes else ""
    tensors_line = f"  x, w = torch.from_numpy(image){tensors}, torch.from_numpy(kernel){tensors}"
    if not causes:
        return "\n".join(
            [
                *lines,
                "",
                "Both are this call, in their own arithmetic (import torch; F = "
                "torch.nn.functional):",
                tensors_line,
                f"  {torch_call(fits['actual'], geometry)}",
            ]
        )
    width = max(len(side) for side in fits)
    lines += [
        "",
        "Fix: these calls reproduce each result (import torch; F = torch.nn.functional):",
        tensors_line,
        *(f"  {side:<{width}} = {torch_call(fit, geometry)}" for side, fit in fits.items()),
        "so use actual's call in place of expected's to get actual's numbers.",
    ]
    return "\n".join(lines)


def layer_unexplained(
    arrays: dict[str, np.ndarray],
    wide: dict[str, np.ndarray],
    located: dict[str, LayerLocated],
    search: LayerSearch,
) -> str:
    """The message when no padding or orientation accounts for the difference."""
    geometry = search.geometry
    lines = [
        "Not explained: no padding or kernel orientation of this layer accounts for the difference."
    ]
    for side, found in located.items():
        fit = found.fits[0] if found.fits else found.closest
        if fit is None:
            lines.append(_wrap(f"{side} has {found.problem}."))
            continue
        call = torch_call(fit, geometry)
        factor = scaled(wide[side][0], fit)
        if factor is not None:
            words = (
                f"{side} is {call} multiplied by {factor:.4g}: a rescaled result, not a padding "
                "nor lost precision."
            )
        elif found.fits:
            words = f"{side} is {call}."
        else:
            words = (
                f"{side} is no zero padding or kernel orientation of this layer: the closest, "
                f"{call}, is off by max_rel {fit.error:.2g} (even bfloat16 arithmetic stays "
                f"within {search.cap:.2g})."
            )
        lines.append(_wrap(words))
    layer = (
        f"stride {_pair_text(geometry.stride)}, dilation {_pair_text(geometry.dilation)} and "
        f"groups {geometry.groups}"
    )
    lines.append(
        f"Check that both results were computed from this image and kernel with {layer}, in "
        "NCHW layout with OIHW kernels."
    )
    return "\n".join(lines)
