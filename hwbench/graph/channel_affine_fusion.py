"""Mul -> [Add] -> [Relu] of a float NCHW activation by per-channel constants as one
``com.hwbench:ChannelAffine`` node (``graph/ops/channel_affine.py``), for backends that
run it in one pass (``Backend.fuses_channel_affine``; ``Session`` runs this pass only
there): DenseNet's folded BatchNormalization and Relu before each of its 120 convs.

Conditions: each intermediate value read by the next op alone and no graph output; the
factor and the Add's term float32 constants of one value per channel; no QuantizeLinear
after (``affine_quantize_fusion`` takes that chain on ``cpu:float32-requant``).
"""

from __future__ import annotations

from hwbench.graph.affine_quantize_fusion import affine_chain
from hwbench.graph.ir import FUSED_DOMAIN, Graph, Node
from hwbench.graph.ops.channel_affine import CHANNEL_AFFINE
from hwbench.graph.qdq_fusion import _Group, replace_groups
from hwbench.graph.shape_inference import infer_shapes


class _Fuser:
    def __init__(self, graph: Graph) -> None:
        self.shapes = infer_shapes(graph)

    def __call__(self, grp: _Group, mul: Node) -> tuple | None:
        """(the fused node, the Add, the Relu) for a Mul, or None."""
        chain = affine_chain(grp, mul, self.shapes, gates=False)
        if chain is None or (chain.add is None and chain.relu is None):
            return None  # a lone Mul: nothing to save
        node = Node(CHANNEL_AFFINE, [chain.x, chain.scale, chain.shift], list(chain.last.outputs),
                    {"relu": int(chain.relu is not None)}, f"{mul.name or mul.outputs[0]}_affine",
                    FUSED_DOMAIN)
        return node, chain.add, chain.relu


def fuse_channel_affine(graph: Graph) -> Graph:
    """Every Mul (by per-channel constants) -> [Add (per-channel)] -> [Relu] chain with an
    Add or a Relu as one ``ChannelAffine`` node (in place)."""
    return replace_groups(graph, _Fuser(graph))
