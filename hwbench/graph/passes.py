"""Graph passes: what turns an imported ONNX graph into one the executor runs well.

- ``fold_constants``: nodes whose inputs are all constants (ConstantOfShape, Constant,
  Unsqueeze, Shape, Reshape of a weight, ...) are evaluated once on the host with NumPy.
  The onnx wheel's model files build every weight with ConstantOfShape (hundreds of
  nodes feeding BatchNormalization), so this runs at load time.
- ``remove_dropout``: Dropout is the identity at inference.
- ``fold_batchnorm``: BatchNormalization after a Conv whose output feeds only it is
  folded into that Conv's weights and bias (in float64, then float32); any other
  BatchNormalization (after a Concat or a pool, as in DenseNet) becomes Mul + Add with
  per-channel constants.
- ``fold_affine``: a per-channel Mul/Add by a constant right after a Conv goes into the
  Conv too, and chains of such Mul/Add collapse into one Mul and one Add (DenseNet and
  Inception-v2 follow every BatchNormalization with such a "scale" layer).
- ``quantize.fuse_qdq_convs``: a QDQ-format int8 convolution (DequantizeLinear -> Conv ->
  QuantizeLinear, as onnxruntime's quantizer writes it) becomes one QLinearConv.
- ``shuffle_fold.fold_channel_shuffles``: a channel shuffle (Reshape -> Transpose ->
  Reshape, ShuffleNet) whose readers are convs (through depthwise convs and unary ops)
  goes into their weights' input-channel axis, exactly; ``shuffles_as_gathers``: one
  of 8-bit codes that could not be folded (Slices read it) becomes one Gather on axis 1;
  ``concat_shuffles``: such a Gather that alone reads a QLinearConcat goes into it
  (attribute ``gather_channels``).
- ``lower_sum`` (Sum -> chain of Add), ``lower_flatten`` (Flatten -> Reshape),
  ``fold_gemm_scalars`` (Gemm's alpha/beta into its constant operands, else a Mul).
- ``rewrite_batch``: a new batch size, rewriting Reshape targets that hard-code the old
  one only where the shapes prove it safe.

``optimize`` runs them in order on a copy. Every pass keeps the graph valid ONNX
(opset unchanged), so ``onnx_import.to_onnx`` can hand any stage to onnxruntime.

- ``fuse_conv_epilogues`` (run by ``Session`` after ``optimize``, not part of it): Conv
  followed by Add(shortcut) and/or Relu becomes hwbench's own ``FusedConv`` node
  (domain ``com.hwbench``), which the executor runs as one
  ``conv2d(..., residual=, activation=)`` call. Its result is for the executor only.
"""

from __future__ import annotations

import math

import numpy as np

from hwbench.errors import ArgumentError, UnsupportedError
from hwbench.graph.activation_fusion import conv_activation
from hwbench.graph.int8_fusion import fuse_qdq_add_relu
from hwbench.graph.ir import FUSED_CONV, FUSED_DOMAIN, Graph, Node, check_op_types, frozen, prune
from hwbench.graph.ops import OP_DEFS
from hwbench.graph.ops.shapes import flatten_shape, reshape_target, resolve_reshape
from hwbench.graph.qdq_fusion import cast_integer_products, fuse_qdq_groups
from hwbench.graph.quantize import fuse_qdq_convs
from hwbench.graph.shape_inference import infer_shapes
from hwbench.graph.shuffle_fold import (
    concat_shuffles,
    fold_channel_shuffles,
    shuffles_as_gathers,
)


def fold_constants(graph: Graph) -> Graph:
    """Evaluate on the host (``OpDef.host``) every node whose inputs are all
    initializers, and every Shape/Size (``OpDef.static_shape_host``) of a value whose
    shape is static, until nothing more folds (in place): with the model's dims fixed,
    exported shape and mask subgraphs (Shape -> Gather -> Concat -> Reshape, Range,
    Where) become constants."""
    _fold_constant_inputs(graph)
    while _fold_static_shapes(graph):
        _fold_constant_inputs(graph)
    return prune(graph)


def _fold_static_shapes(graph: Graph) -> bool:
    """Fold the Shape/Size nodes whose input's shape is known from the inputs' static
    shapes (shape rules run as far as they can); True if any was."""
    shapes: dict[str, tuple[int, ...]] = {
        v.name: tuple(v.shape) for v in graph.inputs
        if v.shape is not None and all(isinstance(d, int) and d > 0 for d in v.shape)}
    shapes.update((name, a.shape) for name, a in graph.initializers.items())
    kept, folded = [], False
    for node in graph.nodes:
        op = OP_DEFS.of(node)
        named = [name for name in node.inputs if name]
        known = all(name in shapes for name in named)
        if op is not None and op.static_shape_host and known and named:
            view = np.broadcast_to(np.zeros((), np.float32), shapes[named[0]])
            for name, value in zip(node.outputs, op.host(node, [view], graph.opset),
                                   strict=False):
                graph.initializers[name] = frozen(np.asarray(value))
                shapes[name] = np.shape(value)
            folded = True
            continue
        kept.append(node)
        if op is not None and op.shape is not None and known:
            try:
                outs = op.shape(node, [shapes[name] for name in named], graph)
            except (ArgumentError, UnsupportedError, KeyError, IndexError, ValueError,
                    TypeError):
                continue  # left unknown: a later round may know more
            shapes.update((name, tuple(int(d) for d in shape))
                          for name, shape in zip(node.outputs, outs, strict=False) if name)
    graph.nodes = kept
    return folded


def _fold_constant_inputs(graph: Graph) -> None:
    kept = []
    for node in graph.nodes:
        op = OP_DEFS.of(node)
        fn = op.host if op is not None else None
        if fn is None or not all(
                not name or name in graph.initializers for name in node.inputs):
            kept.append(node)
            continue
        args = [graph.initializers[name] if name else None for name in node.inputs]
        try:
            outputs = fn(node, args, graph.opset)
        except (ValueError, IndexError, TypeError, KeyError, MemoryError) as exc:
            raise ArgumentError(f"{node.label()}: cannot evaluate on constants: {exc}") from None
        for name, value in zip(node.outputs, outputs, strict=False):
            if name:
                graph.initializers[name] = frozen(np.asarray(value))
    graph.nodes = kept


# -- simple rewrites -----------------------------------------------------------------------
def _rename_uses(graph: Graph, old: str, new: str) -> None:
    for node in graph.nodes:
        node.inputs = [new if name == old else name for name in node.inputs]


def remove_identities(graph: Graph) -> Graph:
    """Drop Identity nodes by reading their input directly (in place); one that produces
    a graph output stays, so the output keeps its name."""
    outputs = set(graph.output_names)
    kept = []
    for node in graph.nodes:
        if node.op_type == "Identity" and node.outputs[0] not in outputs:
            _rename_uses(graph, node.outputs[0], node.inputs[0])
        else:
            kept.append(node)
    graph.nodes = kept
    return graph


def remove_dropout(graph: Graph) -> Graph:
    """Dropout is the identity at inference; its mask output may not be used (in place)."""
    consumers = graph.consumers()
    outputs = set(graph.output_names)
    for i, node in enumerate(graph.nodes):
        if node.op_type != "Dropout":
            continue
        mask = node.outputs[1] if len(node.outputs) > 1 else ""
        if mask and (mask in consumers or mask in outputs):
            raise UnsupportedError(f"{node.label()}: its mask output {mask!r} is used")
        graph.nodes[i] = Node("Identity", node.inputs[:1], node.outputs[:1], {}, node.name)
    return remove_identities(graph)


def lower_sum(graph: Graph) -> Graph:
    """Sum of n inputs -> a chain of n-1 Adds (one input: Identity) (in place)."""
    out: list[Node] = []
    for node in graph.nodes:
        if node.op_type != "Sum":
            out.append(node)
            continue
        terms = [name for name in node.inputs if name]
        if len(terms) == 1:
            out.append(Node("Identity", terms, node.outputs, {}, node.name))
            continue
        acc = terms[0]
        for j, term in enumerate(terms[1:], start=1):
            last = j == len(terms) - 1
            target = node.outputs[0] if last else graph.fresh_name(f"{node.outputs[0]}_sum{j}")
            out.append(Node("Add", [acc, term], [target], {}, f"{node.name}_add{j}"))
            acc = target
    graph.nodes = out
    return graph


def lower_flatten(graph: Graph) -> Graph:
    """Flatten -> Reshape. axis 1 (the usual case) becomes target (0, -1), which copies
    the batch dimension and so stays right at any batch size (in place)."""
    shapes = None
    for i, node in enumerate(graph.nodes):
        if node.op_type != "Flatten":
            continue
        axis = node.attrs.get("axis", 1)
        if axis in (0, 1):
            target = [1, -1] if axis == 0 else [0, -1]
        else:
            shapes = shapes or infer_shapes(graph)
            target = [flatten_shape(shapes[node.inputs[0]], axis)[0], -1]
        name = graph.add_initializer(f"{node.outputs[0]}_shape", np.asarray(target, np.int64))
        graph.nodes[i] = Node("Reshape", [node.inputs[0], name], node.outputs, {}, node.name)
    return graph


def fold_gemm_scalars(graph: Graph) -> Graph:
    """Gemm's alpha/beta go into constant operands (B, else A; and C); where an operand is
    computed at run time, an explicit Mul by a scalar constant does the scaling (in place).
    Afterwards every Gemm has alpha = beta = 1."""
    out: list[Node] = []
    inits = graph.initializers
    for node in graph.nodes:
        alpha = float(node.attrs.get("alpha", 1.0))
        beta = float(node.attrs.get("beta", 1.0))
        if node.op_type != "Gemm" or (alpha == 1.0 and beta == 1.0):
            out.append(node)
            continue
        a, b = node.inputs[0], node.inputs[1]
        c = node.inputs[2] if len(node.inputs) > 2 else ""
        attrs = {k: v for k, v in node.attrs.items() if k not in ("alpha", "beta")}
        post: list[Node] = []
        y = node.outputs[0]
        if alpha != 1.0:
            if b in inits:
                b = graph.add_initializer(f"{b}_alpha", (inits[b] * np.float32(alpha)))
            elif a in inits:
                a = graph.add_initializer(f"{a}_alpha", (inits[a] * np.float32(alpha)))
            else:
                scale = graph.add_initializer(f"{y}_alpha", np.full((1,), alpha, np.float32))
                raw = graph.fresh_name(f"{y}_unscaled")
                post.append(Node("Mul", [raw, scale], [y], {}, f"{node.name}_alpha"))
                y = raw
        if c and beta == 0.0:
            c = ""
        elif c and beta != 1.0:
            if c in inits:
                c = graph.add_initializer(f"{c}_beta", (inits[c] * np.float32(beta)))
            else:
                scale = graph.add_initializer(f"{c}_beta", np.full((1,), beta, np.float32))
                scaled = graph.fresh_name(f"{c}_scaled")
                out.append(Node("Mul", [c, scale], [scaled], {}, f"{node.name}_beta"))
                c = scaled
        if post and c:
            # y = alpha·AB + C: the bias is added after the scaling, not inside the GEMM.
            final = post[0].outputs[0]
            scaled = graph.fresh_name(f"{final}_noC")
            post[0].outputs = [scaled]
            post.append(Node("Add", [scaled, c], [final], {}, f"{node.name}_c"))
            c = ""
        out.append(Node("Gemm", [a, b] + ([c] if c else []), [y], attrs, node.name))
        out.extend(post)
    graph.nodes = out
    return graph


# -- BatchNormalization -------------------------------------------------------------------
def _bn_scale_shift(graph: Graph, node: Node) -> tuple[np.ndarray, np.ndarray]:
    """γ/√(var+ε) and β − mean·γ/√(var+ε), in float64."""
    params = node.inputs[1:5]
    if len(params) != 4 or not all(p in graph.initializers for p in params):
        raise UnsupportedError(f"{node.label()}: scale, bias, mean and variance must be "
                               f"constants (inference mode)")
    gamma, beta, mean, var = (graph.initializers[p].astype(np.float64) for p in params)
    eps = float(node.attrs.get("epsilon", 1e-5))
    if np.any(var + eps <= 0):
        raise ArgumentError(f"{node.label()}: variance + epsilon is not positive")
    scale = gamma / np.sqrt(var + eps)
    return scale, beta - mean * scale


def _single_use_conv(graph: Graph, value: str, consumers, producers) -> Node | None:
    """The Conv producing ``value`` if nothing else reads it and its weights are constant."""
    conv = producers.get(value)
    if conv is None or conv.op_type != "Conv" or len(consumers.get(value, [])) != 1:
        return None
    if value in graph.output_names or conv.inputs[1] not in graph.initializers:
        return None
    if len(conv.inputs) > 2 and conv.inputs[2] and conv.inputs[2] not in graph.initializers:
        return None
    return conv


def _scale_conv(graph: Graph, conv: Node, scale: np.ndarray | None,
                shift: np.ndarray | None, out: str) -> None:
    """conv'(x) = conv(x)·scale + shift per output channel, in float64 then float32."""
    w = graph.initializers[conv.inputs[1]].astype(np.float64)
    has_bias = len(conv.inputs) > 2 and conv.inputs[2]
    b = graph.initializers[conv.inputs[2]].astype(np.float64) if has_bias else np.zeros(
        w.shape[0])
    if scale is not None:
        w = w * scale.reshape(-1, 1, 1, 1)
        b = b * scale
    if shift is not None:
        b = b + shift
    w_name = graph.add_initializer(f"{conv.inputs[1]}_folded", w.astype(np.float32))
    b_name = graph.add_initializer(f"{conv.inputs[1]}_folded_bias", b.astype(np.float32))
    conv.inputs = [conv.inputs[0], w_name, b_name]
    conv.outputs = [out]


def fold_batchnorm(graph: Graph) -> Graph:
    """BatchNormalization -> folded into the preceding Conv, or Mul + Add (in place)."""
    shapes = infer_shapes(graph)
    out: list[Node] = []
    for node in list(graph.nodes):
        if node.op_type != "BatchNormalization":
            out.append(node)
            continue
        if any(node.outputs[1:]):
            used = graph.consumers()
            if any(name in used or name in graph.output_names for name in node.outputs[1:]):
                raise UnsupportedError(f"{node.label()}: training-mode outputs are used")
        scale, shift = _bn_scale_shift(graph, node)
        x, y = node.inputs[0], node.outputs[0]
        conv = _single_use_conv(graph, x, graph.consumers(), graph.producers())
        if conv is not None:
            _scale_conv(graph, conv, scale, shift, y)
            continue
        per_channel = (scale.size,) + (1,) * (len(shapes[x]) - 2)
        s = graph.add_initializer(f"{y}_bn_scale", scale.astype(np.float32).reshape(per_channel))
        t = graph.add_initializer(f"{y}_bn_shift", shift.astype(np.float32).reshape(per_channel))
        mid = graph.fresh_name(f"{y}_bn_scaled")
        out.append(Node("Mul", [x, s], [mid], {}, f"{node.name}_mul"))
        out.append(Node("Add", [mid, t], [y], {}, f"{node.name}_add"))
    graph.nodes = out
    return prune(graph)


def _channel_constant(graph: Graph, node: Node, shapes) -> tuple[str, np.ndarray] | None:
    """(runtime input, per-channel values) of a Mul/Add by a per-channel constant on NCHW.

    The constant must broadcast over channel only: shape (C, 1, 1), (1, C, 1, 1), (1,) or
    (); a constant that varies along H or W (or across the batch) is left alone.
    """
    if node.op_type not in ("Mul", "Add") or len(node.inputs) != 2:
        return None
    a, b = node.inputs
    if (a in graph.initializers) == (b in graph.initializers):
        return None
    x, c = (b, a) if a in graph.initializers else (a, b)
    xs, const = shapes[x], graph.initializers[c]
    if len(xs) != 4 or const.dtype != np.float32 or const.ndim > 4:
        return None
    full = const.reshape((1,) * (4 - const.ndim) + const.shape)
    if full.shape[0] != 1 or full.shape[2:] != (1, 1) or full.shape[1] not in (1, xs[1]):
        return None
    return x, np.broadcast_to(full.reshape(-1).astype(np.float64), (xs[1],))


def fold_affine(graph: Graph) -> Graph:
    """Per-channel Mul/Add by constants: into the preceding single-use Conv, else merged
    with a preceding per-channel Mul/Add (in place). Math in float64.

    ``(x·m1 + a1)·m2 + a2`` becomes ``x·(m1·m2) + (a1·m2 + a2)``: one Mul and one Add.
    Works in sweeps: each sweep rewrites every pair it can whose nodes no earlier rewrite
    of the same sweep touched, until a sweep changes nothing (chains are short, so a few
    sweeps suffice; the shapes never change).
    """
    shapes = infer_shapes(graph)
    changed = True
    while changed:
        changed = False
        consumers, producers = graph.consumers(), graph.producers()
        touched: set[int] = set()
        removed: set[int] = set()
        for node in graph.nodes:
            found = _channel_constant(graph, node, shapes)
            if found is None or id(node) in touched:
                continue
            x, values = found
            prev = producers.get(x)
            if prev is None or id(prev) in touched:
                continue
            scale = values if node.op_type == "Mul" else None
            shift = values if node.op_type == "Add" else None
            conv = _single_use_conv(graph, x, consumers, producers)
            if conv is not None:
                _scale_conv(graph, conv, scale, shift, node.outputs[0])
                removed.add(id(node))
                touched.update((id(node), id(conv)))
                continue
            if len(consumers.get(x, [])) != 1 or x in graph.output_names:
                continue
            prev_found = _channel_constant(graph, prev, shapes)
            if prev_found is None:
                continue
            px, pvalues = prev_found
            channels = shapes[x][1]
            if prev.op_type == node.op_type:  # Mul∘Mul or Add∘Add: one op
                merged = pvalues * values if node.op_type == "Mul" else pvalues + values
                c = graph.add_initializer(f"{node.outputs[0]}_{node.op_type.lower()}",
                                          merged.astype(np.float32).reshape(channels, 1, 1))
                prev.inputs, prev.outputs = [px, c], node.outputs
                removed.add(id(node))
            elif prev.op_type == "Add" and node.op_type == "Mul":  # (x + a)·m = x·m + a·m
                m = graph.add_initializer(f"{node.outputs[0]}_mul",
                                          values.astype(np.float32).reshape(channels, 1, 1))
                a = graph.add_initializer(f"{node.outputs[0]}_add",
                                          (pvalues * values).astype(np.float32)
                                          .reshape(channels, 1, 1))
                prev.op_type, prev.inputs = "Mul", [px, m]
                node.op_type, node.inputs = "Add", [x, a]
            else:
                continue
            touched.update((id(node), id(prev)))
        if touched:
            changed = True
            graph.nodes = [n for n in graph.nodes if id(n) not in removed]
    return prune(graph)


# -- batch size ---------------------------------------------------------------------------
def rewrite_batch(graph: Graph, batch: int) -> Graph:
    """A copy of ``graph`` with batch size ``batch`` (dimension 0 of every input).

    Reshape targets that hard-code the old batch (AlexNet's (1, 9216)) become
    (batch, ...) only when provably safe: the target's first dimension equals the old
    batch, the input's first dimension is the old batch, and the remaining dimensions
    hold exactly one sample's values. Any other Reshape whose result would change with
    the batch is refused, naming the node. Shapes are then re-inferred at the new batch
    and every output must carry it in dimension 0.
    """
    if not isinstance(batch, int) or isinstance(batch, bool) or batch < 1:
        raise ArgumentError(f"argument 'batch' must be a positive int, got {batch!r}")
    old = {v.shape[0] for v in graph.inputs if v.shape}
    if len(old) != 1 or None in old:
        raise UnsupportedError(f"cannot change the batch size: inputs have shapes "
                               f"{[v.shape for v in graph.inputs]}")
    old_batch = old.pop()
    g = graph.copy()
    shapes = infer_shapes(g)
    for node in g.nodes:
        if node.op_type != "Reshape":
            continue
        x = shapes[node.inputs[0]]
        target = [int(t) for t in reshape_target(node, g)]
        allowzero = bool(node.attrs.get("allowzero", 0))
        resolved = resolve_reshape(x, target, allowzero, node.label())
        per_sample = math.prod(x[1:])
        if target[0] == 0 and not allowzero:
            continue  # copies the batch dimension: right at any batch size
        if target[0] == -1 and -1 not in target[1:] and 0 not in target[1:] \
                and math.prod(target[1:]) == per_sample and x[0] == old_batch:
            continue  # -1 absorbs the batch
        if (target[0] == old_batch and x[0] == old_batch
                and math.prod(resolved[1:]) == per_sample):
            new = np.asarray([batch] + target[1:], np.int64)
            if len(node.inputs) > 1 and node.inputs[1]:
                node.inputs[1] = g.add_initializer(f"{node.inputs[1]}_batch{batch}", new)
            else:
                node.attrs["shape"] = [int(v) for v in new]
            continue
        raise UnsupportedError(
            f"cannot change the batch size to {batch}: {node.label()} reshapes {x} to "
            f"{tuple(target)}, which does not keep one sample per row of dimension 0")
    for v in g.inputs:
        v.shape = (batch,) + tuple(v.shape[1:])
    try:
        new_shapes = infer_shapes(prune(g))
    except ArgumentError as exc:
        raise UnsupportedError(f"cannot change the batch size to {batch}: {exc}") from None
    for v in g.outputs:
        shape = new_shapes[v.name]
        if not shape or shape[0] != batch:
            raise UnsupportedError(f"cannot change the batch size to {batch}: output "
                                   f"{v.name!r} has shape {shape}")
        v.shape = shape
    return g


def set_output_shapes(graph: Graph) -> Graph:
    """Fill in every output's shape from shape inference (in place)."""
    shapes = infer_shapes(graph)
    for v in graph.outputs:
        v.shape = shapes[v.name]
    return graph


# -- epilogue fusion (hwbench's own op; the result is no longer plain ONNX) ---------------
def _sole_reader(graph: Graph, value: str, consumers, op_type: str) -> Node | None:
    """The one node reading ``value`` if it is an ``op_type`` and ``value`` is no output."""
    readers = consumers.get(value, [])
    if len(readers) != 1 or value in graph.output_names:
        return None
    node = readers[0]
    if node.op_type != op_type or node.domain not in ("", "ai.onnx"):
        return None
    return node


def fuse_conv_epilogues(graph: Graph) -> Graph:
    """Conv → Add(shortcut) → activation, Conv → Add and Conv → activation become one
    ``FusedConv`` computing ``act(conv(x) + shortcut)`` (act: one of ``spec.ACTIVATIONS``,
    as ``activation_fusion.conv_activation`` finds it) with the backend's
    ``conv2d(..., residual=, activation=)`` (in place).

    A node is absorbed only when the value before it has no other reader and is no graph
    output, and an Add only when its other input has exactly the conv's output shape (no
    broadcasting). The fused node takes the place of the last node it absorbs, after every
    input it reads is computed. Its inputs are always (x, w, bias or "", residual or ""),
    its attributes Conv's plus ``activation`` (its name, or absent); it lives in domain
    ``com.hwbench``, so run this pass only for the executor, after ``optimize``.
    """
    shapes = infer_shapes(graph)
    consumers = graph.consumers()
    replace: dict[int, Node] = {}  # id of the last absorbed node -> the fused node
    removed: set[int] = set()
    taken: set[int] = set()  # Adds/Relus already absorbed (an Add of two convs is one's)
    for conv in graph.nodes:
        if conv.op_type != "Conv" or conv.domain not in ("", "ai.onnx"):
            continue
        y = conv.outputs[0]
        residual, absorbed = "", []
        add = _sole_reader(graph, y, consumers, "Add")
        if add is not None and len(add.inputs) == 2 and id(add) not in taken:
            other = add.inputs[1] if add.inputs[0] == y else add.inputs[0]
            if other != y and shapes[other] == shapes[y] == shapes[add.outputs[0]]:
                residual, y = other, add.outputs[0]
                absorbed.append(add)
        act = conv_activation(graph, y, consumers, taken)
        if act is not None:
            absorbed.extend(act[1])
            y = act[2]
        if not absorbed:
            continue
        bias = conv.inputs[2] if len(conv.inputs) > 2 else ""
        attrs = dict(conv.attrs)
        if act is not None:
            attrs["activation"] = act[0]
        fused = Node(FUSED_CONV, [conv.inputs[0], conv.inputs[1], bias, residual], [y], attrs,
                     conv.name, FUSED_DOMAIN)
        taken.update(id(n) for n in absorbed)
        removed.add(id(conv))
        removed.update(id(n) for n in absorbed[:-1])
        replace[id(absorbed[-1])] = fused
    graph.nodes = [replace.get(id(n), n) for n in graph.nodes if id(n) not in removed]
    return graph


def optimize(graph: Graph) -> Graph:
    """Every inference pass, in order, on a copy of ``graph``."""
    g = cast_integer_products(fold_constants(graph.copy()))
    # What is left of the host-only ops (Shape, Gather, ...) reads run-time tensors: name
    # every such op at once, before any pass needs shapes.
    check_op_types(g, (OP_DEFS.executable() | OP_DEFS.lowered()) & OP_DEFS.supported(),
                   f"graph {g.name!r} (ops left after constant folding run only on constants)")
    remove_dropout(g)
    lower_sum(g)
    lower_flatten(g)
    fold_gemm_scalars(g)
    remove_identities(g)
    fuse_qdq_convs(g)
    fuse_qdq_add_relu(g)
    fuse_qdq_groups(g)
    fold_batchnorm(g)
    fold_affine(g)
    fold_channel_shuffles(g)
    shuffles_as_gathers(g)
    concat_shuffles(g)
    return prune(g)
