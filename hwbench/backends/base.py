"""The kernel interface every backend implements (see the README's architecture section).

``Backend`` owns the contract: its public methods validate every argument with
``hwbench.kernels.spec`` *before* anything native runs, then call the backend's private
``_gemm``/``_conv2d``/... with a validated problem. A backend therefore only writes the
fast path; argument checking, NaN screening and FLOP counting are the same everywhere.
"""

from __future__ import annotations

import abc
import os
from typing import Any, ClassVar

import numpy as np

from hwbench.errors import ArgumentError, UnsupportedError
from hwbench.kernels import spec
from hwbench.kernels.quantization import (
    FixedPointMultiplier,
    along_axis,
    dequantize,
    quantize,
    requantize,
)
from hwbench.kernels.spec import (
    BinaryProblem,
    ConcatProblem,
    ConvProblem,
    ElementwiseProblem,
    GemmProblem,
    Int8ConvProblem,
    Int8GemmProblem,
    LayoutProblem,
    LrnProblem,
    PoolProblem,
    QuantizeProblem,
    SoftmaxProblem,
)


def default_threads() -> int:
    """``HWBENCH_NUM_THREADS`` if set, else every core this process may run on."""
    env = os.environ.get("HWBENCH_NUM_THREADS")
    if env:
        try:
            value = int(env)
        except ValueError:
            value = 0
        if value < 1:
            raise ArgumentError(f"HWBENCH_NUM_THREADS must be a positive int, got {env!r}")
        return value
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


class Backend(abc.ABC):
    """One device behind the kernel interface; arrays stay on the device between kernels."""

    name: ClassVar[str] = "base"
    # True when ``_conv2d`` takes ``residual=``/``activation=`` keywords and fuses them;
    # otherwise ``conv2d`` applies them with ``_add``/``_relu`` after ``_conv2d``.
    fuses_conv_epilogue: ClassVar[bool] = False
    # True when the backend computes with NumPy's BLAS in its own process (numpy, and the
    # systolic simulator built on it): its worker gets ``threads`` BLAS threads, others 1.
    uses_numpy_blas: ClassVar[bool] = False
    float_precision: ClassVar[str] = "fp32"  # float GEMM/conv math (pytest hwbench_precision)

    def __init__(self, device: str | None = None, *, threads: int | None = None,
                 check_finite: bool = True) -> None:
        if threads is not None and (not isinstance(threads, int) or isinstance(threads, bool)
                                    or threads < 1):
            raise ArgumentError(f"argument 'threads' must be a positive int, got {threads!r}")
        self.device = device
        self.threads = threads if threads is not None else default_threads()
        self.check_finite = bool(check_finite)

    # -- discovery ---------------------------------------------------------------------
    @classmethod
    @abc.abstractmethod
    def available(cls) -> tuple[bool, str]:
        """``(True, "")`` or ``(False, why and how to get it)``; never raises."""

    @classmethod
    def devices(cls) -> list[str]:
        """Device names selectable as ``name:DEVICE`` (empty when there is only one)."""
        return []

    @classmethod
    def device_status(cls, device: str) -> str:
        """"" when ``name:device`` selects a device here, else why not. By default the
        device must be one of ``devices()``; backends that also select by name override."""
        devices = cls.devices()
        return "" if device in devices else f"device {device!r} not found (have {devices})"

    @classmethod
    def versions(cls) -> dict[str, str]:
        """Library versions this backend is built on (for ``hwbench list``); never raises."""
        return {}

    def info(self) -> dict[str, Any]:
        """Device, library versions, math mode and threads: recorded with every result."""
        return {"backend": self.name, "device": self.device, "threads": self.threads,
                "math_mode": "fp32", "check_finite": self.check_finite, **self.versions()}

    @property
    def full_name(self) -> str:
        return f"{self.name}:{self.device}" if self.device else self.name

    # -- memory ------------------------------------------------------------------------
    @abc.abstractmethod
    def asarray(self, x: Any) -> Any:
        """Copy host data to the device."""

    @abc.abstractmethod
    def to_numpy(self, x: Any) -> np.ndarray:
        """Copy device data back to a NumPy array."""

    @abc.abstractmethod
    def empty(self, shape: tuple[int, ...], dtype: Any = np.float32) -> Any:
        """Uninitialised device array."""

    def synchronize(self) -> None:  # noqa: B027 - host backends have nothing to wait for
        """Return when all queued work is done (host backends are synchronous)."""

    def _all_finite(self, x: Any) -> bool:
        return bool(np.isfinite(self.to_numpy(x)).all())

    def _screen(self, op: str, **arrays: Any) -> None:
        if not self.check_finite:
            return
        for name, x in arrays.items():
            if x is not None and not self._all_finite(x):
                raise ArgumentError(
                    f"{op}: argument '{name}' contains NaN or infinity "
                    f"(create the backend with check_finite=False to skip this check)"
                )

    # -- the kernel interface ------------------------------------------------------------
    def gemm(self, a: Any, b: Any, bias: Any = None, trans_a: bool = False,
             trans_b: bool = False) -> Any:
        """float32 ``op(A) @ op(B) (+ bias)``; bias broadcasts like ONNX Gemm's C."""
        problem = spec.check_gemm(a, b, bias, trans_a, trans_b)
        self._screen("gemm", a=a, b=b, bias=bias)
        return self._gemm(problem, a, b, bias)

    def conv2d(self, x: Any, w: Any, bias: Any = None, stride: Any = 1, padding: Any = 0,
               dilation: Any = 1, groups: int = 1, *, residual: Any = None,
               activation: str | None = None) -> Any:
        """NCHW × OIHW float32 convolution with ONNX Conv semantics, and an optional fused
        epilogue: ``activation(conv(x) + bias + residual)``.

        ``residual`` is None or a float32 array of exactly the output's shape (ResNet's
        shortcut); ``activation`` is None or ``"relu"``. Backends that fuse them
        (``fuses_conv_epilogue``) save a pass over the output per fused op; the others
        add and activate after the convolution, with the same float32 results up to
        rounding.
        """
        problem = spec.check_conv2d(x, w, bias, stride, padding, dilation, groups)
        spec.check_conv_epilogue(problem, residual, activation)
        self._screen("conv2d", x=x, w=w, bias=bias, residual=residual)
        if residual is None and activation is None:
            return self._conv2d(problem, x, w, bias)
        if self.fuses_conv_epilogue:
            return self._conv2d(problem, x, w, bias, residual=residual, activation=activation)
        out = self._conv2d(problem, x, w, bias)
        if residual is not None:
            out = self._add(spec.check_binary(out, residual, "add"), out, residual)
        if activation == "relu":
            out = self._relu(spec.check_unary(out, "x", "relu"), out)
        return out

    def sigmoid(self, x: Any) -> Any:
        """σ(x) = 1 / (1 + exp(-x)) elementwise."""
        problem = spec.check_unary(x, "x", "sigmoid")
        self._screen("sigmoid", x=x)
        return self._sigmoid(problem, x)

    def sigmoid_backward(self, y: Any, dy: Any) -> Any:
        """dy · y · (1 − y): the gradient through σ given its output ``y``."""
        problem = spec.check_sigmoid_backward(y, dy)
        self._screen("sigmoid_backward", y=y, dy=dy)
        return self._sigmoid_backward(problem, y, dy)

    def relu(self, x: Any) -> Any:
        """max(x, 0) elementwise."""
        problem = spec.check_unary(x, "x", "relu")
        self._screen("relu", x=x)
        return self._relu(problem, x)

    def gemm_int8(self, a: Any, b: Any, a_zero_point: Any = 0, b_zero_point: Any = 0) -> Any:
        """Exact int32 ``(A - a_zero_point) @ (B - b_zero_point)`` (ONNX MatMulInteger)."""
        problem, za, zb = spec.check_gemm_int8(a, b, a_zero_point, b_zero_point)
        return self._gemm_int8(problem, a, b, za, zb)

    def qgemm(self, a: Any, a_scale: Any, a_zero_point: Any, b: Any, b_scale: Any,
              b_zero_point: Any, y_scale: Any, y_zero_point: Any) -> Any:
        """int8 GEMM requantized to 8 bits (ONNX QLinearMatMul; argument order as ONNX's).

        ``b_scale`` may be per column. The requantization multiplier is a 31-bit
        fixed-point number exact for float32 scales; rounding is half to even, saturating.
        """
        op = "qgemm"
        problem, za, zb = spec.check_gemm_int8(a, b, a_zero_point, b_zero_point, op=op)
        fixed, zy = spec.check_requantization(a_scale, b_scale, y_scale, y_zero_point,
                                              problem.n, ("a_scale", "b_scale"), op)
        return self._qgemm(problem, a, b, za, zb, fixed, zy)

    # -- quantized convolution and (de)quantization (ONNX ConvInteger, QLinearConv,
    #    QuantizeLinear, DequantizeLinear) -----------------------------------------------
    def conv2d_int8(self, x: Any, w: Any, x_zero_point: Any = 0, w_zero_point: Any = 0,
                    stride: Any = 1, padding: Any = 0, dilation: Any = 1,
                    groups: int = 1) -> Any:
        """Exact int32 convolution of ``x - x_zero_point`` and ``w - w_zero_point`` (ONNX
        ConvInteger): 8-bit NCHW/OIHW inputs; ``w_zero_point`` scalar or per filter.
        Padding holds ``x_zero_point``, the code of a real 0."""
        problem, zx, zw = spec.check_conv2d_int8(x, w, x_zero_point, w_zero_point, stride,
                                                 padding, dilation, groups)
        return self._conv2d_int8(problem, x, w, zx, zw)

    def qconv2d(self, x: Any, x_scale: Any, x_zero_point: Any, w: Any, w_scale: Any,
                w_zero_point: Any, y_scale: Any, y_zero_point: Any, bias: Any = None,
                stride: Any = 1, padding: Any = 0, dilation: Any = 1, groups: int = 1) -> Any:
        """ONNX QLinearConv (argument order as ONNX's): the int32 convolution plus an int32
        ``bias``, requantized to ``y_zero_point``'s dtype with per-filter ``w_scale``
        allowed; fixed-point multiplier, round half to even, saturating (as ``qgemm``)."""
        op = "qconv2d"
        problem, zx, zw = spec.check_conv2d_int8(x, w, x_zero_point, w_zero_point, stride,
                                                 padding, dilation, groups, bias, op=op)
        fixed, zy = spec.check_requantization(x_scale, w_scale, y_scale, y_zero_point,
                                              problem.k, ("x_scale", "w_scale"), op)
        return self._qconv2d(problem, x, w, zx, zw, bias, fixed, zy)

    def quantize_linear(self, x: Any, scale: Any, zero_point: Any = None, axis: int = 1) -> Any:
        """ONNX QuantizeLinear: float32 -> 8 bits, ``saturate(rint(x / scale) + zero_point)``;
        ``scale``/``zero_point`` per tensor or 1-D along ``axis``; the zero point's dtype
        (uint8 when omitted) is the output's."""
        problem, sc, zp = spec.check_quantize_linear(x, scale, zero_point, axis)
        self._screen("quantize_linear", x=x)
        return self._quantize_linear(problem, x, sc, zp)

    def dequantize_linear(self, x: Any, scale: Any, zero_point: Any = None,
                          axis: int = 1) -> Any:
        """ONNX DequantizeLinear: ``(x - zero_point) * scale`` in float32, per tensor or
        along ``axis``; int8, uint8 or (with zero point 0) int32 input."""
        problem, sc, zp = spec.check_dequantize_linear(x, scale, zero_point, axis)
        return self._dequantize_linear(problem, x, sc, zp)

    # -- the ops full CNNs need (ONNX semantics, NCHW float32) -------------------------
    def max_pool2d(self, x: Any, kernel: Any, stride: Any = None, padding: Any = 0,
                   dilation: Any = 1, ceil_mode: bool = False) -> Any:
        """ONNX MaxPool: padding never wins; ``stride`` defaults to 1 (ONNX's default)."""
        problem = spec.check_max_pool2d(x, kernel, stride, padding, dilation, ceil_mode)
        self._screen("max_pool2d", x=x)
        return self._max_pool2d(problem, x)

    def avg_pool2d(self, x: Any, kernel: Any, stride: Any = None, padding: Any = 0,
                   ceil_mode: bool = False, count_include_pad: bool = False) -> Any:
        """ONNX AveragePool: padding is left out of the divisor unless count_include_pad."""
        problem = spec.check_avg_pool2d(x, kernel, stride, padding, ceil_mode,
                                        count_include_pad)
        self._screen("avg_pool2d", x=x)
        return self._avg_pool2d(problem, x)

    def global_avg_pool2d(self, x: Any) -> Any:
        """ONNX GlobalAveragePool: (N, C, H, W) -> (N, C, 1, 1)."""
        problem = spec.check_global_avg_pool2d(x)
        self._screen("global_avg_pool2d", x=x)
        return self._global_avg_pool2d(problem, x)

    def softmax(self, x: Any, axis: int = -1) -> Any:
        """ONNX Softmax (opset >= 13) along one axis, computed stably (max subtracted)."""
        problem = spec.check_softmax(x, axis)
        self._screen("softmax", x=x)
        return self._softmax(problem, x)

    def add(self, a: Any, b: Any) -> Any:
        """a + b with ONNX/NumPy multidirectional broadcasting."""
        problem = spec.check_binary(a, b, "add")
        self._screen("add", a=a, b=b)
        return self._add(problem, a, b)

    def mul(self, a: Any, b: Any) -> Any:
        """a * b with ONNX/NumPy multidirectional broadcasting."""
        problem = spec.check_binary(a, b, "mul")
        self._screen("mul", a=a, b=b)
        return self._mul(problem, a, b)

    def concat(self, arrays: Any, axis: int) -> Any:
        """ONNX Concat of a list/tuple of arrays along ``axis`` (negative allowed)."""
        problem = spec.check_concat(arrays, axis)
        for i, array in enumerate(arrays):
            self._screen(f"concat (item {i})", arrays=array)
        return self._concat(problem, list(arrays))

    def lrn(self, x: Any, size: int, alpha: float = 1e-4, beta: float = 0.75,
            bias: float = 1.0) -> Any:
        """ONNX LRN across channels: x / (bias + alpha/size * window sum of x²)^beta."""
        problem = spec.check_lrn(x, size, alpha, beta, bias)
        self._screen("lrn", x=x)
        return self._lrn(problem, x)

    def reshape(self, x: Any, shape: Any) -> Any:
        """Reshape to ``shape`` (one -1 may be inferred; 0 is not special here)."""
        problem = spec.check_reshape(x, shape)
        self._screen("reshape", x=x)
        return self._reshape(problem, x)

    def transpose(self, x: Any, perm: Any) -> Any:
        """Permute axes (ONNX Transpose; ``perm`` None reverses them); the result has a
        plain (C-contiguous) layout."""
        problem = spec.check_transpose(x, perm)
        self._screen("transpose", x=x)
        return self._transpose(problem, x)

    # -- what a backend implements ---------------------------------------------------------
    @abc.abstractmethod
    def _gemm(self, p: GemmProblem, a: Any, b: Any, bias: Any) -> Any: ...

    @abc.abstractmethod
    def _conv2d(self, p: ConvProblem, x: Any, w: Any, bias: Any) -> Any: ...

    @abc.abstractmethod
    def _sigmoid(self, p: ElementwiseProblem, x: Any) -> Any: ...

    @abc.abstractmethod
    def _sigmoid_backward(self, p: ElementwiseProblem, y: Any, dy: Any) -> Any: ...

    @abc.abstractmethod
    def _relu(self, p: ElementwiseProblem, x: Any) -> Any: ...

    @abc.abstractmethod
    def _gemm_int8(self, p: Int8GemmProblem, a: Any, b: Any, za: np.ndarray,
                   zb: np.ndarray) -> Any: ...

    @abc.abstractmethod
    def _qgemm(self, p: Int8GemmProblem, a: Any, b: Any, za: np.ndarray, zb: np.ndarray,
               fixed: Any, zy: np.ndarray) -> Any: ...

    # Ops added for whole models: not abstract, so a backend still without them keeps
    # working for everything else and says which op it lacks.
    def _unsupported(self, op: str) -> UnsupportedError:
        return UnsupportedError(f"{self.name}: {op} is not implemented")

    def _conv2d_int8(self, p: Int8ConvProblem, x: Any, w: Any, zx: np.ndarray,
                     zw: np.ndarray) -> Any:
        raise self._unsupported("conv2d_int8")

    # Defaults on the host (``to_numpy``/``asarray``), exact and shared; a device backend
    # overrides them to keep the data where it is.
    def _qconv2d(self, p: Int8ConvProblem, x: Any, w: Any, zx: np.ndarray, zw: np.ndarray,
                 bias: Any, fixed: FixedPointMultiplier, zy: np.ndarray) -> Any:
        acc = self.to_numpy(self._conv2d_int8(p, x, w, zx, zw))
        bias = None if bias is None else along_axis(self.to_numpy(bias), 1, 4)
        return self.asarray(requantize(acc, fixed.along(1, 4), zy.item(), zy.dtype, bias))

    def _quantize_linear(self, p: QuantizeProblem, x: Any, scale: np.ndarray,
                         zero_point: np.ndarray) -> Any:
        return self.asarray(quantize(self.to_numpy(x), scale, zero_point, zero_point.dtype,
                                     p.axis))

    def _dequantize_linear(self, p: QuantizeProblem, x: Any, scale: np.ndarray,
                           zero_point: np.ndarray) -> Any:
        return self.asarray(dequantize(self.to_numpy(x), scale, zero_point, p.axis))

    def _max_pool2d(self, p: PoolProblem, x: Any) -> Any:
        raise self._unsupported("max_pool2d")

    def _avg_pool2d(self, p: PoolProblem, x: Any) -> Any:
        raise self._unsupported("avg_pool2d")

    def _global_avg_pool2d(self, p: PoolProblem, x: Any) -> Any:
        raise self._unsupported("global_avg_pool2d")

    def _softmax(self, p: SoftmaxProblem, x: Any) -> Any:
        raise self._unsupported("softmax")

    def _add(self, p: BinaryProblem, a: Any, b: Any) -> Any:
        raise self._unsupported("add")

    def _mul(self, p: BinaryProblem, a: Any, b: Any) -> Any:
        raise self._unsupported("mul")

    def _concat(self, p: ConcatProblem, arrays: list[Any]) -> Any:
        raise self._unsupported("concat")

    def _lrn(self, p: LrnProblem, x: Any) -> Any:
        raise self._unsupported("lrn")

    def _reshape(self, p: LayoutProblem, x: Any) -> Any:
        raise self._unsupported("reshape")

    def _transpose(self, p: LayoutProblem, x: Any) -> Any:
        raise self._unsupported("transpose")

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.full_name!r} threads={self.threads}>"
