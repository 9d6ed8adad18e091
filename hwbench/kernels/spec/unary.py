"""Unary float32 math and activations: one kernel, ``unary(x, op, alpha=, beta=)``, for
the whole family (ONNX Erf, Sqrt, Clip, HardSigmoid, HardSwish, Tanh, Gelu, LeakyRelu,
Exp, Log, Abs, Neg, Reciprocal, Softplus, Elu, Sin, Cos, Floor, Ceil).

``UNARY_OPS`` says each op's parameters (``alpha``, ``beta``, in that order) with their
defaults and its FLOPs per element; ``check_unary_op`` validates a call against it and
returns a ``UnaryProblem`` holding the op and its resolved parameters.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from hwbench.errors import ArgumentError
from hwbench.kernels.spec.arguments import FLOAT32, array_shape, check_dtype, check_nonempty


@dataclass(frozen=True)
class UnaryOp:
    """One op of the family: its parameters' names in the ONNX op (``alpha`` and ``beta``
    are the kernel's names for them), their defaults, and arithmetic per element (a
    transcendental function counts as one)."""

    name: str
    params: tuple[str, ...] = ()     # what alpha, beta mean, in order
    defaults: tuple[float, ...] = ()
    flops_per_element: int = 1
    bounds: bool = False  # Clip: alpha/beta are bounds and may be infinite


UNARY_OPS: dict[str, UnaryOp] = {op.name: op for op in (
    UnaryOp("erf"),
    UnaryOp("sqrt"),
    UnaryOp("clip", ("min", "max"), (-math.inf, math.inf), 2, bounds=True),
    UnaryOp("hard_sigmoid", ("alpha", "beta"), (0.2, 0.5), 4),       # max(0, min(1, a·x + b))
    UnaryOp("hard_swish", ("alpha", "beta"), (1 / 6, 0.5), 5),       # x · hard_sigmoid(x)
    UnaryOp("tanh"),
    UnaryOp("gelu", flops_per_element=5),                            # x/2 · (1 + erf(x/√2))
    UnaryOp("gelu_tanh", flops_per_element=9),  # x/2·(1 + tanh(√(2/π)·(x + 0.044715x³)))
    UnaryOp("leaky_relu", ("alpha",), (0.01,), 2),
    UnaryOp("exp"),
    UnaryOp("log"),
    UnaryOp("abs"),
    UnaryOp("neg"),
    UnaryOp("reciprocal"),
    UnaryOp("softplus", flops_per_element=3),                        # log(1 + exp(x))
    UnaryOp("elu", ("alpha",), (1.0,), 3),                           # x > 0 ? x : a·(eˣ − 1)
    UnaryOp("sin"),
    UnaryOp("cos"),
    UnaryOp("floor"),
    UnaryOp("ceil"),
)}


@dataclass(frozen=True)
class UnaryProblem:
    """``op`` elementwise over a float32 array of ``shape``, with its parameters resolved
    (defaults filled in; 0.0 where the op takes none). For ``clip`` alpha/beta are the
    bounds (±inf where absent), with alpha lowered to beta when it is greater (ONNX: a
    min above max sets every value to max)."""

    shape: tuple[int, ...]
    op: str
    alpha: float = 0.0
    beta: float = 0.0

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def flops(self) -> int:
        return UNARY_OPS[self.op].flops_per_element * self.size

    @property
    def output_bytes(self) -> int:
        return 4 * self.size

    @property
    def bytes(self) -> int:
        return 8 * self.size


def _param(value: Any, name: str, op: UnaryOp, default: float) -> float:
    where = f"unary({op.name!r})"
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ArgumentError(f"{where}: argument '{name}' must be a number, got {value!r}")
    value = float(value)
    if math.isnan(value) or (math.isinf(value) and not op.bounds):
        raise ArgumentError(f"{where}: argument '{name}' must be "
                            f"{'a number, not NaN' if op.bounds else 'finite'}, got {value!r}")
    return value


def check_unary_op(x: Any, op: Any, alpha: Any = None, beta: Any = None) -> UnaryProblem:
    """``x`` a float32 array of any shape (no zero-size dimension); ``op`` a key of
    ``UNARY_OPS``; ``alpha``/``beta`` only where the op has them (None: the default)."""
    if not isinstance(op, str) or op not in UNARY_OPS:
        raise ArgumentError(f"unary: argument 'op' must be one of "
                            f"{', '.join(map(repr, UNARY_OPS))}, got {op!r}")
    spec = UNARY_OPS[op]
    where = f"unary({op!r})"
    shape = array_shape(x, "x", where)
    check_nonempty(shape, "x", where)
    check_dtype(x, (FLOAT32,), "x", where)
    values = []
    for i, (name, value) in enumerate((("alpha", alpha), ("beta", beta))):
        if i >= len(spec.params):
            if value is not None:
                takes = (f"takes only {', '.join(spec.params[:i])}" if spec.params
                         else "takes no parameters")
                raise ArgumentError(f"{where}: argument '{name}' given, but {op} {takes}")
            values.append(0.0)
        else:
            values.append(_param(value, name, spec, spec.defaults[i]))
    a, b = values
    if spec.bounds and a > b:
        a = b
    return UnaryProblem(shape, op, a, b)
