"""Gemm followed by an activation becomes one ``FusedGemm`` (issue 16): the executor runs
it as one ``gemm(..., activation=)`` call, which the cpu backend makes one oneDNN matmul
with the bias and the activation fused, and the others ``_gemm`` then the activation's
own kernel. Small models' dense layers (mlp, autoencoder, LeNet's classifier) are such
chains, and at their sizes each kernel call costs more than its arithmetic.

The activation is any of ``spec.ACTIVATIONS`` as ``activation_fusion.conv_activation``
finds it (the rules of ``passes.fuse_conv_epilogues``: every value absorbed has no other
reader and is no graph output). Run it only for the executor, after ``optimize`` (which
folds Gemm's alpha/beta): the node lives in domain ``com.hwbench``.
"""

from __future__ import annotations

import numpy as np

from hwbench.graph.activation_fusion import ONNX_DOMAINS, conv_activation
from hwbench.graph.ir import FUSED_DOMAIN, FUSED_GEMM, Graph, Node


def fuse_gemm_activations(graph: Graph) -> Graph:
    """Gemm → activation as one ``FusedGemm`` node (in place): inputs (a, b, c or ""),
    attributes transA/transB and ``activation`` (its name), in the place of the last
    node it absorbs. A Gemm whose alpha or beta is not 1 is left alone."""
    consumers = graph.consumers()
    replace: dict[int, Node] = {}  # id of the last absorbed node -> the fused node
    removed: set[int] = set()
    taken: set[int] = set()
    for gemm in graph.nodes:
        if gemm.op_type != "Gemm" or gemm.domain not in ONNX_DOMAINS:
            continue
        if gemm.attrs.get("alpha", 1.0) != 1.0 or gemm.attrs.get("beta", 1.0) != 1.0:
            continue
        act = conv_activation(graph, gemm.outputs[0], consumers, taken)
        if act is None:
            continue
        name, absorbed, y = act
        attrs = {k: gemm.attrs[k] for k in ("transA", "transB") if k in gemm.attrs}
        attrs["activation"] = name
        inputs = [*gemm.inputs, "", ""][:3]
        replace[id(absorbed[-1])] = Node(FUSED_GEMM, inputs, [y], attrs, gemm.name,
                                         FUSED_DOMAIN)
        taken.update(id(n) for n in absorbed)
        removed.add(id(gemm))
        removed.update(id(n) for n in absorbed[:-1])
    graph.nodes = [replace.get(id(n), n) for n in graph.nodes if id(n) not in removed]
    return graph


def _column_bias(graph: Graph, add: Node, y: str, n: int, rank: int) -> str | None:
    """The name of ``add``'s constant other operand as Gemm's C of shape (n,) (a new
    initializer where it has leading 1s), if it is one float32 value per output column
    that does not widen the product's rank; else None."""
    if add.op_type != "Add" or add.domain not in ONNX_DOMAINS or len(add.inputs) != 2:
        return None
    other = add.inputs[1] if add.inputs[0] == y else add.inputs[0]
    bias = graph.initializers.get(other)
    if other == y or bias is None or bias.dtype != np.float32 or bias.ndim > rank:
        return None
    if bias.shape[-1:] != (n,) or any(d != 1 for d in bias.shape[:-1]):
        return None
    return other if bias.ndim == 1 else graph.add_initializer(f"{other}_row", bias.reshape(n))


def _split_parts(graph: Graph, node: Node, y: str, n: int, rank: int) -> list | None:
    """(start, end, output) of each part when ``node`` is a Split of ``y`` along its last
    axis into constant lengths; else None."""
    from hwbench.errors import ArgumentError
    from hwbench.graph.ops.tensor_ops import split_sizes

    if node.op_type != "Split" or node.domain not in ONNX_DOMAINS or node.inputs[0] != y \
            or node.attrs.get("axis", 0) not in (rank - 1, -1):
        return None
    sizes = node.inputs[1] if len(node.inputs) > 1 and node.inputs[1] else None
    if sizes is not None and sizes not in graph.initializers:
        return None
    try:
        lengths = split_sizes(node, n, graph.initializers.get(sizes), graph.opset)
    except ArgumentError:
        return None
    ends = np.cumsum(lengths)
    return [(int(e - size), int(e), out) for size, e, out in zip(lengths, ends, node.outputs,
                                                                   strict=True)]


def matmuls_as_gemm(graph: Graph) -> Graph:
    """MatMul of an activation by a constant 2-D float32 weight, and the Add of a
    per-column constant bias that alone reads it, as one Gemm with C (in place):
    ``Reshape(x, (m, k)) → Gemm(·, W, bias) → Reshape(·, x's leading dims + (n,))``
    where x has more than two dimensions (the Reshapes are views). A transformer's dense
    layers are such pairs (72 in BERT-base); the cpu backend runs a Gemm by a weight on
    its packed-weight matmul primitive with the bias fused (``cpu/fused_gemm.packs``),
    where MatMul then Add took two calls on plain weights. A Split of the product along
    its last axis (GPT-2's and ViT's fused query/key/value projection) becomes one Gemm
    per part, by W's and the bias' columns of that part: no copies of the parts. An
    activation of ``spec.ACTIVATIONS`` after the bias of a 3-D product (BERT's and ViT's
    Gelu) joins it as one ``FusedGemm`` before the Reshape back; run the pass before
    ``fuse_gemm_activations``, which fuses a 2-D product's."""
    from hwbench.graph.shape_inference import infer_shapes

    inits = graph.initializers
    shapes: dict | None = None
    consumers = graph.consumers()
    replace: dict[int, list[Node]] = {}
    removed: set[int] = set()
    for mm in graph.nodes:
        if mm.op_type != "MatMul" or mm.domain not in ONNX_DOMAINS or len(mm.inputs) != 2:
            continue
        w = inits.get(mm.inputs[1])
        if w is None or w.ndim != 2 or w.dtype != np.float32 or mm.inputs[0] in inits:
            continue
        shapes = infer_shapes(graph) if shapes is None else shapes
        x_shape = shapes.get(mm.inputs[0])
        if x_shape is None or len(x_shape) < 2 or any(not isinstance(d, int)
                                                         for d in x_shape):
            continue
        y, (k, n), rank = mm.outputs[0], w.shape, len(x_shape)

        def only_reader(value: str) -> Node | None:
            readers = consumers.get(value, [])
            return readers[0] if len(readers) == 1 and value not in graph.output_names \
                else None
        bias, last, out = None, mm, y
        add = only_reader(y)
        if add is not None:
            bias = _column_bias(graph, add, y, n, rank)
            if bias is not None:
                last, out = add, add.outputs[0]
        split = only_reader(out)
        parts = None if split is None else _split_parts(graph, split, out, n, rank)
        act = None if parts is not None else conv_activation(graph, out, consumers, set())
        if parts is not None:
            last = split
        elif bias is None and rank == 2:
            continue  # a 2-D MatMul runs on gemm already
        elif act is not None and rank > 2:  # (a 2-D one: fuse_gemm_activations)
            activation, absorbed, out = act
            last = absorbed[-1]
            removed.update(id(a) for a in absorbed)
            parts = [(0, n, out)]
        else:
            act, parts = None, [(0, n, out)]
        nodes = []
        x2 = mm.inputs[0]
        if rank > 2:
            x2 = graph.fresh_name(f"{mm.inputs[0]}_2d")
            to_2d = graph.add_initializer(f"{mm.name or y}_shape_2d",
                                          np.array([int(np.prod(x_shape[:-1])), k], np.int64))
            nodes.append(Node("Reshape", [mm.inputs[0], to_2d], [x2], {}, f"{mm.name}_to_2d"))
        whole = len(parts) == 1
        for j, (begin, end, name) in enumerate(parts):
            if not name:
                continue  # a part the graph drops
            label = mm.name if whole else f"{mm.name}_part{j}"
            inputs = [x2, mm.inputs[1] if whole else
                      graph.add_initializer(f"{mm.inputs[1]}_part{j}", w[:, begin:end].copy())]
            if bias is not None:
                inputs.append(bias if whole else graph.add_initializer(
                    f"{bias}_part{j}", inits[bias][begin:end].copy()))
            if rank == 2:
                nodes.append(Node("Gemm", inputs, [name], {}, label))
                continue
            y2 = graph.fresh_name(f"{name}_2d")
            back = graph.add_initializer(f"{label or y}_shape_nd",
                                         np.array([*x_shape[:-1], end - begin], np.int64))
            if act is not None:
                nodes.append(Node(FUSED_GEMM, [*inputs, ""][:3], [y2],
                                  {"activation": activation}, label, FUSED_DOMAIN))
            else:
                nodes.append(Node("Gemm", inputs, [y2], {}, label))
            nodes.append(Node("Reshape", [y2, back], [name], {}, f"{label}_to_nd"))
        replace[id(last)] = nodes
        removed.update({id(mm), id(last)} | ({id(add)} if bias is not None else set()))
    graph.nodes = [new for node in graph.nodes if id(node) not in removed or id(node) in replace
                   for new in replace.get(id(node), [node])]
    return graph
