"""Fold ShuffleNet's channel shuffle into the convolutions that read it (issue 16).

ShuffleNet writes its channel shuffle as Reshape (N, C, H, W) -> (N, g, C/g, H, W) ->
Transpose(0, 2, 1, 3, 4) -> Reshape back to (N, C, H, W): a fixed permutation of the
channels, ``y[:, j] = x[:, idx[j]]``. Run as written it needs plain NCHW memory, so a
backend that keeps activations blocked (``cpu``'s nChw16c) converts twice around it.

A permutation of a convolution's input channels is a permutation of its weight's
input-channel axis, exactly (no arithmetic changes, only which weight meets which
activation). ``fold_channel_shuffles`` removes the three nodes and rewrites every reader
of the shuffled value instead:

- a Conv with ``group=1``: its weight's axis 1 is permuted;
- a depthwise Conv (one filter per channel): its filters and bias are permuted, so its
  output is the *same* permutation of what it now computes, and that output's readers
  are rewritten in turn; so are those of an elementwise unary op (Relu, Clip, ...);
- a grouped Conv (1 < group < C), only with ``densify=True``: the permuted input mixes
  its groups, so it becomes a dense Conv (group 1) whose weight is block-diagonal, then
  permuted. That is ``group`` times the multiply-adds, so ``optimize`` does not ask for
  it: on ``cpu`` (oneDNN, 2-core Zen 4, busy) ShuffleNet v1 ran 1.2x faster with it at
  batch 8 and 2 threads but 1.3-1.6x slower at 1 thread (b1 and b8) (its grouped 1x1
  convs already run at ~45 % of one core's peak), and it would inflate FLOP counts.

The fold happens only when every reader (transitively through depthwise convs and
unary ops) can be rewritten, no value involved is a graph output, and every weight and
bias is a constant; otherwise the shuffle is left as it is. It runs in
``passes.optimize``, so every backend runs the rewritten graph.
"""

from __future__ import annotations

import numpy as np

from hwbench.graph.ir import Graph, Node, prune
from hwbench.graph.ops import OP_DEFS
from hwbench.graph.shape_inference import infer_shapes

ONNX_DOMAINS = ("", "ai.onnx")
# Kernels that apply one function to every element alone (scalar parameters at most):
# an op that is one call of one of them commutes with a channel permutation.
ELEMENTWISE_KERNELS = {("unary",), ("relu",), ("sigmoid",)}
# Shuffles left as one Gather (``shuffles_as_gathers``): 8-bit codes, and float32 (cpu's
# grouped convs write NHWC: one reorder, ``backends/cpu/channel_shuffle``).
GATHERED_TYPES = (np.dtype(np.uint8), np.dtype(np.int8), np.dtype(np.float32))


def _elementwise(node: Node) -> bool:
    op = OP_DEFS.of(node)
    return op is not None and op.kernels in ELEMENTWISE_KERNELS


def _shuffle_index(graph: Graph, last: Node, producers, consumers, shapes):
    """(x, idx, the three nodes) if ``last`` ends a channel shuffle of x, else None."""
    if last.op_type != "Reshape" or last.domain not in ONNX_DOMAINS:
        return None
    trans = producers.get(last.inputs[0])
    if trans is None or trans.op_type != "Transpose" or trans.domain not in ONNX_DOMAINS:
        return None
    first = producers.get(trans.inputs[0])
    if first is None or first.op_type != "Reshape" or first.domain not in ONNX_DOMAINS:
        return None
    x, split = first.inputs[0], first.outputs[0]
    for value in (split, trans.outputs[0]):
        if len(consumers.get(value, [])) != 1 or value in graph.output_names:
            return None
    xs, ss, ys = shapes.get(x), shapes.get(split), shapes.get(last.outputs[0])
    if xs is None or len(xs) != 4 or ys != xs or ss is None or None in xs or None in ss:
        return None
    mids = len(ss) - 3
    if mids < 1 or ss[0] != xs[0] or tuple(ss[-2:]) != tuple(xs[2:]):
        return None
    if int(np.prod(ss[1:1 + mids])) != xs[1]:
        return None
    perm = [int(p) for p in trans.attrs["perm"]] if "perm" in trans.attrs \
        else list(range(len(ss)))[::-1]
    middle = [p - 1 for p in perm[1:1 + mids]]
    if perm[0] != 0 or perm[1 + mids:] != list(range(1 + mids, len(ss))) \
            or sorted(middle) != list(range(mids)):
        return None
    idx = np.arange(xs[1]).reshape(ss[1:1 + mids]).transpose(middle).reshape(-1)
    return x, idx, (first, trans, last)


def _constants(graph: Graph, conv: Node) -> bool:
    if conv.inputs[1] not in graph.initializers:
        return False
    return len(conv.inputs) < 3 or not conv.inputs[2] or conv.inputs[2] in graph.initializers


def _plan(graph: Graph, value: str, idx: np.ndarray, consumers, densify: bool,
          edits: list) -> bool:
    """Collect in ``edits`` the rewrites that let every reader of ``value`` read its
    unpermuted source (``value[:, j] == source[:, idx[j]]``); False if one cannot."""
    if value in graph.output_names:
        return False
    readers = consumers.get(value, [])
    if not readers:
        return False
    channels = idx.size
    for node in readers:
        if node.domain not in ONNX_DOMAINS:
            return False
        if _elementwise(node) and len(node.inputs) >= 1 and node.inputs[0] == value \
                and value not in node.inputs[1:] and len(node.outputs) == 1:
            edits.append(("unary", node, idx))
            if not _plan(graph, node.outputs[0], idx, consumers, densify, edits):
                return False
            continue
        if node.op_type != "Conv" or node.inputs[0] != value or value in node.inputs[1:] \
                or not _constants(graph, node):
            return False
        w = graph.initializers[node.inputs[1]]
        group = int(node.attrs.get("group", 1))
        if w.ndim < 3 or w.shape[1] * group != channels:
            return False
        if group == 1:
            edits.append(("input", node, idx))
        elif group == channels and w.shape[0] == channels:
            edits.append(("depthwise", node, idx))
            if not _plan(graph, node.outputs[0], idx, consumers, densify, edits):
                return False
        elif densify:
            edits.append(("dense", node, idx))
        else:
            return False
    return True


def _apply(graph: Graph, kind: str, node: Node, idx: np.ndarray) -> None:
    if kind == "unary":
        return
    w = graph.initializers[node.inputs[1]]
    group = int(node.attrs.get("group", 1))
    if kind == "dense":  # block-diagonal: output k reads only its own group's inputs
        per_in, per_out = w.shape[1], w.shape[0] // group
        dense = np.zeros((w.shape[0], per_in * group) + w.shape[2:], w.dtype)
        for g in range(group):
            dense[g * per_out:(g + 1) * per_out, g * per_in:(g + 1) * per_in] = \
                w[g * per_out:(g + 1) * per_out]
        w, kind = dense, "input"
        node.attrs = {k: v for k, v in node.attrs.items() if k != "group"}
    if kind == "input":  # new[:, idx[j]] = old[:, j]
        new = np.empty_like(w)
        new[:, idx] = w
        node.inputs[1] = graph.add_initializer(f"{node.inputs[1]}_unshuffled", new)
        return
    # depthwise: filter j moves to channel idx[j], and so does its bias
    new = np.empty_like(w)
    new[idx] = w
    node.inputs[1] = graph.add_initializer(f"{node.inputs[1]}_unshuffled", new)
    if len(node.inputs) > 2 and node.inputs[2]:
        b = graph.initializers[node.inputs[2]]
        nb = np.empty_like(b)
        nb[idx] = b
        node.inputs[2] = graph.add_initializer(f"{node.inputs[2]}_unshuffled", nb)


def fold_channel_shuffles(graph: Graph, densify: bool = False) -> Graph:
    """Remove every channel shuffle whose readers can absorb it (in place); see the module
    docstring. Returns ``graph``."""
    shapes = infer_shapes(graph)
    while True:
        producers, consumers = graph.producers(), graph.consumers()
        for node in graph.nodes:
            found = _shuffle_index(graph, node, producers, consumers, shapes)
            if found is None:
                continue
            x, idx, chain = found
            edits: list = []
            if not _plan(graph, node.outputs[0], idx, consumers, densify, edits):
                continue
            if len({id(e[1]) for e in edits}) != len(edits):
                continue  # a node reached twice: leave this shuffle alone
            for kind, reader, perm in edits:
                _apply(graph, kind, reader, perm)
            for reader in consumers[node.outputs[0]]:
                reader.inputs = [x if name == node.outputs[0] else name
                                 for name in reader.inputs]
            gone = {id(n) for n in chain}
            graph.nodes = [n for n in graph.nodes if id(n) not in gone]
            break
        else:
            return prune(graph)


def shuffles_as_gathers(graph: Graph) -> Graph:
    """Every channel shuffle left (``GATHERED_TYPES``: ShuffleNet's Slices or grouped convs
    read it, so ``fold_channel_shuffles`` cannot remove it) as one Gather of its channels,
    in place: the same elements moved, in one op a backend can run on its own layout
    (``cpu`` keeps channels-last codes channels-last, and moves float32 from its grouped
    convs' NHWC output in one reorder: one pass instead of a transpose to NCHW, a 5-D
    transpose, and a transpose back before the next convolution)."""
    from hwbench.graph.element_types import infer_element_types

    shapes, types = infer_shapes(graph), infer_element_types(graph)
    producers, consumers = graph.producers(), graph.consumers()
    gone: set[int] = set()
    for node in list(graph.nodes):
        found = _shuffle_index(graph, node, producers, consumers, shapes)
        if found is None or types.get(found[0]) not in GATHERED_TYPES:
            continue
        x, idx, chain = found
        if any(id(n) in gone for n in chain):
            continue
        index = graph.add_initializer(f"{node.outputs[0]}_channels", idx.astype(np.int64))
        gather = Node("Gather", [x, index], [node.outputs[0]], {"axis": 1},
                      name=node.name or node.outputs[0])
        graph.nodes[graph.nodes.index(node)] = gather
        gone.update(id(n) for n in chain[:2])
    graph.nodes = [n for n in graph.nodes if id(n) not in gone]
    return prune(graph)


def concat_shuffles(graph: Graph) -> Graph:
    """Every Gather of channels that alone reads a QLinearConcat on channels, and permutes
    all of them (ShuffleNet v2's shuffle after each unit's concat, once
    ``shuffles_as_gathers`` made it one Gather), folded into the concat as its attribute
    ``gather_channels`` (in place): the same codes, one op, so that a backend can write
    each input straight to its shuffled channels (``cpu:float32-requant``: no
    concatenated copy between the two). Run after ``shuffles_as_gathers``."""
    shapes, producers, consumers = infer_shapes(graph), graph.producers(), graph.consumers()
    gone: set[int] = set()
    for gather in graph.nodes:
        if gather.op_type != "Gather" or gather.domain not in ONNX_DOMAINS \
                or gather.inputs[1] not in graph.initializers:
            continue
        concat = producers.get(gather.inputs[0])
        y = gather.inputs[0]
        if concat is None or concat.op_type != "QLinearConcat" or "gather_channels" in \
                concat.attrs or y in graph.output_names or len(consumers.get(y, [])) != 1:
            continue
        rank, channels = len(shapes[y]), shapes[y][1] if len(shapes[y]) > 1 else 0
        index = np.asarray(graph.initializers[gather.inputs[1]])
        if gather.attrs.get("axis", 0) % rank != 1 or concat.attrs["axis"] % rank != 1 \
                or index.ndim != 1 or not np.array_equal(np.sort(index), np.arange(channels)):
            continue
        concat.attrs["gather_channels"] = [int(i) for i in index]
        concat.outputs = [gather.outputs[0]]
        gone.add(id(gather))
    graph.nodes = [n for n in graph.nodes if id(n) not in gone]
    return prune(graph)
