"""Matrix products: Gemm and MatMul (2-D on ``gemm``; N-D, batched with NumPy's broadcasting
and 1-D promotion, on ``matmul``), and hwbench's FusedGemm (Gemm + an activation of
``spec.ACTIVATIONS``, made by ``gemm_fusion``'s passes)."""

from __future__ import annotations

import numpy as np

from hwbench.errors import ArgumentError, UnsupportedError
from hwbench.graph.ir import FUSED_DOMAIN, FUSED_GEMM, Graph, Node
from hwbench.graph.ops.counting import _shaped, gemm_flops
from hwbench.graph.ops.opdef import Int8Weights, OpDef, Shape, Step
from hwbench.kernels import spec


def _gemm_shape(node: Node, shapes: list[Shape], graph: Graph) -> list[Shape]:
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


def _matmul_shape(node: Node, shapes: list[Shape], graph: Graph) -> list[Shape]:
    a, b = shapes
    try:
        problem = spec.check_matmul(_shaped(a), _shaped(b))
    except ArgumentError as exc:
        raise ArgumentError(f"{node.label()}: {exc}") from None
    return [problem.output_shape]


def _run_matmul(be, x, s: Step):
    if len(s.in_shapes[0]) == 2 and len(s.in_shapes[1]) == 2:
        return be.gemm(x[0], x[1])
    return be.matmul(x[0], x[1])


def _matmul_flops(node: Node, ins) -> int:
    return spec.check_matmul(_shaped(ins[0]), _shaped(ins[1])).flops


def _run_gemm(be, x, s: Step):
    if s.node.attrs.get("alpha", 1.0) != 1.0 or s.node.attrs.get("beta", 1.0) != 1.0:
        raise UnsupportedError(f"{s.node.label()}: alpha/beta must be folded first "
                               f"(hwbench.graph.passes.fold_gemm_scalars)")
    bias = x[2] if len(x) > 2 else None
    return be.gemm(x[0], x[1], bias, trans_a=bool(s.node.attrs.get("transA", 0)),
                   trans_b=bool(s.node.attrs.get("transB", 0)))


def _run_fused_gemm(be, x, s: Step):
    """Inputs (a, b, c or ""): an absent C arrives as None."""
    return be.gemm(x[0], x[1], x[2] if len(x) > 2 else None,
                   trans_a=bool(s.node.attrs.get("transA", 0)),
                   trans_b=bool(s.node.attrs.get("transB", 0)),
                   activation=s.node.attrs["activation"])


def _as_1x1_conv(w: np.ndarray, bias: np.ndarray | None) -> Int8Weights:
    """(K, M) weights -> a 1×1 convolution's (M, K, 1, 1); the bias one value per output."""
    weight = np.ascontiguousarray(w.T).reshape(w.shape[1], w.shape[0], 1, 1)
    if bias is not None:  # Gemm's C: a scalar or one value per output
        bias = np.broadcast_to(np.asarray(bias).reshape(-1), (weight.shape[0],))
    return Int8Weights(weight, bias, {}, as_1x1=True)


def _matmul_int8(graph: Graph, node: Node) -> Int8Weights | None:
    """A MatMul by constant 2-D weights runs as a 1×1 QLinearConv on (N, K, 1, 1)."""
    if node.inputs[1] not in graph.initializers or graph.initializers[node.inputs[1]].ndim != 2:
        return None
    return _as_1x1_conv(graph.initializers[node.inputs[1]].astype(np.float32), None)


def _gemm_int8(graph: Graph, node: Node) -> Int8Weights | None:
    """A Gemm by constant B (not transposed A, constant C of at most one dimension,
    alpha = beta = 1) runs as a 1×1 QLinearConv, which takes a bias where QLinearMatMul
    does not."""
    inits = graph.initializers
    c = node.inputs[2] if len(node.inputs) > 2 else ""
    if (node.inputs[1] not in inits or node.attrs.get("transA", 0)
            or (c and c not in inits)
            or node.attrs.get("alpha", 1.0) != 1.0 or node.attrs.get("beta", 1.0) != 1.0):
        return None
    bias = inits.get(c)
    if bias is not None and bias.ndim > 1:
        return None
    w = inits[node.inputs[1]].astype(np.float32)
    return _as_1x1_conv(w.T if node.attrs.get("transB", 0) else w, bias)  # w: (K, M)


DEFS = (
    OpDef("Gemm", shape=_gemm_shape, run=_run_gemm, kernels=("gemm",), int8=_gemm_int8,
          flops=gemm_flops),
    OpDef("MatMul", shape=_matmul_shape, run=_run_matmul, kernels=("gemm", "matmul"),
          int8=_matmul_int8, flops=_matmul_flops),
    OpDef(FUSED_GEMM, domain=FUSED_DOMAIN, shape=_gemm_shape, run=_run_fused_gemm,
          kernels=("gemm", "relu"), flops=gemm_flops),
)
