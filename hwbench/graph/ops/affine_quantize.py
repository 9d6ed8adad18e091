"""hwbench's AffineQuantizeLinear (``graph.affine_quantize_fusion``): QuantizeLinear of
``x · scale (+ shift)``, with ``relu`` a Relu before it: a Mul, Add, Relu and QuantizeLinear
as one node.

Inputs: ``x`` (float32, NCHW), ``scale`` (one value per channel, or an (N, C, 1, 1) value
computed at run time: a squeeze-and-excitation gate), ``shift`` (one value per channel,
or "" for none), then QuantizeLinear's ``y_scale, y_zero_point``. The cpu backend's
``float32-requant`` mode runs it as one oneDNN primitive (``affine_quantize``); anything
else runs the ops one by one, as the nodes did (the same values bit for bit).
"""

from __future__ import annotations

import numpy as np

from hwbench.graph.ir import FUSED_DOMAIN, Graph, Node
from hwbench.graph.ops.opdef import OpDef, Shape, Step
from hwbench.graph.ops.quantized import _host

AFFINE_QUANTIZE = "AffineQuantizeLinear"


def _run(be, x, s: Step):
    relu = bool(s.node.attrs.get("relu", 0))
    y_scale, y_zero = _host(be, x[3]), _host(be, x[4]) if len(x) > 4 else None
    fused = getattr(be, "affine_quantize", None)  # cpu:float32-requant: one primitive
    if fused is not None:
        y = fused(x[0], x[1], x[2], y_scale, y_zero, relu)
        if y is not None:
            return y
    y = be.mul(x[0], x[1])
    if x[2] is not None:
        y = be.add(y, x[2])
    if relu:
        y = be.relu(y)
    return be.quantize_linear(y, y_scale, y_zero)


def _shape(node: Node, shapes: list[Shape], graph: Graph) -> list[Shape]:
    return [shapes[0]]


def _out_type(node: Node, ins: list) -> list:
    """QuantizeLinear's: its zero point's type, else uint8."""
    return [ins[4] if len(ins) > 4 and ins[4] is not None else np.dtype(np.uint8)]


DEFS = (
    OpDef(AFFINE_QUANTIZE, domain=FUSED_DOMAIN, shape=_shape, run=_run,
          kernels=("mul", "add", "relu"),  # (and quantize_linear: Backend's shared default)
          host_inputs=(3, 4), integer=True, output_itemsize=1, out_types=_out_type),
)
