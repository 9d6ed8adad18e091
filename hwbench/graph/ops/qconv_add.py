"""hwbench's QLinearConvAdd (``graph.qconv_add_fusion``): a QLinearConv whose codes only
a QLinearAdd reads, and that Add, as one node; and QLinearConvRequant
(``graph.qconv_requant_fusion``): a QLinearConv whose codes only a DequantizeLinear reads,
then a Relu or Clip, then a QuantizeLinear.

Inputs: QLinearConv's nine (``x, x_scale, x_zero_point, w, w_scale, w_zero_point,
a_scale, a_zero_point, bias``; ``a`` is the conv's output, bias "" when absent), then the
Add's other operand (``b, b_scale, b_zero_point``) and its ``y_scale, y_zero_point``.
Attributes: the conv's, and the Add's ``fused_relu``. The cpu backend's
``float32-requant`` mode runs it as one convolution (``qconv_add``); anything else runs
the conv, then the Add, as the two nodes did (the same codes).

QLinearConvRequant's inputs: QLinearConv's nine, then the QuantizeLinear's ``y_scale,
y_zero_point``; attributes: the conv's and ``clip_min``/``clip_max`` (the Clip's bounds,
0 and none for a Relu; neither without an activation), or ``activation`` (one of
``spec.ACTIVATIONS``: HardSwish, SiLU...). ``float32-requant`` runs it as one
convolution (``qconv_requant``); anything else runs the conv, DequantizeLinear, the
activation (``_activate``: the backend's kernels, as the nodes ran) and QuantizeLinear.

QLinearConvDequantAdd (``graph.qconv_requant_fusion``): a QLinearConv, DequantizeLinear of
its codes, an Add of a float32 residual and, with ``fused_relu``, a Relu; inputs
QLinearConv's nine and the residual ("": the conv and its DequantizeLinear alone); a
float32 output. Without a residual it may take an ``activation`` as QLinearConvRequant's.
"""

from __future__ import annotations

import numpy as np

from hwbench.graph.ir import FUSED_DOMAIN, Graph, Node
from hwbench.graph.ops.counting import conv_flops
from hwbench.graph.ops.opdef import OpDef, Shape, Step
from hwbench.graph.ops.qoperator import _run_binary
from hwbench.graph.ops.quantized import (
    _conv_kwargs,
    _host,
    _qlinear_conv_shape,
    _run_qlinear_conv,
)
from hwbench.kernels import spec
from hwbench.kernels.quantization import FUSED_ADD_RATIO_LIMIT
from hwbench.kernels.spec.activations import ACTIVATIONS

QCONV_ADD = "QLinearConvAdd"
QCONV_REQUANT = "QLinearConvRequant"
QCONV_DEQUANT_ADD = "QLinearConvDequantAdd"
RATIO_LIMIT = FUSED_ADD_RATIO_LIMIT  # the pass fuses only where a_scale / y_scale is below
_run_add = _run_binary("add")


def _run_qconv_add(be, x, s: Step):
    fused = getattr(be, "qconv_add", None)  # cpu:float32-requant: one convolution
    if fused is not None:
        h = [_host(be, v) if i in _HOST else v for i, v in enumerate(x)]
        y = fused(*h, relu=bool(s.node.attrs.get("fused_relu", 0)),
                  **_conv_kwargs(s, s.in_shapes[3]))
        if y is not None:
            return y
    a = _run_qlinear_conv(be, x[:9], s)
    return _run_add(be, [a, x[6], x[7], *x[9:14]], s)


def _out_type(node: Node, ins: list) -> list:
    """The y zero point's type, else the Add's first operand's (ONNX's default)."""
    return [ins[13] if len(ins) > 13 and ins[13] is not None else ins[7]]


def _shape(node: Node, shapes: list[Shape], graph: Graph) -> list[Shape]:
    return _qlinear_conv_shape(node, shapes, graph)


def _activate(be, f, activation: str | None):
    """One of ``spec.ACTIVATIONS`` on float ``f`` through ``be``'s public kernels, as the
    graph's own nodes (HardSwish, Sigmoid and Mul, ...) compute it."""
    if activation is None:
        return f
    a = ACTIVATIONS[activation]
    if a.unary is not None:
        taken = (a.alpha, a.beta)[:len(spec.UNARY_OPS[a.unary].params)]  # tanh: neither
        return be.unary(f, a.unary, **dict(zip(("alpha", "beta"), taken, strict=False)))
    if activation == "relu":
        return be.relu(f)
    s = be.sigmoid(f)
    return s if activation == "sigmoid" else be.mul(f, s)  # silu: x · sigmoid(x)


def _run_qconv_requant(be, x, s: Step):
    h = [_host(be, v) if i in _REQUANT_HOST else v for i, v in enumerate(x)]
    lo, hi = s.node.attrs.get("clip_min"), s.node.attrs.get("clip_max")
    activation = s.node.attrs.get("activation")
    fused = getattr(be, "qconv_requant", None)  # cpu:float32-requant: one convolution
    if fused is not None:
        y = fused(*h, lo=lo, hi=hi, activation=activation, **_conv_kwargs(s, s.in_shapes[3]))
        if y is not None:
            return y
    a = _run_qlinear_conv(be, x[:9], s)
    f = be.dequantize_linear(a, h[6], h[7])
    if lo is not None or hi is not None:
        f = be.unary(f, "clip", alpha=lo, beta=hi)
    f = _activate(be, f, activation)
    return be.quantize_linear(f, h[9], h[10])


def _run_qconv_dequant_add(be, x, s: Step):
    h = [_host(be, v) if i in _DEQUANT_ADD_HOST else v for i, v in enumerate(x)]
    relu = bool(s.node.attrs.get("fused_relu", 0))
    activation = s.node.attrs.get("activation")
    fused = getattr(be, "qconv_dequant_add", None)  # cpu:float32-requant: one convolution
    if fused is not None:
        y = fused(*h, relu=relu, activation=activation, **_conv_kwargs(s, s.in_shapes[3]))
        if y is not None:
            return y
    a = _run_qlinear_conv(be, x[:9], s)
    y = be.dequantize_linear(a, h[6], h[7])
    if len(x) > 9 and x[9] is not None:
        y = be.add(y, x[9])
    return _activate(be, be.relu(y) if relu else y, activation)


def _requant_type(node: Node, ins: list) -> list:
    """QuantizeLinear's: its zero point's type, else uint8."""
    return [ins[10] if len(ins) > 10 and ins[10] is not None else np.dtype(np.uint8)]


_HOST = (1, 2, 4, 5, 6, 7, 10, 11, 12, 13)
_REQUANT_HOST = (1, 2, 4, 5, 6, 7, 9, 10)
_DEQUANT_ADD_HOST = (1, 2, 4, 5, 6, 7)  # not 9: the residual stays on the device
DEFS = (
    OpDef(QCONV_ADD, domain=FUSED_DOMAIN, shape=_shape, run=_run_qconv_add,
          kernels=("conv2d_int8", "add"), host_inputs=_HOST, integer=True,
          flops=conv_flops(3), output_itemsize=1, out_types=_out_type),
    OpDef(QCONV_REQUANT, domain=FUSED_DOMAIN, shape=_shape, run=_run_qconv_requant,
          kernels=("conv2d_int8", "unary"),  # (de)quantization: Backend's shared defaults
          host_inputs=_REQUANT_HOST, integer=True, flops=conv_flops(3), output_itemsize=1,
          out_types=_requant_type),
    OpDef(QCONV_DEQUANT_ADD, domain=FUSED_DOMAIN, shape=_shape, run=_run_qconv_dequant_add,
          kernels=("conv2d_int8", "add", "relu"),
          host_inputs=_DEQUANT_ADD_HOST, integer=True, flops=conv_flops(3),
          out_types=lambda node, ins: [np.dtype(np.float32)]),
)
