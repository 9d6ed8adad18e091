"""Static shape inference over the IR, for the ops hwbench runs (each op's rule is its
``OpDef.shape`` in ``hwbench.graph.ops``).

Every shape in a graph hwbench executes is static once the inputs' shapes are: the batch
rewrite, BatchNorm lowering, Reshape's 0/-1 resolution and the executor's argument
checks all rely on these rules rather than on ``onnx.shape_inference`` (which is
optional, version-dependent, and silently leaves shapes unknown). A shape that does not
work out raises an error that names the node.
"""

from __future__ import annotations

from collections.abc import Sequence

from hwbench.errors import ArgumentError, UnsupportedError
from hwbench.graph.ir import Graph, check_op_types
from hwbench.graph.ops import OP_DEFS, Shape

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
    # Every op left without a shape rule is named at once (host-only ops that constant
    # folding could not remove because an input is computed at run time, unknown ops).
    check_op_types(graph, {name for name, d in OP_DEFS.items() if d.shape is not None},
                   "shape inference (ops that only fold on constants, here reading a "
                   "run-time tensor, or ops hwbench does not know)")
    for node in graph.nodes:
        rule = OP_DEFS.of(node).shape
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
