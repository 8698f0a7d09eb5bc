"""Python source a user can paste: the library call that computes a ``ConvSpec`` the way a backend
does (``Backend.call_source``).

The source expects two numpy arrays in scope, ``image`` and ``kernel``, and assigns the result to
``out``: a numpy array in the compute dtype. It carries its own imports and says in comments why
a kernel is rotated or an image padded by hand. What the backends' sources share lives here: the
dtype as numpy spells it, the inputs cast to it, the rotation of the kernel and the explicit
``np.pad``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from convbench.spec import NUMPY_PAD_MODE, ConvSpec

ROTATED = "kernel[::-1, ::-1]"


def literal(value: object) -> str:
    """``value`` as Python source, strings in double quotes as the rest of the source has them."""
    return f'"{value}"' if isinstance(value, str) else repr(value)


def numpy_dtype_source(dtype: str) -> str:
    """How the source names ``dtype``: ``np.float32``; ``ml_dtypes.bfloat16`` (numpy has none)."""
    return "ml_dtypes.bfloat16" if dtype == "bfloat16" else f"np.{dtype}"


@dataclass
class Source:
    """Python source being written: imports (each once, in order) and statements."""

    dtype: str
    imports: list[str] = field(default_factory=lambda: ["import numpy as np"])
    lines: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.dtype == "bfloat16":
            self.need("import ml_dtypes")

    def need(self, *imports: str) -> Source:
        self.imports.extend(line for line in imports if line not in self.imports)
        return self

    def add(self, *lines: str) -> Source:
        self.lines.extend(lines)
        return self

    @property
    def np_dtype(self) -> str:
        return numpy_dtype_source(self.dtype)

    def cast(self, expression: str, contiguous: bool = False, dtype: str | None = None) -> str:
        """``expression`` as an array of the compute dtype (or of ``dtype``), a fresh C-ordered
        copy when ``contiguous``: frameworks that take numpy memory as it lies refuse negative
        strides, and ``np.ascontiguousarray`` keeps them on an array with a size-1 axis (a
        reversed (1, W) row or 1x1 kernel counts as contiguous), where a copy never has them."""
        named = self.np_dtype if dtype is None else numpy_dtype_source(dtype)
        if contiguous:
            return f"np.array({expression}, dtype={named}, order='C')"
        return f"np.asarray({expression}, dtype={named})"

    def inputs(
        self,
        spec: ConvSpec,
        native_op: str,
        function: str,
        contiguous: bool = False,
        dtype: str | None = None,
    ) -> Source:
        """The inputs as ``function`` (whose own op is ``native_op``) takes them: why the kernel
        is rotated, when it is, then ``k``, the kernel, and ``x``, the image, each ``cast``."""
        self.add(*rotation_comment(spec, native_op, function))
        kernel = self.cast(kernel_source(spec, native_op), contiguous, dtype)
        return self.add(f"k = {kernel}", f"x = {self.cast('image', contiguous, dtype)}")

    def text(self) -> str:
        return "\n".join([*self.imports, "", *self.lines]) + "\n"


def kernel_source(spec: ConvSpec, native_op: str) -> str:
    """The kernel as a library whose own op is ``native_op`` must be given it: rotated 180
    degrees when the spec's op is the other one (convolve = correlate with the rotated kernel)."""
    return ROTATED if spec.op != native_op else "kernel"


def rotation_comment(spec: ConvSpec, native_op: str, function: str) -> list[str]:
    """Why the kernel is rotated, when it is; ``function`` as the source calls it."""
    if spec.op == native_op:
        return []
    verb = "convolves" if native_op == "convolve" else "cross-correlates"
    return [f"# {function} {verb}; to {spec.op}, the kernel is rotated 180 degrees"]


def _padding_words(spec: ConvSpec) -> str:
    if spec.boundary == "fill":
        return f"filled with {spec.fillvalue:g}"
    if spec.boundary == "wrap":
        return "wrap: periodic"
    return "symm: mirrored, the edge repeated"


def pad_lines(
    spec: ConvSpec,
    kernel_shape: tuple[int, int],
    batched: bool,
    why: str,
    source: str = "image",
    into: str = "x",
) -> list[str]:
    """``into = np.pad(source, ...)`` as ``spec.pad`` pads, after a comment giving ``why`` the
    library cannot pad so itself; the padded image then takes a 'valid' correlation."""
    widths = spec.padding(kernel_shape).numpy(batched)
    if spec.boundary == "fill":
        mode = 'mode="constant"'
        if spec.fillvalue:
            mode += f", constant_values={spec.fillvalue!r}"
    else:
        mode = f'mode="{NUMPY_PAD_MODE[spec.boundary]}"'
    return [
        f"# {why}:",
        f"# the image is padded for {spec.op} '{spec.mode}' ({_padding_words(spec)}), "
        "then run 'valid'",
        f"{into} = np.pad({source}, {widths}, {mode})",
    ]


def per_plane(call: str, batched: bool, xp: str = "np") -> str:
    """``call`` (one ``{}`` where the image goes) on ``x``, or on each plane of a batch
    (B, H, W) stacked back into one array, for a library that takes one plane at a time."""
    if not batched:
        return call.format("x")
    return f"{xp}.stack([{call.format('plane')} for plane in x])"
