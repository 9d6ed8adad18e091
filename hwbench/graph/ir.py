"""hwbench's own small graph IR: what an ONNX model becomes once imported.

Deliberately plain: a ``Graph`` is its inputs and outputs (name, shape, dtype), its
initializers as NumPy arrays, and a topologically ordered list of ``Node`` objects whose
attributes are ordinary Python values (ints, floats, strings, lists, NumPy arrays).
Nothing here knows about protobuf, so passes, shape inference and the executor can be
read and tested without the onnx package.

Initializer arrays are made read-only when they enter a graph: a copied graph shares
them with its original, and a pass that changes a weight must create a new array under
a new name instead of writing into a shared one.
"""

from __future__ import annotations

import collections
import itertools
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hwbench.errors import UnsupportedError


@dataclass
class ValueInfo:
    """A graph input or output. ``None`` in ``shape`` is a dimension not known statically."""

    name: str
    shape: tuple[int | None, ...]
    dtype: np.dtype = field(default_factory=lambda: np.dtype(np.float32))


@dataclass
class Node:
    """One operator. An omitted optional input is the empty string, as in ONNX."""

    op_type: str
    inputs: list[str]
    outputs: list[str]
    attrs: dict[str, Any] = field(default_factory=dict)
    name: str = ""
    domain: str = ""

    def label(self) -> str:
        """How messages name a node: its name if it has one, else its first output."""
        return f"{self.op_type} node {self.name or self.outputs[0]!r}"


# hwbench's own fused op (``passes.fuse_conv_epilogues``), in its own domain: graphs
# holding it are for the executor only, not for ONNX runtimes.
FUSED_DOMAIN = "com.hwbench"
FUSED_CONV = "FusedConv"
FUSED_CONV_QUALIFIED = f"{FUSED_DOMAIN}:{FUSED_CONV}"  # how op_counts() names it
FUSED_GEMM = "FusedGemm"  # Gemm + activation (``gemm_fusion``)


def frozen(array: Any) -> np.ndarray:
    """A read-only NumPy array (a copy only when the input is not already an array)."""
    out = np.asarray(array)
    if out.flags.writeable:
        out = out.view()
        out.flags.writeable = False
    return out


@dataclass
class Graph:
    """A model as hwbench runs it; nodes are in topological order."""

    name: str
    inputs: list[ValueInfo]
    outputs: list[ValueInfo]
    initializers: dict[str, np.ndarray]
    nodes: list[Node]
    opset: int
    # Names handed out by fresh_name but perhaps not yet placed in a node.
    reserved: set[str] = field(default_factory=set, repr=False, compare=False)

    def copy(self) -> Graph:
        """A graph whose node and value lists may be changed freely; weights are shared
        (they are read-only)."""
        return Graph(
            self.name,
            [ValueInfo(v.name, tuple(v.shape), v.dtype) for v in self.inputs],
            [ValueInfo(v.name, tuple(v.shape), v.dtype) for v in self.outputs],
            dict(self.initializers),
            [Node(n.op_type, list(n.inputs), list(n.outputs), dict(n.attrs), n.name, n.domain)
             for n in self.nodes],
            self.opset,
        )

    @property
    def input_names(self) -> list[str]:
        return [v.name for v in self.inputs]

    @property
    def output_names(self) -> list[str]:
        return [v.name for v in self.outputs]

    def consumers(self) -> dict[str, list[Node]]:
        """Value name -> the nodes that read it (a node reading a value twice is listed twice)."""
        out: dict[str, list[Node]] = collections.defaultdict(list)
        for node in self.nodes:
            for name in node.inputs:
                if name:
                    out[name].append(node)
        return out

    def producers(self) -> dict[str, Node]:
        return {name: node for node in self.nodes for name in node.outputs if name}

    def fresh_name(self, base: str) -> str:
        """A value name not used anywhere in the graph yet."""
        taken = set(self.initializers) | {v.name for v in self.inputs + self.outputs}
        taken.update(name for node in self.nodes for name in node.inputs + node.outputs)
        taken |= self.reserved
        candidates = itertools.chain([base], (f"{base}_{i}" for i in itertools.count(1)))
        name = next(c for c in candidates if c not in taken)
        self.reserved.add(name)
        return name

    def add_initializer(self, base: str, array: Any) -> str:
        """Store ``array`` (read-only) under a fresh name derived from ``base``; return it."""
        name = self.fresh_name(base)
        self.initializers[name] = frozen(array)
        return name

    def op_counts(self) -> collections.Counter:
        return collections.Counter(n.op_type if not n.domain or n.domain == "ai.onnx"
                                   else f"{n.domain}:{n.op_type}" for n in self.nodes)


def check_op_types(graph: Graph, supported: set[str], what: str) -> None:
    """Raise one ``UnsupportedError`` naming every op type outside ``supported``, with counts.

    Done before anything runs, so a user learns everything a model lacks at once rather
    than one op per attempt.
    """
    counts = graph.op_counts()
    missing = sorted(op for op in counts if op not in supported)
    if missing:
        listed = ", ".join(f"{op} (×{counts[op]})" for op in missing)
        raise UnsupportedError(
            f"{what}: {len(missing)} unsupported op type(s): {listed}. "
            f"Supported: {', '.join(sorted(supported))}"
        )


def prune(graph: Graph) -> Graph:
    """Drop nodes no graph output depends on, and initializers nothing reads (in place)."""
    needed = set(graph.output_names)
    kept = []
    for node in reversed(graph.nodes):
        if any(name in needed for name in node.outputs):
            kept.append(node)
            needed.update(name for name in node.inputs if name)
    graph.nodes = kept[::-1]
    graph.initializers = {k: v for k, v in graph.initializers.items() if k in needed}
    return graph
