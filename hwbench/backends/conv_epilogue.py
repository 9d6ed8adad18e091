"""A convolution's fused epilogue, ``activation(conv(x) + bias + residual)``, and a GEMM's,
``activation(op(a) @ op(b) + bias)``, the same on every backend: what the backend's kernel
fuses (``fuses_conv_epilogue`` for the shortcut, ``fused_activations`` and
``gemm_fused_activations`` for the activations of ``spec.ACTIVATIONS``) it does in one
pass; the rest follows the kernel here, through the backend's own elementwise kernels
(``_add``, ``_relu``, ``_sigmoid``, ``_mul``, ``_unary_op``)."""

from __future__ import annotations

from typing import Any

from hwbench.kernels import spec
from hwbench.kernels.spec.activations import ACTIVATIONS


def conv2d_epilogue(be, p: spec.ConvProblem, x: Any, w: Any, bias: Any, residual: Any,
                    activation: str | None) -> Any:
    """``be``'s convolution of checked arguments with the epilogue: fused where ``be``
    fuses it, applied after ``_conv2d`` where it does not (same results up to float32
    rounding)."""
    if be.fuses_conv_epilogue:
        fused = activation if activation in be.fused_activations else None
        out = be._conv2d(p, x, w, bias, residual=residual, activation=fused)
        return out if fused == activation else apply_activation(be, out, activation)
    out = be._conv2d(p, x, w, bias)
    if residual is not None:
        out = be._add(spec.check_binary(out, residual, "add"), out, residual)
    return apply_activation(be, out, activation)


def gemm_epilogue(be, p: spec.GemmProblem, a: Any, b: Any, bias: Any,
                  activation: str) -> Any:
    """``activation(op(a) @ op(b) + bias)`` of checked arguments: one ``_gemm`` call where
    ``be`` fuses the activation (``gemm_fused_activations``), else ``_gemm`` then the
    activation's kernel (the same float32 results up to rounding)."""
    if activation in be.gemm_fused_activations:
        return be._gemm(p, a, b, bias, activation=activation)
    return apply_activation(be, be._gemm(p, a, b, bias), activation)


def apply_activation(be, out: Any, activation: str | None) -> Any:
    """One of ``spec.ACTIVATIONS`` on ``be``'s array ``out`` with ``be``'s kernels."""
    if activation is None:
        return out
    a = ACTIVATIONS[activation]
    if a.unary is not None:  # alpha/beta only where the op takes them (tanh: none)
        params = (a.alpha, a.beta)[:len(spec.UNARY_OPS[a.unary].params)]
        return be._unary_op(spec.check_unary_op(out, a.unary, *params), out)
    if activation == "relu":
        return be._relu(spec.check_unary(out, "x", "relu"), out)
    s = be._sigmoid(spec.check_unary(out, "x", "sigmoid"), out)
    if activation == "sigmoid":
        return s
    return be._mul(spec.check_binary(out, s, "mul"), out, s)  # silu: x · sigmoid(x)
