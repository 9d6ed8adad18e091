"""Element types (ONNX tensor types, as NumPy dtypes) of every value in a graph, inferred
at load, and the check that every node's kernels take the types it receives.

Graph inputs and initializers give the types; each op's ``OpDef.out_types`` gives its
outputs' (by default: its first input's type; explicit for Cast, the comparisons and
logical ops (bool), ArgMax/ArgMin (int64), Where, the quantization ops...). A value whose
type cannot be known is None and is not checked.

``check_element_types`` refuses a graph before anything runs, with one error naming
every (node, op, input, dtype) its kernels cannot take, as ``check_op_types`` names
every missing op at once: each op's ``OpDef.in_types`` says what its run-time inputs may
be (by default what all its ``kernels`` take: ``KERNEL_TYPES``, float32 for a kernel not
listed there); ops computing in integer arithmetic (``OpDef.integer``, the quantized
ops) and host inputs (``OpDef.host_inputs``) are not checked here.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hwbench.errors import UnsupportedError
from hwbench.graph.ir import Graph, Node
from hwbench.graph.ops import OP_DEFS
from hwbench.graph.ops.types import F32, LAYOUT

DType = Any  # np.dtype, or None where unknown
# kernel -> the dtypes its data inputs take (the layout kernels move any element type)
KERNEL_TYPES: dict[str, tuple[np.dtype, ...]] = {
    k: LAYOUT for k in ("reshape", "transpose", "concat", "slice", "gather", "expand",
                        "tile", "pad")}


def output_types(node: Node, ins: list[DType]) -> list[DType]:
    """``node``'s outputs' element types: its op's rule, or its first input's type."""
    d = OP_DEFS.of(node)
    if d is not None and d.out_types is not None:
        return list(d.out_types(node, ins))
    return [ins[0] if ins else None] * max(len(node.outputs), 1)


def infer_element_types(graph: Graph) -> dict[str, DType]:
    """The dtype of every value in ``graph`` (None where it cannot be known)."""
    types: dict[str, DType] = {v.name: np.dtype(v.dtype) for v in graph.inputs}
    for name, array in graph.initializers.items():
        types[name] = np.asarray(array).dtype
    for node in graph.nodes:
        ins = [types.get(n) if n else None for n in node.inputs]
        for name, dtype in zip(node.outputs, output_types(node, ins), strict=False):
            if name:
                types[name] = None if dtype is None else np.dtype(dtype)
    return types


def accepted(node: Node, position: int) -> tuple[np.dtype, ...] | None:
    """The dtypes ``node``'s kernels take at input ``position`` (None: not checked)."""
    d = OP_DEFS.of(node)
    if d is None or d.integer or d.run is None or position in d.host_inputs:
        return None
    in_types = d.in_types(node) if callable(d.in_types) else d.in_types  # per node: by mode
    if isinstance(in_types, dict):
        return in_types.get(position)
    if in_types is not None:
        return tuple(in_types)
    if not d.kernels:
        return None
    common = set(LAYOUT)
    for kernel in d.kernels:
        common &= set(KERNEL_TYPES.get(kernel, (F32,)))
    return tuple(t for t in LAYOUT if t in common)


def type_problems(graph: Graph) -> list[str]:
    """One line per (node, op, input, dtype) that the node's kernels cannot take."""
    types = infer_element_types(graph)
    problems = []
    for node in graph.nodes:
        d = OP_DEFS.of(node)
        if d is None:  # an op hwbench does not know: check_op_types names it
            continue
        shared: np.dtype | None = None
        for i, name in enumerate(node.inputs):
            dtype = types.get(name) if name else None
            allowed = accepted(node, i)
            if dtype is None or allowed is None:
                continue
            label = f"node {node.name or '(unnamed)'!r} ({d.qualified_name}) input {i} {name!r}"
            if dtype not in allowed:
                runs_on = "/".join(str(t) for t in allowed) or "no element type"
                problems.append(f"{label} is {dtype} (its kernels take {runs_on})")
            elif d.same_types is not None and i >= d.same_types:
                if shared is not None and dtype != shared:
                    problems.append(f"{label} is {dtype} where its other inputs are {shared}")
                if shared is None:
                    shared = dtype
    return problems


def check_element_types(graph: Graph) -> None:
    """Raise one UnsupportedError naming every input a node's kernels cannot take."""
    problems = type_problems(graph)
    if problems:
        raise UnsupportedError(f"graph {graph.name!r}: {len(problems)} node input(s) of "
                               f"element types their kernels do not take: "
                               + "; ".join(problems))
