"""cuDNN 9's legacy convolution API through ctypes, on CuPy device pointers.

CuPy 14 dropped its cuDNN module. Of the two ways left, NVIDIA's ``nvidia-cudnn-frontend``
Python graphs or ctypes on ``libcudnn.so.9``'s convolution API, this takes ctypes: it
needs no wheel beyond cuDNN itself (the lent H100's image has ``libcudnn.so.9`` and the
``nvidia-cudnn-cu13`` wheel but no frontend), its algorithm search is the one PyTorch's
``cudnn.benchmark`` runs (``cudnnFindConvolutionForwardAlgorithmEx``), and it has the
fused conv + bias + residual + relu call ResNet needs. The choice has not been measured
against the frontend yet (no GPU was lent when this was written).

Every bound function has its ``argtypes``/``restype`` declared in ``SIGNATURES`` and is
called only through ``Cudnn.call``, which checks the status with ``check``: a status
becomes an exception naming the function and the status (``status_name``), and no
pointer reaches cuDNN that is not a live CuPy allocation or a descriptor made here.

Status: the status table, ``check`` and the signature table are unit-tested without a
GPU; the calls themselves have not yet run on one.
"""

from __future__ import annotations

import ctypes
from ctypes import POINTER, c_char_p, c_double, c_float, c_int, c_size_t, c_void_p
from dataclasses import dataclass
from typing import Any

from hwbench.backends.cuda import layout
from hwbench.backends.cuda.layout import AlgoPerf
from hwbench.errors import NativeLibraryError, UnsupportedError
from hwbench.kernels.spec import ConvProblem

SONAMES = ["libcudnn.so.9"]

# cudnnStatus_t of cuDNN 9 (cudnn_graph.h). Codes are grouped by thousands: 1xxx not
# initialized / library state, 2xxx bad parameter, 3xxx not supported, 4xxx internal,
# 5xxx execution failed.
STATUS_NAMES = {
    0: "CUDNN_STATUS_SUCCESS",
    1001: "CUDNN_STATUS_NOT_INITIALIZED",
    1002: "CUDNN_STATUS_SUBLIBRARY_VERSION_MISMATCH",
    1003: "CUDNN_STATUS_SERIALIZATION_VERSION_MISMATCH",
    1004: "CUDNN_STATUS_DEPRECATED",
    1005: "CUDNN_STATUS_LICENSE_ERROR",
    1006: "CUDNN_STATUS_RUNTIME_IN_PROGRESS",
    1007: "CUDNN_STATUS_RUNTIME_FP_OVERFLOW",
    1008: "CUDNN_STATUS_SUBLIBRARY_LOADING_FAILED",
    2000: "CUDNN_STATUS_BAD_PARAM",
    2001: "CUDNN_STATUS_INVALID_VALUE",
    2002: "CUDNN_STATUS_BAD_PARAM_NULL_POINTER",
    2003: "CUDNN_STATUS_BAD_PARAM_MISALIGNED_POINTER",
    2004: "CUDNN_STATUS_BAD_PARAM_NOT_FINALIZED",
    2005: "CUDNN_STATUS_BAD_PARAM_OUT_OF_BOUND",
    2006: "CUDNN_STATUS_BAD_PARAM_SIZE_INSUFFICIENT",
    2007: "CUDNN_STATUS_BAD_PARAM_STREAM_MISMATCH",
    2008: "CUDNN_STATUS_BAD_PARAM_SHAPE_MISMATCH",
    2009: "CUDNN_STATUS_BAD_PARAM_DUPLICATED_ENTRIES",
    2010: "CUDNN_STATUS_BAD_PARAM_ATTRIBUTE_TYPE",
    2011: "CUDNN_STATUS_BAD_PARAM_CUDA_GRAPH_MISMATCH",
    2012: "CUDNN_STATUS_BAD_PARAM_DESCRIPTOR_TYPE",
    3000: "CUDNN_STATUS_NOT_SUPPORTED",
    3001: "CUDNN_STATUS_NOT_SUPPORTED_GRAPH_PATTERN",
    3002: "CUDNN_STATUS_NOT_SUPPORTED_SHAPE",
    3003: "CUDNN_STATUS_NOT_SUPPORTED_DATA_TYPE",
    3004: "CUDNN_STATUS_NOT_SUPPORTED_LAYOUT",
    3005: "CUDNN_STATUS_NOT_SUPPORTED_INCOMPATIBLE_CUDA_DRIVER",
    3006: "CUDNN_STATUS_NOT_SUPPORTED_INCOMPATIBLE_CUDART",
    3007: "CUDNN_STATUS_NOT_SUPPORTED_ARCH_MISMATCH",
    3008: "CUDNN_STATUS_NOT_SUPPORTED_RUNTIME_PREREQUISITE_MISSING",
    3009: "CUDNN_STATUS_NOT_SUPPORTED_SUBLIBRARY_UNAVAILABLE",
    3010: "CUDNN_STATUS_NOT_SUPPORTED_SHARED_MEMORY_INSUFFICIENT",
    3011: "CUDNN_STATUS_NOT_SUPPORTED_PADDING",
    3012: "CUDNN_STATUS_NOT_SUPPORTED_BAD_LAUNCH_PARAM",
    3013: "CUDNN_STATUS_NOT_SUPPORTED_CUDA_GRAPH_NATIVE_API",
    4000: "CUDNN_STATUS_INTERNAL_ERROR",
    4001: "CUDNN_STATUS_INTERNAL_ERROR_COMPILATION_FAILED",
    4002: "CUDNN_STATUS_INTERNAL_ERROR_UNEXPECTED_VALUE",
    4003: "CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED",
    4004: "CUDNN_STATUS_INTERNAL_ERROR_DEVICE_ALLOCATION_FAILED",
    4005: "CUDNN_STATUS_INTERNAL_ERROR_BAD_LAUNCH_PARAM",
    4006: "CUDNN_STATUS_INTERNAL_ERROR_TEXTURE_CREATION_FAILED",
    5000: "CUDNN_STATUS_EXECUTION_FAILED",
    5001: "CUDNN_STATUS_EXECUTION_FAILED_CUDA_DRIVER",
    5002: "CUDNN_STATUS_EXECUTION_FAILED_CUBLAS",
    5003: "CUDNN_STATUS_EXECUTION_FAILED_CUDART",
    5004: "CUDNN_STATUS_EXECUTION_FAILED_CURAND",
}
_CATEGORIES = {1: "CUDNN_STATUS_NOT_INITIALIZED", 2: "CUDNN_STATUS_BAD_PARAM",
               3: "CUDNN_STATUS_NOT_SUPPORTED", 4: "CUDNN_STATUS_INTERNAL_ERROR",
               5: "CUDNN_STATUS_EXECUTION_FAILED"}
_ADVICE = {
    1: "cuDNN could not initialise or load a sub-library: check that libcudnn*.so.9 all come "
       "from one cuDNN release (one lib folder) and match the CUDA driver",
    2: "a descriptor or pointer was rejected: this is a bug in hwbench's cuDNN binding, "
       "please report the problem shape",
    3: "cuDNN has no kernel for this shape/type/layout; create the backend with "
       "conv='im2col' to run convolutions as im2col + cuBLAS",
    4: "cuDNN failed internally",
    5: "a cuDNN kernel failed on the GPU; after a launch failure the CUDA context is "
       "unusable: restart the process",
}


def status_name(status: int) -> str:
    """cuDNN's name for ``status``; an unknown code is named by its category."""
    if status in STATUS_NAMES:
        return STATUS_NAMES[status]
    category = _CATEGORIES.get(status // 1000)
    return f"{category}_UNKNOWN({status})" if category else f"CUDNN_STATUS_UNKNOWN({status})"


def check(status: int, call: str) -> None:
    """Raise for a non-zero cuDNN ``status`` of ``call``: ``UnsupportedError`` for the
    not-supported family (a caller may fall back), ``NativeLibraryError`` otherwise."""
    if status == 0:
        return
    name = status_name(status)
    if status == 4004:
        advice = "out of GPU memory; use a smaller batch"
    else:
        advice = _ADVICE.get(status // 1000, "unknown cuDNN status")
    kind = UnsupportedError if status // 1000 == 3 else NativeLibraryError
    raise kind(f"cuda: {call} returned {name} ({status}): {advice}")


class ConvolutionFwdAlgoPerf(ctypes.Structure):
    """cudnnConvolutionFwdAlgoPerf_t (cudnn_cnn.h)."""

    _fields_ = [("algo", c_int), ("status", c_int), ("time", c_float), ("memory", c_size_t),
                ("determinism", c_int), ("mathType", c_int), ("reserved", c_int * 3)]


_P = POINTER(c_void_p)
_ST = c_int  # cudnnStatus_t
# name -> (restype, argtypes). Every function this module calls is here.
SIGNATURES: dict[str, tuple[Any, list[Any]]] = {
    "cudnnGetVersion": (c_size_t, []),
    "cudnnGetErrorString": (c_char_p, [c_int]),
    "cudnnCreate": (_ST, [_P]),
    "cudnnDestroy": (_ST, [c_void_p]),
    "cudnnSetStream": (_ST, [c_void_p, c_void_p]),
    "cudnnCreateTensorDescriptor": (_ST, [_P]),
    "cudnnSetTensor4dDescriptor": (_ST, [c_void_p, c_int, c_int, c_int, c_int, c_int, c_int]),
    "cudnnDestroyTensorDescriptor": (_ST, [c_void_p]),
    "cudnnCreateFilterDescriptor": (_ST, [_P]),
    "cudnnSetFilter4dDescriptor": (_ST, [c_void_p, c_int, c_int, c_int, c_int, c_int, c_int]),
    "cudnnDestroyFilterDescriptor": (_ST, [c_void_p]),
    "cudnnCreateConvolutionDescriptor": (_ST, [_P]),
    "cudnnSetConvolution2dDescriptor": (_ST, [c_void_p, c_int, c_int, c_int, c_int, c_int,
                                              c_int, c_int, c_int]),
    "cudnnSetConvolutionGroupCount": (_ST, [c_void_p, c_int]),
    "cudnnSetConvolutionMathType": (_ST, [c_void_p, c_int]),
    "cudnnGetConvolution2dForwardOutputDim": (_ST, [c_void_p, c_void_p, c_void_p,
                                                    POINTER(c_int), POINTER(c_int),
                                                    POINTER(c_int), POINTER(c_int)]),
    "cudnnDestroyConvolutionDescriptor": (_ST, [c_void_p]),
    "cudnnCreateActivationDescriptor": (_ST, [_P]),
    "cudnnSetActivationDescriptor": (_ST, [c_void_p, c_int, c_int, c_double]),
    "cudnnDestroyActivationDescriptor": (_ST, [c_void_p]),
    "cudnnFindConvolutionForwardAlgorithmEx": (
        _ST, [c_void_p, c_void_p, c_void_p, c_void_p, c_void_p, c_void_p, c_void_p, c_void_p,
              c_int, POINTER(c_int), POINTER(ConvolutionFwdAlgoPerf), c_void_p, c_size_t]),
    "cudnnGetConvolutionForwardAlgorithm_v7": (
        _ST, [c_void_p, c_void_p, c_void_p, c_void_p, c_void_p, c_int, POINTER(c_int),
              POINTER(ConvolutionFwdAlgoPerf)]),
    "cudnnGetConvolutionForwardWorkspaceSize": (
        _ST, [c_void_p, c_void_p, c_void_p, c_void_p, c_void_p, c_int, POINTER(c_size_t)]),
    "cudnnConvolutionForward": (
        _ST, [c_void_p, c_void_p, c_void_p, c_void_p, c_void_p, c_void_p, c_void_p, c_int,
              c_void_p, c_size_t, c_void_p, c_void_p, c_void_p]),
    "cudnnConvolutionBiasActivationForward": (
        _ST, [c_void_p, c_void_p, c_void_p, c_void_p, c_void_p, c_void_p, c_void_p, c_int,
              c_void_p, c_size_t, c_void_p, c_void_p, c_void_p, c_void_p, c_void_p, c_void_p,
              c_void_p, c_void_p]),
    "cudnnAddTensor": (_ST, [c_void_p, c_void_p, c_void_p, c_void_p, c_void_p, c_void_p,
                             c_void_p]),
}

# enums (cudnn_graph.h / cudnn_cnn.h / cudnn_ops.h)
TENSOR_NCHW = 0
DATA_FLOAT, DATA_HALF, DATA_BFLOAT16 = 0, 2, 9
CROSS_CORRELATION = 1  # ONNX Conv (and PyTorch) do not flip the filter
ACTIVATION_RELU = 1
NOT_PROPAGATE_NAN = 0
FWD_ALGO_COUNT = 8
DATA_TYPES = {"fp32": DATA_FLOAT, "tf32": DATA_FLOAT, "fp16": DATA_HALF,
              "bf16": DATA_BFLOAT16}
WORKSPACE_LIMIT = 1 << 30  # bytes an algorithm may use (also capped at free memory / 4)


def bind(lib: Any) -> Any:
    """Declare every function of ``SIGNATURES`` on ``lib``; a missing one raises
    ``UnsupportedError`` naming it (a cuDNN older than 9 or a broken install)."""
    for name, (restype, argtypes) in SIGNATURES.items():
        try:
            fn = getattr(lib, name)
        except AttributeError:
            raise UnsupportedError(f"cuda: libcudnn lacks {name} (cuDNN 9 is needed)") from None
        fn.restype = restype
        fn.argtypes = argtypes
    return lib


def _ptr(array: Any) -> c_void_p:
    return c_void_p(int(array.data.ptr)) if array is not None else c_void_p(None)


@dataclass
class ConvPlan:
    """The descriptors and chosen algorithm of one convolution shape, created once."""

    problem: ConvProblem          # symmetric-padding problem cuDNN runs
    math_mode: str
    x_desc: c_void_p
    w_desc: c_void_p
    y_desc: c_void_p
    bias_desc: c_void_p
    conv_desc: c_void_p
    act_desc: c_void_p
    algo: int = -1
    workspace: int = 0
    fused: bool = True            # cudnnConvolutionBiasActivationForward not refused
    found_by: str = ""


class Cudnn:
    """One cuDNN handle on the current device, its convolution plans cached per shape."""

    def __init__(self, cupy: Any, lib: Any, path: str) -> None:
        self.cupy = cupy
        self.lib = bind(lib)
        self.path = path
        self.version = int(self.lib.cudnnGetVersion())
        handle = c_void_p()
        self.call("cudnnCreate", ctypes.byref(handle))
        self.handle = handle
        self._stream = None
        self._plans: dict[tuple, ConvPlan] = {}
        self._zero_bias: dict[int, Any] = {}

    def call(self, name: str, *args: Any) -> None:
        check(getattr(self.lib, name)(*args), name)

    @property
    def version_string(self) -> str:
        v = self.version  # 9.x encodes major*10000 + minor*100 + patch
        return f"{v // 10000}.{v % 10000 // 100}.{v % 100}"

    def _sync_stream(self) -> None:
        stream = int(self.cupy.cuda.get_current_stream().ptr)
        if stream != self._stream:
            self.call("cudnnSetStream", self.handle, c_void_p(stream))
            self._stream = stream

    def _create(self, kind: str) -> c_void_p:
        desc = c_void_p()
        self.call(f"cudnnCreate{kind}Descriptor", ctypes.byref(desc))
        return desc

    def plan(self, p: ConvProblem, math_mode: str) -> ConvPlan:
        """Descriptors for ``p`` (padding already symmetric) in ``math_mode``; cached."""
        key = (p, math_mode)
        plan = self._plans.get(key)
        if plan is not None:
            return plan
        dtype = DATA_TYPES[math_mode]
        x_desc, y_desc, b_desc = (self._create("Tensor") for _ in range(3))
        w_desc = self._create("Filter")
        conv = self._create("Convolution")
        act = self._create("Activation")
        self.call("cudnnSetTensor4dDescriptor", x_desc, TENSOR_NCHW, dtype, p.n, p.c, p.h, p.w)
        self.call("cudnnSetFilter4dDescriptor", w_desc, dtype, TENSOR_NCHW, p.k,
                  p.c // p.groups, p.r, p.s)
        self.call("cudnnSetConvolution2dDescriptor", conv, p.padding[0], p.padding[1],
                  p.stride[0], p.stride[1], p.dilation[0], p.dilation[1], CROSS_CORRELATION,
                  DATA_FLOAT)  # float32 accumulation in every math mode
        if p.groups > 1:
            self.call("cudnnSetConvolutionGroupCount", conv, p.groups)
        self.call("cudnnSetConvolutionMathType", conv, layout.CONV_MATH_TYPES[math_mode])
        dims = [c_int() for _ in range(4)]
        self.call("cudnnGetConvolution2dForwardOutputDim", conv, x_desc, w_desc,
                  *[ctypes.byref(d) for d in dims])
        got = tuple(d.value for d in dims)
        if got != p.output_shape:  # the descriptors disagree with the spec: never run it
            raise NativeLibraryError(f"cuda: cuDNN computes output {got} for {p}, the ONNX "
                                     f"rules {p.output_shape}; refusing to run it")
        self.call("cudnnSetTensor4dDescriptor", y_desc, TENSOR_NCHW, dtype, *p.output_shape)
        # the bias is float32 (the fused path runs for float32 outputs only)
        self.call("cudnnSetTensor4dDescriptor", b_desc, TENSOR_NCHW, DATA_FLOAT, 1, p.k, 1, 1)
        self.call("cudnnSetActivationDescriptor", act, ACTIVATION_RELU, NOT_PROPAGATE_NAN, 0.0)
        plan = ConvPlan(p, math_mode, x_desc, w_desc, y_desc, b_desc, conv, act)
        self._plans[key] = plan
        return plan

    def _workspace_limit(self) -> int:
        free, _total = self.cupy.cuda.runtime.memGetInfo()
        return int(min(WORKSPACE_LIMIT, free // 4))

    def _choose(self, plan: ConvPlan, x: Any, w: Any, y: Any) -> None:
        """Time every algorithm once on these buffers (cudnnFind...Ex writes ``y``), keep
        the fastest that fits the workspace and the math mode; the heuristic
        (cudnnGetConvolutionForwardAlgorithm_v7) if the search itself fails."""
        limit = self._workspace_limit()
        perfs = (ConvolutionFwdAlgoPerf * FWD_ALGO_COUNT)()
        count = c_int()
        try:
            scratch = self.cupy.cuda.alloc(limit) if limit else None
            self.call("cudnnFindConvolutionForwardAlgorithmEx", self.handle, plan.x_desc,
                      _ptr(x), plan.w_desc, _ptr(w), plan.conv_desc, plan.y_desc, _ptr(y),
                      FWD_ALGO_COUNT, ctypes.byref(count), perfs,
                      c_void_p(int(scratch.ptr) if scratch is not None else 0), limit)
            plan.found_by = "cudnnFindConvolutionForwardAlgorithmEx"
        except (NativeLibraryError, UnsupportedError, MemoryError):
            scratch = None
            self.call("cudnnGetConvolutionForwardAlgorithm_v7", self.handle, plan.x_desc,
                      plan.w_desc, plan.conv_desc, plan.y_desc, FWD_ALGO_COUNT,
                      ctypes.byref(count), perfs)
            plan.found_by = "cudnnGetConvolutionForwardAlgorithm_v7"
        del scratch
        rows = [AlgoPerf(r.algo, r.status, r.time, int(r.memory), r.mathType)
                for r in perfs[:count.value]]
        usable = layout.usable_algorithms(rows, plan.math_mode, limit)
        if not usable:
            raise UnsupportedError(f"cuda: cuDNN offers no algorithm for {plan.problem} in "
                                   f"math mode {plan.math_mode} within {limit} bytes of "
                                   f"workspace; create the backend with conv='im2col'")
        best = usable[0]
        # the descriptor's math type must be the one the algorithm was found with
        self.call("cudnnSetConvolutionMathType", plan.conv_desc, best.math_type)
        size = c_size_t()
        self.call("cudnnGetConvolutionForwardWorkspaceSize", self.handle, plan.x_desc,
                  plan.w_desc, plan.conv_desc, plan.y_desc, best.algo, ctypes.byref(size))
        plan.algo, plan.workspace = best.algo, int(size.value)

    def forward(self, plan: ConvPlan, x: Any, w: Any, y: Any, bias: Any = None,
                residual: Any = None, relu: bool = False) -> bool:
        """y = conv(x, w), and with it as much of ``act(y + bias + residual)`` as cuDNN can
        fuse; True when the whole epilogue was applied, False when only the convolution
        was (fp16/bf16 outputs, or an algorithm without a fused form): the caller then
        applies bias, residual and relu. Arrays are C-contiguous CuPy arrays of the plan's
        data type; ``bias`` float32."""
        self._sync_stream()
        if plan.algo < 0:
            self._choose(plan, x, w, y)
        workspace = self.cupy.cuda.alloc(plan.workspace) if plan.workspace else None
        ws = c_void_p(int(workspace.ptr) if workspace is not None else 0)
        one, zero = c_float(1.0), c_float(0.0)
        float_out = plan.math_mode in ("fp32", "tf32")
        if relu and float_out and plan.fused:
            if bias is None:
                bias = self._zeros(plan.problem.k)
            alpha2 = one if residual is not None else zero
            z = residual if residual is not None else y  # not read when alpha2 == 0
            try:
                self.call("cudnnConvolutionBiasActivationForward", self.handle,
                          ctypes.byref(one), plan.x_desc, _ptr(x), plan.w_desc, _ptr(w),
                          plan.conv_desc, plan.algo, ws, plan.workspace, ctypes.byref(alpha2),
                          plan.y_desc, _ptr(z), plan.bias_desc, _ptr(bias), plan.act_desc,
                          plan.y_desc, _ptr(y))
                return True
            except UnsupportedError:
                plan.fused = False  # no fused form for this algorithm: unfused from now on
        if relu or not float_out:
            self.call("cudnnConvolutionForward", self.handle, ctypes.byref(one), plan.x_desc,
                      _ptr(x), plan.w_desc, _ptr(w), plan.conv_desc, plan.algo, ws,
                      plan.workspace, ctypes.byref(zero), plan.y_desc, _ptr(y))
            return False
        beta = zero
        if residual is not None:  # y = conv + 1 * y, y holding the shortcut
            y[...] = residual
            beta = one
        self.call("cudnnConvolutionForward", self.handle, ctypes.byref(one), plan.x_desc,
                  _ptr(x), plan.w_desc, _ptr(w), plan.conv_desc, plan.algo, ws, plan.workspace,
                  ctypes.byref(beta), plan.y_desc, _ptr(y))
        if bias is not None:
            self.call("cudnnAddTensor", self.handle, ctypes.byref(one), plan.bias_desc,
                      _ptr(bias), ctypes.byref(one), plan.y_desc, _ptr(y))
        return True

    def _zeros(self, k: int) -> Any:
        """A float32 zero bias of length ``k`` (the fused call needs one), cached."""
        zeros = self._zero_bias.get(k)
        if zeros is None:
            zeros = self._zero_bias[k] = self.cupy.zeros(k, self.cupy.float32)
        return zeros

    @property
    def cached_plans(self) -> int:
        return len(self._plans)


def load(cupy: Any) -> tuple[Cudnn | None, str]:
    """A ``Cudnn`` on the current device, or ``(None, why)`` when libcudnn.so.9 is absent
    or will not initialise; never raises."""
    from hwbench.backends.cuda.runtime import load_library

    lib, where = load_library(SONAMES, prefer_loaded=False)
    if lib is None:
        return None, f"libcudnn.so.9 not found ({where}); pip install nvidia-cudnn-cu13"
    try:
        return Cudnn(cupy, lib, where), ""
    except Exception as exc:  # noqa: BLE001 - no cuDNN: the backend lowers conv to GEMM
        return None, f"cuDNN at {where} failed to initialise: {exc}"
