"""The ops full CNNs need besides GEMM and convolution (ONNX semantics, NCHW): pooling,
softmax, broadcasting add/mul, concat, LRN, reshape and transpose."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from hwbench.errors import ArgumentError, DTypeError
from hwbench.kernels.spec.arguments import (
    FLOAT32,
    INT8_DTYPES,
    LAYOUT_DTYPES,
    array_shape,
    broadcast,
    check_axis,
    check_dtype,
    check_flag,
    check_nonempty,
    check_rank,
    check_real,
    int_pair,
    normalize_padding,
)


def _pool_out(size: int, pad_begin: int, pad_end: int, span: int, stride: int,
              ceil_mode: bool) -> int:
    """ONNX's pooled length: floor, or ceil minus the window that would start past the input
    (a window must start inside the input or its begin padding)."""
    room = size + pad_begin + pad_end - span
    if not ceil_mode:
        return room // stride + 1
    out = -(-room // stride) + 1
    if (out - 1) * stride >= size + pad_begin:
        out -= 1
    return out


@dataclass(frozen=True)
class PoolProblem:
    """ONNX MaxPool / AveragePool / GlobalAveragePool on NCHW float32.

    ``padding`` is the explicit ONNX padding; in ceil mode the last window may reach past
    it by ``ceil_extra`` more pixels at the end, which never count (not even with
    ``count_include_pad``, as in ONNX's reference and PyTorch).
    """

    n: int
    c: int
    h: int
    w: int
    kernel: tuple[int, int]
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int, int, int] = (0, 0, 0, 0)
    dilation: tuple[int, int] = (1, 1)
    ceil_mode: bool = False
    kind: str = "max"  # "max" or "avg"
    count_include_pad: bool = False

    @property
    def span(self) -> tuple[int, int]:
        """Extent of a dilated window in pixels."""
        return (self.dilation[0] * (self.kernel[0] - 1) + 1,
                self.dilation[1] * (self.kernel[1] - 1) + 1)

    @property
    def out_h(self) -> int:
        return _pool_out(self.h, self.padding[0], self.padding[2], self.span[0], self.stride[0],
                         self.ceil_mode)

    @property
    def out_w(self) -> int:
        return _pool_out(self.w, self.padding[1], self.padding[3], self.span[1], self.stride[1],
                         self.ceil_mode)

    @property
    def output_shape(self) -> tuple[int, int, int, int]:
        return (self.n, self.c, self.out_h, self.out_w)

    @property
    def ceil_extra(self) -> tuple[int, int]:
        """Pixels past the end padding that the last window reaches in ceil mode (h, w)."""
        eh = (self.out_h - 1) * self.stride[0] + self.span[0] - (
            self.h + self.padding[0] + self.padding[2])
        ew = (self.out_w - 1) * self.stride[1] + self.span[1] - (
            self.w + self.padding[1] + self.padding[3])
        return (max(0, eh), max(0, ew))

    @property
    def floor_end_padding(self) -> tuple[int, int]:
        """The least end padding (h, w) for which the usual floor formula (oneDNN's,
        cuDNN's) gives this output size: ONNX's ceil mode folded into the padding. It is
        larger than ``padding`` where ceil mode overhangs it (the overhang never counts) and
        smaller where the last windows never reach it (oneDNN refuses padding >= kernel)."""
        pads = []
        for axis in (0, 1):
            size, begin = (self.h, self.padding[0]) if axis == 0 else (self.w, self.padding[1])
            out, stride = (self.out_h, self.out_w)[axis], self.stride[axis]
            # the last window ends at size + low: any pad in [low, low + stride - 1] floors
            # to `out` windows, and low + stride - 1 >= 0 always
            low = (out - 1) * stride + self.span[axis] - size - begin
            pads.append(max(0, low))
        return (pads[0], pads[1])

    def window_counts(self, axis: int) -> np.ndarray:
        """Per output position along ``axis`` (0: h, 1: w), how many taps an average divides
        by: taps inside the input, or inside input + explicit padding with
        ``count_include_pad``. Taps in the ceil-mode overhang never count."""
        size, begin, end = ((self.h, self.padding[0], self.padding[2]) if axis == 0
                            else (self.w, self.padding[1], self.padding[3]))
        out, stride = (self.out_h, self.out_w)[axis], self.stride[axis]
        k, d = self.kernel[axis], self.dilation[axis]
        lo, hi = (-begin, size + end) if self.count_include_pad else (0, size)
        taps = np.arange(out)[:, None] * stride - begin + np.arange(k)[None, :] * d
        return ((taps >= lo) & (taps < hi)).sum(axis=1)

    @property
    def flops(self) -> int:
        return self.n * self.c * self.out_h * self.out_w * self.kernel[0] * self.kernel[1]

    @property
    def output_bytes(self) -> int:
        """Bytes of the result."""
        return 4 * self.n * self.c * self.out_h * self.out_w

    @property
    def bytes(self) -> int:
        return 4 * (self.n * self.c * self.h * self.w + self.n * self.c * self.out_h * self.out_w)


def _check_pool(op: str, kind: str, x: Any, kernel: Any, stride: Any, padding: Any,
                dilation: Any, ceil_mode: Any, count_include_pad: Any,
                dtypes: tuple[np.dtype, ...] = (FLOAT32,)) -> PoolProblem:
    sx = array_shape(x, "x", op)
    check_rank(sx, 4, "x", op)
    check_dtype(x, dtypes, "x", op)
    kernels = int_pair(kernel, "kernel", op, minimum=1)
    strides = int_pair(1 if stride is None else stride, "stride", op, minimum=1)
    pads = normalize_padding(padding, op)
    dilations = int_pair(dilation, "dilation", op, minimum=1)
    ceil = check_flag(ceil_mode, "ceil_mode", op)
    include = check_flag(count_include_pad, "count_include_pad", op)
    n, c, h, w = sx
    p = PoolProblem(n, c, h, w, kernels, strides, pads, dilations, ceil, kind, include)
    padded = (h + pads[0] + pads[2], w + pads[1] + pads[3])
    if p.span[0] > padded[0] or p.span[1] > padded[1]:
        raise ArgumentError(
            f"{op}: argument 'kernel' {kernels} (dilation {dilations}, so a window spans "
            f"{p.span}) is larger than argument 'x' padded: {padded}")
    # A window holding padding only has no defined max (and avg excluding padding is 0/0).
    inside = replace(p, count_include_pad=False)
    for axis, name in ((0, "h"), (1, "w")):
        empty = _empty_windows(inside, axis)
        if empty.size:
            raise ArgumentError(
                f"{op}: argument 'padding' {padding!r} leaves output {name}={int(empty[0])} "
                f"with a window of padding only (kernel {kernels}, stride {strides}, "
                f"dilation {dilations}, x.shape={sx})")
    return p


def _empty_windows(p: PoolProblem, axis: int) -> np.ndarray:
    """Output positions along ``axis`` whose window holds no input pixel.

    Window starts only grow, so where the dilation is no longer than the input (no window
    can jump over it) only the first and the last window can be empty: checking those two
    keeps a huge padding or input (a broadcast view) from making an array of every
    window. Otherwise (or for few windows) every window is counted."""
    size = (p.h, p.w)[axis]
    out = (p.out_h, p.out_w)[axis]
    if p.dilation[axis] > size and out <= 1 << 20 or out <= 2:
        return np.flatnonzero(p.window_counts(axis) == 0)
    begin, stride = p.padding[axis], p.stride[axis]
    k, d = p.kernel[axis], p.dilation[axis]
    empty = []
    for i in (0, out - 1):
        first = i * stride - begin
        j = max(0, -(first // d))  # the first tap at or after pixel 0: ceil(-first / d)
        if not (j < k and first + j * d < size):
            empty.append(i)
    return np.asarray(empty, np.int64)


def check_max_pool2d(x: Any, kernel: Any, stride: Any = None, padding: Any = 0,
                     dilation: Any = 1, ceil_mode: bool = False,
                     codes: bool = False) -> PoolProblem:
    """Validate ONNX MaxPool (2-D, NCHW float32; 8-bit codes with ``codes``, whose max is
    the code of the max); ``stride`` defaults to 1 as in ONNX."""
    return _check_pool("max_pool2d", "max", x, kernel, stride, padding, dilation, ceil_mode,
                       False, INT8_DTYPES if codes else (FLOAT32,))


def check_avg_pool2d(x: Any, kernel: Any, stride: Any = None, padding: Any = 0,
                     ceil_mode: bool = False, count_include_pad: bool = False) -> PoolProblem:
    """Validate ONNX AveragePool (2-D, NCHW float32, no dilation)."""
    return _check_pool("avg_pool2d", "avg", x, kernel, stride, padding, 1, ceil_mode,
                       count_include_pad)


def check_global_avg_pool2d(x: Any) -> PoolProblem:
    """Validate ONNX GlobalAveragePool: an average pool whose kernel is the whole image."""
    op = "global_avg_pool2d"
    sx = array_shape(x, "x", op)
    check_rank(sx, 4, "x", op)
    check_dtype(x, (FLOAT32,), "x", op)
    n, c, h, w = sx
    return PoolProblem(n, c, h, w, (h, w), kind="avg")


@dataclass(frozen=True)
class SoftmaxProblem:
    """ONNX Softmax (opset >= 13): along one axis; ~5 FLOPs per element (max, subtract,
    exp, sum, divide)."""

    shape: tuple[int, ...]
    axis: int

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def flops(self) -> int:
        return 5 * self.size

    @property
    def output_bytes(self) -> int:
        """Bytes of the result."""
        return 4 * self.size

    @property
    def bytes(self) -> int:
        return 8 * self.size


def check_softmax(x: Any, axis: Any = -1) -> SoftmaxProblem:
    op = "softmax"
    shape = array_shape(x, "x", op)
    if not shape:
        raise ArgumentError(f"{op}: argument 'x' must have rank >= 1, got shape {shape}")
    check_nonempty(shape, "x", op)
    check_dtype(x, (FLOAT32,), "x", op)
    return SoftmaxProblem(shape, check_axis(axis, len(shape), op))


@dataclass(frozen=True)
class BinaryProblem:
    """ONNX Add / Mul with multidirectional (NumPy) broadcasting; 1 FLOP per output."""

    a_shape: tuple[int, ...]
    b_shape: tuple[int, ...]
    shape: tuple[int, ...]  # the broadcast output shape
    op: str = "add"

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def flops(self) -> int:
        return self.size

    @property
    def output_bytes(self) -> int:
        """Bytes of the result."""
        return 4 * self.size

    @property
    def bytes(self) -> int:
        return 4 * (math.prod(self.a_shape) + math.prod(self.b_shape) + self.size)


def check_binary(a: Any, b: Any, op: str) -> BinaryProblem:
    sa, sb = array_shape(a, "a", op), array_shape(b, "b", op)
    check_nonempty(sa, "a", op)
    check_nonempty(sb, "b", op)
    check_dtype(a, (FLOAT32,), "a", op)
    check_dtype(b, (FLOAT32,), "b", op)
    shape = broadcast((sa, sb), ("a", "b"), op)
    return BinaryProblem(sa, sb, shape, op)


@dataclass(frozen=True)
class ConcatProblem:
    """ONNX Concat: ``shapes`` joined along ``axis``; no FLOPs, bytes read and written.
    Any layout element type (``LAYOUT_DTYPES``), one for every item: ``dtype``."""

    shapes: tuple[tuple[int, ...], ...]
    axis: int
    dtype: np.dtype = FLOAT32

    @property
    def shape(self) -> tuple[int, ...]:
        first = self.shapes[0]
        total = sum(s[self.axis] for s in self.shapes)
        return first[:self.axis] + (total,) + first[self.axis + 1:]

    @property
    def flops(self) -> int:
        return 0

    @property
    def output_bytes(self) -> int:
        """Bytes of the result."""
        return self.dtype.itemsize * math.prod(self.shape)

    @property
    def bytes(self) -> int:
        return 8 * math.prod(self.shape)


def check_concat(arrays: Any, axis: Any) -> ConcatProblem:
    op = "concat"
    if not isinstance(arrays, (list, tuple)):
        raise ArgumentError(
            f"{op}: argument 'arrays' must be a list or tuple of arrays, got "
            f"{type(arrays).__name__}")
    if not arrays:
        raise ArgumentError(f"{op}: argument 'arrays' is empty: nothing to concatenate")
    shapes = []
    first_dtype = None
    for i, arr in enumerate(arrays):
        shape = array_shape(arr, "arrays", op)
        check_nonempty(shape, "arrays", op)
        dtype = check_dtype(arr, LAYOUT_DTYPES, "arrays", op)
        first_dtype = dtype if first_dtype is None else first_dtype
        if dtype != first_dtype:
            raise DTypeError(f"{op}: argument 'arrays' item {i} has dtype {dtype}, item 0 "
                             f"{first_dtype}: every item must have one dtype")
        if not shape:
            raise ArgumentError(f"{op}: argument 'arrays' item {i} is 0-d: it has no axis")
        shapes.append(shape)
    first = shapes[0]
    ax = check_axis(axis, len(first), op)
    for i, shape in enumerate(shapes[1:], start=1):
        if len(shape) != len(first) or any(
                s != f for d, (s, f) in enumerate(zip(shape, first, strict=True)) if d != ax):
            raise ArgumentError(
                f"{op}: argument 'arrays' item {i} has shape {shape}, item 0 has {first}: "
                f"they must have one rank and agree on every axis but axis {ax}")
    return ConcatProblem(tuple(shapes), ax, first_dtype)


@dataclass(frozen=True)
class LrnProblem:
    """ONNX LRN across channels on NCHW float32:
    ``y = x / (bias + alpha / size * sum of x**2 over `size` channels)**beta``.

    ~(size + 4) FLOPs per element: the window's squares and sum, then scale, add, power,
    divide.
    """

    shape: tuple[int, int, int, int]
    size: int
    alpha: float = 1e-4
    beta: float = 0.75
    bias: float = 1.0

    @property
    def elements(self) -> int:
        return math.prod(self.shape)

    @property
    def flops(self) -> int:
        return (self.size + 4) * self.elements

    @property
    def output_bytes(self) -> int:
        """Bytes of the result."""
        n, c, h, w = self.shape  # the output, and the squares padded by the window
        return 4 * self.elements + 4 * n * (c + self.size - 1) * h * w

    @property
    def bytes(self) -> int:
        return 8 * self.elements


def check_lrn(x: Any, size: Any, alpha: Any = 1e-4, beta: Any = 0.75,
              bias: Any = 1.0) -> LrnProblem:
    """Validate ONNX LRN. ``size`` must be odd: an even window is not centred (ONNX puts the
    extra channel after, oneDNN before), so no backend could agree with the reference."""
    op = "lrn"
    sx = array_shape(x, "x", op)
    check_rank(sx, 4, "x", op)
    check_dtype(x, (FLOAT32,), "x", op)
    if (not isinstance(size, (int, np.integer)) or isinstance(size, bool) or size < 1
            or size % 2 == 0):
        raise ArgumentError(f"{op}: argument 'size' must be a positive odd int, got {size!r}")
    a, b, k = check_real(alpha, "alpha", op), check_real(beta, "beta", op), check_real(
        bias, "bias", op)
    if a < 0:
        raise ArgumentError(f"{op}: argument 'alpha' must be >= 0, got {alpha!r}")
    if k <= 0:
        raise ArgumentError(f"{op}: argument 'bias' must be > 0, got {bias!r}")
    return LrnProblem(sx, int(size), a, b, k)  # type: ignore[arg-type]


@dataclass(frozen=True)
class LayoutProblem:
    """Reshape (``perm`` None) or Transpose: no FLOPs; bytes read and written."""

    in_shape: tuple[int, ...]
    shape: tuple[int, ...]
    perm: tuple[int, ...] | None = None
    itemsize: int = 4

    @property
    def flops(self) -> int:
        return 0

    @property
    def output_bytes(self) -> int:
        """Bytes of the result."""
        return self.itemsize * math.prod(self.shape)

    @property
    def bytes(self) -> int:
        return 2 * self.itemsize * math.prod(self.shape)


def check_reshape(x: Any, shape: Any) -> LayoutProblem:
    """Validate a reshape: ``shape`` holds positive ints and at most one -1 (inferred).

    0 is not special (ONNX's "copy this dimension" is resolved by the graph layer).
    """
    op = "reshape"
    sx = array_shape(x, "x", op)
    check_nonempty(sx, "x", op)
    dtype = check_dtype(x, LAYOUT_DTYPES, "x", op)
    if isinstance(shape, np.ndarray) and shape.ndim == 1 and shape.dtype.kind in "iu":
        shape = shape.tolist()
    if not isinstance(shape, (tuple, list)) or not all(
            isinstance(d, (int, np.integer)) and not isinstance(d, bool) for d in shape):
        raise ArgumentError(f"{op}: argument 'shape' must be a tuple of ints, got {shape!r}")
    dims = tuple(int(d) for d in shape)
    if dims.count(-1) > 1:
        raise ArgumentError(f"{op}: argument 'shape' {dims} has more than one -1")
    if any(d < 1 and d != -1 for d in dims):
        raise ArgumentError(
            f"{op}: argument 'shape' {dims} must hold positive ints and at most one -1")
    size = math.prod(sx)
    known = math.prod([d for d in dims if d != -1])
    if -1 in dims:
        if size % known:
            raise ArgumentError(
                f"{op}: argument 'shape' {dims} cannot hold the {size} elements of x.shape={sx}")
        dims = tuple(size // known if d == -1 else d for d in dims)
    elif known != size:
        raise ArgumentError(
            f"{op}: argument 'shape' {dims} has {known} elements, x.shape={sx} has {size}")
    return LayoutProblem(sx, dims, None, dtype.itemsize)


def check_transpose(x: Any, perm: Any) -> LayoutProblem:
    """Validate a transpose; ``perm`` None reverses the axes (ONNX's default)."""
    op = "transpose"
    sx = array_shape(x, "x", op)
    check_nonempty(sx, "x", op)
    dtype = check_dtype(x, LAYOUT_DTYPES, "x", op)
    if perm is None:
        perm = tuple(reversed(range(len(sx))))
    if not isinstance(perm, (tuple, list)) or not all(
            isinstance(d, (int, np.integer)) and not isinstance(d, bool) for d in perm):
        raise ArgumentError(f"{op}: argument 'perm' must be a tuple of ints, got {perm!r}")
    axes = tuple(int(d) for d in perm)
    if sorted(axes) != list(range(len(sx))):
        raise ArgumentError(
            f"{op}: argument 'perm' {axes} is not a permutation of the {len(sx)} axes of "
            f"x.shape={sx}")
    return LayoutProblem(sx, tuple(sx[d] for d in axes), axes, dtype.itemsize)
