"""The float64 reference behind the backend interface.

Not a speed target and not registered for ``--backend all``: it exists so that the graph
executor can run a whole model in float64 (``hwbench.kernels.reference`` for every op),
which is what every backend's output is compared with. Arrays are float64 NumPy arrays;
the argument checks are the real backends' business, so calls go straight to the
references.
"""

from __future__ import annotations

import abc
from typing import Any

import numpy as np

from hwbench.backends.base import Backend
from hwbench.kernels import reference

OPS = ("gemm", "conv2d", "sigmoid", "sigmoid_backward", "relu", "gemm_int8", "qgemm",
       "conv2d_int8", "qconv2d", "max_pool2d", "avg_pool2d", "global_avg_pool2d", "softmax",
       "add", "mul", "concat", "lrn", "reshape", "transpose")


def _reference_op(op: str):
    fn = getattr(reference, op)

    def call(self, *args: Any, **kwargs: Any) -> Any:
        return fn(*args, **kwargs)

    call.__name__ = op
    call.__doc__ = f"float64 ``hwbench.kernels.reference.{op}``."
    return call


def _validated_op(op: str):
    """``_op(problem, *arrays)`` for the interface's abstract hooks (never reached via the
    public methods, which this backend overrides)."""
    fn = getattr(reference, op)

    def call(self, problem: Any, *args: Any) -> Any:
        return fn(*args)

    return call


class ReferenceBackend(Backend):
    name = "reference"
    float_precision = "fp64"

    @classmethod
    def available(cls) -> tuple[bool, str]:
        return True, ""

    def info(self) -> dict[str, Any]:
        return {**super().info(), "math_mode": "fp64"}

    def asarray(self, x: Any) -> np.ndarray:
        x = np.asarray(x)
        return x.astype(np.float64) if x.dtype.kind == "f" else x.copy()

    def to_numpy(self, x: Any) -> np.ndarray:
        return np.asarray(x)

    def empty(self, shape: tuple[int, ...], dtype: Any = np.float64) -> np.ndarray:
        return np.empty(shape, dtype=dtype)


for _op in OPS:
    setattr(ReferenceBackend, _op, _reference_op(_op))
    setattr(ReferenceBackend, f"_{_op}", _validated_op(_op))
abc.update_abstractmethods(ReferenceBackend)  # the hooks were added after class creation
