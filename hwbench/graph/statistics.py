"""What one run of a graph costs, from its ops' definitions: FLOPs (``OpDef.flops``) and
the bytes it must move at the least (``OpDef.output_itemsize``) — a roofline's axes."""

from __future__ import annotations

import numpy as np

from hwbench.graph.ir import Graph
from hwbench.graph.ops import OP_DEFS
from hwbench.graph.ops.opdef import Shape


def graph_flops(graph: Graph, shapes: dict[str, Shape]) -> int:
    """FLOPs of one run of ``graph``: its convolutions and matrix products (integer ones
    too), counted like the kernels count them; biases and the other ops are left out."""
    total = 0
    for node in graph.nodes:
        op = OP_DEFS.of(node)
        if op is not None and op.flops is not None:
            total += op.flops(node, [shapes.get(name) for name in node.inputs])
    return total


def graph_bytes(graph: Graph, shapes: dict[str, Shape]) -> int:
    """Bytes one run of ``graph`` moves at the least (the roofline's denominator).

    Every weight a node reads, once, at its own dtype; every activation (graph inputs and
    node outputs, at ``OpDef.output_itemsize`` bytes per value: 4 for float32, 1 for
    8-bit, 0 for a view of its input such as Reshape) written once and read once. Caches
    are ignored: this is the compulsory traffic, not what a backend's memory system
    actually sees.
    """
    weights = {name for node in graph.nodes for name in node.inputs
               if name in graph.initializers}
    total = sum(int(graph.initializers[name].nbytes) for name in weights)
    for value in graph.inputs:
        if value.name not in graph.initializers:
            total += 2 * int(np.prod(shapes[value.name])) * np.dtype(value.dtype).itemsize
    for node in graph.nodes:
        op = OP_DEFS.of(node)
        itemsize = op.output_itemsize if op is not None else 4
        total += sum(2 * int(np.prod(shapes[name])) * itemsize for name in node.outputs if name)
    return total
