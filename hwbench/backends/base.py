"""The kernel interface every backend implements (see the README's architecture section).

``Backend`` owns the contract: its public methods validate every argument with
``hwbench.kernels.spec`` *before* anything native runs, then call the backend's private
``_gemm``/``_conv2d``/... with a validated problem. A backend therefore only writes the
fast path; argument checking, NaN screening and FLOP counting are the same everywhere.
"""

from __future__ import annotations

import abc
import os
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np

from hwbench.backends import memory, onnxruntime_requant
from hwbench.backends.binary_interface import BinaryKernels
from hwbench.backends.cast_interface import CastKernels
from hwbench.backends.checks import DEVICE_ARRAY_MODULES, all_finite, array_maker, guarded
from hwbench.backends.conv_epilogue import conv2d_epilogue, gemm_epilogue
from hwbench.backends.integer_interface import IntegerKernels
from hwbench.backends.normalization_interface import NormalizationKernels
from hwbench.backends.reductions_interface import ReductionKernels
from hwbench.backends.rnn_interface import RnnKernels
from hwbench.backends.tensor_ops_interface import TensorOpsInterface
from hwbench.backends.unary_interface import UnaryInterface
from hwbench.backends.upsampling_interface import UpsamplingInterface
from hwbench.errors import ArgumentError, ForeignArrayError, UnsupportedError
from hwbench.kernels import spec
from hwbench.kernels.quantization import (
    FixedPointMultiplier,
    along_axis,
    dequantize,
    quantize,
    requantize,
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


def _describe(problem: Any) -> str:
    """A problem's sizes for a message: ``m=..., n=..., k=...`` or its output shape."""
    if hasattr(problem, "m"):
        return f"m={problem.m}, n={problem.n}, k={problem.k}"
    shape = getattr(problem, "output_shape", None) or getattr(problem, "shape", None)
    return f"output shape {tuple(shape)}" if shape is not None else type(problem).__name__


class Backend(IntegerKernels,
              NormalizationKernels, ReductionKernels, UnaryInterface, TensorOpsInterface,
              BinaryKernels, RnnKernels, UpsamplingInterface, CastKernels, abc.ABC):
    """One device behind the kernel interface; arrays stay on the device between kernels."""

    name: ClassVar[str] = "base"
    # True when ``_conv2d`` takes ``residual=``/``activation=`` keywords and fuses them;
    # otherwise ``conv2d`` applies them with ``_add``/``_relu`` after ``_conv2d``.
    fuses_conv_epilogue: ClassVar[bool] = False
    # The ``spec.ACTIVATIONS`` such a ``_conv2d`` fuses; others follow it (conv_epilogue).
    fused_activations: ClassVar[frozenset[str]] = frozenset({"relu"})
    # The ``spec.ACTIVATIONS`` its ``_gemm`` fuses (an ``activation=`` keyword); the others
    # follow ``_gemm`` (``conv_epilogue.gemm_epilogue``).
    gemm_fused_activations: ClassVar[frozenset[str]] = frozenset()
    # True when the backend computes with NumPy's BLAS in its own process (numpy, and the
    # systolic simulator built on it): its worker gets ``threads`` BLAS threads, others 1.
    uses_numpy_blas: ClassVar[bool] = False
    float_precision: ClassVar[str] = "fp32"  # float GEMM/conv math (pytest hwbench_precision)
    # True when it computes on the host CPU's cores: its GEMM speed is set against the
    # CPU's measured FMA peak (``harness.measure.peak_trust``).
    runs_on_host_cpu: ClassVar[bool] = False
    # Options ``Session`` creates it with for whole graphs (read only; a caller's win).
    session_options: ClassVar[dict[str, Any]] = {}

    @classmethod
    def sweep_resources(cls, device: str | None) -> dict[str, Any]:
        """What a sweep point on ``name:device`` asks Ray for: ``num_gpus``, custom
        ``resources`` (as ``node_resources`` names them) and ``host_timed`` (it times on
        the node's CPUs, so it takes the node's one timing slot)."""
        return {"num_gpus": 0, "resources": {f"hwbench_{cls.name}": 1}, "host_timed": True}

    @classmethod
    def node_resources(cls, devices: list[str]) -> dict[str, float]:
        """This node's Ray custom resources for the backend, available with ``devices``."""
        return {f"hwbench_{cls.name}": 1}

    @classmethod
    def resolve_device(cls, device: str | None) -> str | None:
        """A device as a sweep names it, as this node names it (the same, unless the
        backend has device types: ``opencl:GPU`` -> the first GPU here)."""
        return device

    def __init__(self, device: str | None = None, *, threads: int | None = None,
                 check_finite: bool = True) -> None:
        if threads is not None and (not isinstance(threads, int) or isinstance(threads, bool)
                                    or threads < 1):
            raise ArgumentError(f"argument 'threads' must be a positive int, got {threads!r}")
        if not isinstance(check_finite, (bool, np.bool_)):
            raise ArgumentError(f"argument 'check_finite' must be a bool, got {check_finite!r}")
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
        info = {"backend": self.name, "device": self.device, "threads": self.threads,
                "math_mode": "fp32", "check_finite": self.check_finite, **self.versions()}
        if onnxruntime_requant.enabled(self):
            info.update(math_mode="fp32; int8 onnxruntime-requant", requantization="onnxruntime")
        return info

    @property
    def full_name(self) -> str:
        name = f"{self.name}:{self.device}" if self.device else self.name
        return onnxruntime_requant.full_name(name) if onnxruntime_requant.enabled(self) else name

    # -- memory ------------------------------------------------------------------------
    @abc.abstractmethod
    def asarray(self, x: Any) -> Any:
        """Copy host data to the device."""

    def asarray_feed(self, x: Any) -> Any:
        """A graph input for one compiled-plan run (``Executor.replay``): ``asarray``
        unless a backend skips what pays only for data kept long (cpu: registering it)."""
        return self.asarray(x)

    @abc.abstractmethod
    def to_numpy(self, x: Any) -> np.ndarray:
        """Copy device data back to a NumPy array."""

    @abc.abstractmethod
    def empty(self, shape: tuple[int, ...], dtype: Any = np.float32) -> Any:
        """Uninitialised device array."""

    def synchronize(self) -> None:  # noqa: B027 - host backends have nothing to wait for
        """Return when all queued work is done (host backends are synchronous)."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Guard each backend's own ``asarray``/``to_numpy``/``empty`` with the shared
        checks (``checks.guarded``), so that no backend has to repeat them."""
        super().__init_subclass__(**kwargs)
        for name in ("asarray", "to_numpy", "empty"):
            method = cls.__dict__.get(name)
            if method is not None and not getattr(method, "_guarded", False):
                setattr(cls, name, guarded(name, method))

    # -- the shared checks: arrays this backend did not make, and sizes that cannot fit ----
    def _owns(self, x: Any) -> bool:
        """True when ``x`` is one of this backend's device arrays (host NumPy arrays are
        always accepted and never reach this). By default: a type from the module this
        backend's arrays come from (``DEVICE_ARRAY_MODULES``); a backend whose arrays
        belong to one device or context overrides it."""
        module = DEVICE_ARRAY_MODULES.get(self.name)
        return module is not None and type(x).__module__.startswith(module)

    def _check_foreign(self, op: str, **arrays: Any) -> None:
        """Refuse arrays another backend or library made (``ForeignArrayError``): this
        backend cannot read them in place, and NumPy would turn them into object arrays.
        Host NumPy arrays and scalars pass; non-arrays are left to ``spec``'s checks."""
        for name, x in arrays.items():
            if x is None or isinstance(x, (np.ndarray, np.generic)):
                continue
            if not (hasattr(x, "shape") and hasattr(x, "dtype")) or self._owns(x):
                continue
            raise ForeignArrayError(f"{op}: {self._foreign_message(name, x)}")

    def _foreign_message(self, name: str, x: Any) -> str:
        maker = array_maker(x)
        if maker == self.name:
            origin = f"made by another {maker} device or context"
            fix = "copy it with to_numpy() of the backend that made it"
        elif maker in DEVICE_ARRAY_MODULES:
            origin = f"made by the {maker!r} backend"
            fix = f"copy it to the host with the {maker!r} backend's to_numpy()"
        else:
            origin = f"from {maker}"
            fix = "convert it to a NumPy array first"
        return (f"argument '{name}' is a {type(x).__module__}.{type(x).__qualname__} {origin}, "
                f"not an array of "
                f"{self.full_name!r}: {fix}, then pass the NumPy array (or this "
                f"backend's asarray() of it)")

    def memory_budget(self) -> memory.Budget | None:
        """Free bytes where this backend allocates (host memory; device backends
        override with the device's), None where unknown."""
        return memory.host_budget()

    def allocation_limit(self) -> tuple[int, str] | None:
        """The largest single allocation the device allows and what sets it, if any."""
        return None

    def _workspace_bytes(self, op: str, problem: Any) -> int:
        """Bytes a kernel allocates besides its output (im2col columns, wider copies);
        0 unless a backend says otherwise."""
        return 0

    def _begin_kernel(self, op: str, problem: Any) -> None:
        """Every kernel's entry, once its arguments are checked: refuse what cannot fit
        (``_reserve``). A backend that settles per-call state from the problem (the cpu
        backend's thread count) extends this."""
        self._reserve(op, problem)

    def _reserve(self, op: str, problem: Any) -> None:
        """Refuse (``OutOfMemoryError``) a call whose output and workspace cannot fit,
        before anything is allocated; small calls pay one comparison."""
        out = problem.output_bytes
        if out < memory.SMALL_BYTES and out * 64 < memory.SMALL_BYTES:
            return  # no backend's workspace reaches 64x its output on small calls
        total = out + self._workspace_bytes(op, problem)
        per_byte_of_output = total / max(out, 1)

        def fits(free: int) -> str:
            most = memory.format_bytes(free / per_byte_of_output)
            return (f"calls whose output is at most {most}"
                    f" fit (this one's is {memory.format_bytes(out)})")

        self.require_bytes(total, f"{op} on {self.full_name} ({_describe(problem)})", fits,
                           one_allocation=total == out)

    def require_bytes(self, nbytes: int, what: str, fits: str | Callable[[int], str] = "",
                      *, one_allocation: bool = True) -> None:
        """``memory.require`` against this backend's budget and, for ``nbytes`` that are
        ``one_allocation``, its limit on one allocation."""
        if nbytes >= memory.SMALL_BYTES:
            memory.require(nbytes, what, fits=fits, budget=self.memory_budget(),
                           single_limit=self.allocation_limit() if one_allocation else None)

    def _all_finite(self, x: Any) -> bool:
        return all_finite(x if type(x) is np.ndarray else self.to_numpy(x))

    def _screen(self, op: str, **arrays: Any) -> None:
        if not self.check_finite:
            return
        for name, x in arrays.items():
            if x is not None and not self._all_finite(x):
                raise ArgumentError(
                    f"{op}: argument '{name}' contains NaN or infinity "
                    f"(create the backend with check_finite=False to skip this check)"
                )

    def _screen_masked(self, op: str, **arrays: Any) -> None:
        """``_screen`` for scores where -inf is a masked-out entry (Softmax after a causal
        or padding mask): its result there is 0, and a row of only -inf is NaN, as in
        onnxruntime. NaN and +inf are still refused."""
        for name, x in arrays.items():
            if not self.check_finite or x is None or self._all_finite(x):
                continue
            host = np.asarray(x if type(x) is np.ndarray else self.to_numpy(x))
            if np.isnan(host).any() or np.isposinf(host).any():
                raise ArgumentError(
                    f"{op}: argument '{name}' contains NaN or +infinity (-infinity, a masked "
                    f"entry, is allowed; create the backend with check_finite=False to skip "
                    f"this check)")

    # -- the kernel interface ------------------------------------------------------------
    def gemm(self, a: Any, b: Any, bias: Any = None, trans_a: bool = False,
             trans_b: bool = False, activation: str | None = None) -> Any:
        """float32 ``activation(op(A) @ op(B) (+ bias))``; bias broadcasts like ONNX Gemm's
        C; ``activation``: None or one of ``spec.ACTIVATIONS``, fused where the backend
        fuses it (``gemm_fused_activations``), else applied after the product."""
        self._check_foreign("gemm", a=a, b=b, bias=bias)
        problem = spec.check_gemm(a, b, bias, trans_a, trans_b)
        self._begin_kernel("gemm", problem)
        spec.check_activation(activation, "gemm")
        self._screen("gemm", a=a, b=b, bias=bias)
        if activation is None:
            return self._gemm(problem, a, b, bias)
        return gemm_epilogue(self, problem, a, b, bias, activation)

    def conv2d(self, x: Any, w: Any, bias: Any = None, stride: Any = 1, padding: Any = 0,
               dilation: Any = 1, groups: int = 1, *, residual: Any = None,
               activation: str | None = None) -> Any:
        """NCHW × OIHW float32 convolution with ONNX Conv semantics, and an optional fused
        epilogue: ``activation(conv(x) + bias + residual)``.

        ``residual`` is None or a float32 array of exactly the output's shape (ResNet's
        shortcut); ``activation`` is None or one of ``spec.ACTIVATIONS``. Backends that fuse them
        (``fuses_conv_epilogue``) save a pass over the output per fused op; the others
        add and activate after the convolution, with the same float32 results up to
        rounding.
        """
        self._check_foreign("conv2d", x=x, w=w, bias=bias, residual=residual)
        problem = spec.check_conv2d(x, w, bias, stride, padding, dilation, groups)
        self._begin_kernel("conv2d", problem)
        spec.check_conv_epilogue(problem, residual, activation)
        self._screen("conv2d", x=x, w=w, bias=bias, residual=residual)
        if residual is None and activation is None:
            return self._conv2d(problem, x, w, bias)
        return conv2d_epilogue(self, problem, x, w, bias, residual, activation)

    def sigmoid(self, x: Any) -> Any:
        """σ(x) = 1 / (1 + exp(-x)) elementwise."""
        self._check_foreign("sigmoid", x=x)
        problem = spec.check_unary(x, "x", "sigmoid")
        self._begin_kernel("sigmoid", problem)
        self._screen("sigmoid", x=x)
        return self._sigmoid(problem, x)

    def sigmoid_backward(self, y: Any, dy: Any) -> Any:
        """dy · y · (1 − y): the gradient through σ given its output ``y``."""
        self._check_foreign("sigmoid_backward", y=y, dy=dy)
        problem = spec.check_sigmoid_backward(y, dy)
        self._begin_kernel("sigmoid_backward", problem)
        self._screen("sigmoid_backward", y=y, dy=dy)
        return self._sigmoid_backward(problem, y, dy)

    def relu(self, x: Any) -> Any:
        """max(x, 0) elementwise."""
        self._check_foreign("relu", x=x)
        problem = spec.check_unary(x, "x", "relu")
        self._begin_kernel("relu", problem)
        self._screen("relu", x=x)
        return self._relu(problem, x)

    def gemm_int8(self, a: Any, b: Any, a_zero_point: Any = 0, b_zero_point: Any = 0) -> Any:
        """Exact int32 ``(A - a_zero_point) @ (B - b_zero_point)`` (ONNX MatMulInteger)."""
        self._check_foreign("gemm_int8", a=a, b=b)
        problem, za, zb = spec.check_gemm_int8(a, b, a_zero_point, b_zero_point)
        self._begin_kernel("gemm_int8", problem)
        return self._gemm_int8(problem, a, b, za, zb)

    def qgemm(self, a: Any, a_scale: Any, a_zero_point: Any, b: Any, b_scale: Any,
              b_zero_point: Any, y_scale: Any, y_zero_point: Any) -> Any:
        """int8 GEMM requantized to 8 bits (ONNX QLinearMatMul; argument order as ONNX's).

        ``b_scale`` may be per column. The requantization multiplier is a 31-bit
        fixed-point number exact for float32 scales; rounding is half to even, saturating.
        """
        op = "qgemm"
        self._check_foreign("qgemm", a=a, b=b)
        problem, za, zb = spec.check_gemm_int8(a, b, a_zero_point, b_zero_point, op=op)
        self._begin_kernel("qgemm", problem)
        fixed, zy = spec.check_requantization(a_scale, b_scale, y_scale, y_zero_point,
                                              problem.n, ("a_scale", "b_scale"), op)
        if onnxruntime_requant.enabled(self):
            return onnxruntime_requant.qgemm(self, problem, a, b, za, zb, fixed, zy)
        return self._qgemm(problem, a, b, za, zb, fixed, zy)

    # -- quantized convolution and (de)quantization (ONNX ConvInteger, QLinearConv,
    #    QuantizeLinear, DequantizeLinear) -----------------------------------------------
    def conv2d_int8(self, x: Any, w: Any, x_zero_point: Any = 0, w_zero_point: Any = 0,
                    stride: Any = 1, padding: Any = 0, dilation: Any = 1,
                    groups: int = 1) -> Any:
        """Exact int32 convolution of ``x - x_zero_point`` and ``w - w_zero_point`` (ONNX
        ConvInteger): 8-bit NCHW/OIHW inputs; ``w_zero_point`` scalar or per filter.
        Padding holds ``x_zero_point``, the code of a real 0."""
        self._check_foreign("conv2d_int8", x=x, w=w)
        problem, zx, zw = spec.check_conv2d_int8(x, w, x_zero_point, w_zero_point, stride,
                                                 padding, dilation, groups)
        self._begin_kernel("conv2d_int8", problem)
        return self._conv2d_int8(problem, x, w, zx, zw)

    def qconv2d(self, x: Any, x_scale: Any, x_zero_point: Any, w: Any, w_scale: Any,
                w_zero_point: Any, y_scale: Any, y_zero_point: Any, bias: Any = None,
                stride: Any = 1, padding: Any = 0, dilation: Any = 1, groups: int = 1) -> Any:
        """ONNX QLinearConv (argument order as ONNX's): the int32 convolution plus an int32
        ``bias``, requantized to ``y_zero_point``'s dtype with per-filter ``w_scale``
        allowed; fixed-point multiplier, round half to even, saturating (as ``qgemm``)."""
        op = "qconv2d"
        self._check_foreign("qconv2d", x=x, w=w, bias=bias)
        problem, zx, zw = spec.check_conv2d_int8(x, w, x_zero_point, w_zero_point, stride,
                                                 padding, dilation, groups, bias, op=op)
        self._begin_kernel("qconv2d", problem)
        fixed, zy = spec.check_requantization(x_scale, w_scale, y_scale, y_zero_point,
                                              problem.k, ("x_scale", "w_scale"), op)
        if onnxruntime_requant.enabled(self):
            return onnxruntime_requant.qconv2d(self, problem, x, w, zx, zw, bias, fixed, zy)
        return self._qconv2d(problem, x, w, zx, zw, bias, fixed, zy)

    def quantize_linear(self, x: Any, scale: Any, zero_point: Any = None, axis: int = 1) -> Any:
        """ONNX QuantizeLinear: float32 -> 8 bits, ``saturate(rint(x / scale) + zero_point)``;
        ``scale``/``zero_point`` per tensor or 1-D along ``axis``; the zero point's dtype
        (uint8 when omitted) is the output's."""
        self._check_foreign("quantize_linear", x=x)
        problem, sc, zp = spec.check_quantize_linear(x, scale, zero_point, axis)
        self._begin_kernel("quantize_linear", problem)
        self._screen("quantize_linear", x=x)
        return self._quantize_linear(problem, x, sc, zp)

    def dequantize_linear(self, x: Any, scale: Any, zero_point: Any = None,
                          axis: int = 1) -> Any:
        """ONNX DequantizeLinear: ``(x - zero_point) * scale`` in float32, per tensor or
        along ``axis``; int8, uint8 or (with zero point 0) int32 input."""
        self._check_foreign("dequantize_linear", x=x)
        problem, sc, zp = spec.check_dequantize_linear(x, scale, zero_point, axis)
        self._begin_kernel("dequantize_linear", problem)
        return self._dequantize_linear(problem, x, sc, zp)

    # -- the ops full CNNs need (ONNX semantics, NCHW float32) -------------------------
    def max_pool2d(self, x: Any, kernel: Any, stride: Any = None, padding: Any = 0,
                   dilation: Any = 1, ceil_mode: bool = False) -> Any:
        """ONNX MaxPool: padding never wins; ``stride`` defaults to 1 (ONNX's default)."""
        self._check_foreign("max_pool2d", x=x)
        problem = spec.check_max_pool2d(x, kernel, stride, padding, dilation, ceil_mode)
        self._begin_kernel("max_pool2d", problem)
        self._screen("max_pool2d", x=x)
        return self._max_pool2d(problem, x)

    def avg_pool2d(self, x: Any, kernel: Any, stride: Any = None, padding: Any = 0,
                   ceil_mode: bool = False, count_include_pad: bool = False) -> Any:
        """ONNX AveragePool: padding is left out of the divisor unless count_include_pad."""
        self._check_foreign("avg_pool2d", x=x)
        problem = spec.check_avg_pool2d(x, kernel, stride, padding, ceil_mode,
                                        count_include_pad)
        self._begin_kernel("avg_pool2d", problem)
        self._screen("avg_pool2d", x=x)
        return self._avg_pool2d(problem, x)

    def global_avg_pool2d(self, x: Any) -> Any:
        """ONNX GlobalAveragePool: (N, C, H, W) -> (N, C, 1, 1)."""
        self._check_foreign("global_avg_pool2d", x=x)
        problem = spec.check_global_avg_pool2d(x)
        self._begin_kernel("global_avg_pool2d", problem)
        self._screen("global_avg_pool2d", x=x)
        return self._global_avg_pool2d(problem, x)

    def softmax(self, x: Any, axis: int = -1) -> Any:
        """ONNX Softmax (opset >= 13) along one axis, computed stably (max subtracted)."""
        self._check_foreign("softmax", x=x)
        problem = spec.check_softmax(x, axis)
        self._begin_kernel("softmax", problem)
        self._screen_masked("softmax", x=x)
        return self._softmax(problem, x)

    def add(self, a: Any, b: Any) -> Any:
        """a + b with ONNX/NumPy multidirectional broadcasting."""
        self._check_foreign("add", a=a, b=b)
        problem = spec.check_binary(a, b, "add")
        self._begin_kernel("add", problem)
        self._screen("add", a=a, b=b)
        return self._add(problem, a, b)

    def mul(self, a: Any, b: Any) -> Any:
        """a * b with ONNX/NumPy multidirectional broadcasting."""
        self._check_foreign("mul", a=a, b=b)
        problem = spec.check_binary(a, b, "mul")
        self._begin_kernel("mul", problem)
        self._screen("mul", a=a, b=b)
        return self._mul(problem, a, b)

    def concat(self, arrays: Any, axis: int) -> Any:
        """ONNX Concat of a list/tuple of arrays along ``axis`` (negative allowed)."""
        if isinstance(arrays, (list, tuple)):
            for i, array in enumerate(arrays):
                self._check_foreign(f"concat (item {i})", arrays=array)
        problem = spec.check_concat(arrays, axis)
        self._begin_kernel("concat", problem)
        for i, array in enumerate(arrays):
            self._screen(f"concat (item {i})", arrays=array)
        return self._concat(problem, list(arrays))

    def lrn(self, x: Any, size: int, alpha: float = 1e-4, beta: float = 0.75,
            bias: float = 1.0) -> Any:
        """ONNX LRN across channels: x / (bias + alpha/size * window sum of x²)^beta."""
        self._check_foreign("lrn", x=x)
        problem = spec.check_lrn(x, size, alpha, beta, bias)
        self._begin_kernel("lrn", problem)
        self._screen("lrn", x=x)
        return self._lrn(problem, x)

    def reshape(self, x: Any, shape: Any) -> Any:
        """Reshape to ``shape`` (one -1 may be inferred; 0 is not special here)."""
        self._check_foreign("reshape", x=x)
        problem = spec.check_reshape(x, shape)
        self._begin_kernel("reshape", problem)
        self._screen("reshape", x=x)
        return self._reshape(problem, x)

    def transpose(self, x: Any, perm: Any) -> Any:
        """Permute axes (ONNX Transpose; ``perm`` None reverses them); the result has a
        plain (C-contiguous) layout, except that cpu with ``keep_blocked`` (as Sessions
        run it) may keep an NCHW result blocked for the convs reading it."""
        self._check_foreign("transpose", x=x)
        problem = spec.check_transpose(x, perm)
        self._begin_kernel("transpose", problem)
        self._screen("transpose", x=x)
        return self._transpose(problem, x)

    # -- what a backend implements ---------------------------------------------------------
    @abc.abstractmethod
    def _gemm(self, p: spec.GemmProblem, a: Any, b: Any, bias: Any) -> Any: ...

    @abc.abstractmethod
    def _conv2d(self, p: spec.ConvProblem, x: Any, w: Any, bias: Any) -> Any: ...

    @abc.abstractmethod
    def _sigmoid(self, p: spec.ElementwiseProblem, x: Any) -> Any: ...

    @abc.abstractmethod
    def _sigmoid_backward(self, p: spec.ElementwiseProblem, y: Any, dy: Any) -> Any: ...

    @abc.abstractmethod
    def _relu(self, p: spec.ElementwiseProblem, x: Any) -> Any: ...

    @abc.abstractmethod
    def _gemm_int8(self, p: spec.Int8GemmProblem, a: Any, b: Any, za: np.ndarray,
                   zb: np.ndarray) -> Any: ...

    @abc.abstractmethod
    def _qgemm(self, p: spec.Int8GemmProblem, a: Any, b: Any, za: np.ndarray, zb: np.ndarray,
               fixed: Any, zy: np.ndarray) -> Any: ...

    # Ops added for whole models: not abstract, so a backend still without them keeps
    # working for everything else and says which op it lacks.
    def _unsupported(self, op: str) -> UnsupportedError:
        return UnsupportedError(f"{self.name}: {op} is not implemented")

    def _conv2d_int8(self, p: spec.Int8ConvProblem, x: Any, w: Any, zx: np.ndarray,
                     zw: np.ndarray) -> Any:
        raise self._unsupported("conv2d_int8")

    # Defaults on the host (``to_numpy``/``asarray``), exact and shared; a device backend
    # overrides them to keep the data where it is.
    def _qconv2d(self, p: spec.Int8ConvProblem, x: Any, w: Any, zx: np.ndarray, zw: np.ndarray,
                 bias: Any, fixed: FixedPointMultiplier, zy: np.ndarray) -> Any:
        acc = self.to_numpy(self._conv2d_int8(p, x, w, zx, zw))
        bias = None if bias is None else along_axis(self.to_numpy(bias), 1, 4)
        return self.asarray(requantize(acc, fixed.along(1, 4), zy.item(), zy.dtype, bias))

    def _quantize_linear(self, p: spec.QuantizeProblem, x: Any, scale: np.ndarray,
                         zero_point: np.ndarray) -> Any:
        return self.asarray(quantize(self.to_numpy(x), scale, zero_point, zero_point.dtype,
                                     p.axis))

    def _dequantize_linear(self, p: spec.QuantizeProblem, x: Any, scale: np.ndarray,
                           zero_point: np.ndarray) -> Any:
        return self.asarray(dequantize(self.to_numpy(x), scale, zero_point, p.axis))

    def _max_pool2d(self, p: spec.PoolProblem, x: Any) -> Any:
        raise self._unsupported("max_pool2d")

    def _avg_pool2d(self, p: spec.PoolProblem, x: Any) -> Any:
        raise self._unsupported("avg_pool2d")

    def _global_avg_pool2d(self, p: spec.PoolProblem, x: Any) -> Any:
        raise self._unsupported("global_avg_pool2d")

    def _softmax(self, p: spec.SoftmaxProblem, x: Any) -> Any:
        raise self._unsupported("softmax")

    def _add(self, p: spec.BinaryProblem, a: Any, b: Any) -> Any:
        raise self._unsupported("add")

    def _mul(self, p: spec.BinaryProblem, a: Any, b: Any) -> Any:
        raise self._unsupported("mul")

    def _concat(self, p: spec.ConcatProblem, arrays: list[Any]) -> Any:
        raise self._unsupported("concat")

    def _lrn(self, p: spec.LrnProblem, x: Any) -> Any:
        raise self._unsupported("lrn")

    def _reshape(self, p: spec.LayoutProblem, x: Any) -> Any:
        raise self._unsupported("reshape")

    def _transpose(self, p: spec.LayoutProblem, x: Any) -> Any:
        raise self._unsupported("transpose")

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.full_name!r} threads={self.threads}>"
