"""QLinearConv -> DequantizeLinear -> Relu/Clip -> QuantizeLinear (every conv of a model
``hwbench.quantize_model`` made, but those feeding a float Add or Concat) as one
``com.hwbench:QLinearConvRequant`` node, for the cpu backend's ``float32-requant`` mode
(issue 16; ``Session`` runs this pass on that mode only).

The three ops after the conv each made a float32 pass over its activation (MobileNet
v2: 6.4 of 11.4 ms a run); ``backends/cpu/int8_conv_requant.py`` does their arithmetic
as post-ops of the convolution. The node keeps every input, so any other backend or
argument runs the four ops (``graph/ops/qconv_add.py``). Conditions: each value read by
the next op alone and no graph output; the DequantizeLinear reads the codes with the
conv's own output scale and zero point; constant per-tensor parameters and Clip bounds.

``fuse_qconv_dequant_add``: QLinearConv -> DequantizeLinear -> Add of a float32 value
(-> Relu), the residual stream ``quantize_model`` keeps in float, as one
``QLinearConvDequantAdd`` node with a float32 output; where no such Add follows, the
conv and its DequantizeLinear alone (SqueezeNet's and Inception's convs before a float
Concat, DenseNet's...).

Either node also takes a float activation after the DequantizeLinear (``activation``, one
of ``POST_OP_ACTIVATIONS``, as ``activation_fusion.conv_activation`` finds it: MobileNet
v3's HardSwish and HardSigmoid, EfficientNet's SiLU, a Sigmoid...), which the cpu backend
runs as one more eltwise post-op of the convolution.
"""

from __future__ import annotations

import numpy as np

from hwbench.graph.activation_fusion import conv_activation
from hwbench.graph.ir import FUSED_DOMAIN, Graph, Node
from hwbench.graph.ops import OP_DEFS
from hwbench.graph.ops.qconv_add import QCONV_DEQUANT_ADD, QCONV_REQUANT
from hwbench.graph.qdq_fusion import _const, _Group, replace_groups


def _only_reader(grp: _Group, name: str) -> Node | None:
    readers = grp.consumers.get(name, [])
    if len(readers) != 1 or name in grp.g.output_names:
        return None
    return readers[0]


def _scalar(grp: _Group, name: str) -> bool:
    value = _const(grp.g, name)
    return value is not None and value.size == 1


def _bounds(grp: _Group, act: Node) -> tuple[float | None, float | None] | None:
    """(min, max) of a Relu or a Clip with constant bounds, else None."""
    if act.op_type == "Relu" and not act.domain:
        return 0.0, None
    if act.op_type != "Clip" or act.domain:
        return None
    if grp.g.opset < 11:
        lo, hi = act.attrs.get("min"), act.attrs.get("max")
    else:
        names = list(act.inputs[1:3]) + [""] * (3 - len(act.inputs))
        if any(n and not _scalar(grp, n) for n in names[:2]):
            return None
        lo, hi = (_const(grp.g, n).item() if n else None for n in names[:2])
    return (None if lo is None else float(lo)), (None if hi is None else float(hi))


# spec.ACTIVATIONS the fused convs take as ``activation`` (Relu and Clip: clip bounds)
POST_OP_ACTIVATIONS = ("sigmoid", "silu", "hardswish", "hardsigmoid", "tanh")


def _activation(grp: _Group, value: str) -> tuple[str, list[Node], str] | None:
    """(name, the nodes it absorbs, its output) of a ``POST_OP_ACTIVATIONS`` activation
    applied to float value ``value`` alone, or None."""
    found = conv_activation(grp.g, value, grp.consumers, set())
    return found if found is not None and found[0] in POST_OP_ACTIVATIONS else None


def _conv_dequantized(grp: _Group, conv: Node) -> tuple[list[str], Node] | None:
    """A plain QLinearConv's inputs (padded to 9) and the one DequantizeLinear that alone
    reads its codes, with the conv's own per-tensor output scale and zero point."""
    if conv.op_type != "QLinearConv" or conv.domain:
        return None
    ins = list(conv.inputs) + [""] * (9 - len(conv.inputs))
    dq = _only_reader(grp, conv.outputs[0])
    if dq is None or dq.op_type != "DequantizeLinear" or dq.domain \
            or dq.attrs.get("block_size") or list(dq.inputs[1:3]) != ins[6:8] \
            or not _scalar(grp, ins[6]):
        return None
    return ins, dq


def _fuse(grp: _Group, conv: Node) -> tuple | None:
    """(the fused node, the DequantizeLinear, the activation or None, the Quantize)."""
    found = _conv_dequantized(grp, conv)
    if found is None:
        return None
    ins, dq = found
    nxt = _only_reader(grp, dq.outputs[0])
    absorbed: list[Node] = []
    lo, hi, name, activation = None, None, None, _activation(grp, dq.outputs[0])
    if nxt is not None and nxt.op_type in ("Relu", "Clip"):
        bounds = _bounds(grp, nxt)
        if bounds is None:
            return None
        absorbed, (lo, hi) = [nxt], bounds
        nxt = _only_reader(grp, nxt.outputs[0])
    elif activation is not None:
        name, absorbed = activation[0], activation[1]
        nxt = _only_reader(grp, activation[2])
    if nxt is None or nxt.op_type != "QuantizeLinear" or nxt.domain \
            or nxt.attrs.get("block_size") or nxt.attrs.get("output_dtype") \
            or len(nxt.inputs) < 2 or not _scalar(grp, nxt.inputs[1]) \
            or (len(nxt.inputs) > 2 and nxt.inputs[2] and not _scalar(grp, nxt.inputs[2])):
        return None
    y_zero = nxt.inputs[2] if len(nxt.inputs) > 2 else ""
    attrs = dict(conv.attrs)
    if lo is not None and np.isfinite(lo):
        attrs["clip_min"] = lo
    if hi is not None and np.isfinite(hi):
        attrs["clip_max"] = hi
    if name is not None:
        attrs["activation"] = name
    node = Node(QCONV_REQUANT, ins + [nxt.inputs[1], y_zero], list(nxt.outputs), attrs,
                f"{conv.name or conv.outputs[0]}_requant", FUSED_DOMAIN)
    return node, dq, *absorbed, nxt


def fuse_qconv_requant(graph: Graph) -> Graph:
    """Every QLinearConv -> DequantizeLinear -> [Relu | Clip | a ``POST_OP_ACTIVATIONS``
    activation] -> QuantizeLinear chain as one ``QLinearConvRequant`` node (in place)."""
    return replace_groups(graph, _fuse)


# kernels the cpu backend runs on channels-last floats keeping the layout (a Concat's on
# channels only: ``blocked_layout.channels_last_concat``)
KEEP_CHANNELS_LAST = {"add", "relu", "max_pool2d", "avg_pool2d", "concat"}


def _channels_last_float(grp: _Group, name: str, memo: dict[str, bool]) -> bool:
    """Whether the cpu backend holds float value ``name`` channels-last: a
    DequantizeLinear's (of a conv's codes) or a fused conv's, through Adds, Relus, pools
    and channel Concats of such values (``memo``: the answers so far, for long residual
    chains). Any other (a graph input, a Gather's) is plain NCHW, which the fused conv
    cannot read fast: the two ops then stay apart, on their own bound kernels."""
    if name not in memo:
        memo[name] = False  # (a DAG: no value reaches itself)
        node = grp.producers.get(name)
        memo[name] = node is not None and node.domain in ("", FUSED_DOMAIN) \
            and _channels_last_node(grp, node, memo)
    return memo[name]


def _channels_last_node(grp: _Group, node: Node, memo: dict[str, bool]) -> bool:
    if node.op_type == "DequantizeLinear":  # of codes an integer op, MaxPool or Quantize made
        source = grp.producers.get(node.inputs[0])
        return source is not None and (source.op_type in ("MaxPool", "QuantizeLinear")
                                       or OP_DEFS.of(source).integer)
    if node.op_type == QCONV_DEQUANT_ADD:
        return True
    d = OP_DEFS.of(node)
    kernels = () if d is None else d.kernels
    if len(node.outputs) != 1 or not kernels or not set(kernels) <= KEEP_CHANNELS_LAST \
            or kernels == ("concat",) and node.attrs.get("axis") not in (1, -3):
        return False
    return all(_channels_last_float(grp, i, memo) for i in node.inputs if i)


def _fuse_dequant_add(grp: _Group, conv: Node, memo: dict[str, bool]) -> tuple | None:
    """(the fused node, the DequantizeLinear, the Add and Relu if fused)."""
    found = _conv_dequantized(grp, conv)
    if found is None:
        return None
    ins, dq = found
    add = _only_reader(grp, dq.outputs[0])
    other = None
    if add is not None and add.op_type == "Add" and not add.domain \
            and len(add.inputs) == 2 and add.inputs[0] != add.inputs[1]:
        other = add.inputs[1] if add.inputs[0] == dq.outputs[0] else add.inputs[0]
        producer = grp.producers.get(other)
        if producer is None or grp.g.nodes.index(producer) > grp.g.nodes.index(conv) \
                or not _channels_last_float(grp, other, memo):
            other = None  # the residual must exist where the conv runs, channels-last
    if other is None:  # the conv and its dequantization alone (an activation): float32
        attrs = {**conv.attrs, "fused_relu": 0}
        outputs, absorbed = list(dq.outputs), []
        activation = _activation(grp, dq.outputs[0])
        if activation is not None:
            attrs["activation"], absorbed, outputs = activation[0], activation[1], \
                [activation[2]]
        node = Node(QCONV_DEQUANT_ADD, ins + [""], outputs, attrs,
                    f"{conv.name or conv.outputs[0]}_dequant", FUSED_DOMAIN)
        return node, dq, *absorbed
    relu = _only_reader(grp, add.outputs[0])
    if relu is not None and (relu.op_type != "Relu" or relu.domain):
        relu = None
    outputs = list((relu or add).outputs)
    attrs = {**conv.attrs, "fused_relu": int(relu is not None)}
    node = Node(QCONV_DEQUANT_ADD, ins + [other], outputs, attrs,
                f"{conv.name or conv.outputs[0]}_dequant_add", FUSED_DOMAIN)
    return node, dq, add, relu


def fuse_qconv_dequant_add(graph: Graph) -> Graph:
    """Every QLinearConv -> DequantizeLinear [-> Add(float32) [-> Relu] | -> a
    ``POST_OP_ACTIVATIONS`` activation] as one ``QLinearConvDequantAdd`` node (in place;
    without an Add, the residual input is "")."""
    memo: dict[str, bool] = {}
    return replace_groups(graph, lambda grp, conv: _fuse_dequant_add(grp, conv, memo))
