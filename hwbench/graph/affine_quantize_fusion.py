"""Mul -> [Add] -> [Relu] -> QuantizeLinear of a float activation by per-channel factors as
one ``com.hwbench:AffineQuantizeLinear`` node, for the cpu backend's ``float32-requant``
mode (issue 16; ``Session`` runs this pass on that mode only).

``hwbench.quantize_model`` leaves these between int8 convolutions where no conv takes
them: DenseNet's BatchNormalization (a Mul and an Add by constants) and Relu on each
concatenation of float features before its 1x1 conv (62 a run), and the
squeeze-and-excitation Mul of MobileNet v3 and EfficientNet (the activation by the
(N, C, 1, 1) gate the block computed). Each op made a float32 pass over the activation
and QuantizeLinear another; ``backends/cpu/int8_affine_quantize.py`` runs the chain as
one oneDNN binary primitive writing the codes. The node keeps every input, so any other
backend runs the ops one by one (``graph/ops/affine_quantize.py``).

Conditions: each intermediate value read by the next op alone and no graph output; the
factors (and the Add's term) constants of one value per channel, or (the factor only) a
run-time value of shape (N, C, 1, 1); QuantizeLinear per tensor with constant scale and
zero point.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hwbench.graph.ir import FUSED_DOMAIN, Graph, Node
from hwbench.graph.ops.affine_quantize import AFFINE_QUANTIZE
from hwbench.graph.qdq_fusion import _const, _Group, replace_groups
from hwbench.graph.shape_inference import infer_shapes


def _reader(grp: _Group, node: Node, op_type: str) -> Node | None:
    """The one plain ``op_type`` node that alone reads ``node``'s output, or None."""
    name = node.outputs[0]
    readers = grp.consumers.get(name, [])
    if name in grp.g.output_names or len(readers) != 1 or readers[0].domain \
            or readers[0].op_type != op_type:
        return None
    return readers[0]


def _per_channel(grp: _Group, name: str, shape: tuple[int, ...]) -> bool:
    """Whether ``name`` is a constant of one value per channel of an NCHW ``shape``."""
    value = _const(grp.g, name)
    return value is not None and value.dtype == np.float32 and value.size == shape[1] \
        and value.shape in ((shape[1], 1, 1), (1, shape[1], 1, 1))


def _scalar(grp: _Group, name: str) -> bool:
    value = _const(grp.g, name)
    return value is not None and value.size == 1


@dataclass(frozen=True)
class AffineChain:
    """A Mul of a 4-D float activation ``x`` by per-channel ``scale`` -> [an Add of a
    per-channel constant ``shift``] -> [a Relu], each node read by the next alone."""

    mul: Node
    x: str
    scale: str
    add: Node | None
    shift: str  # "" without the Add
    relu: Node | None

    @property
    def last(self) -> Node:
        return self.relu or self.add or self.mul


def affine_chain(grp: _Group, mul: Node, shapes: dict, gates: bool) -> AffineChain | None:
    """The chain ``mul`` begins, or None. ``gates``: the factor may also be a run-time
    value of shape (N, C, 1, 1) (a squeeze-and-excitation gate), not only a constant."""
    if mul.op_type != "Mul" or mul.domain or len(mul.inputs) != 2:
        return None
    shape = shapes.get(mul.outputs[0], ())
    if len(shape) != 4:
        return None
    x, scale = _operands(grp, mul, shape, shapes, gates)
    if x is None:
        return None
    add, shift, last = _reader(grp, mul, "Add"), "", mul
    if add is not None and len(add.inputs) == 2:
        shift = add.inputs[1] if add.inputs[0] == mul.outputs[0] else add.inputs[0]
        if _per_channel(grp, shift, shape):
            last = add
        else:
            add, shift = None, ""
    else:
        add = None
    return AffineChain(mul, x, scale, add, shift, _reader(grp, last, "Relu"))


def _operands(grp: _Group, mul: Node, shape: tuple[int, ...], shapes: dict,
              gates: bool) -> tuple[str | None, str]:
    """(the activation, the factors) of a Mul by per-channel factors, else (None, "")."""
    a, b = mul.inputs
    for x, scale in ((a, b), (b, a)):
        if shapes.get(x) != shape or x in grp.g.initializers:
            continue
        if _per_channel(grp, scale, shape):
            return x, scale
        if gates and scale not in grp.g.initializers \
                and shapes.get(scale) == (shape[0], shape[1], 1, 1):
            return x, scale  # a squeeze-and-excitation gate, computed each run
    return None, ""


class _Fuser:
    def __init__(self, graph: Graph) -> None:
        self.shapes = infer_shapes(graph)

    def __call__(self, grp: _Group, mul: Node) -> tuple | None:
        """(the fused node, the Add, the Relu, the QuantizeLinear) for a Mul, or None."""
        chain = affine_chain(grp, mul, self.shapes, gates=True)
        if chain is None:
            return None
        q = _reader(grp, chain.last, "QuantizeLinear")
        if q is None or q.attrs.get("block_size") or q.attrs.get("output_dtype") \
                or len(q.inputs) < 2 or not _scalar(grp, q.inputs[1]) \
                or (len(q.inputs) > 2 and q.inputs[2] and not _scalar(grp, q.inputs[2])):
            return None
        zero = q.inputs[2] if len(q.inputs) > 2 else ""
        node = Node(AFFINE_QUANTIZE, [chain.x, chain.scale, chain.shift, q.inputs[1], zero],
                    list(q.outputs), {"relu": int(chain.relu is not None)},
                    f"{mul.name or mul.outputs[0]}_quantize", FUSED_DOMAIN)
        return node, chain.add, chain.relu, q


def fuse_affine_quantize(graph: Graph) -> Graph:
    """Every Mul (by per-channel factors) -> [Add (per-channel)] -> [Relu] ->
    QuantizeLinear chain as one ``AffineQuantizeLinear`` node (in place)."""
    return replace_groups(graph, _Fuser(graph))
