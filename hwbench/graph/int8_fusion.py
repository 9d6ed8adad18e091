"""DequantizeLinear -> Add -> Relu -> QuantizeLinear between int8 layers, as one
QLinearAdd with ``fused_relu`` (issue 16).

``qdq_fusion`` turns DequantizeLinear -> Add -> QuantizeLinear into QLinearAdd; a Relu
between the Add and the QuantizeLinear (as ResNet's blocks end, where the quantizer
keeps it) left the group in float: two dequantizations, Add, Relu and a quantization,
each a pass. This pass fuses it into one QLinearAdd node whose attribute ``fused_relu``
asks for the Relu before quantizing: ``graph.ops.qoperator`` computes exactly
dequantize -> add -> relu -> quantize (on cpu, one table lookup filled by that very
arithmetic), so the codes are unchanged. Conditions as ``qdq_fusion``'s: constant
per-tensor parameters, and the Add's and the Relu's outputs read by nothing else.
"""

from __future__ import annotations

from hwbench.graph.ir import Graph, Node
from hwbench.graph.qdq_fusion import MICROSOFT, _Group, replace_groups


def _fuse(grp: _Group, add: Node) -> tuple[Node, Node, Node] | None:
    """(the fused QLinearAdd, the Relu, the QuantizeLinear) for ``add``, or None."""
    if add.op_type != "Add" or add.domain or len(add.inputs) != 2:
        return None
    y = add.outputs[0]
    readers = grp.consumers.get(y, [])
    if y in grp.g.output_names or len(readers) != 1 or readers[0].op_type != "Relu":
        return None
    relu = readers[0]
    q = grp.q(relu)
    if q is None:
        return None
    a, b = grp.dq(add.inputs[0]), grp.dq(add.inputs[1])
    if a is None or b is None:
        return None
    y_params = [q.inputs[1], q.inputs[2] if len(q.inputs) > 2 else ""]
    label = add.name or y
    node = Node("QLinearAdd", a + b + y_params, [q.outputs[0]], {"fused_relu": 1},
                f"{label}_relu_qdq", MICROSOFT)
    return node, relu, q


def fuse_qdq_add_relu(graph: Graph) -> Graph:
    """Every DequantizeLinear -> Add -> Relu -> QuantizeLinear group of ``graph`` (in
    place) as a QLinearAdd with ``fused_relu``. Run before ``fuse_qdq_groups``."""
    return replace_groups(graph, _fuse)
