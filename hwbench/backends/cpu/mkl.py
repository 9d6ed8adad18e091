"""ctypes binding to Intel oneMKL's CBLAS (``libmkl_rt``) for the ``cpu:mkl`` flavour.

Why ctypes: hwbench must run where no compiler is installed, and the ``mkl`` wheel ships
``libmkl_rt.so`` without headers, so every prototype and enum below is written out by hand.
A wrong prototype or a bad pointer is a segfault, not an exception, so this module only ever
hands MKL C-contiguous, aligned ndarrays of the exact dtype, checks every dimension and leading
dimension itself, and installs an ``mkl_set_xerbla`` handler as a second line of defence.

Facts verified against oneMKL 2026.2 (``mkl`` wheel 2026.2.0) on an AMD EPYC Zen 4, 2 cores:

* Symbol names: the lower-case service symbols exported by ``libmkl_rt`` (``mkl_set_num_threads``,
  ``mkl_set_threading_layer``, ...) are the *Fortran* entry points, which take ``int *``;
  ``mkl_service.h`` maps the C spellings onto ``MKL_Set_Num_Threads``, ``MKL_Set_Threading_Layer``,
  ``MKL_Get_Version_String``, ... (by value). Only those are bound here. ``mkl_set_xerbla`` has a
  single (C) entry.
* Layers: ``MKL_Set_Interface_Layer(MKL_INTERFACE_LP64 = 0)`` and ``MKL_Set_Threading_Layer(
  MKL_THREADING_GNU = 3)`` override the ``MKL_INTERFACE_LAYER`` / ``MKL_THREADING_LAYER``
  environment variables; later calls are ignored and return the layer in effect, which is
  checked. LP64 makes ``MKL_INT`` a C ``int``, which the prototypes below assume.
* Threading: left to itself, ``libmkl_rt`` picks the Intel layer and loads ``libiomp5.so``
  unless libgomp is already in the process. With the GNU layer it loads
  ``libmkl_gnu_thread.so.3`` and the system ``libgomp.so.1``, the very file oneDNN
  (``libdnnl.so.3`` from ``onednn-cpu-gomp``) links against, whichever of the two loads first.
* Errors: ``cblas_*`` report a bad argument through xerbla (1-based parameter number counting
  the layout, e.g. 9 for ``lda`` of ``cblas_sgemm``) on the calling thread, then return without
  touching C. With our handler installed MKL prints nothing; we raise NativeLibraryError.
* ``cblas_gemm_s8u8s32(layout, transa, transb, offsetc, M, N, K, alpha, A, lda, ao, B, ldb, bo,
  beta, C, ldc, co)`` computes ``C = alpha*(op(A) + ao)*(op(B) + bo) + beta*C + co``:
  the offsets are *added* (pass ``-zero_point``); ``ao``/``bo`` are ``MKL_INT8`` (127 and -128
  both work); in ROW-major order A is read as uint8 and B as int8 (the name is column-major's
  view: MKL swaps the operands). ``CBLAS_OFFSET``: ``CblasFixOffset`` = 173 adds ``co[0]`` to
  every element; ``CblasRowOffset`` = 171 reads N values of ``co`` (one per column) and
  ``CblasColOffset`` = 172 reads M values (one per row): either reads past a 1-element ``co``.
* Overflow: products do not saturate in 16 bits (255 * 127 * K is exact) but the int32 result
  saturates instead of wrapping (K = 70000 of 255 * 127 gives 2**31 - 1). With the offsets
  applied by MKL a true result that fits int32 came out exact even when ``A' @ B'`` did not
  fit, but a plain ``A' @ B'`` meant for host correction saturated (K = 100003). So K is cut
  into chunks of at most ``_K_CHUNK``, whose partial sums cannot saturate whatever order MKL
  adds things in, and the chunks are summed in int64 on the host.
* Speed, 2048**3, 2 threads, best of 7, mkl 2026.2 on the 2-core AMD EPYC (Zen 4) dev VM, whose
  fp32 FMA peak ``hwbench.harness.measure.peak`` measures at ~228-234 GFLOP/s (AVX-512 VNNI
  int8 peak ~4x that, ~900+ GOP/s): ``cblas_sgemm`` ~190 GFLOP/s (~82 % of peak) but
  ``cblas_gemm_s8u8s32`` only ~90 GOP/s: ~10 % of VNNI peak and *slower* than fp32 (0.47x).
  On this non-Intel CPU ``libmkl_rt`` always dispatches to the generic ``libmkl_def.so.3``
  (never ``libmkl_avx512.so.3``), whose sgemm is fast but whose int8 GEMM is not VNNI code.
  ``MKL_ENABLE_INSTRUCTIONS`` (AVX512, AVX512_E1, AVX512_E4, AVX2, even SSE4_2) and
  ``MKL_DEBUG_CPU_TYPE=5`` (removed in MKL 2020.1), set before loading, change neither the
  library loaded nor either number beyond noise (~2 %): MKL's int8 figure here measures MKL,
  not the CPU's int8 capability.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import sys
import threading
import warnings

import numpy as np

from hwbench.backends.cpu.addresses import address
from hwbench.backends.cpu.blas_layout import leading_dim, op_shape, row_major
from hwbench.backends.cpu.onednn import set_openmp_wait_policy
from hwbench.errors import (
    ArgumentError,
    BackendUnavailableError,
    DTypeError,
    NativeLibraryError,
)
from hwbench.kernels.quantization import zero_point_correction

__all__ = ["MKL_LIBRARY_ENV", "Mkl", "load_mkl", "mkl_available"]

MKL_LIBRARY_ENV = "HWBENCH_MKL_LIBRARY"
_INSTALL_HINT = (
    "install it with `pip install 'hwbench[cpu]'` (or the `mkl` wheel: `pip install mkl`), "
    f"or set {MKL_LIBRARY_ENV} to the path of a libmkl_rt.so"
)

# Enum values from mkl_cblas.h / mkl_service.h (no headers ship with the wheel).
_CBLAS_ROW_MAJOR = 101
_CBLAS_NO_TRANS = 111
_CBLAS_TRANS = 112
_CBLAS_FIX_OFFSET = 173  # co is ONE value; 171/172 would read N/M values from it
_MKL_INTERFACE_LP64 = 0  # MKL_INT is a 32-bit C int
_MKL_THREADING_GNU = 3

_MKL_INT_MAX = 2**31 - 1
# |(A' + ao) * (B' + bo)| <= 383 * 256 per term for u8 A', s8 B' and int8 offsets, so any
# partial sum of at most 2**14 terms fits int32 whatever order MKL adds things in.
_K_CHUNK = 2**14

_F32 = np.dtype(np.float32)
_U8 = np.dtype(np.uint8)
_S8 = np.dtype(np.int8)
_I32 = np.dtype(np.int32)

_c_int = ctypes.c_int
_ptr = ctypes.c_void_p
# void xerbla(const char *name, const int *num, const int len): name is NOT NUL-terminated.
_XERBLA = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.POINTER(ctypes.c_int), ctypes.c_int)


class Mkl:
    """Loaded libmkl_rt; one per process (functools.cache'd ``load_mkl()`` returns it)."""

    path: str
    version: str
    threading_layer: int

    def __init__(self, lib: ctypes.CDLL, path: str) -> None:
        self._lib = lib
        self.path = path
        self._errors = threading.local()
        try:
            self._bind()
        except AttributeError as exc:  # a symbol is missing: not a oneMKL libmkl_rt
            raise BackendUnavailableError(
                f"{path} does not look like oneMKL's libmkl_rt ({exc}); {_INSTALL_HINT}"
            ) from exc
        # Both layers must be chosen before the first computational call; they are
        # process-wide and fixed afterwards, so read back what is actually in effect.
        interface = lib.MKL_Set_Interface_Layer(_MKL_INTERFACE_LP64)
        if interface != _MKL_INTERFACE_LP64:  # our prototypes pass MKL_INT as a 32-bit int
            raise BackendUnavailableError(
                f"{path} is already using MKL interface layer {interface}, not LP64"
            )
        # GNU OpenMP, because oneDNN (also loaded in-process by the cpu backend) runs on the
        # system libgomp: MKL's default Intel layer would load libiomp5 next to it, and two
        # OpenMP runtimes each spawn a thread per core and spin-wait against each other, which
        # wrecks timings. With MKL_THREADING_GNU, MKL and oneDNN share one libgomp thread pool.
        self.threading_layer = lib.MKL_Set_Threading_Layer(_MKL_THREADING_GNU)
        if self.threading_layer != _MKL_THREADING_GNU:
            warnings.warn(
                f"MKL threading layer is {self.threading_layer}, not GNU OpenMP: something "
                "called MKL before hwbench; expect two OpenMP runtimes to oversubscribe cores",
                RuntimeWarning,
                stacklevel=2,
            )
        # Keep the callback object alive as long as the library: MKL holds a raw pointer to it.
        self._xerbla = _XERBLA(self._on_xerbla)
        lib.mkl_set_xerbla(self._xerbla)
        buf = ctypes.create_string_buffer(256)
        lib.MKL_Get_Version_String(buf, len(buf))
        self.version = buf.value.decode("ascii", "replace").strip()

    def _bind(self) -> None:
        """Declare every prototype used; ctypes would otherwise pass floats as ints."""
        lib = self._lib
        lib.MKL_Set_Interface_Layer.argtypes = [_c_int]
        lib.MKL_Set_Interface_Layer.restype = _c_int
        lib.MKL_Set_Threading_Layer.argtypes = [_c_int]
        lib.MKL_Set_Threading_Layer.restype = _c_int
        lib.MKL_Set_Num_Threads.argtypes = [_c_int]
        lib.MKL_Set_Num_Threads.restype = None
        lib.MKL_Set_Num_Threads_Local.argtypes = [_c_int]
        lib.MKL_Set_Num_Threads_Local.restype = _c_int
        lib.MKL_Get_Max_Threads.argtypes = []
        lib.MKL_Get_Max_Threads.restype = _c_int
        lib.MKL_Get_Version_String.argtypes = [ctypes.c_char_p, _c_int]
        lib.MKL_Get_Version_String.restype = None
        lib.mkl_set_xerbla.argtypes = [_XERBLA]
        lib.mkl_set_xerbla.restype = ctypes.c_void_p
        # void cblas_sgemm(layout, transa, transb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc)
        lib.cblas_sgemm.argtypes = [_c_int] * 6 + [
            ctypes.c_float, _ptr, _c_int, _ptr, _c_int, ctypes.c_float, _ptr, _c_int,
        ]
        lib.cblas_sgemm.restype = None
        # void cblas_gemm_s8u8s32(layout, transa, transb, offsetc, M, N, K, alpha, A, lda,
        #                         MKL_INT8 ao, B, ldb, MKL_INT8 bo, beta, C, ldc, co)
        lib.cblas_gemm_s8u8s32.argtypes = [_c_int] * 7 + [
            ctypes.c_float, _ptr, _c_int, ctypes.c_int8, _ptr, _c_int, ctypes.c_int8,
            ctypes.c_float, _ptr, _c_int, _ptr,
        ]
        lib.cblas_gemm_s8u8s32.restype = None

    def _on_xerbla(self, name: int | None, num, length: int) -> None:
        """MKL's parameter-error hook; runs on the calling thread, so record it per thread."""
        try:
            routine = ctypes.string_at(name, length).decode("ascii", "replace") if name else "?"
            self._errors.pending = (routine.strip(), int(num[0]) if num else -1)
        except Exception:  # noqa: BLE001 - an exception must never unwind into C
            self._errors.pending = ("?", -1)

    def _check(self, call: str) -> None:
        """Raise what xerbla reported during the call that just returned, if anything."""
        pending = getattr(self._errors, "pending", None)
        if pending is not None:
            self._errors.pending = None
            routine, param = pending
            raise NativeLibraryError(f"{call}: MKL {routine} rejected parameter {param}")

    def set_num_threads(self, n: int) -> None:
        """Threads for later MKL calls: process-wide (``MKL_Set_Num_Threads``), and for the
        calling thread, whose thread-local count would otherwise win (threadpoolctl's
        ``threadpool_limits`` leaves one behind: it sets and restores MKL locally)."""
        if isinstance(n, bool) or not isinstance(n, int | np.integer) or not 1 <= n <= 4096:
            raise ArgumentError(f"set_num_threads: n must be an int in [1, 4096], got {n!r}")
        self._lib.MKL_Set_Num_Threads(int(n))
        self._lib.MKL_Set_Num_Threads_Local(0)  # 0: this thread follows the global count

    def max_threads(self) -> int:
        """Threads the next MKL call may use (``MKL_Get_Max_Threads``)."""
        return int(self._lib.MKL_Get_Max_Threads())

    def sgemm(
        self,
        a: np.ndarray,
        b: np.ndarray,
        trans_a: bool,
        trans_b: bool,
        out: np.ndarray | None = None,
    ) -> np.ndarray:
        """float32 ``op(a) @ op(b)`` with row-major ``cblas_sgemm``; ``op(x)`` is ``x.T`` if asked.

        F-contiguous inputs are passed as their C-contiguous transpose with the flag flipped,
        so no copy is made; other layouts are copied. ``out`` (M×N float32) receives the result
        directly when it is C-contiguous and does not overlap ``a``/``b``, else via a copy.
        """
        sa, ta = row_major(_check_2d(a, "a", (_F32,)), _F32, trans_a)
        sb, tb = row_major(_check_2d(b, "b", (_F32,)), _F32, trans_b)
        m, k = op_shape(sa, ta)
        k_b, n = op_shape(sb, tb)
        if k != k_b:
            raise ArgumentError(f"sgemm: op(a) is {m}x{k} but op(b) is {k_b}x{n}")
        c, result = _output(out, (m, n), _F32, (a, b))
        if m and n:
            if k == 0:
                c.fill(0)
            else:
                _check_int(m, n, k)
                lda, ldb, ldc = leading_dim(sa), leading_dim(sb), leading_dim(c)
                _check_int(lda, ldb, ldc)
                self._lib.cblas_sgemm(
                    _CBLAS_ROW_MAJOR, _trans(ta), _trans(tb), m, n, k,
                    1.0, address(sa), lda, address(sb), ldb, 0.0, address(c), ldc,
                )
                self._check("sgemm")
        if result is not c:
            result[...] = c
        return result

    def gemm_s8u8s32(
        self, a: np.ndarray, b: np.ndarray, a_zero_point, b_zero_point
    ) -> np.ndarray:
        """Exact int32 ``(a - za) @ (b - zb)`` for int8/uint8 ``a`` (M×K) and ``b`` (K×N).

        Zero points are scalars or per-row of ``a`` (shape (M,)) / per-column of ``b`` (shape
        (N,)). Every dtype combination is mapped onto MKL's only row-major kernel, uint8 A ×
        int8 B: ``a ^ 0x80`` is ``a + 128`` for int8 ``a`` and ``b ^ 0x80`` is ``b - 128`` for
        uint8 ``b`` (bit for bit, one vectorized pass), with the zero points shifted alike. MKL
        applies scalar zero points itself when ``-zero_point`` fits its int8 offsets; otherwise
        (and for vector zero points) it computes the plain product and the host corrects it.
        Exact whenever the true result fits int32 (see ``int32_accumulation_is_safe``).
        """
        a = _check_2d(a, "a", (_U8, _S8))
        b = _check_2d(b, "b", (_U8, _S8))
        m, k = a.shape
        k_b, n = b.shape
        if k != k_b:
            raise ArgumentError(f"gemm_s8u8s32: a is {m}x{k} but b is {k_b}x{n}")
        za = _zero_point(a_zero_point, a.dtype, m, "a_zero_point")
        zb = _zero_point(b_zero_point, b.dtype, n, "b_zero_point")
        if a.dtype == _S8:
            a = np.bitwise_xor(a.view(_U8), np.uint8(0x80))  # int8 -> uint8: +128
            za = za + 128
        if b.dtype == _U8:
            b = np.bitwise_xor(b, np.uint8(0x80)).view(_S8)  # uint8 -> int8: -128
            zb = zb - 128
        if m == 0 or n == 0 or k == 0:
            return np.zeros((m, n), dtype=_I32)
        _check_int(m, n, k)
        on_device = np.ndim(za) == 0 and np.ndim(zb) == 0 and -127 <= za <= 128
        on_device = on_device and -127 <= zb <= 128  # i.e. -za and -zb fit MKL_INT8
        ao, bo = (-int(za), -int(zb)) if on_device else (0, 0)
        sa, ta = row_major(a, _U8, False)
        sb, tb = row_major(b, _S8, False)
        raw = self._s8u8s32_chunked(sa, ta, sb, tb, m, n, k, ao, bo)
        if on_device:
            return raw if raw.dtype == _I32 else raw.astype(_I32)
        return zero_point_correction(raw, a, b, za, zb)

    def _s8u8s32_chunked(
        self, sa: np.ndarray, ta: bool, sb: np.ndarray, tb: bool,
        m: int, n: int, k: int, ao: int, bo: int,
    ) -> np.ndarray:
        """``(op(A) + ao) @ (op(B) + bo)``: int32 for K <= _K_CHUNK, else int64 chunk sums.

        Chunks are strided views of the same buffers (columns of a row-major operand are
        reached through its leading dimension), so nothing is copied.
        """
        if k <= _K_CHUNK:
            return self._s8u8s32_call(sa, ta, sb, tb, m, n, k, ao, bo)
        total = np.zeros((m, n), dtype=np.int64)
        for k0 in range(0, k, _K_CHUNK):
            k1 = min(k, k0 + _K_CHUNK)
            ca = sa[k0:k1, :] if ta else sa[:, k0:k1]  # stored K×M if transposed, else M×K
            cb = sb[:, k0:k1] if tb else sb[k0:k1, :]  # stored N×K if transposed, else K×N
            total += self._s8u8s32_call(ca, ta, cb, tb, m, n, k1 - k0, ao, bo)
        return total

    def _s8u8s32_call(
        self, sa: np.ndarray, ta: bool, sb: np.ndarray, tb: bool,
        m: int, n: int, k: int, ao: int, bo: int,
    ) -> np.ndarray:
        """One row-major ``cblas_gemm_s8u8s32`` with a fixed zero ``co``; checks every operand."""
        if not (sa.dtype == _U8 and sb.dtype == _S8 and -128 <= ao <= 127 and -128 <= bo <= 127):
            raise AssertionError("gemm_s8u8s32: internal operand/offset mismatch")
        if op_shape(sa, ta) != (m, k) or op_shape(sb, tb) != (k, n):
            raise AssertionError("gemm_s8u8s32: internal shape mismatch")
        lda, ldb = leading_dim(sa), leading_dim(sb)
        _check_int(lda, ldb)
        c = np.empty((m, n), dtype=_I32)
        co = np.zeros(1, dtype=_I32)  # CblasFixOffset reads exactly co[0]
        self._lib.cblas_gemm_s8u8s32(
            _CBLAS_ROW_MAJOR, _trans(ta), _trans(tb), _CBLAS_FIX_OFFSET, m, n, k,
            1.0, sa.ctypes.data, lda, ao, sb.ctypes.data, ldb, bo,
            0.0, c.ctypes.data, n, co.ctypes.data,
        )
        self._check("gemm_s8u8s32")
        return c


def _trans(flag: bool) -> int:
    return _CBLAS_TRANS if flag else _CBLAS_NO_TRANS


def _check_2d(x: np.ndarray, name: str, dtypes: tuple[np.dtype, ...]) -> np.ndarray:
    """A 2-D ndarray of one of ``dtypes`` (any byte order), or ArgumentError/DTypeError."""
    if not isinstance(x, np.ndarray):
        raise ArgumentError(f"{name} must be a numpy.ndarray, got {type(x).__name__}")
    if x.ndim != 2:
        raise ArgumentError(f"{name} must be 2-D, got shape {x.shape}")
    if x.dtype.newbyteorder("=") not in dtypes:
        names = " or ".join(str(d) for d in dtypes)
        raise DTypeError(f"{name} must be {names}, got {x.dtype}")
    return x


def _check_int(*values: int) -> None:
    """LP64 MKL takes 32-bit dimensions, and ctypes truncates larger ints silently."""
    if any(v > _MKL_INT_MAX for v in values):
        raise ArgumentError(f"dimension {max(values)} exceeds MKL's 32-bit MKL_INT")


def _output(
    out: np.ndarray | None, shape: tuple[int, int], dtype: np.dtype, inputs: tuple[np.ndarray, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """``(c, result)``: MKL writes ``c``; if ``c`` is not ``result``, copy ``c`` into it."""
    if out is None:
        c = np.empty(shape, dtype=dtype)
        return c, c
    if not isinstance(out, np.ndarray) or out.shape != shape:
        got = out.shape if isinstance(out, np.ndarray) else type(out).__name__
        raise ArgumentError(f"out must be an ndarray of shape {shape}, got {got}")
    if out.dtype != dtype:
        raise DTypeError(f"out must be {dtype}, got {out.dtype}")
    if not out.flags.writeable:
        raise ArgumentError("out is read-only")
    direct = out.flags.c_contiguous and out.flags.aligned
    if direct and not any(np.may_share_memory(out, x) for x in inputs):
        return out, out
    return np.empty(shape, dtype=dtype), out


def _zero_point(zp, dtype: np.dtype, length: int, name: str) -> np.int64 | np.ndarray:
    """int64 scalar, or int64 vector of ``length`` (collapsed to a scalar when uniform)."""
    z = np.asarray(zp)
    if z.dtype.kind not in "iu":
        raise DTypeError(f"{name} must be an integer or integer array, got {z.dtype}")
    info = np.iinfo(dtype)
    if z.size and (z.min() < info.min or z.max() > info.max):
        raise ArgumentError(f"{name} must lie in [{info.min}, {info.max}] for {dtype} input")
    if z.ndim == 0:
        return np.int64(z)
    if z.shape != (length,):
        raise ArgumentError(f"{name} must be a scalar or have shape ({length},), got {z.shape}")
    z = z.astype(np.int64)
    if length and np.all(z == z[0]):
        return np.int64(z[0])
    return z


def _candidates() -> list[str]:
    """Where to look for libmkl_rt, in order; an explicit HWBENCH_MKL_LIBRARY is the only one."""
    explicit = os.environ.get(MKL_LIBRARY_ENV)
    if explicit:
        return [explicit]
    found = [os.path.join(sys.prefix, "lib", f"libmkl_rt.so.{v}") for v in (3, 2)]
    found = [p for p in found if os.path.exists(p)]
    system = ctypes.util.find_library("mkl_rt")
    if system:
        found.append(system)
    return found


@functools.cache
def load_mkl() -> Mkl:
    """The process's :class:`Mkl`; BackendUnavailableError (saying how to get MKL) if none."""
    candidates = _candidates()
    if not candidates:
        raise BackendUnavailableError(f"Intel MKL (libmkl_rt) was not found; {_INSTALL_HINT}")
    failures = []
    set_openmp_wait_policy()  # MKL's GNU threading layer loads the same libgomp
    for path in candidates:
        try:
            lib = ctypes.CDLL(path)
        except OSError as exc:
            failures.append(f"{path}: {exc}")
            continue
        return Mkl(lib, path)
    raise BackendUnavailableError(
        f"Intel MKL could not be loaded ({'; '.join(failures)}); {_INSTALL_HINT}"
    )


def mkl_available() -> tuple[bool, str]:
    """``(True, description)`` or ``(False, why)``; never raises."""
    try:
        mkl = load_mkl()
    except Exception as exc:  # noqa: BLE001 - availability probes must not raise
        return False, str(exc)
    return True, f"{mkl.version} ({mkl.path})"
