"""QDQ groups other than convolutions -> integer ops (as onnxruntime fuses them).

onnxruntime's ``quantize_static`` (QuantFormat.QDQ) writes every quantized op as
DequantizeLinear(inputs) -> float op -> QuantizeLinear. ``quantize.fuse_qdq_convs``
turns the convolutions into QLinearConv; this pass turns the rest into the integer ops
the same quantizer writes in QOperator format, so both formats run the same kernels:

- Add, Mul -> com.microsoft QLinearAdd, QLinearMul;
- Sigmoid, LeakyRelu, GlobalAveragePool, AveragePool -> com.microsoft QLinearSigmoid,
  QLinearLeakyRelu, QLinearGlobalAveragePool, QLinearAveragePool;
- Concat -> com.microsoft QLinearConcat;
- MatMul -> QLinearMatMul: constant 2-D weights (per tensor or per column), or a second
  activation (attention's products), batched;
- Softmax -> com.microsoft QLinearSoftmax;
- Gemm with constant weights -> com.microsoft QGemm (float output where no
  QuantizeLinear follows: a classifier's last layer);
- MaxPool, Reshape, Flatten, Transpose, Squeeze, Unsqueeze, Slice, Gather, DepthToSpace,
  SpaceToDepth, Expand, Tile whose input and output share scale and zero point -> the same
  op on the codes (as onnxruntime runs them in QOperator format).

A group is fused only where every scale and zero point is a constant, per tensor (per
output column for MatMul/Gemm weights), the input codes are 8-bit, and the float result
is read by one QuantizeLinear and nothing else (so no float tensor disappears).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hwbench.graph.ir import Graph, Node, prune
from hwbench.graph.ops.qoperator import ON_CODES, QDQ_FORMS
from hwbench.graph.quantize import _qdq_bias, _through_identities

MICROSOFT = "com.microsoft"
_BINARY = ("QLinearAdd", "QLinearMul")


def _const(graph: Graph, name: str) -> np.ndarray | None:
    return graph.initializers.get(name) if name else None


class _Group:
    def __init__(self, graph: Graph) -> None:
        self.g = graph
        self.producers = graph.producers()
        self.consumers = graph.consumers()

    def dq(self, name: str, per_column: int | None = None) -> list[str] | None:
        """[codes, scale, zero point] of the DequantizeLinear producing ``name``, where its
        parameters are constants and per tensor (or, ``per_column``, per last axis)."""
        node = _through_identities(self.producers, name)
        if node is None or node.op_type != "DequantizeLinear" or node.attrs.get("block_size"):
            return None
        scale = _const(self.g, node.inputs[1])
        zero = node.inputs[2] if len(node.inputs) > 2 else ""
        if scale is None or (zero and _const(self.g, zero) is None):
            return None
        if scale.size != 1:
            codes = _const(self.g, node.inputs[0])
            if (per_column is None or codes is None or codes.ndim != 2
                    or node.attrs.get("axis", 1) % 2 != 1 or scale.size != codes.shape[1]):
                return None
        elif zero and _const(self.g, zero).size != 1:
            return None
        return [node.inputs[0], node.inputs[1], zero]

    def q(self, node: Node) -> Node | None:
        """The one QuantizeLinear reading ``node``'s output (per tensor), if that is its only
        reader."""
        y = node.outputs[0]
        readers = self.consumers.get(y, [])
        if y in self.g.output_names or len(readers) != 1:
            return None
        q = readers[0]
        if q.op_type != "QuantizeLinear" or q.attrs.get("block_size"):
            return None
        scale = _const(self.g, q.inputs[1])
        zero = q.inputs[2] if len(q.inputs) > 2 else ""
        if scale is None or scale.size != 1 or (zero and _const(self.g, zero) is None):
            return None
        return q


def _fuse(grp: _Group, node: Node) -> tuple[Node, Node | None] | None:
    """(the integer node, the QuantizeLinear it absorbs or None) for ``node``, or None."""
    g, op, label = grp.g, node.op_type, node.name or node.outputs[0]
    if op == "Gemm":
        return _fuse_gemm(grp, node, label)
    q = grp.q(node)
    if q is None:
        return None
    out = [q.outputs[0]]
    y_params = [q.inputs[1], q.inputs[2] if len(q.inputs) > 2 else ""]
    form = QDQ_FORMS.get(op)
    if form in _BINARY:
        a, b = grp.dq(node.inputs[0]), grp.dq(node.inputs[1])
        if a is None or b is None:
            return None
        return Node(form, a + b + y_params, out, {}, f"{label}_qdq", MICROSOFT), q
    if form is not None:
        x = grp.dq(node.inputs[0])
        if x is None:
            return None
        return Node(form, x + y_params, out, dict(node.attrs), f"{label}_qdq",
                    MICROSOFT), q
    if op == "Concat":
        parts = [grp.dq(name) for name in node.inputs]
        if any(p is None for p in parts):
            return None
        inputs = y_params + [name for p in parts for name in p]
        return Node("QLinearConcat", inputs, out, dict(node.attrs), f"{label}_qdq",
                    MICROSOFT), q
    if op in ON_CODES and not node.domain and len(node.outputs) == 1:
        x = grp.dq(node.inputs[0])
        if x is None or not _same_params(g, x[1:], y_params):
            return None
        return Node(op, [x[0], *node.inputs[1:]], out, dict(node.attrs), f"{label}_qdq"), q
    if op == "Softmax":
        x = grp.dq(node.inputs[0])
        if x is None:
            return None
        attrs = {"axis": node.attrs.get("axis", -1 if g.opset >= 13 else 1),
                 "opset": g.opset}
        return Node("QLinearSoftmax", x + y_params, out, attrs, f"{label}_qdq",
                    MICROSOFT), q
    if op == "MatMul":  # constant weights (per tensor or column) or two activations
        a, b = grp.dq(node.inputs[0]), grp.dq(node.inputs[1], per_column=1)
        if a is None or b is None:
            return None
        return Node("QLinearMatMul", a + b + y_params, out, {}, f"{label}_qdq"), q
    return None


def _same_params(g: Graph, x: list[str], y: list[str]) -> bool:
    values = [_const(g, n) for n in x + y]
    if values[1] is None or values[3] is None:
        return all(v is None for v in (values[1], values[3])) and np.array_equal(
            values[0], values[2])
    return (np.array_equal(values[0], values[2]) and values[1].dtype == values[3].dtype
            and np.array_equal(values[1], values[3]))


def _fuse_gemm(grp: _Group, node: Node, label: str) -> tuple[Node, Node | None] | None:
    g = grp.g
    if node.attrs.get("alpha", 1.0) != 1.0 or node.attrs.get("beta", 1.0) != 1.0:
        return None
    trans_b = node.attrs.get("transB", 0)
    a = grp.dq(node.inputs[0])
    b = grp.dq(node.inputs[1], per_column=1) if not trans_b else _weights_by_row(grp, node)
    if a is None or b is None or _const(g, b[0]) is None:
        return None
    inputs = a + b
    a_scale, b_scale = _const(g, a[1]), _const(g, b[1])
    if len(node.inputs) > 2 and node.inputs[2]:
        n = _const(g, b[0]).shape[0 if trans_b else 1]
        bias = _qdq_bias(g, node.inputs[2], grp.producers, a_scale, b_scale)
        if bias is None or _const(g, bias) is None or _const(g, bias).size != n:
            return None
        inputs.append(bias)
    else:
        inputs.append("")
    q = grp.q(node)
    attrs = {k: v for k, v in node.attrs.items() if k in ("transA", "transB")}
    if q is None:  # float output
        return Node("QGemm", inputs, [node.outputs[0]], attrs, f"{label}_qdq", MICROSOFT), None
    inputs += [q.inputs[1], q.inputs[2] if len(q.inputs) > 2 else ""]
    return Node("QGemm", inputs, [q.outputs[0]], attrs, f"{label}_qdq", MICROSOFT), q


def _weights_by_row(grp: _Group, node: Node) -> list[str] | None:
    """Gemm transB=1 weights (N, K): per-row (axis 0) scales are QGemm's per column."""
    dq = _through_identities(grp.producers, node.inputs[1])
    if dq is None or dq.op_type != "DequantizeLinear":
        return None
    codes, scale = _const(grp.g, dq.inputs[0]), _const(grp.g, dq.inputs[1])
    zero = dq.inputs[2] if len(dq.inputs) > 2 else ""
    if codes is None or scale is None or codes.ndim != 2 or dq.attrs.get("block_size"):
        return None
    if scale.size != 1 and (dq.attrs.get("axis", 1) % 2 != 0 or scale.size != codes.shape[0]):
        return None
    return [dq.inputs[0], dq.inputs[1], zero]


def fuse_qdq_groups(graph: Graph) -> Graph:
    """Every fusable QDQ group of ``graph`` (in place) as its integer op; see the module
    docstring. Run after ``fuse_qdq_convs``."""
    return replace_groups(graph, _fuse)


def replace_groups(graph: Graph, fuse: Any) -> Graph:
    """``graph`` (in place) with every node for which ``fuse(group, node)`` gives
    (its integer node, the nodes it absorbs...) replaced, the absorbed ones dropped."""
    grp = _Group(graph)
    replace: dict[int, Node | None] = {}
    for node in graph.nodes:
        fused = fuse(grp, node)
        if fused is not None:
            replace[id(node)] = fused[0]
            for gone in fused[1:]:
                if gone is not None:
                    replace[id(gone)] = None
    if replace:
        graph.nodes = [replace.get(id(n), n) for n in graph.nodes if replace.get(id(n), n)]
        prune(graph)
    return graph


def cast_integer_products(graph: Graph) -> Graph:
    """Cast(to=FLOAT) of a MatMulInteger/ConvInteger result (what ``quantize_dynamic``
    writes) -> DequantizeLinear(x, 1.0, int32 0): the same int32 -> float32 conversion,
    on the backend's own kernel (in place)."""
    producers = graph.producers()
    for i, node in enumerate(graph.nodes):
        source = producers.get(node.inputs[0]) if node.inputs else None
        if (node.op_type == "Cast" and node.attrs.get("to") == 1 and source is not None
                and source.op_type in ("MatMulInteger", "ConvInteger")):
            one = graph.add_initializer(f"{node.outputs[0]}_one", np.float32(1.0))
            zero = graph.add_initializer(f"{node.outputs[0]}_zero", np.int32(0))
            graph.nodes[i] = Node("DequantizeLinear", [node.inputs[0], one, zero],
                                  list(node.outputs), {}, node.name)
    return graph
