"""cuBLASLt's integer tensor-core (IMMA) GEMM through ctypes: the int8 fast path.

``cublasGemmEx`` with ``CUDA_R_8I``/``CUBLAS_COMPUTE_32I`` (CuPy's binding) is exact but
was measured at ~128 TOP/s at 8192³ on the H100, against a dense int8 peak near
1,979 TOP/s. cuBLASLt chooses among many more kernels: this module asks its heuristic for
up to ``CANDIDATES`` algorithms for the shape, times each once with CUDA events on the
real buffers, and caches the fastest per (M, N, K). The layout is the TN form
(``layout.int8_tn_gemm``): both operands K-contiguous, int32 accumulators and output,
alpha 1 and beta 0 as int32 (the scale type of ``CUBLAS_COMPUTE_32I``).

``nvmath-python`` would offer the same library with less code, but it is not in the lent
machine's image and has not been checked for int8 -> int32; ctypes needs nothing beyond
``libcublasLt.so``, which CuPy's cuBLAS already loads.

Status: the signature and status tables are unit-tested without a GPU; the calls have
never run on one. The backend checks this path against ``cublasGemmEx`` on a small
random problem before first use and falls back (saying so in ``info()``) if they differ.
"""

from __future__ import annotations

import ctypes
from ctypes import POINTER, c_float, c_int, c_int32, c_int64, c_size_t, c_uint64, c_void_p
from dataclasses import dataclass, field
from typing import Any

from hwbench.backends.cuda import layout
from hwbench.errors import NativeLibraryError, UnsupportedError

# cublasStatus_t (cublas_api.h); cuBLASLt returns the same codes
STATUS_NAMES = {0: "CUBLAS_STATUS_SUCCESS", 1: "CUBLAS_STATUS_NOT_INITIALIZED",
                3: "CUBLAS_STATUS_ALLOC_FAILED", 7: "CUBLAS_STATUS_INVALID_VALUE",
                8: "CUBLAS_STATUS_ARCH_MISMATCH", 11: "CUBLAS_STATUS_MAPPING_ERROR",
                13: "CUBLAS_STATUS_EXECUTION_FAILED", 14: "CUBLAS_STATUS_INTERNAL_ERROR",
                15: "CUBLAS_STATUS_NOT_SUPPORTED", 16: "CUBLAS_STATUS_LICENSE_ERROR"}


def status_name(status: int) -> str:
    return STATUS_NAMES.get(status, f"CUBLAS_STATUS_UNKNOWN({status})")


def check(status: int, call: str) -> None:
    """Raise for a non-zero cuBLAS(Lt) status: NOT_SUPPORTED/ARCH_MISMATCH as
    ``UnsupportedError`` (the backend falls back to cublasGemmEx), others as
    ``NativeLibraryError``."""
    if status == 0:
        return
    name = status_name(status)
    if status in (8, 15):
        raise UnsupportedError(f"cuda: {call} returned {name} ({status}): cuBLASLt has no "
                               f"kernel for this int8 problem; cublasGemmEx is used instead")
    advice = ("out of GPU memory; use a smaller problem" if status == 3
              else "create the backend with int8_gemm='cublas' to avoid cuBLASLt")
    raise NativeLibraryError(f"cuda: {call} returned {name} ({status}): {advice}")


class MatmulAlgo(ctypes.Structure):
    """cublasLtMatmulAlgo_t: 8 opaque 64-bit words."""

    _fields_ = [("data", c_uint64 * 8)]


class HeuristicResult(ctypes.Structure):
    """cublasLtMatmulHeuristicResult_t (96 bytes)."""

    _fields_ = [("algo", MatmulAlgo), ("workspaceSize", c_size_t), ("state", c_int),
                ("wavesCount", c_float), ("reserved", c_int * 4)]


_P = POINTER(c_void_p)
_V = c_void_p
SIGNATURES: dict[str, tuple[Any, list[Any]]] = {
    "cublasLtGetVersion": (c_size_t, []),
    "cublasLtCreate": (c_int, [_P]),
    "cublasLtDestroy": (c_int, [_V]),
    "cublasLtMatmulDescCreate": (c_int, [_P, c_int, c_int]),
    "cublasLtMatmulDescDestroy": (c_int, [_V]),
    "cublasLtMatmulDescSetAttribute": (c_int, [_V, c_int, _V, c_size_t]),
    "cublasLtMatrixLayoutCreate": (c_int, [_P, c_int, c_uint64, c_uint64, c_int64]),
    "cublasLtMatrixLayoutDestroy": (c_int, [_V]),
    "cublasLtMatmulPreferenceCreate": (c_int, [_P]),
    "cublasLtMatmulPreferenceDestroy": (c_int, [_V]),
    "cublasLtMatmulPreferenceSetAttribute": (c_int, [_V, c_int, _V, c_size_t]),
    "cublasLtMatmulAlgoGetHeuristic": (c_int, [_V, _V, _V, _V, _V, _V, _V, c_int,
                                               POINTER(HeuristicResult), POINTER(c_int)]),
    "cublasLtMatmul": (c_int, [_V, _V, _V, _V, _V, _V, _V, _V, _V, _V, _V, _V,
                               POINTER(MatmulAlgo), _V, c_size_t, _V]),
}

# cublasLtMatmulDescAttributes_t / cublasLtMatmulPreferenceAttributes_t (cublasLt.h)
MATMUL_DESC_TRANSA, MATMUL_DESC_TRANSB = 3, 4
PREF_MAX_WORKSPACE_BYTES = 1
WORKSPACE_BYTES = 32 << 20  # what NVIDIA suggests for Hopper
CANDIDATES = 8


def bind(lib: Any) -> Any:
    for name, (restype, argtypes) in SIGNATURES.items():
        try:
            fn = getattr(lib, name)
        except AttributeError:
            raise UnsupportedError(f"cuda: libcublasLt lacks {name}") from None
        fn.restype = restype
        fn.argtypes = argtypes
    return lib


@dataclass
class Int8Plan:
    """Descriptors and the chosen algorithm of one TN int8 GEMM shape (padded dims)."""

    m: int
    n: int
    k: int
    desc: c_void_p
    a_layout: c_void_p
    b_layout: c_void_p
    c_layout: c_void_p
    candidates: list[HeuristicResult] = field(default_factory=list)
    chosen: HeuristicResult | None = None
    seconds: float = 0.0


class CublasLt:
    """One cuBLASLt handle, a fixed workspace, and int8 plans cached per shape."""

    def __init__(self, cupy: Any, lib: Any, path: str) -> None:
        self.cupy = cupy
        self.lib = bind(lib)
        self.path = path
        self.version = int(self.lib.cublasLtGetVersion())
        handle = c_void_p()
        self.call("cublasLtCreate", ctypes.byref(handle))
        self.handle = handle
        self.workspace = cupy.cuda.alloc(WORKSPACE_BYTES)
        self._plans: dict[tuple[int, int, int], Int8Plan] = {}

    def call(self, name: str, *args: Any) -> None:
        check(getattr(self.lib, name)(*args), name)

    def _layout(self, dtype: int, rows: int, cols: int, ld: int) -> c_void_p:
        desc = c_void_p()
        self.call("cublasLtMatrixLayoutCreate", ctypes.byref(desc), dtype, rows, cols, ld)
        return desc

    def plan(self, m: int, n: int, k: int) -> Int8Plan:
        """C[m, n] int32 = A[m, k] @ Bt[n, k]^T in the TN form; dims already padded."""
        key = (m, n, k)
        plan = self._plans.get(key)
        if plan is not None:
            return plan
        cm = layout.int8_tn_gemm(m, n, k)
        desc = c_void_p()
        self.call("cublasLtMatmulDescCreate", ctypes.byref(desc), layout.CUBLAS_COMPUTE_32I,
                  layout.CUDA_R_32I)
        for attr, value in ((MATMUL_DESC_TRANSA, cm.transa), (MATMUL_DESC_TRANSB, cm.transb)):
            flag = c_int32(value)
            self.call("cublasLtMatmulDescSetAttribute", desc, attr, ctypes.byref(flag),
                      ctypes.sizeof(flag))
        # column-major: X = Bt as K×N (ld K, op T), Y = A as K×M (ld K), C^T as N×M (ld N)
        a_layout = self._layout(layout.CUDA_R_8I, cm.k, cm.m, cm.lda)
        b_layout = self._layout(layout.CUDA_R_8I, cm.k, cm.n, cm.ldb)
        c_layout = self._layout(layout.CUDA_R_32I, cm.m, cm.n, cm.ldc)
        pref = c_void_p()
        self.call("cublasLtMatmulPreferenceCreate", ctypes.byref(pref))
        try:
            limit = c_uint64(WORKSPACE_BYTES)
            self.call("cublasLtMatmulPreferenceSetAttribute", pref, PREF_MAX_WORKSPACE_BYTES,
                      ctypes.byref(limit), ctypes.sizeof(limit))
            results = (HeuristicResult * CANDIDATES)()
            count = c_int()
            self.call("cublasLtMatmulAlgoGetHeuristic", self.handle, desc, a_layout, b_layout,
                      c_layout, c_layout, pref, CANDIDATES, results, ctypes.byref(count))
        finally:
            self.call("cublasLtMatmulPreferenceDestroy", pref)
        candidates = [results[i] for i in range(count.value) if results[i].state == 0]
        if not candidates:
            raise UnsupportedError(f"cuda: cuBLASLt offers no int8 algorithm for "
                                   f"{m}x{n}x{k}; cublasGemmEx is used instead")
        plan = Int8Plan(m, n, k, desc, a_layout, b_layout, c_layout, candidates)
        self._plans[key] = plan
        return plan

    def _run(self, plan: Int8Plan, result: HeuristicResult, a: Any, bt: Any, c: Any) -> None:
        one, zero = c_int32(1), c_int32(0)
        stream = c_void_p(int(self.cupy.cuda.get_current_stream().ptr))
        cptr = c_void_p(int(c.data.ptr))
        self.call("cublasLtMatmul", self.handle, plan.desc, ctypes.byref(one),
                  c_void_p(int(bt.data.ptr)), plan.a_layout, c_void_p(int(a.data.ptr)),
                  plan.b_layout, ctypes.byref(zero), cptr, plan.c_layout, cptr,
                  plan.c_layout, ctypes.byref(result.algo), c_void_p(int(self.workspace.ptr)),
                  WORKSPACE_BYTES, stream)

    def matmul(self, plan: Int8Plan, a: Any, bt: Any, c: Any) -> None:
        """c[m, n] = a[m, k] @ bt[n, k]^T, exact int32 (C-contiguous CuPy arrays)."""
        if plan.chosen is None:
            self._choose(plan, a, bt, c)
        self._run(plan, plan.chosen, a, bt, c)

    def _choose(self, plan: Int8Plan, a: Any, bt: Any, c: Any) -> None:
        """Time every candidate once (after one untimed call) with CUDA events."""
        from hwbench.backends.cuda.runtime import event_seconds

        best, best_time = None, float("inf")
        for result in plan.candidates:
            try:
                seconds = min(event_seconds(
                    self.cupy, lambda r=result: self._run(plan, r, a, bt, c), 1, 2))
            except (UnsupportedError, NativeLibraryError):
                continue
            if seconds < best_time:
                best, best_time = result, seconds
        if best is None:
            raise UnsupportedError(f"cuda: no cuBLASLt int8 algorithm ran for "
                                   f"{plan.m}x{plan.n}x{plan.k}")
        plan.chosen, plan.seconds = best, best_time


def load(cupy: Any) -> tuple[CublasLt | None, str]:
    """A ``CublasLt`` or ``(None, why)``; never raises. The soname of CuPy's CUDA major
    is tried first, so the copy CuPy's libcublas already loaded is reused."""
    from hwbench.backends.cuda.runtime import load_library

    try:
        major = int(cupy.cuda.runtime.runtimeGetVersion()) // 1000
    except Exception:  # noqa: BLE001
        major = 13
    lib, where = load_library([f"libcublasLt.so.{major}"], prefer_loaded=True)
    if lib is None:
        return None, f"libcublasLt.so.{major} not found ({where})"
    try:
        return CublasLt(cupy, lib, where), ""
    except Exception as exc:  # noqa: BLE001 - no fast path: cublasGemmEx instead
        return None, f"cuBLASLt at {where} failed to initialise: {exc}"
