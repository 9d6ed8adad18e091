"""onnxruntime's QOperator ops (domain ``com.microsoft``: QLinearAdd, QLinearMul,
QLinearGlobalAveragePool, QLinearAveragePool, QLinearConcat, QLinearSigmoid,
QLinearLeakyRelu, QLinearSoftmax, QGemm) and ONNX's DynamicQuantizeLinear.

onnxruntime computes the elementwise and pooling ones in float32 between 8-bit codes
(MLAS: dequantize, operate, requantize with round half to even; Sigmoid and LeakyRelu by
a 256-entry table built the same way), so they run here as the backend's own
``dequantize_linear`` -> float kernel -> ``quantize_linear`` on its device: the same
arithmetic up to float32 rounding order, which can move a value lying within an ulp of
a rounding tie by 1 LSB. QGemm runs on the integer kernels: ``qconv2d`` as a 1x1
convolution (exact int32 accumulation, fixed-point requantization) when it has a
``y_scale``, ``gemm_int8`` and ``dequantize_linear`` when its output is float.
"""

from __future__ import annotations

import numpy as np

from hwbench.errors import ArgumentError, UnsupportedError
from hwbench.graph.ir import Graph, Node
from hwbench.graph.ops import qoperator_onnxruntime as onnxruntime_mode
from hwbench.graph.ops.opdef import OpDef, Shape, Step
from hwbench.graph.ops.pooling import _pool_shape
from hwbench.graph.ops.quantized import _host, _optional
from hwbench.graph.ops.shapes import broadcast_shape, conv_params
from hwbench.graph.ops.types import const_type, input_type

MICROSOFT = "com.microsoft"


def _zero_point(be, x, value, codes) -> np.ndarray:
    """A zero point as a NumPy value; omitted: 0 of the codes' dtype (ONNX's rule)."""
    value = _host(be, value)
    return np.zeros((), codes.dtype) if value is None else value


def _dq(be, codes, scale, zero) -> object:
    return be.dequantize_linear(codes, _host(be, scale), _zero_point(be, None, zero, codes))


def _q(be, x, scale, zero, like) -> object:
    return be.quantize_linear(x, _host(be, scale), _zero_point(be, None, zero, like))


def _check_nchw(s: Step) -> None:
    if s.node.attrs.get("channels_last", 0):
        raise UnsupportedError(f"{s.node.label()}: channels_last=1 is not supported "
                               f"(NCHW only)")


def _run_binary(method: str):
    """QLinearAdd/QLinearMul; ``fused_relu`` (``graph.int8_fusion``): a Relu between the
    float op and the quantization."""
    def run(be, x, s: Step):
        relu = bool(s.node.attrs.get("fused_relu", 0))
        onnxruntime = onnxruntime_mode.enabled(be)
        if onnxruntime and not relu:
            return onnxruntime_mode.binary(be, x, method)
        by_table = getattr(be, "qlinear_binary", None)  # cpu: one lookup pass, exact
        if by_table is not None and not onnxruntime:
            y = by_table(method, x[0], _host(be, x[1]),
                         _zero_point(be, None, _optional(x, 2), x[0]),
                         x[3], _host(be, x[4]), _zero_point(be, None, _optional(x, 5), x[3]),
                         _host(be, x[6]), _zero_point(be, None, _optional(x, 7), x[0]), relu)
            if y is not None:
                return y
        a = _dq(be, x[0], x[1], _optional(x, 2))
        b = _dq(be, x[3], x[4], _optional(x, 5))
        y = getattr(be, method)(a, b)
        return _q(be, be.relu(y) if relu else y, x[6], _optional(x, 7), x[0])
    return run


def _run_unary(apply, onnxruntime=None, elementwise=False):
    def run(be, x, s: Step):
        if onnxruntime is not None and onnxruntime_mode.enabled(be):
            return onnxruntime(be, x, s)
        by_table = getattr(be, "qlinear_unary", None) if elementwise else None
        if by_table is not None:  # cpu: one 256-entry table lookup, exact
            key = (s.node.op_type, repr(sorted(s.node.attrs.items())))
            y = by_table(lambda ref, f: apply(ref, f, s), key, x[0], _host(be, x[1]),
                         _zero_point(be, None, _optional(x, 2), x[0]), _host(be, x[3]),
                         _zero_point(be, None, _optional(x, 4), x[0]))
            if y is not None:
                return y
        y = apply(be, _dq(be, x[0], x[1], _optional(x, 2)), s)
        return _q(be, y, x[3], _optional(x, 4), x[0])
    return run


def _leaky_relu(be, x, s: Step):
    return be.unary(x, "leaky_relu", alpha=float(s.node.attrs.get("alpha", 0.01)))


def _gap(be, x, s: Step):
    _check_nchw(s)
    return be.global_avg_pool2d(x)


_run_gap_unfused = _run_unary(_gap, onnxruntime_mode.global_average_pool)


def _run_gap(be, x, s: Step):
    """QLinearGlobalAveragePool; cpu's float32-requant mode runs it as one pooling."""
    by_pool = getattr(be, "qlinear_global_avg_pool", None)
    if by_pool is not None and not onnxruntime_mode.enabled(be):
        _check_nchw(s)
        y = by_pool(x[0], _host(be, x[1]), _zero_point(be, None, _optional(x, 2), x[0]),
                    _host(be, x[3]), _zero_point(be, None, _optional(x, 4), x[0]))
        if y is not None:
            return y
    return _run_gap_unfused(be, x, s)


def _avg_pool(be, x, s: Step):
    _check_nchw(s)
    kernel = tuple(s.node.attrs["kernel_shape"])
    p = conv_params(s.node, s.in_shapes[0], kernel)
    if p["dilation"] != (1, 1):
        raise UnsupportedError(f"{s.node.label()}: dilated QLinearAveragePool is not "
                               f"supported")
    return be.avg_pool2d(x, kernel, stride=p["stride"], padding=p["padding"],
                         ceil_mode=bool(s.node.attrs.get("ceil_mode", 0)),
                         count_include_pad=bool(s.node.attrs.get("count_include_pad", 0)))


def _run_concat(be, x, s: Step):
    if len(x) < 5 or (len(x) - 2) % 3:
        raise ArgumentError(f"{s.node.label()}: QLinearConcat takes Y_scale, Y_zero_point "
                            f"and then (X, X_scale, X_zero_point) triples; got {len(x)} "
                            f"inputs")
    axis = s.node.attrs["axis"] % len(s.in_shapes[2])
    # ``gather_channels`` (``shuffle_fold.concat_shuffles``): a Gather of the result's
    # channels folded in; cpu's ``qlinear_concat`` applies it, else it runs after.
    order = s.node.attrs.get("gather_channels")
    by_table = getattr(be, "qlinear_concat", None)  # cpu: one pass per input, exact
    if by_table is not None and not onnxruntime_mode.enabled(be):
        y = by_table([x[i] for i in range(2, len(x), 3)],
                     [(_host(be, x[i + 1]), _zero_point(be, None, x[i + 2], x[i]))
                      for i in range(2, len(x), 3)],
                     _host(be, x[0]), _zero_point(be, None, x[1], x[2]), axis,
                     **({} if order is None else {"order": order}))
        if y is not None:
            return y
    parts = [_dq(be, x[i], x[i + 1], x[i + 2]) for i in range(2, len(x), 3)]
    y = _q(be, be.concat(parts, axis=axis), x[0], x[1], x[2])
    return y if order is None else be.gather(y, np.asarray(order, np.int64), axis)


def _run_qgemm(be, x, s: Step):
    node = s.node
    if float(node.attrs.get("alpha", 1.0)) != 1.0:
        raise UnsupportedError(f"{node.label()}: QGemm with alpha != 1 is not supported")
    a, b = x[0], x[3]
    if node.attrs.get("transA", 0):
        a = be.transpose(a, (1, 0))
    m, k = s.in_shapes[0][::-1] if node.attrs.get("transA", 0) else s.in_shapes[0]
    n = s.out_shapes[0][1]
    za, zb = _zero_point(be, None, x[2], x[0]), _zero_point(be, None, x[5], x[3])
    bias = _optional(x, 6)
    if bias is not None and int(np.prod(s.in_shapes[6])) != n:
        raise UnsupportedError(f"{node.label()}: QGemm bias C of shape {s.in_shapes[6]}: "
                               f"only one value per output column is supported")
    a_scale, b_scale = _host(be, x[1]), _host(be, x[4])
    if _optional(x, 7) is None:  # float output: a_scale * b_scale * (A'B' + C)
        if node.attrs.get("transB", 0):
            b = be.transpose(b, (1, 0))
        acc = be.gemm_int8(a, b, za, zb)
        scale = (np.float32(np.asarray(a_scale).reshape(())) *
                 np.asarray(b_scale, np.float32).reshape(-1)).astype(np.float32)
        y = be.dequantize_linear(acc, scale if scale.size > 1 else scale.reshape(()),
                                 np.zeros((), np.int32), axis=1)
        if bias is not None:
            c = _host(be, bias).reshape(1, n).astype(np.float32) * scale.reshape(1, -1)
            y = be.add(y, be.asarray(c.astype(np.float32)))
        return y
    if not node.attrs.get("transB", 0):  # qconv2d's weights are (N, K, 1, 1)
        b = be.transpose(b, (1, 0))
    fused = getattr(be, "qgemm_requant", None)  # cpu:float32-requant: one conv, no reshapes
    zy = _zero_point(be, None, _optional(x, 8), x[0])
    y = None if fused is None else fused(a, a_scale, za, b, b_scale, zb, _host(be, x[7]), zy,
                                         bias)
    if y is not None:
        return y
    y = be.qconv2d(be.reshape(a, (m, k, 1, 1)), a_scale, za, be.reshape(b, (n, k, 1, 1)),
                   b_scale, zb, _host(be, x[7]), zy,
                   None if bias is None else be.reshape(bias, (n,)))
    return be.reshape(y, (m, n))


def _qgemm_shape(node: Node, shapes: list[Shape], graph: Graph) -> list[Shape]:
    a, b = shapes[0], shapes[3]
    if len(a) != 2 or len(b) != 2:
        raise ArgumentError(f"{node.label()}: QGemm takes 2-D A and B, got {a} and {b}")
    m, k = a[::-1] if node.attrs.get("transA", 0) else a
    kb, n = b[::-1] if node.attrs.get("transB", 0) else b
    if k != kb:
        raise ArgumentError(f"{node.label()}: cannot multiply {a} by {b}")
    return [(m, n)]


def _qgemm_flops(node: Node, ins: list[Shape]) -> int:
    """2·M·K·N from A's and B's shapes (``ins`` are shapes, as for every op's count)."""
    (m, n), = _qgemm_shape(node, ins, None)
    a = ins[0]
    return 2 * m * n * (a[0] if node.attrs.get("transA", 0) else a[1])


def _binary_shape(node: Node, shapes: list[Shape], graph: Graph) -> list[Shape]:
    return broadcast_shape(node, [shapes[0], shapes[input_at(node, 3)]], graph)


def input_at(node: Node, i: int) -> int:
    """Index in the shape list (named inputs only) of ``node``'s input ``i``."""
    return sum(1 for name in node.inputs[:i] if name)


def _first(node: Node, shapes: list[Shape], graph: Graph) -> list[Shape]:
    return [shapes[0]]


def _gap_shape(node: Node, shapes: list[Shape], graph: Graph) -> list[Shape]:
    x = shapes[0]
    if len(x) != 4:
        raise UnsupportedError(f"{node.label()}: only NCHW inputs are supported, got {x}")
    return [(x[0], x[1], 1, 1)]


def _concat_shape(node: Node, shapes: list[Shape], graph: Graph) -> list[Shape]:
    parts = [shapes[input_at(node, i)] for i in range(2, len(node.inputs), 3)]
    axis = node.attrs["axis"] % len(parts[0])
    if any(len(p) != len(parts[0]) or any(p[d] != parts[0][d] for d in range(len(p))
                                           if d != axis) for p in parts):
        raise ArgumentError(f"{node.label()}: shapes {parts} do not concatenate on axis "
                            f"{axis}")
    out = list(parts[0])
    out[axis] = sum(p[axis] for p in parts)
    return [tuple(out)]


def _run_softmax(be, x, s: Step):
    """onnxruntime's kernel: exp of the dequantized codes less their row maximum, over
    their sum, times ``floor(1 / Y_scale)``, rounded half to even, plus the zero point
    (so the output step is ``1 / floor(1 / Y_scale)``; 1/256 as its quantizer writes it).
    Opset < 13 semantics (``opset`` attribute) flatten from ``axis`` on, as Softmax-11."""
    node, shape = s.node, s.in_shapes[0]
    opset = int(node.attrs.get("opset", 13))
    if opset < 13 and "axis" not in node.attrs:  # onnxruntime 1.32 reads -1, older 1
        raise UnsupportedError(f"{node.label()}: QLinearSoftmax with opset={opset} needs "
                               f"an explicit axis (onnxruntime versions default it "
                               f"differently)")
    axis = int(node.attrs.get("axis", -1))
    if not -len(shape) <= axis < len(shape):
        raise ArgumentError(f"{node.label()}: axis {axis} is out of range for rank "
                            f"{len(shape)}")
    axis %= len(shape)
    y_scale = np.float32(np.asarray(_host(be, x[3]), np.float32).reshape(()))
    steps = np.floor(np.float32(1.0) / y_scale)
    if not np.isfinite(y_scale) or y_scale <= 0 or steps < 1:
        raise ArgumentError(f"{node.label()}: Y_scale must be in (0, 1], got {y_scale}")
    p = _dq(be, x[0], x[1], _optional(x, 2))
    if opset < 13:
        flat = (int(np.prod(shape[:axis], dtype=np.int64)),
                int(np.prod(shape[axis:], dtype=np.int64)))
        p = be.reshape(be.softmax(be.reshape(p, flat), axis=1), shape)
    else:
        p = be.softmax(p, axis=axis)
    return _q(be, p, np.float32(1.0) / np.float32(steps), _optional(x, 4), x[0])


# -- DynamicQuantizeLinear (ONNX, opset 11) ---------------------------------------------
def dynamic_params(low: float, high: float) -> tuple[np.float32, np.uint8]:
    """DynamicQuantizeLinear's scale and zero point for a tensor spanning [low, high]
    (widened to hold 0), in float32 as ONNX's reference computes them."""
    maxx = np.float32(max(0.0, high))
    minx = np.float32(min(0.0, low))
    scale = np.float32(np.float32(1.0 if maxx == minx else maxx - minx) / np.float32(255))
    zp = np.rint(np.clip(np.float32(0) - minx / scale, 0, 255))
    return scale, np.uint8(zp)


def _run_dynamic_quantize(be, x, s: Step):
    low = float(be.to_numpy(be.reduce(x[0], "min", keepdims=False)))
    high = float(be.to_numpy(be.reduce(x[0], "max", keepdims=False)))
    scale, zero = dynamic_params(low, high)
    y = be.quantize_linear(x[0], scale, zero)
    return y, be.asarray(np.asarray(scale, np.float32)), be.asarray(np.asarray(zero))


def _dynamic_shape(node: Node, shapes: list[Shape], graph: Graph) -> list[Shape]:
    return [shapes[0], (), ()]


# The float op whose QDQ group each becomes (``graph.qdq_fusion``)
QDQ_FORMS = {"Add": "QLinearAdd", "Mul": "QLinearMul", "Sigmoid": "QLinearSigmoid",
             "LeakyRelu": "QLinearLeakyRelu", "GlobalAveragePool": "QLinearGlobalAveragePool",
             "AveragePool": "QLinearAveragePool"}

# Ops that only move or pick values (MaxPool: the largest, which quantization's monotone
# map keeps): on codes whose scale and zero point their output shares they give the codes
# of the float result exactly, so ``graph.qdq_fusion`` runs them on the codes (inputs
# after the first are shapes, axes, indices)
ON_CODES = ("MaxPool", "Reshape", "Flatten", "Transpose", "Squeeze", "Unsqueeze", "Slice",
            "Gather", "DepthToSpace", "SpaceToDepth", "Expand", "Tile")

_BINARY_HOST = (1, 2, 4, 5, 6, 7)
_UNARY_HOST = (1, 2, 3, 4)
_CONCAT_HOST = tuple(i for i in range(2 + 3 * 256) if i < 2 or (i - 2) % 3)

DEFS = (
    OpDef("QLinearAdd", shape=_binary_shape, run=_run_binary("add"), domain=MICROSOFT,
          kernels=("add",), host_inputs=_BINARY_HOST,
          integer=True, output_itemsize=1),
    OpDef("QLinearMul", shape=_binary_shape, run=_run_binary("mul"), domain=MICROSOFT,
          kernels=("mul",), host_inputs=_BINARY_HOST,
          integer=True, output_itemsize=1),
    OpDef("QLinearSigmoid", shape=_first, run=_run_unary(lambda be, x, s: be.sigmoid(x),
                                                           onnxruntime_mode.sigmoid,
                                                           elementwise=True),
          domain=MICROSOFT, kernels=("sigmoid",),
          host_inputs=_UNARY_HOST, integer=True, output_itemsize=1),
    OpDef("QLinearLeakyRelu", shape=_first,
          run=_run_unary(_leaky_relu, onnxruntime_mode.leaky_relu, elementwise=True),
          domain=MICROSOFT,
          kernels=("unary",), host_inputs=_UNARY_HOST,
          integer=True, output_itemsize=1),
    OpDef("QLinearGlobalAveragePool", shape=_gap_shape, run=_run_gap,
          domain=MICROSOFT, host_inputs=_UNARY_HOST, integer=True, output_itemsize=1,
          kernels=("global_avg_pool2d",)),
    OpDef("QLinearAveragePool", shape=_pool_shape, run=_run_unary(
              _avg_pool, onnxruntime_mode.average_pool),
          domain=MICROSOFT, host_inputs=_UNARY_HOST, integer=True, output_itemsize=1,
          kernels=("avg_pool2d",)),
    OpDef("QLinearConcat", shape=_concat_shape, run=_run_concat, domain=MICROSOFT,
          kernels=("concat",),
          host_inputs=_CONCAT_HOST, integer=True, output_itemsize=1,
          out_types=input_type(2)),
    OpDef("QLinearSoftmax", shape=_first, run=_run_softmax, domain=MICROSOFT,
          kernels=("softmax",), host_inputs=_UNARY_HOST, integer=True, output_itemsize=1),
    OpDef("QGemm", shape=_qgemm_shape, run=_run_qgemm, domain=MICROSOFT,
          kernels=("conv2d_int8", "gemm_int8"), host_inputs=(1, 2, 4, 5, 7, 8), integer=True,
          flops=_qgemm_flops, output_itemsize=1, out_types=input_type(8, np.float32)),
    OpDef("DynamicQuantizeLinear", shape=_dynamic_shape, run=_run_dynamic_quantize,
          kernels=("reduce",), output_itemsize=1,
          out_types=const_type(np.uint8, np.float32, np.uint8)),
)
