"""The ``onnxruntime-requant`` math mode, accepted by every backend: int8 results as
onnxruntime's CPU kernels compute them (``kernels.onnxruntime_rounding``), bit for bit,
instead of the exact default.

Users spell it in the backend name after the device, ``numpy:onnxruntime-requant``,
``cpu:mkl+onnxruntime-requant``, ``opencl:0+onnxruntime-requant``, or pass
``requantization="onnxruntime"`` to ``get_backend``. The backend keeps its own integer
kernels (the int32 accumulation of ``qconv2d``/``qgemm`` runs where it always does);
only the mapping back to 8 bits, and the ``com.microsoft`` ops between codes
(``graph.ops.qoperator``), follow onnxruntime's float32 arithmetic, on the host.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hwbench.errors import ArgumentError
from hwbench.kernels import onnxruntime_rounding, spec
from hwbench.kernels.quantization import FixedPointMultiplier, along_axis, float32_scale

MODE = "onnxruntime-requant"
ONNXRUNTIME = "onnxruntime"


def split_device(device: str | None) -> tuple[str | None, bool]:
    """The device part of a backend name -> (the device without the mode, whether it
    names this mode): ``"mkl+onnxruntime-requant"`` -> ``("mkl", True)``,
    ``"onnxruntime-requant"`` -> ``(None, True)``, ``"0"`` -> ``("0", False)``."""
    if device is None:
        return None, False
    if device == MODE:
        return None, True
    rest, plus, mode = device.rpartition("+")
    if plus and mode == MODE:
        if not rest:
            raise ArgumentError(f"argument 'backend': empty device before +{MODE}")
        return rest, True
    return device, False


def choose(named: bool, options: dict[str, Any]) -> bool:
    """Whether the backend runs in this mode: its name says so, or the option
    ``requantization="onnxruntime"`` (removed from ``options``; other values stay for
    backends that have their own, like cpu's "float32")."""
    option = options.get("requantization")
    if option == ONNXRUNTIME:
        del options["requantization"]
        return True
    if named and option is not None:
        raise ArgumentError(f"argument 'requantization': {option!r} contradicts the "
                            f"backend name's {MODE}")
    return named


def full_name(name: str) -> str:
    """``numpy`` -> ``numpy:onnxruntime-requant``, ``cpu:mkl`` -> ``cpu:mkl+...``."""
    return f"{name}{'+' if ':' in name else ':'}{MODE}"


def enabled(backend: Any) -> bool:
    return getattr(backend, "requantization", "exact") == ONNXRUNTIME


def qgemm(be, p: spec.Int8GemmProblem, a, b, za: np.ndarray, zb: np.ndarray,
          fixed: FixedPointMultiplier, zy: np.ndarray) -> Any:
    """QLinearMatMul: the backend's exact int32 ``gemm_int8``, requantized as MLAS does."""
    acc = be.to_numpy(be._gemm_int8(p, a, b, za, zb))
    return be.asarray(onnxruntime_rounding.requantize(
        acc, float32_scale(fixed).reshape(-1) if fixed.multiplier.size > 1
        else float32_scale(fixed), zy.item(), zy.dtype))


def qconv2d(be, p: spec.Int8ConvProblem, x, w, zx: np.ndarray, zw: np.ndarray, bias,
            fixed: FixedPointMultiplier, zy: np.ndarray) -> Any:
    """QLinearConv: the backend's exact int32 ``conv2d_int8`` plus the int32 bias,
    requantized as MLAS does (per-filter scales along the channel axis)."""
    acc = be.to_numpy(be._conv2d_int8(p, x, w, zx, zw))
    scale = along_axis(float32_scale(fixed), 1, 4)
    if bias is not None:
        bias = along_axis(be.to_numpy(bias), 1, 4)
    return be.asarray(onnxruntime_rounding.requantize(acc, scale, zy.item(), zy.dtype, bias))
