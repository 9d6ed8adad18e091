"""The few kernels the translator needs, on a backend or in float64 on the host.

``KernelOps`` runs every matrix product and every gate — ``gemm``, batched ``matmul``,
``sigmoid``, ``tanh``, ``softmax`` and the gates' backward — through a backend's kernel
interface, host arrays in and out, as ``models/digits.py`` does. ``Float64Ops`` is the
same math in float64 NumPy: the reference the finite-difference checks run on (the
kernel interface is float32-only, too coarse for a tight finite-difference test).

tanh's backward reuses the talk's sigmoid kernel: tanh(x) = 2σ(2x) − 1, so with
y = tanh(x) and s = (1 + y)/2 = σ(2x), dy·(1 − y²) = sigmoid_backward(s, 4·dy).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hwbench.backends.base import Backend


class KernelOps:
    """The translator's kernels on ``be``; float32 host arrays in and out."""

    dtype = np.float32

    def __init__(self, be: Backend) -> None:
        self.be = be

    def _run(self, kernel: str, *arrays: np.ndarray, **kwargs: Any) -> np.ndarray:
        be = self.be
        args = [be.asarray(np.ascontiguousarray(a, np.float32)) for a in arrays]
        return be.to_numpy(getattr(be, kernel)(*args, **kwargs))

    def gemm(self, a: np.ndarray, b: np.ndarray, bias: np.ndarray | None = None,
             trans_a: bool = False, trans_b: bool = False) -> np.ndarray:
        be = self.be
        return be.to_numpy(be.gemm(
            be.asarray(np.ascontiguousarray(a, np.float32)),
            be.asarray(np.ascontiguousarray(b, np.float32)),
            None if bias is None else be.asarray(np.ascontiguousarray(bias, np.float32)),
            trans_a=trans_a, trans_b=trans_b))

    def matmul(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return self._run("matmul", a, b)

    def sigmoid(self, x: np.ndarray) -> np.ndarray:
        return self._run("sigmoid", x)

    def tanh(self, x: np.ndarray) -> np.ndarray:
        return self._run("unary", x, op="tanh")

    def softmax(self, x: np.ndarray) -> np.ndarray:
        """Softmax over the last axis."""
        return self._run("softmax", x, axis=-1)

    def sigmoid_backward(self, y: np.ndarray, dy: np.ndarray) -> np.ndarray:
        return self._run("sigmoid_backward", y, dy)

    def tanh_backward(self, y: np.ndarray, dy: np.ndarray) -> np.ndarray:
        half = np.float32(0.5)
        return self._run("sigmoid_backward", (y + np.float32(1)) * half, dy * np.float32(4))

    def synchronize(self) -> None:
        self.be.synchronize()


class Float64Ops:
    """The same math in float64 NumPy, for gradient checks."""

    dtype = np.float64

    def gemm(self, a: np.ndarray, b: np.ndarray, bias: np.ndarray | None = None,
             trans_a: bool = False, trans_b: bool = False) -> np.ndarray:
        out = (a.T if trans_a else a) @ (b.T if trans_b else b)
        return out if bias is None else out + bias

    def matmul(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.matmul(a, b)

    def sigmoid(self, x: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-x))

    def tanh(self, x: np.ndarray) -> np.ndarray:
        return np.tanh(x)

    def softmax(self, x: np.ndarray) -> np.ndarray:
        e = np.exp(x - x.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)

    def sigmoid_backward(self, y: np.ndarray, dy: np.ndarray) -> np.ndarray:
        return dy * y * (1.0 - y)

    def tanh_backward(self, y: np.ndarray, dy: np.ndarray) -> np.ndarray:
        return dy * (1.0 - y * y)

    def synchronize(self) -> None:
        pass


Ops = KernelOps | Float64Ops
