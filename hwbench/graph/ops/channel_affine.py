"""hwbench's ChannelAffine (``graph.channel_affine_fusion``): ``x · scale + shift`` by
per-channel constants, then a Relu if ``relu``: a Mul, an Add and a Relu as one node.

DenseNet's BatchNormalization before each conv (a Mul and an Add once folded) and its
Relu made three passes over every concatenation of features. A backend with a
``channel_affine`` method (opencl: one kernel) runs the node in one; anything else runs
the ops one by one, as the nodes did (the same values).
"""

from __future__ import annotations

from hwbench.graph.ir import FUSED_DOMAIN, Graph, Node
from hwbench.graph.ops.opdef import OpDef, Shape, Step

CHANNEL_AFFINE = "ChannelAffine"


def _run(be, x, s: Step):
    relu = bool(s.node.attrs.get("relu", 0))
    fused = getattr(be, "channel_affine", None)
    if fused is not None:
        y = fused(x[0], x[1], x[2], relu)
        if y is not None:
            return y
    y = be.mul(x[0], x[1])
    if x[2] is not None:
        y = be.add(y, x[2])
    return be.relu(y) if relu else y


def _shape(node: Node, shapes: list[Shape], graph: Graph) -> list[Shape]:
    return [shapes[0]]


DEFS = (
    OpDef(CHANNEL_AFFINE, domain=FUSED_DOMAIN, shape=_shape, run=_run,
          kernels=("mul", "add", "relu")),
)
