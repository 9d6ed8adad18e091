"""GELU subgraphs as exporters write them, fused into one ONNX ``Gelu`` node.

``fuse_gelu`` finds
- the erf form (``nn.GELU()``): ``x · 0.5 · (1 + erf(x / √2))``, the division also as a
  multiplication by 1/√2, the 0.5 applied to x first or to the product last;
- the tanh form (GPT-2's ``gelu_new``, ``approximate="tanh"``):
  ``0.5 · x · (1 + tanh(√(2/π) · (x + 0.044715 · x³)))``, x³ as ``Pow(x, 3)``;

and replaces each by ``Gelu(x, approximate="none"|"tanh")``, which backends run as one
elementwise kernel (``unary("gelu")``; oneDNN's gelu_erf/gelu_tanh on cpu) instead of
five to nine passes over the activation. Every value inside a match must have exactly the
reader the pattern names and be no graph output; constants are scalar initializers
within float32 rounding of the pattern's. ``Session`` runs it after
``fuse_conv_epilogues``; the Gelu node needs opset 20 in ONNX, so like that pass its
result is for the executor only.
"""

from __future__ import annotations

import math

import numpy as np

from hwbench.graph.ir import Graph, Node

ONNX_DOMAINS = ("", "ai.onnx")


class _Matcher:
    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self.consumers = graph.consumers()
        self.producers = graph.producers()
        self.taken: set[int] = set()

    def const(self, name: str) -> float | None:
        value = self.graph.initializers.get(name)
        if value is None or np.asarray(value).size != 1:
            return None
        return float(np.asarray(value).reshape(()))

    def is_const(self, name: str, want: float) -> bool:
        value = self.const(name)
        return value is not None and math.isclose(value, want, rel_tol=1e-6)

    def sole_reader(self, value: str, op_type: str) -> Node | None:
        """The one reader of ``value`` if it is an unfused ``op_type`` and ``value`` is no
        graph output."""
        readers = self.consumers.get(value, [])
        if len(readers) != 1 or value in self.graph.output_names:
            return None
        node = readers[0]
        if (node.op_type != op_type or node.domain not in ONNX_DOMAINS
                or id(node) in self.taken):
            return None
        return node

    def producer(self, value: str, op_type: str) -> Node | None:
        node = self.producers.get(value)
        if node is None or node.op_type != op_type or node.domain not in ONNX_DOMAINS \
                or id(node) in self.taken:
            return None
        return node

    def binary(self, node: Node, value: str) -> str | None:
        """The other input of a two-input ``node`` that reads ``value``."""
        if len(node.inputs) != 2 or value not in node.inputs:
            return None
        a, b = node.inputs
        return b if a == value else a

    # -- the shared tail: (1 + f) · x · 0.5 ----------------------------------------------
    def tail(self, f: str, x: str) -> list[Node] | None:
        """Nodes of ``Add(f, 1)`` then ``x · that · 0.5`` (either order), or None."""
        add = self.sole_reader(f, "Add")
        if add is None or not self.is_const(self.binary(add, f) or "", 1.0):
            return None
        m1 = self.sole_reader(add.outputs[0], "Mul")
        if m1 is None:
            return None
        other = self.binary(m1, add.outputs[0])
        if other == x:  # x · (1 + f), then · 0.5
            m2 = self.sole_reader(m1.outputs[0], "Mul")
            if m2 is None or not self.is_const(self.binary(m2, m1.outputs[0]) or "", 0.5):
                return None
            return [add, m1, m2]
        half = self.producer(other or "", "Mul")  # (0.5 · x) · (1 + f)
        if half is None or x not in half.inputs or not self.is_const(
                self.binary(half, x) or "", 0.5):
            return None
        if self.sole_reader(half.outputs[0], "Mul") is not m1:
            return None
        return [half, add, m1]

    # -- the two forms --------------------------------------------------------------------
    def erf(self, erf: Node) -> tuple[str, list[Node]] | None:
        scaled = self.producer(erf.inputs[0], "Div") or self.producer(erf.inputs[0], "Mul")
        if scaled is None or len(scaled.inputs) != 2:
            return None
        x, c = scaled.inputs
        want = math.sqrt(2.0) if scaled.op_type == "Div" else 1.0 / math.sqrt(2.0)
        if not self.is_const(c, want):
            if scaled.op_type == "Div" or not self.is_const(x, want):
                return None
            x = c
        if self.sole_reader(scaled.outputs[0], "Erf") is not erf:
            return None
        rest = self.tail(erf.outputs[0], x)
        return None if rest is None else (x, [scaled, erf, *rest])

    def tanh(self, tanh: Node) -> tuple[str, list[Node]] | None:
        inner = self.producer(tanh.inputs[0], "Mul")
        if inner is None or len(inner.inputs) != 2:
            return None
        s = next((v for v in inner.inputs
                  if self.is_const(self.binary(inner, v) or "", math.sqrt(2.0 / math.pi))),
                 None)
        add = self.producer(s or "", "Add")
        if add is None or len(add.inputs) != 2:
            return None
        for x in add.inputs:
            cube = self.producer(self.binary(add, x) or "", "Mul")
            if cube is None or len(cube.inputs) != 2:
                continue
            p = next((v for v in cube.inputs
                      if self.is_const(self.binary(cube, v) or "", 0.044715)), None)
            power = self.producer(p or "", "Pow")
            if power is None or power.inputs[0] != x or not self.is_const(power.inputs[1], 3.0):
                continue
            chain = [(power, cube), (cube, add), (add, inner), (inner, tanh)]
            if any(self.sole_reader(a.outputs[0], b.op_type) is not b for a, b in chain):
                continue
            rest = self.tail(tanh.outputs[0], x)
            if rest is not None:
                return x, [power, cube, add, inner, tanh, *rest]
        return None


def fuse_gelu(graph: Graph) -> Graph:
    """Each erf- or tanh-form GELU subgraph -> one ``Gelu`` node (in place)."""
    m = _Matcher(graph)
    replace: dict[int, Node] = {}
    removed: set[int] = set()
    for node in graph.nodes:
        if node.domain not in ONNX_DOMAINS or id(node) in m.taken:
            continue
        found, approximate = None, "none"
        if node.op_type == "Erf":
            found = m.erf(node)
        elif node.op_type == "Tanh":
            found, approximate = m.tanh(node), "tanh"
        if found is None:
            continue
        x, nodes = found
        order = {id(n): i for i, n in enumerate(graph.nodes)}
        nodes.sort(key=lambda n: order[id(n)])
        last = nodes[-1]
        replace[id(last)] = Node("Gelu", [x], list(last.outputs), {"approximate": approximate},
                                 last.name)
        m.taken.update(id(n) for n in nodes)
        removed.update(id(n) for n in nodes[:-1])
    graph.nodes = [replace.get(id(n), n) for n in graph.nodes if id(n) not in removed]
    return graph
