"""The unary family's math in NumPy (ONNX semantics), in any float dtype: float64 for the
reference the tests compare every backend with, float32 for the backends that compute
on host arrays (numpy, systolic's vector unit, the cpu backend's ops oneDNN lacks) and for
constant folding. ``erf`` is SciPy's (``scipy.special.erf``: a float32 loop for float32
input), a dependency hwbench already has."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np


def _erf(x: np.ndarray) -> np.ndarray:
    from scipy.special import erf  # imported on first use: SciPy's import takes ~0.1 s

    return erf(x)


def _clip(x, a, b):
    return np.minimum(np.maximum(x, a), b)


def _hard_sigmoid(x, a, b):
    return _clip(x * a + b, 0, 1)


def _gelu_tanh(x, a, b):
    inner = np.asarray(math.sqrt(2 / math.pi), x.dtype) * (x + np.asarray(0.044715, x.dtype)
                                                           * x * x * x)
    return x * (np.tanh(inner) + 1) * np.asarray(0.5, x.dtype)


def _softplus(x, a, b):
    # log(1 + eˣ) without overflow: max(x, 0) + log1p(e^-|x|)
    return np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))


def _elu(x, a, b):
    return np.where(x > 0, x, np.expm1(np.minimum(x, 0)) * a)


# op -> f(x, alpha, beta) with alpha/beta already in x's dtype
FUNCTIONS: dict[str, Callable] = {
    "erf": lambda x, a, b: _erf(x),
    "sqrt": lambda x, a, b: np.sqrt(x),
    "clip": _clip,
    "hard_sigmoid": _hard_sigmoid,
    "hard_swish": lambda x, a, b: x * _hard_sigmoid(x, a, b),
    "tanh": lambda x, a, b: np.tanh(x),
    "gelu": lambda x, a, b: x * (_erf(x * np.asarray(math.sqrt(0.5), x.dtype)) + 1)
    * np.asarray(0.5, x.dtype),
    "gelu_tanh": _gelu_tanh,
    "leaky_relu": lambda x, a, b: np.where(x >= 0, x, x * a),
    "exp": lambda x, a, b: np.exp(x),
    "log": lambda x, a, b: np.log(x),
    "abs": lambda x, a, b: np.abs(x),
    "neg": lambda x, a, b: np.negative(x),
    "reciprocal": lambda x, a, b: np.reciprocal(x),
    "softplus": _softplus,
    "elu": _elu,
    "sin": lambda x, a, b: np.sin(x),
    "cos": lambda x, a, b: np.cos(x),
    "floor": lambda x, a, b: np.floor(x),
    "ceil": lambda x, a, b: np.ceil(x),
}


def unary(x: np.ndarray, op: str, alpha: float = 0.0, beta: float = 0.0,
          dtype: np.dtype | type = np.float64) -> np.ndarray:
    """``op`` (a key of ``spec.UNARY_OPS``) of ``x`` computed in ``dtype``, with the
    problem's resolved ``alpha``/``beta``; a new C-contiguous array of ``x``'s shape."""
    dtype = np.dtype(dtype)
    x = np.asarray(x, dtype)
    with np.errstate(all="ignore"):  # log(0) = -inf, sqrt(-1) = NaN: ONNX's values too
        out = FUNCTIONS[op](x, dtype.type(alpha), dtype.type(beta))
    return np.asarray(out, dtype=dtype, order="C")  # (ascontiguousarray makes 0-d 1-d)
