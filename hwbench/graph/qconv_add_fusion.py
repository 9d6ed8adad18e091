"""QLinearConv -> QLinearAdd (a residual block's last conv and its Add) as one
``com.hwbench:QLinearConvAdd`` node, for the cpu backend's ``float32-requant`` mode
(issue 16; ``Session`` runs this pass on that mode only).

The conv's codes are read by the Add alone, so the two can be one oneDNN int8
convolution whose post-ops round and saturate the conv's value to its codes, scale them
and add the other operand's (``backends/cpu/int8_conv_add.py``): one pass where the Add
re-read both inputs and cost a plan step. The node keeps both ops' inputs, so any
backend or argument the fused kernel does not take runs the conv and then the Add, as
the graph did (``graph/ops/qconv_add.py``).
"""

from __future__ import annotations

import numpy as np

from hwbench.graph.ir import FUSED_DOMAIN, Graph, Node
from hwbench.graph.ops.qconv_add import QCONV_ADD, RATIO_LIMIT
from hwbench.graph.qdq_fusion import MICROSOFT, _const, _Group, replace_groups


def _fuse(grp: _Group, add: Node) -> tuple[Node, Node] | None:
    """(the fused node, the absorbed QLinearConv) for a QLinearAdd, or None."""
    if add.op_type != "QLinearAdd" or add.domain != MICROSOFT or len(add.inputs) < 7:
        return None
    ins = list(add.inputs) + [""] * (8 - len(add.inputs))
    for mine, other in ((0, 3), (3, 0)):  # the conv's operand first (the Add commutes)
        conv = grp.producers.get(ins[mine])
        if conv is None or conv.op_type != "QLinearConv" or conv.domain \
                or len(grp.consumers.get(ins[mine], [])) != 1 \
                or ins[mine] in grp.g.output_names or ins[mine] == ins[other]:
            continue
        conv_ins = list(conv.inputs) + [""] * (9 - len(conv.inputs))
        if conv_ins[6] != ins[mine + 1] or conv_ins[7] != ins[mine + 2]:
            continue  # the Add reads the codes with other parameters than the conv wrote
        a_scale, y_scale = _const(grp.g, ins[mine + 1]), _const(grp.g, ins[6])
        if a_scale is None or y_scale is None or a_scale.size != 1 or y_scale.size != 1 \
                or not 0 < float(np.float32(a_scale.item() / y_scale.item())) < RATIO_LIMIT:
            continue  # a conv code 1 LSB off would move the sum by a step or more
        inputs = conv_ins + ins[other:other + 3] + ins[6:8]
        attrs = {**conv.attrs, "fused_relu": int(add.attrs.get("fused_relu", 0))}
        return Node(QCONV_ADD, inputs, list(add.outputs), attrs,
                    f"{conv.name or conv.outputs[0]}_add", FUSED_DOMAIN), conv
    return None


def fuse_qconv_add(graph: Graph) -> Graph:
    """Every QLinearConv whose codes only a QLinearAdd reads, with that Add, as one
    ``QLinearConvAdd`` node (in place)."""
    return replace_groups(graph, _fuse)
