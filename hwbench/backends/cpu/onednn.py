"""A small ctypes binding to oneDNN's v3 C API (``libdnnl.so.3``).

Why ctypes and not a compiled extension: the ``onednn-cpu-gomp`` wheel ships the shared
library without headers, and a pure-Python binding installs anywhere Python does.

Enum values are read from the library itself (``dnnl_*2str``) rather than copied from a
header, so a wheel whose enums moved is caught at load time. The few values the library
cannot tell us (``DNNL_ARG_*`` macros and ``dnnl_query_t``) are named below with their
header of origin. Every status goes through ``OneDNN.check``, which raises
``NativeLibraryError`` naming the call and the status.

Adding a primitive is a few lines: build its descriptor with ``create_pd(fn, ...)``,
wrap it with ``Primitive(self, pd, {arg: query})``, then ``prim.execute({arg: array})``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import itertools
import os
import sys
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from hwbench.backends.cpu.addresses import address
from hwbench.backends.cpu.blas_layout import leading_dim, op_shape
from hwbench.backends.memory import aligned_bytes
from hwbench.errors import BackendUnavailableError, NativeLibraryError

c_void_p, c_int, c_int64, c_float = ctypes.c_void_p, ctypes.c_int, ctypes.c_int64, ctypes.c_float
MAX_NDIMS = 12  # DNNL_MAX_NDIMS: dnnl_dims_t is int64_t[12]
Dims = c_int64 * MAX_NDIMS

# DNNL_ARG_* from dnnl_types.h (oneDNN 3.x); these are macros, not in the library.
ARG_SRC, ARG_SRC_1, ARG_DST, ARG_WEIGHTS, ARG_BIAS = 1, 2, 17, 33, 41
ARG_SCRATCHPAD = 80
ARG_MULTIPLE_SRC = 1024  # concat's i-th source is ARG_MULTIPLE_SRC + i
ARG_DIFF_SRC, ARG_DIFF_DST = 129, 145
ARG_ATTR_SCALES = 4096  # v3: scales of argument X at execution: ARG_ATTR_SCALES | X
ARG_ATTR_ZERO_POINTS = 8192  # v3 (v2: 4096): zero points of X: ARG_ATTR_ZERO_POINTS | X
ARG_ATTR_MULTIPLE_POST_OP_BASE = 32768  # v3 (v2: 16384); post-op i: base·(i + 1)

# How libgomp's idle threads wait. Unset, libgomp spins for 300000 iterations (a few ms,
# about one scheduler time slice) before sleeping; on a machine where other processes
# want the cores, a spinning thread burns the slice a thread with work needed, and every
# parallel region waits for the scheduler: cpu's sigmoid of 2^20 values took 16 ms
# instead of 0.3 ms beside a busy loop per core (2-core VM). PASSIVE sleeps at once:
# measured there, busy-machine times stay within ~2x of idle ones, at the cost of a
# thread wake-up (tens of us) per parallel region on an idle machine. libgomp reads these
# variables once, when it is loaded, so they are set before oneDNN or MKL loads it; a
# value the user has set wins (``OMP_WAIT_POLICY=ACTIVE`` or ``GOMP_SPINCOUNT`` for
# dedicated machines).
OPENMP_WAIT_ENV = {"OMP_WAIT_POLICY": "PASSIVE"}
# What set_openmp_wait_policy put into this process's environment: hwbench's, not the
# user's (``omp_wait.users_own`` tells them apart).
SET_IN_THIS_PROCESS: dict[str, str] = {}


def set_openmp_wait_policy(env: dict[str, str] | os._Environ = os.environ) -> dict[str, str]:
    """Put ``OPENMP_WAIT_ENV`` into ``env`` (default: this process's, which must happen
    before libgomp loads) where the user set no wait policy of their own; returns ``env``."""
    if not any(key in env for key in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")):
        env.update(OPENMP_WAIT_ENV)
        if env is os.environ:
            SET_IN_THIS_PROCESS.update(OPENMP_WAIT_ENV)
    return env  # type: ignore[return-value]


def spins(env: dict[str, str] | os._Environ = os.environ) -> bool:
    """Whether libgomp loaded under ``env`` keeps idle threads spinning (libgomp's rule:
    ``GOMP_SPINCOUNT`` when set, else ``OMP_WAIT_POLICY``, unset meaning a spin): the
    user's choice for a dedicated, idle machine, where a parallel region then costs no
    thread wake-up (``CpuBackend.threads_for`` puts far smaller problems on every thread)."""
    count = env.get("GOMP_SPINCOUNT", "").strip().lower()
    if count:  # a number with an optional k/M/G/T suffix, or "infinite"/"infinity"
        digits = count.rstrip("kmgt")
        return not digits.isdigit() or int(digits) > 0
    return env.get("OMP_WAIT_POLICY", "ACTIVE").strip().upper() != "PASSIVE"


def arg_post_op(index: int, arg: int = ARG_SRC_1) -> int:
    """The execution argument of post-op ``index``'s operand (a binary post-op's src1)."""
    return ARG_ATTR_MULTIPLE_POST_OP_BASE * (index + 1) | arg
# dnnl_query_t (dnnl_types.h, oneDNN 3.x): impl_info_str is the 9th entry; mds start at 129.
QUERY_IMPL_INFO_STR = 8
QUERY_SRC_MD, QUERY_DIFF_SRC_MD, QUERY_WEIGHTS_MD = 129, 130, 131
QUERY_DST_MD, QUERY_DIFF_DST_MD, QUERY_SCRATCHPAD_MD = 133, 134, 136
STREAM_IN_ORDER = 1  # dnnl_stream_in_order
SCRATCHPAD_MODE_USER = 1  # dnnl_scratchpad_mode_user

NUMPY_TO_DNNL_DT = {np.dtype(np.float32): "f32", np.dtype(np.int32): "s32",
                    np.dtype(np.int8): "s8", np.dtype(np.uint8): "u8"}


class ExecArg(ctypes.Structure):
    _fields_ = [("arg", c_int), ("memory", c_void_p)]


RUNTIME_THREADPOOL = 0x8  # dnnl_version_t.cpu_runtime (DNNL_RUNTIME_THREADPOOL)


class Version(ctypes.Structure):
    _fields_ = [("major", c_int), ("minor", c_int), ("patch", c_int),
                ("hash", ctypes.c_char_p), ("cpu_runtime", ctypes.c_uint),
                ("gpu_runtime", ctypes.c_uint)]


def find_library() -> str | None:
    """``HWBENCH_ONEDNN_LIBRARY``, then the wheel's ``<prefix>/lib``, then the system."""
    env = os.environ.get("HWBENCH_ONEDNN_LIBRARY")
    if env:
        return env
    for prefix in dict.fromkeys((sys.prefix, sys.base_prefix)):
        for name in ("libdnnl.so.3", "libdnnl.so"):
            candidate = Path(prefix) / "lib" / name
            if candidate.exists():
                return str(candidate)
    return ctypes.util.find_library("dnnl")


def _read_enum(lib: ctypes.CDLL, fn_name: str, values: Iterable[int]) -> dict[str, int]:
    fn = getattr(lib, fn_name)
    fn.restype, fn.argtypes = ctypes.c_char_p, [c_int]
    table: dict[str, int] = {}
    for value in values:
        text = fn(value)
        if text and not text.startswith(b"unknown"):
            table.setdefault(text.decode(), value)
    return table


class OneDNN:
    """The loaded library, its CPU engine and stream, and the enum tables read from it."""

    def __init__(self, path: str) -> None:
        set_openmp_wait_policy()  # before libdnnl loads libgomp
        try:
            self.lib = ctypes.CDLL(path)
        except OSError as exc:
            raise BackendUnavailableError(
                f"cannot load oneDNN from {path}: {exc} (is libgomp1 installed?)"
            ) from exc
        self.path = path
        lib = self.lib
        lib.dnnl_version.restype = ctypes.POINTER(Version)
        v = lib.dnnl_version().contents
        self.version = f"{v.major}.{v.minor}.{v.patch}"
        self.git_hash = v.hash.decode() if v.hash else ""
        if v.major != 3:
            raise BackendUnavailableError(f"oneDNN {self.version} at {path}: need the v3 C API")
        # A CPU stream executes synchronously (its wait() returns at once) with the
        # sequential, OpenMP and TBB runtimes: no dnnl_stream_wait call after each execute
        # (one ctypes call, ~0.5 µs of a tiny primitive's ~3). The threadpool runtime keeps it.
        self.blocking = v.cpu_runtime != RUNTIME_THREADPOOL
        # dnnl_primitive_execute without argtypes, for callers that pass every argument
        # as the ctypes object it is (a prepared call's fixed four): nothing to convert.
        self.execute_ready = ctypes.CFUNCTYPE(c_int)(
            ctypes.cast(lib.dnnl_primitive_execute, c_void_p).value)
        self.status = {v: k for k, v in _read_enum(lib, "dnnl_status2str", range(16)).items()}
        self.dt = _read_enum(lib, "dnnl_dt2str", range(16))
        self.tag = _read_enum(lib, "dnnl_fmt_tag2str", range(2048))
        self.prop = _read_enum(lib, "dnnl_prop_kind2str", range(256))
        # dnnl_alg_kind_t is sparse: binary algs start at 0x1fff0, reduction at 0x2fff0 and
        # softmax at 0x30000 (dnnl_types.h), far above the eltwise/pooling/LRN values.
        alg_values = itertools.chain(range(0x4000), range(0x1fff0, 0x20010),
                                     range(0x2fff0, 0x30010))
        self.alg = _read_enum(lib, "dnnl_alg_kind2str", alg_values)
        self.engine_kind = _read_enum(lib, "dnnl_engine_kind2str", range(4))
        self._declare()
        engine = c_void_p()
        self.check(lib.dnnl_engine_create(ctypes.byref(engine), self.engine_kind["cpu"], 0),
                   "dnnl_engine_create(cpu)")
        self.engine = engine
        stream = c_void_p()
        self.check(lib.dnnl_stream_create(ctypes.byref(stream), engine, STREAM_IN_ORDER),
                   "dnnl_stream_create")
        self.stream = stream
        lib.dnnl_get_effective_cpu_isa.restype = c_int
        lib.dnnl_cpu_isa2str.restype, lib.dnnl_cpu_isa2str.argtypes = ctypes.c_char_p, [c_int]
        self.cpu_isa = lib.dnnl_cpu_isa2str(lib.dnnl_get_effective_cpu_isa()).decode()
        self._gomp = _load_gomp()
        self.spinning = spins()  # the wait policy libgomp read when it loaded, just now
        self._threads_set: tuple[int, int] | None = None

    def _declare(self) -> None:
        """Argument types for every entry point used, so ctypes converts (never guesses)."""
        lib, p = self.lib, ctypes.POINTER(c_void_p)
        sigs: dict[str, list[Any]] = {
            "dnnl_engine_create": [p, c_int, ctypes.c_size_t],
            "dnnl_stream_create": [p, c_void_p, ctypes.c_uint],
            "dnnl_stream_wait": [c_void_p],
            "dnnl_memory_desc_create_with_tag": [p, c_int, Dims, c_int, c_int],
            "dnnl_memory_desc_create_with_strides": [p, c_int, Dims, c_int, Dims],
            # (md, parent md, dims, offsets): a box inside the parent (Slice, Pad)
            "dnnl_memory_desc_create_submemory": [p, c_void_p, Dims, Dims],
            "dnnl_memory_desc_clone": [p, c_void_p],
            "dnnl_memory_desc_destroy": [c_void_p],
            "dnnl_memory_desc_equal": [c_void_p, c_void_p],
            "dnnl_memory_desc_get_size": [c_void_p],
            "dnnl_memory_create": [p, c_void_p, c_void_p, c_void_p],
            "dnnl_memory_set_data_handle": [c_void_p, c_void_p],
            "dnnl_memory_destroy": [c_void_p],
            "dnnl_primitive_attr_create": [p],
            "dnnl_primitive_attr_destroy": [c_void_p],
            "dnnl_primitive_attr_set_scratchpad_mode": [c_void_p, c_int],
            "dnnl_primitive_attr_set_post_ops": [c_void_p, c_void_p],
            # (attr, arg, mask): scales / zero points of ``arg`` given at execution as
            # ARG_ATTR_SCALES|arg (f32) / ARG_ATTR_ZERO_POINTS|arg (s32); mask bit d set:
            # one value per index of dimension d, 0: one value for the whole tensor
            "dnnl_primitive_attr_set_scales_mask": [c_void_p, c_int, c_int],
            "dnnl_primitive_attr_set_zero_points_mask": [c_void_p, c_int, c_int],
            "dnnl_post_ops_create": [p],
            "dnnl_post_ops_destroy": [c_void_p],
            # (post_ops, scale, zero_point, data_type): dst = scale·(dst - zp) + op(...)
            "dnnl_post_ops_append_sum": [c_void_p, c_float, ctypes.c_int32, c_int],
            # (post_ops, alg, alpha, beta): the v3 form, without v2's scale argument
            "dnnl_post_ops_append_eltwise": [c_void_p, c_int, c_float, c_float],
            # (post_ops, alg, src1 desc): its operand is ARG_ATTR_MULTIPLE_POST_OP(i) | SRC_1
            "dnnl_post_ops_append_binary": [c_void_p, c_int, c_void_p],
            "dnnl_primitive_desc_query_md": [c_void_p, c_int, c_int],
            "dnnl_primitive_desc_query": [c_void_p, c_int, c_int, c_void_p],
            "dnnl_primitive_desc_destroy": [c_void_p],
            "dnnl_primitive_create": [p, c_void_p],
            "dnnl_primitive_execute": [c_void_p, c_void_p, c_int, ctypes.POINTER(ExecArg)],
            "dnnl_primitive_destroy": [c_void_p],
            "dnnl_matmul_primitive_desc_create":
                [p, c_void_p, c_void_p, c_void_p, c_void_p, c_void_p, c_void_p],
            "dnnl_convolution_forward_primitive_desc_create":
                [p, c_void_p, c_int, c_int, c_void_p, c_void_p, c_void_p, c_void_p,
                 Dims, Dims, Dims, Dims, c_void_p],
            "dnnl_eltwise_forward_primitive_desc_create":
                [p, c_void_p, c_int, c_int, c_void_p, c_void_p, c_float, c_float, c_void_p],
            "dnnl_eltwise_backward_primitive_desc_create":
                [p, c_void_p, c_int, c_void_p, c_void_p, c_void_p, c_float, c_float,
                 c_void_p, c_void_p],
            # row-major BLAS-style SGEMM (dnnl.h): the fastest oneDNN f32 GEMM measured here
            "dnnl_sgemm": [ctypes.c_char, ctypes.c_char, c_int64, c_int64, c_int64, c_float,
                           c_void_p, c_int64, c_void_p, c_int64, c_float, c_void_p, c_int64],
            # BLAS-style int8 GEMMs (dnnl.h): exact int32 results; see CpuBackend._gemm_int8
            "dnnl_gemm_u8s8s32": [ctypes.c_char, ctypes.c_char, ctypes.c_char, c_int64, c_int64,
                                  c_int64, c_float, c_void_p, c_int64, ctypes.c_uint8, c_void_p,
                                  c_int64, ctypes.c_int8, c_float, c_void_p, c_int64, c_void_p],
            "dnnl_gemm_s8s8s32": [ctypes.c_char, ctypes.c_char, ctypes.c_char, c_int64, c_int64,
                                  c_int64, c_float, c_void_p, c_int64, ctypes.c_int8, c_void_p,
                                  c_int64, ctypes.c_int8, c_float, c_void_p, c_int64, c_void_p],
            "dnnl_reorder_primitive_desc_create":
                [p, c_void_p, c_void_p, c_void_p, c_void_p, c_void_p],
            # (pd, engine, prop, alg, src, dst, strides, kernel, dilation, padding_l,
            #  padding_r, attr); dilation counts from 0 as in convolution
            "dnnl_pooling_forward_primitive_desc_create":
                [p, c_void_p, c_int, c_int, c_void_p, c_void_p, Dims, Dims, Dims, Dims, Dims,
                 c_void_p],
            # (pd, engine, prop, alg, src, dst, axis, attr)
            "dnnl_softmax_forward_primitive_desc_create":
                [p, c_void_p, c_int, c_int, c_void_p, c_void_p, c_int, c_void_p],
            # (pd, engine, prop, alg, src, dst, local_size, alpha, beta, k, attr)
            "dnnl_lrn_forward_primitive_desc_create":
                [p, c_void_p, c_int, c_int, c_void_p, c_void_p, c_int64, c_float, c_float,
                 c_float, c_void_p],
            # (pd, engine, alg, src0, src1, dst, attr): only src1 may broadcast
            "dnnl_binary_primitive_desc_create":
                [p, c_void_p, c_int, c_void_p, c_void_p, c_void_p, c_void_p],
            # (pd, engine, dst (NULL: any), n, axis, array of n src descs, attr)
            "dnnl_concat_primitive_desc_create":
                [p, c_void_p, c_void_p, c_int, c_int, ctypes.POINTER(c_void_p), c_void_p],
        }
        for name, argtypes in sigs.items():
            fn = getattr(lib, name)
            fn.argtypes = argtypes
            fn.restype = c_int
        lib.dnnl_primitive_desc_query_md.restype = c_void_p
        lib.dnnl_memory_desc_get_size.restype = ctypes.c_size_t

    # -- helpers -------------------------------------------------------------------------
    def check(self, status: int, call: str) -> None:
        """Turn a non-success status into ``NativeLibraryError`` naming the call."""
        if status != 0:
            name = self.status.get(status, f"status {status}")
            raise NativeLibraryError(f"oneDNN {call} failed: {name}")

    def set_num_threads(self, threads: int) -> None:
        """oneDNN's GOMP build takes its thread count from libgomp's ICV (per OS thread:
        the last count set is remembered per thread, and an unchanged one not set again)."""
        key = (int(threads), threading.get_ident())
        if self._gomp is not None and key != self._threads_set:
            self._gomp.omp_set_num_threads(key[0])
            self._threads_set = key

    def memory_desc(self, shape: tuple[int, ...], dtype: np.dtype | str,
                    tag: str | None = None) -> MemoryDesc:
        """A memory descriptor by format tag (``"abcd"``, ``"any"``; default: plain)."""
        dt = self.dt[dtype if isinstance(dtype, str) else NUMPY_TO_DNNL_DT[np.dtype(dtype)]]
        handle = c_void_p()
        tag = tag or "abcdefghijkl"[: len(shape)]
        status = self.lib.dnnl_memory_desc_create_with_tag(
            ctypes.byref(handle), len(shape), Dims(*shape), dt, self.tag[tag])
        self.check(status, f"memory_desc_create(shape={shape}, dtype={dtype}, tag={tag})")
        return MemoryDesc(self, handle, owned=True)

    def strided_memory_desc(self, shape: tuple[int, ...], dtype: np.dtype | str,
                            strides: tuple[int, ...]) -> MemoryDesc:
        """A memory descriptor by strides in elements (channels interleaved with
        another tensor's: a channel stride above 1)."""
        dt = self.dt[dtype if isinstance(dtype, str) else NUMPY_TO_DNNL_DT[np.dtype(dtype)]]
        handle = c_void_p()
        status = self.lib.dnnl_memory_desc_create_with_strides(
            ctypes.byref(handle), len(shape), Dims(*shape), dt, Dims(*strides))
        self.check(status, f"memory_desc_create_with_strides(shape={shape}, strides={strides})")
        return MemoryDesc(self, handle, owned=True)

    def submemory_desc(self, parent: MemoryDesc, dims: tuple[int, ...],
                       offsets: tuple[int, ...]) -> MemoryDesc:
        """The box of ``dims`` at ``offsets`` inside ``parent`` (read with the parent's
        buffer: oneDNN adds the offset)."""
        handle = c_void_p()
        status = self.lib.dnnl_memory_desc_create_submemory(
            ctypes.byref(handle), parent.handle, Dims(*dims), Dims(*offsets))
        self.check(status, f"memory_desc_create_submemory(dims={dims}, offsets={offsets})")
        return MemoryDesc(self, handle, owned=True)

    def attr(self, *, post_ops: Iterable[tuple] = (), scales: dict[int, int] | None = None,
             zero_points: dict[int, int] | None = None) -> Attr:
        """Primitive attributes: user-managed scratchpad, and optional post-ops applied in
        order: ``("sum",)`` adds what the dst buffer holds before the primitive runs;
        ``("eltwise", alg_name, alpha, beta)`` applies an eltwise algorithm
        (``"eltwise_relu"``, ...) to the result so far; ``("binary", alg_name,
        memory_desc)`` combines it with one more operand (passed at execution as
        ``arg_post_op(index)``). ``scales``/``zero_points``: {arg: mask} of the int8
        quantization parameters given at execution (``ARG_ATTR_SCALES | arg``, f32, and
        ``ARG_ATTR_ZERO_POINTS | arg``, s32); oneDNN v3's model is
        ``dst = (src_scale·wei_scale·acc(src − src_zp, wei) + bias) / dst_scale + dst_zp``,
        in float32, rounded to nearest even and saturated."""
        return Attr(self, post_ops, scales or {}, zero_points or {})

    def create_pd(self, fn_name: str, *args: Any) -> c_void_p:
        pd = c_void_p()
        self.check(getattr(self.lib, fn_name)(ctypes.byref(pd), *args), fn_name)
        return pd

    def sgemm(self, a: np.ndarray, b: np.ndarray, trans_a: bool, trans_b: bool,
              c: np.ndarray, beta: float = 0.0) -> None:
        """``c = op(a) @ op(b) + beta * c`` in float32 with ``dnnl_sgemm`` (row-major).

        ``a``/``b`` must already be laid out by ``blas_layout.row_major``; ``c`` must be a
        C-contiguous float32 (m, n) array. Leading dimensions are checked, not trusted.
        """
        m, k = op_shape(a, trans_a)
        n = op_shape(b, trans_b)[1]
        if c.shape != (m, n) or c.dtype != np.float32 or not c.flags.c_contiguous:
            raise AssertionError(f"sgemm: bad output {c.shape} {c.dtype}")
        self.check(self.lib.dnnl_sgemm(
            b"T" if trans_a else b"N", b"T" if trans_b else b"N", m, n, k, 1.0,
            address(a), leading_dim(a), address(b), leading_dim(b), beta, address(c),
            max(1, n)), "dnnl_sgemm")

    def gemm_int8(self, a: np.ndarray, b: np.ndarray, a_zero_point: int, b_zero_point: int,
                  c: np.ndarray) -> None:
        """``c = (a - za) @ (b - zb)`` exactly in int32: row-major, ``a`` u8 or s8 (M×K),
        ``b`` s8 or u8 (K×N), all C-contiguous; ``dnnl_gemm_{u8,s8}s8s32`` with offset 'F'
        (one fixed C offset, here 0). Its accumulators wrap like int32 arithmetic, so any
        result that fits int32 comes out exact even when A·B alone would not. The library
        takes s8 B only: a u8 B is shifted by 128 (top bit flipped), exactly, and its zero
        point with it."""
        if b.dtype == np.uint8:
            b, b_zero_point = b.view(np.int8) ^ np.int8(-128), int(b_zero_point) - 128
        m, k = a.shape
        n = b.shape[1]
        if (b.shape[0] != k or b.dtype != np.int8 or c.shape != (m, n) or c.dtype != np.int32
                or not (a.flags.c_contiguous and b.flags.c_contiguous
                        and c.flags.c_contiguous)):
            raise AssertionError(f"gemm_int8: bad operands {a.shape} {b.shape} {c.shape}")
        fn = "dnnl_gemm_u8s8s32" if a.dtype == np.uint8 else "dnnl_gemm_s8s8s32"
        offset_c = np.zeros(1, np.int32)
        self.check(getattr(self.lib, fn)(
            b"N", b"N", b"F", m, n, k, 1.0, a.ctypes.data, max(1, k), int(a_zero_point),
            b.ctypes.data, max(1, n), int(b_zero_point), 0.0, c.ctypes.data, max(1, n),
            offset_c.ctypes.data), fn)

    def wait(self) -> None:
        status = self.lib.dnnl_stream_wait(self.stream)
        if status:
            self.check(status, "dnnl_stream_wait")


def _load_gomp() -> Any:
    set_openmp_wait_policy()
    try:
        gomp = ctypes.CDLL("libgomp.so.1")
    except OSError:
        return None
    gomp.omp_set_num_threads.argtypes = [c_int]
    gomp.omp_get_max_threads.restype = c_int
    return gomp


class MemoryDesc:
    """Owns (or borrows) a ``dnnl_memory_desc_t``."""

    def __init__(self, dnnl: OneDNN, handle: c_void_p | int, owned: bool) -> None:
        self.dnnl, self.handle, self.owned = dnnl, c_void_p(getattr(handle, "value", handle)), owned

    @property
    def size(self) -> int:
        """Bytes a buffer in this layout needs (blocked layouts pad channels)."""
        return int(self.dnnl.lib.dnnl_memory_desc_get_size(self.handle))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, MemoryDesc):
            return NotImplemented
        return bool(self.dnnl.lib.dnnl_memory_desc_equal(self.handle, other.handle))

    __hash__ = None  # type: ignore[assignment]

    def __del__(self, _finalizing=sys.is_finalizing) -> None:
        # At interpreter exit module globals are gone: the OS frees the handle (no noise).
        if self.owned and self.handle and not _finalizing():
            self.dnnl.lib.dnnl_memory_desc_destroy(self.handle)
            self.handle = c_void_p()


class Attr:
    def __init__(self, dnnl: OneDNN, post_ops: Iterable[tuple] = (),
                 scales: dict[int, int] | None = None,
                 zero_points: dict[int, int] | None = None) -> None:
        self.dnnl = dnnl
        self.handle = c_void_p()
        lib = dnnl.lib
        dnnl.check(lib.dnnl_primitive_attr_create(ctypes.byref(self.handle)), "attr_create")
        dnnl.check(lib.dnnl_primitive_attr_set_scratchpad_mode(self.handle, SCRATCHPAD_MODE_USER),
                   "attr_set_scratchpad_mode")
        for arg, mask in (scales or {}).items():
            dnnl.check(lib.dnnl_primitive_attr_set_scales_mask(self.handle, arg, mask),
                       f"attr_set_scales_mask(arg={arg}, mask={mask})")
        for arg, mask in (zero_points or {}).items():
            dnnl.check(lib.dnnl_primitive_attr_set_zero_points_mask(self.handle, arg, mask),
                       f"attr_set_zero_points_mask(arg={arg}, mask={mask})")
        post_ops = list(post_ops)
        if post_ops:
            self._set_post_ops(post_ops)

    def _set_post_ops(self, post_ops: list[tuple]) -> None:
        dnnl, lib = self.dnnl, self.dnnl.lib
        ops = c_void_p()
        dnnl.check(lib.dnnl_post_ops_create(ctypes.byref(ops)), "post_ops_create")
        try:
            for op in post_ops:
                if op[0] == "sum":  # ("sum"[, scale, zero point]); data type: the dst's
                    scale, zero = op[1:] if len(op) == 3 else (1.0, 0)
                    dnnl.check(lib.dnnl_post_ops_append_sum(ops, scale, zero, 0),
                               "post_ops_append_sum")
                elif op[0] == "binary":
                    _, alg, md = op
                    dnnl.check(lib.dnnl_post_ops_append_binary(ops, dnnl.alg[alg], md.handle),
                               f"post_ops_append_binary({alg})")
                elif op[0] == "eltwise":
                    _, alg, alpha, beta = op
                    dnnl.check(lib.dnnl_post_ops_append_eltwise(ops, dnnl.alg[alg], alpha, beta),
                               f"post_ops_append_eltwise({alg})")
                else:
                    raise ValueError(f"unknown post-op {op!r}")
            # The attribute keeps its own copy of the post-ops.
            dnnl.check(lib.dnnl_primitive_attr_set_post_ops(self.handle, ops),
                       "attr_set_post_ops")
        finally:
            lib.dnnl_post_ops_destroy(ops)

    def __del__(self, _finalizing=sys.is_finalizing) -> None:
        if self.handle and not _finalizing():  # see MemoryDesc.__del__
            self.dnnl.lib.dnnl_primitive_attr_destroy(self.handle)
            self.handle = c_void_p()


class Primitive:
    """A created primitive with one reusable ``dnnl_memory_t`` per argument.

    Executing only swaps data handles, so a cached call costs a few ctypes calls. The
    scratchpad is user-managed and owned here, so its size is known and it is reused.
    """

    def __init__(self, dnnl: OneDNN, pd: c_void_p, arg_mds: dict[int, MemoryDesc | int]) -> None:
        self.dnnl = dnnl
        lib = dnnl.lib
        self.pd = pd
        self.prim = c_void_p()
        try:
            dnnl.check(lib.dnnl_primitive_create(ctypes.byref(self.prim), pd), "primitive_create")
            text = ctypes.c_char_p()
            dnnl.check(lib.dnnl_primitive_desc_query(pd, QUERY_IMPL_INFO_STR, 0,
                                                     ctypes.byref(text)), "query(impl_info)")
            self.impl = (text.value or b"?").decode()
            self.mds: dict[int, MemoryDesc] = {}
            for arg, md in arg_mds.items():
                self.mds[arg] = md if isinstance(md, MemoryDesc) else self.query_md(md)
            self.mds[ARG_SCRATCHPAD] = self.query_md(QUERY_SCRATCHPAD_MD)
            self.scratchpad = aligned_bytes(max(self.mds[ARG_SCRATCHPAD].size, 1))
            self.sizes = {arg: md.size for arg, md in self.mds.items()}
            self.memories: dict[int, c_void_p] = {}
            for arg, md in self.mds.items():
                mem = c_void_p()
                dnnl.check(lib.dnnl_memory_create(ctypes.byref(mem), md.handle, dnnl.engine, None),
                           f"memory_create(arg={arg})")
                self.memories[arg] = mem
            self.args = (ExecArg * len(self.memories))(
                *[ExecArg(arg, mem) for arg, mem in self.memories.items()])
            self._set = lib.dnnl_memory_set_data_handle
            self._set(self.memories[ARG_SCRATCHPAD], self.scratchpad.ctypes.data)
            self.nargs = len(self.args)
            # execute's count and argument array as ctypes objects (``execute_ready``)
            self._nargs, self._args = c_int(self.nargs), c_void_p(ctypes.addressof(self.args))
            self._handles: dict[int, int] = {}  # argument -> data address last set
        except Exception:
            self.close()
            raise

    def query_md(self, what: int) -> MemoryDesc:
        """A copy of the descriptor the implementation chose for ``what``."""
        borrowed = self.dnnl.lib.dnnl_primitive_desc_query_md(self.pd, what, 0)
        clone = c_void_p()
        self.dnnl.check(self.dnnl.lib.dnnl_memory_desc_clone(ctypes.byref(clone), borrowed),
                        "memory_desc_clone")
        return MemoryDesc(self.dnnl, clone, owned=True)

    def execute(self, buffers: dict[int, np.ndarray]) -> None:
        """Run on host buffers (one per argument, each sized for its descriptor), then wait.

        Each buffer must be a contiguous array of at least its descriptor's bytes: any other
        object (an array of Python objects, a view, a short buffer) would hand oneDNN an
        address it reads or writes past, so it is refused before the call."""
        set_handle, memories, sizes, handles = self._set, self.memories, self.sizes, self._handles
        for arg, buf in buffers.items():
            if (buf.dtype.hasobject or not buf.flags.c_contiguous
                    or buf.nbytes < sizes[arg]):
                raise AssertionError(
                    f"oneDNN argument {arg}: {type(buf).__name__} {buf.dtype} "
                    f"{buf.shape} (contiguous={buf.flags.c_contiguous}, {buf.nbytes} "
                    f"bytes) cannot hold a {sizes[arg]}-byte descriptor")
            data = address(buf)
            if handles.get(arg) != data:  # the memory object already points there
                set_handle(memories[arg], data)
                handles[arg] = data
        dnnl = self.dnnl
        status = dnnl.execute_ready(self.prim, dnnl.stream, self._nargs, self._args)
        if status:
            dnnl.check(status, "primitive_execute")
        if not dnnl.blocking:
            dnnl.wait()

    def close(self) -> None:
        lib = self.dnnl.lib
        for mem in getattr(self, "memories", {}).values():
            lib.dnnl_memory_destroy(mem)
        self.memories = {}
        if getattr(self, "prim", None):
            lib.dnnl_primitive_destroy(self.prim)
            self.prim = c_void_p()
        if getattr(self, "pd", None):
            lib.dnnl_primitive_desc_destroy(self.pd)
            self.pd = c_void_p()

    def __del__(self, _finalizing=sys.is_finalizing) -> None:
        if not _finalizing():  # see MemoryDesc.__del__
            self.close()


@functools.cache
def load() -> OneDNN:
    """The process-wide oneDNN (engine and stream are shared by every cpu backend)."""
    path = find_library()
    if path is None:
        raise BackendUnavailableError(
            "oneDNN (libdnnl.so.3) not found: pip install 'hwbench[cpu]' "
            "(the onednn-cpu-gomp wheel), or set HWBENCH_ONEDNN_LIBRARY"
        )
    return OneDNN(path)


def availability() -> tuple[bool, str]:
    try:
        load()
    except Exception as exc:  # noqa: BLE001 - available() must never raise
        return False, str(exc)
    return True, ""

