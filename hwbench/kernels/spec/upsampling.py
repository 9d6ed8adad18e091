"""The upsampling family: ``conv_transpose2d`` (ONNX ConvTranspose, 1-D as 2-D with a unit
height) and ``resize`` (ONNX Resize / Upsample).

``check_conv_transpose2d`` returns a ``ConvTransposeProblem``: ONNX's output size per
spatial axis is ``stride·(in−1) + dilation·(kernel−1) + 1 − pad_begin − pad_end``, where
ONNX's ``output_padding`` is a negative end pad (the kernel takes it folded in:
``output_padding=``); pads may be negative (an ``output_shape`` larger than the natural size
extends the output with zeros plus bias). ``check_resize`` returns a ``ResizeProblem``
holding the output shape and one ``resize_tables.AxisTable`` per resized axis.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from hwbench.errors import ArgumentError
from hwbench.kernels.resize_tables import (
    ASPECT_POLICIES,
    COORDINATE_MODES,
    MODES,
    NEAREST_MODES,
    AxisTable,
    axis_table,
)
from hwbench.kernels.spec.arguments import (
    FLOAT32,
    LAYOUT_DTYPES,
    array_shape,
    check_dtype,
    check_nonempty,
    check_rank,
    check_real,
    int_pair,
)
from hwbench.kernels.spec.dense import ConvProblem
from hwbench.kernels.spec.tensor_ops import TakeProblem


@dataclass(frozen=True)
class ConvTransposeProblem:
    """ONNX ConvTranspose on NCHW input ``x`` (n, c, h, w) and weights (c, k/groups, r, s):
    ``k`` output channels; ``padding`` (h_begin, w_begin, h_end, w_end), any sign."""

    n: int
    c: int
    h: int
    w: int
    k: int
    r: int
    s: int
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int, int, int] = (0, 0, 0, 0)
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1
    has_bias: bool = False

    @property
    def full_h(self) -> int:
        """The rows every input pixel's taps reach (before the pads crop or extend)."""
        return self.stride[0] * (self.h - 1) + self.dilation[0] * (self.r - 1) + 1

    @property
    def full_w(self) -> int:
        return self.stride[1] * (self.w - 1) + self.dilation[1] * (self.s - 1) + 1

    @property
    def out_h(self) -> int:
        return self.full_h - self.padding[0] - self.padding[2]

    @property
    def out_w(self) -> int:
        return self.full_w - self.padding[1] - self.padding[3]

    @property
    def output_shape(self) -> tuple[int, int, int, int]:
        return (self.n, self.k, self.out_h, self.out_w)

    @property
    def weight_shape(self) -> tuple[int, int, int, int]:
        return (self.c, self.k // self.groups, self.r, self.s)

    @property
    def gradient_of(self) -> ConvProblem:
        """The convolution whose data gradient this is (input: the uncropped full output;
        its output: ``x``): the lowering is that conv's GEMM transposed, then col2im."""
        return ConvProblem(self.n, self.k, self.full_h, self.full_w, self.c, self.r, self.s,
                           self.stride, (0, 0, 0, 0), self.dilation, self.groups)

    @property
    def macs(self) -> int:
        return self.n * self.c * self.h * self.w * (self.k // self.groups) * self.r * self.s

    @property
    def flops(self) -> int:
        return 2 * self.macs + (math.prod(self.output_shape) if self.has_bias else 0)

    @property
    def output_bytes(self) -> int:
        return 4 * math.prod(self.output_shape)

    @property
    def bytes(self) -> int:
        weights = math.prod(self.weight_shape)
        return 4 * (self.n * self.c * self.h * self.w + weights) + self.output_bytes


def _signed_padding(padding: Any, op: str) -> tuple[int, int, int, int]:
    def ok(v: Any) -> bool:
        return isinstance(v, (int, np.integer)) and not isinstance(v, bool)

    if ok(padding):
        return (int(padding),) * 4  # type: ignore[return-value]
    if isinstance(padding, (tuple, list)) and len(padding) in (2, 4) and all(map(ok, padding)):
        pads = tuple(int(v) for v in padding)
        return pads * 2 if len(pads) == 2 else pads  # type: ignore[return-value]
    raise ArgumentError(f"{op}: argument 'padding' must be an int, an (h, w) pair or "
                        f"(h_begin, w_begin, h_end, w_end), got {padding!r}")


def check_conv_transpose2d(x: Any, w: Any, bias: Any = None, stride: Any = 1,
                           padding: Any = 0, dilation: Any = 1, groups: Any = 1,
                           output_padding: Any = 0) -> ConvTransposeProblem:
    """Validate a float32 NCHW ConvTranspose with weights (c, k/groups, r, s)."""
    op = "conv_transpose2d"
    sx, sw = array_shape(x, "x", op), array_shape(w, "w", op)
    check_dtype(x, (FLOAT32,), "x", op)
    check_dtype(w, (FLOAT32,), "w", op)
    check_rank(sx, 4, "x", op)
    check_rank(sw, 4, "w", op)
    check_nonempty(sx, "x", op)
    check_nonempty(sw, "w", op)
    strides = int_pair(stride, "stride", op, minimum=1)
    dilations = int_pair(dilation, "dilation", op, minimum=1)
    extra = int_pair(output_padding, "output_padding", op, minimum=0)
    pt, pl, pb, pr = _signed_padding(padding, op)
    if not isinstance(groups, (int, np.integer)) or isinstance(groups, bool) or groups < 1:
        raise ArgumentError(f"{op}: argument 'groups' must be a positive int, got {groups!r}")
    n, c, h, wd = sx
    cw, kg, r, s = sw
    if cw != c or c % groups:
        raise ArgumentError(f"{op}: argument 'w' has shape {sw}: its first dimension must be "
                            f"x's channels ({c}), divisible by groups={groups}")
    k = kg * int(groups)
    if bias is not None:
        check_dtype(bias, (FLOAT32,), "bias", op)
        if array_shape(bias, "bias", op) != (k,):
            raise ArgumentError(f"{op}: argument 'bias' must have shape {(k,)}, got "
                                f"{array_shape(bias, 'bias', op)}")
    p = ConvTransposeProblem(n, c, h, wd, k, r, s, strides,
                             (pt, pl, pb - extra[0], pr - extra[1]), dilations, int(groups),
                             bias is not None)
    if p.out_h < 1 or p.out_w < 1:
        raise ArgumentError(f"{op}: argument 'padding'={padding!r} leaves an output of "
                            f"{p.out_h}x{p.out_w}: it must be at least 1x1")
    return p


@dataclass(frozen=True, eq=False)
class ResizeProblem:
    """ONNX Resize of a ``dtype`` ``shape`` to ``output_shape``: ``tables`` in the order
    they apply, one per resized axis (an axis whose scale is 1 with nothing cropped has
    none), and ``extrapolation_value`` for tf_crop_and_resize's outside points. float32
    in every mode; nearest, which only picks values, on any layout type (``as_take``)."""

    shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    mode: str
    coordinate_mode: str
    nearest_mode: str
    cubic_coeff_a: float
    exclude_outside: bool
    antialias: bool
    extrapolation_value: float
    tables: tuple[AxisTable, ...]
    dtype: np.dtype = FLOAT32

    def as_take(self) -> TakeProblem:
        """Nearest mode as one axis-wise take (the kernel that moves every layout type):
        each resized axis reads its one weighted tap, -1 (``extrapolation_value``) where
        tf_crop_and_resize falls outside; the other axes read themselves."""
        if self.mode != "nearest":
            raise ArgumentError(f"resize: mode {self.mode!r} computes; only nearest is a take")
        tables = [np.arange(n, dtype=np.int64) for n in self.shape]
        for t in self.tables:
            rows = np.arange(t.out_len)
            pick = t.index[rows, np.argmax(t.weight, axis=1)].astype(np.int64)
            if t.outside is not None:
                pick = np.where(t.outside, -1, pick)
            tables[t.axis] = pick
        return TakeProblem("resize", self.shape, self.output_shape, self.output_shape,
                           tuple(tables), self.extrapolation_value, self.dtype.itemsize)

    def pass_shapes(self) -> list[tuple[int, ...]]:
        """The array's shape after each table applies."""
        shape, out = list(self.shape), []
        for t in self.tables:
            shape[t.axis] = t.out_len
            out.append(tuple(shape))
        return out

    @property
    def size(self) -> int:
        return math.prod(self.output_shape)

    @property
    def flops(self) -> int:
        passes = zip(self.tables, self.pass_shapes(), strict=True)
        return sum(2 * t.taps * math.prod(s) for t, s in passes)

    @property
    def output_bytes(self) -> int:
        return self.dtype.itemsize * self.size

    @property
    def bytes(self) -> int:
        return self.dtype.itemsize * math.prod(self.shape) + self.output_bytes


def _choice(value: Any, allowed: tuple[str, ...], name: str, op: str) -> str:
    value = value.decode() if isinstance(value, bytes) else value
    if value not in allowed:
        raise ArgumentError(f"{op}: argument '{name}' must be one of "
                            f"{', '.join(map(repr, allowed))}, got {value!r}")
    return value


def _numbers(value: Any, name: str, op: str, count: int) -> list[float]:
    try:
        values = [v.item() if isinstance(v, np.generic) else v
                  for v in np.asarray(value).ravel().tolist()]
    except Exception:  # noqa: BLE001 - any non-array is a bad argument
        values = None
    if values is None or len(values) != count:
        raise ArgumentError(f"{op}: argument '{name}' must hold {count} values (one per "
                            f"resized axis), got {value!r}")
    return values


def check_resize(x: Any, scales: Any = None, sizes: Any = None, *, mode: Any = "nearest",
                 coordinate_transformation_mode: Any = "half_pixel",
                 nearest_mode: Any = "round_prefer_floor", cubic_coeff_a: Any = -0.75,
                 exclude_outside: Any = False, extrapolation_value: Any = 0.0,
                 antialias: Any = False, roi: Any = None, axes: Any = None,
                 keep_aspect_ratio_policy: Any = "stretch") -> ResizeProblem:
    """Validate ONNX Resize (opset 19 semantics; older opsets are its subsets) on a float32
    array of any rank (nearest: any layout type, ``ResizeProblem.as_take``): exactly one
    of ``scales`` (> 0) and ``sizes`` (>= 1), one value
    per axis of ``axes`` (default: every axis); ``roi`` (tf_crop_and_resize only) the
    starts then the ends, as fractions of each axis."""
    op = "resize"
    shape = array_shape(x, "x", op)
    mode = _choice(mode, MODES, "mode", op)
    dtype = check_dtype(x, LAYOUT_DTYPES if mode == "nearest" else (FLOAT32,), "x", op)
    check_nonempty(shape, "x", op)
    rank = len(shape)
    if rank < 1:
        raise ArgumentError(f"{op}: argument 'x' must have at least one axis, got shape {shape}")
    ctm = _choice(coordinate_transformation_mode, COORDINATE_MODES,
                  "coordinate_transformation_mode", op)
    nearest = _choice(nearest_mode, NEAREST_MODES, "nearest_mode", op)
    policy = _choice(keep_aspect_ratio_policy, ASPECT_POLICIES, "keep_aspect_ratio_policy", op)
    a = check_real(cubic_coeff_a, "cubic_coeff_a", op)
    ev = check_real(extrapolation_value, "extrapolation_value", op)
    exclude, anti = bool(exclude_outside), bool(antialias)
    if anti and mode == "nearest":
        raise ArgumentError(f"{op}: argument 'antialias' applies to linear and cubic modes, "
                            f"not nearest")
    if axes is None:
        axes_list = list(range(rank))
    else:
        axes_list = []
        for v in np.asarray(axes).ravel().tolist():
            if not isinstance(v, int) or not -rank <= v < rank:
                raise ArgumentError(f"{op}: argument 'axes' holds {v!r}, out of range for "
                                    f"rank {rank}")
            axes_list.append(v % rank)
        if len(set(axes_list)) != len(axes_list):
            raise ArgumentError(f"{op}: argument 'axes' repeats an axis: {axes!r}")
    if (scales is None) == (sizes is None):
        raise ArgumentError(f"{op}: give exactly one of 'scales' and 'sizes'")
    factors = [1.0] * rank
    out = list(shape)
    if scales is not None:
        for axis, v in zip(axes_list, _numbers(scales, "scales", op, len(axes_list)),
                           strict=True):
            if not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
                raise ArgumentError(f"{op}: argument 'scales' must be finite and > 0, got {v!r}")
            factors[axis] = float(v)
            out[axis] = int(float(v) * shape[axis])
        if policy != "stretch":
            raise ArgumentError(f"{op}: argument 'keep_aspect_ratio_policy'={policy!r} "
                                f"applies to 'sizes', not 'scales'")
    else:
        for axis, v in zip(axes_list, _numbers(sizes, "sizes", op, len(axes_list)),
                           strict=True):
            if not isinstance(v, int) or v < 1:
                raise ArgumentError(f"{op}: argument 'sizes' must hold ints >= 1, got {v!r}")
            out[axis] = v
            factors[axis] = v / shape[axis]
        if policy != "stretch":
            pick = min if policy == "not_larger" else max
            scale = pick(factors[i] for i in axes_list)
            for i in axes_list:
                factors[i] = scale
                out[i] = int(scale * shape[i] + 0.5)
    if any(d < 1 for d in out):
        raise ArgumentError(f"{op}: the scales {scales!r} leave an empty output {tuple(out)}")
    rois: dict[int, tuple[float, float]] = {}
    if ctm == "tf_crop_and_resize":
        if roi is None:
            raise ArgumentError(f"{op}: argument 'roi' is required by tf_crop_and_resize")
        values = _numbers(roi, "roi", op, 2 * len(axes_list))
        for j, axis in enumerate(axes_list):
            rois[axis] = (float(values[j]), float(values[j + len(axes_list)]))
    tables = []
    for axis in axes_list:
        crop = rois.get(axis)
        if (math.isclose(factors[axis], 1.0) and out[axis] == shape[axis]
                and (crop is None or (math.isclose(crop[0], 0) and math.isclose(crop[1], 1)))):
            continue
        tables.append(axis_table(axis, shape[axis], out[axis], factors[axis], mode=mode,
                                 coordinate_mode=ctm, nearest_mode=nearest, cubic_coeff_a=a,
                                 exclude_outside=exclude, antialias=anti, roi=crop))
    return ResizeProblem(tuple(shape), tuple(out), mode, ctm, nearest, a, exclude, anti, ev,
                         tuple(tables), dtype)
