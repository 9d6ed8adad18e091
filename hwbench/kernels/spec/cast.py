"""The argument contract of ``cast(x, to)``: ONNX Cast between the numeric types hwbench
keeps at run time (float32, float64, float16, int64, int32, int16, uint16, int8, uint8,
bool)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from hwbench.errors import DTypeError
from hwbench.kernels.spec.arguments import array_shape, check_dtype

CAST_DTYPES = tuple(np.dtype(t) for t in (np.float32, np.float64, np.float16, np.int64,
                                          np.int32, np.int8, np.uint8, np.bool_,
                                          np.int16, np.uint16))


@dataclass(frozen=True)
class CastProblem:
    """``x`` of ``shape`` and dtype ``source`` converted element by element to ``target``:
    float -> integer truncates toward zero, anything -> bool is "nonzero", bool -> a
    number is 0 or 1 (ONNX Cast)."""

    shape: tuple[int, ...]
    source: np.dtype
    target: np.dtype

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def flops(self) -> int:
        return 0

    @property
    def output_bytes(self) -> int:
        return self.size * self.target.itemsize

    @property
    def input_bytes(self) -> int:
        return self.size * self.source.itemsize

    @property
    def float_to_integer(self) -> bool:
        """A float source and an integer (not bool) target: NaN and infinities have no
        value there, so the interface screens such inputs."""
        return self.source.kind == "f" and self.target.kind in "iu"


def cast_target(to: Any) -> np.dtype:
    """``to`` (a NumPy dtype or anything ``np.dtype`` reads) as one of ``CAST_DTYPES``."""
    try:
        if to is None:  # (np.dtype(None) is float64)
            raise TypeError("None")
        dtype = np.dtype(to)
    except TypeError as exc:
        raise DTypeError(f"cast: argument 'to' is no dtype: {to!r}") from exc
    if dtype not in CAST_DTYPES:
        names = ", ".join(str(d) for d in CAST_DTYPES)
        raise DTypeError(f"cast: argument 'to' must be one of {names}, got {dtype}")
    return dtype


def check_cast(x: Any, to: Any) -> CastProblem:
    """``cast(x, to)``: ``x`` any shape of a ``CAST_DTYPES`` dtype, ``to`` one of them."""
    shape = array_shape(x, "x", "cast")
    source = check_dtype(x, CAST_DTYPES, "x", "cast")
    return CastProblem(tuple(int(d) for d in shape), source, cast_target(to))
