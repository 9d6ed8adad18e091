"""Which activation follows a convolution's output, for ``passes.fuse_conv_epilogues``.

``conv_activation`` recognizes each of ``spec.ACTIVATIONS`` as ONNX writes it: Relu;
Clip(0, 6) (relu6; Clip(0, ∞) is relu); Sigmoid; x · Sigmoid(x) (SiLU, as torch exports
it: a Sigmoid and a Mul both reading the conv's output); HardSwish; HardSigmoid with
PyTorch's alpha = 1/6, beta = 0.5; Tanh; Gelu (exact or tanh); Elu with alpha = 1 (BEGAN).
Every value it absorbs must have no other reader and be no graph output; Clip bounds
must be constants.
"""

from __future__ import annotations

import math

import numpy as np

from hwbench.graph.ir import Graph, Node
from hwbench.graph.ops.unary import GELU

ONNX_DOMAINS = ("", "ai.onnx")


def _readers(graph: Graph, value: str, consumers) -> list[Node] | None:
    """The nodes reading ``value`` (all ONNX-domain), or None if it is a graph output."""
    if value in graph.output_names:
        return None
    readers = consumers.get(value, [])
    if any(n.domain not in ONNX_DOMAINS for n in readers):
        return None
    return readers


def _constant(graph: Graph, node: Node, index: int, attr: str) -> float | None | str:
    """A Clip bound: its attribute (opset < 11), its constant input, None when absent,
    or "dynamic" when it is a tensor computed at run time (or not one number)."""
    if attr in node.attrs:
        return float(node.attrs[attr])
    if len(node.inputs) <= index or not node.inputs[index]:
        return None
    value = graph.initializers.get(node.inputs[index])
    if value is None or np.asarray(value).size != 1:
        return "dynamic"
    return float(np.asarray(value).reshape(()))


def _clip_activation(graph: Graph, clip: Node) -> str | None:
    lo, hi = _constant(graph, clip, 1, "min"), _constant(graph, clip, 2, "max")
    if lo != 0.0:
        return None
    if hi is None or hi == math.inf:
        return "relu"
    return "relu6" if hi == 6.0 else None


def _single(graph: Graph, node: Node, taken: set[int]) -> str | None:
    """The activation one node applies on its own, or None."""
    if id(node) in taken or len(node.outputs) != 1:
        return None
    kind = node.op_type
    if kind == "Relu":
        return "relu"
    if kind == "Clip":
        return _clip_activation(graph, node)
    if kind == "Sigmoid":
        return "sigmoid"
    if kind == "HardSwish":
        return "hardswish"
    if kind == "Tanh":
        return "tanh"
    if kind == "Gelu":  # (``gelu_fusion`` makes them from erf and tanh subgraphs)
        return GELU.get(node.attrs.get("approximate", "none"))
    if kind == "Elu" and node.attrs.get("alpha", 1.0) == 1.0:  # the one alpha fused
        return "elu"
    if kind == "HardSigmoid":
        alpha, beta = node.attrs.get("alpha", 0.2), node.attrs.get("beta", 0.5)
        if math.isclose(alpha, 1.0 / 6.0, rel_tol=1e-6) and beta == 0.5:
            return "hardsigmoid"
    return None


def _silu(graph: Graph, y: str, readers: list[Node], consumers,
          taken: set[int]) -> tuple[str, list[Node], str] | None:
    """y → Sigmoid → s; Mul(y, s) (either order), s read by that Mul alone."""
    if len(readers) != 2:
        return None
    sig = next((n for n in readers if n.op_type == "Sigmoid"), None)
    mul = next((n for n in readers if n.op_type == "Mul"), None)
    if sig is None or mul is None or id(sig) in taken or id(mul) in taken:
        return None
    s = sig.outputs[0]
    if sorted(mul.inputs) != sorted([y, s]) or _readers(graph, s, consumers) != [mul]:
        return None
    return "silu", [sig, mul], mul.outputs[0]


def conv_activation(graph: Graph, y: str, consumers,
                    taken: set[int]) -> tuple[str, list[Node], str] | None:
    """(activation name, the nodes it absorbs in graph order, its output value) for the
    activation applied to ``y`` alone, or None. ``taken``: ids of nodes already fused."""
    readers = _readers(graph, y, consumers)
    if not readers:
        return None
    if len(readers) == 1:
        name = _single(graph, readers[0], taken)
        return None if name is None else (name, readers, readers[0].outputs[0])
    return _silu(graph, y, readers, consumers, taken)
