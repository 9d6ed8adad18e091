"""Static shape inference over the IR, for the ops hwbench runs.

Every shape in a graph hwbench executes is static once the inputs' shapes are: the batch
rewrite, BatchNorm lowering, Reshape's 0/-1 resolution and the executor's argument
checks all rely on these rules rather than on ``onnx.shape_inference`` (which is
optional, version-dependent, and silently leaves shapes unknown). A shape that does not
work out raises an error that names the node.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from hwbench.errors import ArgumentError, UnsupportedError
from hwbench.graph.ir import Graph, Node
from hwbench.kernels.spec import onnx_conv_padding

Shape = tuple[int, ...]


def resolve_reshape(in_shape: Sequence[int], target: Sequence[int], allowzero: bool = False,
                    where: str = "Reshape") -> Shape:
    """ONNX Reshape's target -> a concrete shape: 0 copies the input's dimension (unless
    ``allowzero``), one -1 takes what is left."""
    target = [int(t) for t in target]
    out: list[int] = []
    for i, t in enumerate(target):
        if t == 0 and not allowzero:
            if i >= len(in_shape):
                raise ArgumentError(f"{where}: target {tuple(target)} copies dimension {i} "
                                    f"(0), but the input has shape {tuple(in_shape)}")
            out.append(int(in_shape[i]))
        elif t < -1:
            raise ArgumentError(f"{where}: target {tuple(target)} has a negative dimension")
        else:
            out.append(t)
    size = math.prod(in_shape)
    if out.count(-1) > 1:
        raise ArgumentError(f"{where}: target {tuple(target)} has more than one -1")
    if -1 in out:
        rest = math.prod(d for d in out if d != -1)
        if rest == 0 or size % rest:
            raise ArgumentError(f"{where}: cannot reshape {tuple(in_shape)} to {tuple(target)}")
        out[out.index(-1)] = size // rest
    if math.prod(out) != size:
        raise ArgumentError(
            f"{where}: cannot reshape {tuple(in_shape)} ({size} values) to {tuple(target)}")
    return tuple(out)


def conv_params(node: Node, x_shape: Shape, kernel: Sequence[int]) -> dict:
    """Conv/MaxPool/AveragePool attributes -> stride, (t, l, b, r) padding, dilation."""
    a = node.attrs
    if len(x_shape) != 4 or len(kernel) != 2:
        raise UnsupportedError(f"{node.label()}: only 2-D (NCHW) inputs are supported, "
                               f"got input shape {x_shape} and kernel {tuple(kernel)}")
    strides = tuple(a.get("strides") or (1, 1))
    dilations = tuple(a.get("dilations") or (1, 1))
    pads = onnx_conv_padding(a.get("auto_pad", "NOTSET"), a.get("pads"), x_shape[2:],
                             tuple(kernel), strides, dilations)
    return {"stride": strides, "padding": pads, "dilation": dilations}


def pool_output_hw(in_hw: Sequence[int], kernel: Sequence[int], p: dict,
                   ceil_mode: bool) -> tuple[int, int]:
    """Output size of a pooling window; with ``ceil_mode`` a last window that would start
    in the end padding is dropped (the rule PyTorch and onnxruntime apply)."""
    out = []
    for i in range(2):
        span = in_hw[i] + p["padding"][i] + p["padding"][i + 2]
        eff = p["dilation"][i] * (kernel[i] - 1) + 1
        s = p["stride"][i]
        n = (-(-(span - eff) // s) if ceil_mode else (span - eff) // s) + 1
        if ceil_mode and (n - 1) * s >= in_hw[i] + p["padding"][i]:
            n -= 1
        out.append(n)
    return out[0], out[1]


def _same(node, shapes, graph):
    return [shapes[0]] * len(node.outputs)


def _broadcast(node, shapes, graph):
    try:
        return [tuple(np.broadcast_shapes(*shapes))]
    except ValueError:
        raise ArgumentError(f"{node.label()}: input shapes {shapes} do not broadcast") from None


def _conv(node, shapes, graph):
    x, w = shapes[0], shapes[1]
    if len(w) != 4:
        raise UnsupportedError(f"{node.label()}: only 2-D convolutions are supported, "
                               f"weight shape {w}")
    groups = node.attrs.get("group", 1)
    if len(x) != 4 or x[1] != w[1] * groups or w[0] % groups:
        raise ArgumentError(f"{node.label()}: input {x} and weight {w} do not match "
                            f"with group={groups}")
    if len(shapes) > 2 and shapes[2] != (w[0],):
        raise ArgumentError(f"{node.label()}: bias shape {shapes[2]}, expected {(w[0],)}")
    kernel = tuple(node.attrs.get("kernel_shape") or w[2:])
    p = conv_params(node, x, kernel)
    h, wd = pool_output_hw(x[2:], kernel, p, ceil_mode=False)
    if h < 1 or wd < 1:
        raise ArgumentError(f"{node.label()}: kernel {kernel} larger than padded input {x}")
    return [(x[0], w[0], h, wd)]


def _fused_conv(node, shapes, graph):
    """hwbench's FusedConv: inputs (x, w, bias or "", residual or ""); ``shapes`` holds
    only the named ones."""
    has_bias = bool(node.inputs[2])
    out = _conv(node, shapes[:3 if has_bias else 2], graph)
    if len(node.inputs) > 3 and node.inputs[3] and shapes[-1] != out[0]:
        raise ArgumentError(f"{node.label()}: residual shape {shapes[-1]}, expected {out[0]}")
    return out


def _pool(node, shapes, graph):
    x = shapes[0]
    kernel = tuple(node.attrs["kernel_shape"])
    if node.attrs.get("storage_order", 0):
        raise UnsupportedError(f"{node.label()}: storage_order=1 is not supported")
    if len(node.outputs) > 1 and node.outputs[1]:
        raise UnsupportedError(f"{node.label()}: the Indices output is not supported")
    p = conv_params(node, x, kernel)
    h, w = pool_output_hw(x[2:], kernel, p, bool(node.attrs.get("ceil_mode", 0)))
    if h < 1 or w < 1:
        raise ArgumentError(f"{node.label()}: window {kernel} larger than padded input {x}")
    return [(x[0], x[1], h, w)]


def _global_pool(node, shapes, graph):
    x = shapes[0]
    if len(x) != 4:
        raise UnsupportedError(f"{node.label()}: only NCHW inputs are supported, got {x}")
    return [(x[0], x[1], 1, 1)]


def _rank4(node, shapes, graph):
    if len(shapes[0]) != 4:
        raise UnsupportedError(f"{node.label()}: only NCHW inputs are supported, "
                               f"got {shapes[0]}")
    return [shapes[0]]


def _gemm(node, shapes, graph):
    a, b = shapes[0], shapes[1]
    if len(a) != 2 or len(b) != 2:
        raise ArgumentError(f"{node.label()}: inputs must be 2-D, got {a} and {b}")
    m, k = (a[1], a[0]) if node.attrs.get("transA", 0) else a
    kb, n = (b[1], b[0]) if node.attrs.get("transB", 0) else b
    if k != kb:
        raise ArgumentError(f"{node.label()}: inner dimensions differ: {a} and {b}")
    if len(shapes) > 2 and shapes[2] != ():
        try:
            if np.broadcast_shapes(shapes[2], (m, n)) != (m, n):
                raise ValueError
        except ValueError:
            raise ArgumentError(f"{node.label()}: C of shape {shapes[2]} does not "
                                f"broadcast to {(m, n)}") from None
    return [(m, n)]


def _matmul(node, shapes, graph):
    a, b = shapes
    if len(a) != 2 or len(b) != 2:
        raise UnsupportedError(f"{node.label()}: only 2-D MatMul is supported, got {a} @ {b}")
    if a[1] != b[0]:
        raise ArgumentError(f"{node.label()}: inner dimensions differ: {a} @ {b}")
    return [(a[0], b[1])]


def _concat(node, shapes, graph):
    rank = len(shapes[0])
    axis = node.attrs["axis"]
    axis = axis + rank if axis < 0 else axis
    if not 0 <= axis < rank or any(len(s) != rank for s in shapes):
        raise ArgumentError(f"{node.label()}: axis {node.attrs['axis']} / ranks of {shapes}")
    rest = {s[:axis] + s[axis + 1:] for s in shapes}
    if len(rest) != 1:
        raise ArgumentError(f"{node.label()}: shapes {shapes} differ outside axis {axis}")
    out = list(shapes[0])
    out[axis] = sum(s[axis] for s in shapes)
    return [tuple(out)]


def reshape_target(node: Node, graph: Graph) -> np.ndarray:
    """Reshape's target: an initializer (ONNX ≥ 5) or the old ``shape`` attribute."""
    if len(node.inputs) > 1 and node.inputs[1]:
        target = graph.initializers.get(node.inputs[1])
        if target is None:
            raise UnsupportedError(f"{node.label()}: the target shape must be a constant")
        return target
    return np.asarray(node.attrs["shape"], np.int64)


def _reshape(node, shapes, graph):
    return [resolve_reshape(shapes[0], reshape_target(node, graph),
                            bool(node.attrs.get("allowzero", 0)), node.label())]


def flatten_shape(shape: Shape, axis: int) -> Shape:
    axis = axis + len(shape) if axis < 0 else axis
    return (math.prod(shape[:axis]), math.prod(shape[axis:]))


def _flatten(node, shapes, graph):
    return [flatten_shape(shapes[0], node.attrs.get("axis", 1))]


def transpose_perm(node: Node, rank: int) -> tuple[int, ...]:
    perm = node.attrs.get("perm")
    perm = tuple(range(rank))[::-1] if perm is None else tuple(int(p) for p in perm)
    if sorted(perm) != list(range(rank)):
        raise ArgumentError(f"{node.label()}: perm {perm} does not fit rank {rank}")
    return perm


def _transpose(node, shapes, graph):
    perm = transpose_perm(node, len(shapes[0]))
    return [tuple(shapes[0][p] for p in perm)]


def _softmax(node, shapes, graph):
    rank = len(shapes[0])
    axis = node.attrs.get("axis", 1 if graph.opset < 13 else -1)
    if not -rank <= axis < rank:
        raise ArgumentError(f"{node.label()}: axis {axis} out of range for {shapes[0]}")
    return [shapes[0]]


def _batchnorm(node, shapes, graph):
    x = shapes[0]
    if len(x) < 2 or any(s != (x[1],) for s in shapes[1:5]):
        raise ArgumentError(f"{node.label()}: input {x} with parameters {shapes[1:5]}")
    if node.attrs.get("spatial", 1) != 1:
        raise UnsupportedError(f"{node.label()}: spatial=0 is not supported")
    return [x]


def _dropout(node, shapes, graph):
    return [shapes[0]] * len(node.outputs)


RULES: dict[str, Callable] = {
    "Conv": _conv, "FusedConv": _fused_conv, "Gemm": _gemm, "MatMul": _matmul,
    "Relu": _same, "Sigmoid": _same, "Identity": _same, "LRN": _rank4,
    "MaxPool": _pool, "AveragePool": _pool, "GlobalAveragePool": _global_pool,
    "Softmax": _softmax, "Add": _broadcast, "Mul": _broadcast, "Sum": _broadcast,
    "Concat": _concat, "Reshape": _reshape, "Flatten": _flatten, "Transpose": _transpose,
    "BatchNormalization": _batchnorm, "Dropout": _dropout,
}


def _rule(op_type: str) -> Callable | None:
    if op_type in RULES:
        return RULES[op_type]
    from hwbench.graph.quantized_ops import RULES as QUANTIZED  # imports this module

    return QUANTIZED.get(op_type)


# An input dimension as a model file gives it: a size, a symbol's name ("batch_size",
# "sequence"), or None for one with neither (ONNX's unset, 0 or -1).
FileDim = int | str | None


def check_dim_values(batch: int | None, dims: dict[str, int] | None) -> dict[str, int]:
    """``batch`` and ``dims`` (symbol -> size) as ``load_model`` takes them, checked."""
    if batch is not None and (not isinstance(batch, int) or isinstance(batch, bool)
                              or batch < 1):
        raise ArgumentError(f"argument 'batch' must be a positive int, got {batch!r}")
    if dims is None:
        return {}
    if not isinstance(dims, dict):
        raise ArgumentError(f"argument 'dims' must be a dict of dimension name -> size, "
                            f"got {type(dims).__name__}")
    for name, size in dims.items():
        if not isinstance(name, str) or not name:
            raise ArgumentError(f"argument 'dims': names must be non-empty strings, got "
                                f"{name!r}")
        if not isinstance(size, int) or isinstance(size, bool) or size < 1:
            raise ArgumentError(f"argument 'dims': {name!r} must be a positive int, got "
                                f"{size!r}")
    return dict(dims)


def fix_input_dims(inputs: dict[str, Sequence[FileDim]], batch: int | None,
                   dims: dict[str, int] | None) -> dict[str, Shape]:
    """Static shapes for a model's inputs whose files leave dimensions symbolic.

    A symbol named in ``dims`` takes that size (onnxruntime calls these free dimension
    overrides); any other symbolic or unknown first dimension is the batch and takes
    ``batch``. A dimension left without a value raises ``ArgumentError`` naming it and
    its input, and saying which argument gives it; so does a name in ``dims`` that no
    input has (a typo would otherwise pass silently).
    """
    dims = check_dim_values(batch, dims)
    shapes: dict[str, Shape] = {}
    seen: set[str] = set()
    missing: list[str] = []  # every dimension without a value, named in one message
    for name, raw in inputs.items():
        shape = []
        for axis, dim in enumerate(raw):
            if isinstance(dim, str):
                seen.add(dim)
            if isinstance(dim, int) and not isinstance(dim, bool) and dim > 0:
                shape.append(dim)
            elif isinstance(dim, str) and dim in dims:
                if axis == 0 and batch is not None and dims[dim] != batch:
                    raise ArgumentError(f"input {name!r}: batch={batch} but dims gives its "
                                        f"batch dimension {dim!r} = {dims[dim]}")
                shape.append(dims[dim])
            elif axis == 0 and batch is not None:
                shape.append(batch)
            elif axis == 0:
                what = f"symbolic ({dim!r})" if dim else "unknown"
                missing.append(f"input {name!r}: its batch dimension (0) is {what}; pass "
                               f"batch=N (CLI: --batch N)")
            elif dim:
                missing.append(f"input {name!r}: dimension {axis} is symbolic ({dim!r}); "
                               f"give its size with dims={{{dim!r}: N}} (CLI: --dim {dim}=N)")
            else:
                missing.append(f"input {name!r}: dimension {axis} has neither a size nor a "
                               f"name in the file, so no argument can set it; give the model "
                               f"a static shape")
        shapes[name] = tuple(shape)
    if missing:
        raise ArgumentError("; ".join(missing))
    unknown = sorted(set(dims) - seen)
    if unknown:
        known = ", ".join(sorted(seen)) or "none"
        raise ArgumentError(f"argument 'dims': {', '.join(map(repr, unknown))} is no "
                            f"symbolic dimension of the model's inputs (its symbols: {known})")
    return shapes


def infer_shapes(graph: Graph) -> dict[str, Shape]:
    """Shape of every value in ``graph`` (inputs, initializers, node outputs)."""
    shapes: dict[str, Shape] = {}
    for v in graph.inputs:
        if any(d is None or d < 1 for d in v.shape):
            raise UnsupportedError(
                f"input {v.name!r} has shape {v.shape} with unknown dimensions; "
                f"load the model with batch=N (and dims={{name: N}} for other symbolic "
                f"dimensions) or give it a static shape")
        shapes[v.name] = tuple(int(d) for d in v.shape)
    for name, array in graph.initializers.items():
        shapes[name] = tuple(array.shape)
    for node in graph.nodes:
        rule = _rule(node.op_type)
        if rule is None:
            raise UnsupportedError(f"{node.label()}: no shape rule for {node.op_type}")
        try:
            in_shapes = [shapes[name] for name in node.inputs if name]
        except KeyError as exc:
            raise ArgumentError(f"{node.label()}: input {exc.args[0]!r} is not produced "
                                f"before it is used") from None
        for name, shape in zip(node.outputs, rule(node, in_shapes, graph), strict=False):
            if name:
                shapes[name] = tuple(int(d) for d in shape)
    for v in graph.outputs:
        if v.name not in shapes:
            raise ArgumentError(f"graph output {v.name!r} is never produced")
    return shapes
