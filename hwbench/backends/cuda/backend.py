"""The ``cuda`` backend: the kernel interface on an NVIDIA GPU, data in CuPy arrays.

Names: ``cuda`` (device 0) or ``cuda:N``. Options: ``math_mode`` ("fp32" unless named:
"tf32", "fp16", "bf16"; recorded in ``info()``), ``int8_gemm`` ("auto": cuBLASLt's IMMA
kernels when they load and pass a self-check, else cublasGemmEx; or "cublaslt"/"cublas"),
``conv`` ("auto": cuDNN when libcudnn.so.9 loads, else im2col + cuBLAS; or "cudnn" /
"im2col").

Where each op runs:

- gemm: cuBLAS ``cublasGemmEx`` on float32 data, the compute type naming the math mode
  (``layout.GEMM_COMPUTE_TYPES``), on the backend's own handle (DEFAULT_MATH: nothing that
  CuPy's ``CUPY_TF32`` or another library sets on the shared handle changes it).
- gemm_int8 / qgemm / conv2d_int8 / qconv2d: exact int32 through cuBLASLt or cublasGemmEx
  with int8 operands in the TN form (``layout.int8_tn_gemm``): uint8 is moved to int8 as
  x - 128 on the way (zero points alike), K is zero-padded to the library's multiple
  (``layout.int8_padding``; recorded in ``info()['int8_gemm_padding']``), and zero points
  are corrected on the GPU from row and column sums. Convolutions are im2row (one row of
  taps per output pixel, uint8 flipped on the fly) times the filters, which are already
  K-contiguous. ``cupy.matmul`` is never used for int8: it returns int8 and overflows.
- conv2d: cuDNN (``cudnn.Cudnn``; algorithm searched once per shape; bias, shortcut and
  relu fused into the convolution call), asymmetric ONNX padding made symmetric by padding
  the input explicitly first (``layout.split_padding``); without cuDNN, im2row + cuBLAS
  with one fused epilogue kernel. Everything stays on the GPU.
- everything else: CuPy kernels (``kernels.Kernels``) and CuPy's own reductions.

Timing: ``synchronize()`` waits for the device, which is what the harness's loop times
around; ``runtime.event_seconds`` times with CUDA events. CUDA-graph capture of small
models is not implemented.

Status: NOT YET RUN ON A GPU. Written against CuPy 14, cuBLAS/cuBLASLt 13 and cuDNN 9's
documented APIs; the CPU-side logic is tested in tests/test_cuda_unit.py and
``scripts/gpu-check.sh`` runs everything else on the lent H100 in one call.
"""

from __future__ import annotations

import functools
from dataclasses import replace
from typing import Any

import numpy as np

from hwbench.backends.base import Backend
from hwbench.backends.cuda import layout, runtime
from hwbench.backends.cuda.binary import BinaryKernelsCuda
from hwbench.backends.cuda.cast import CastKernelsCuda
from hwbench.backends.cuda.integer import IntegerKernelsCuda
from hwbench.backends.cuda.kernels import Kernels
from hwbench.backends.cuda.reductions import ReductionKernels
from hwbench.backends.cuda.tensor_ops import TensorOpsKernels
from hwbench.backends.cuda.unary import UnaryKernels
from hwbench.backends.cuda.upsampling import UpsamplingKernels
from hwbench.errors import BackendUnavailableError, UnsupportedError
from hwbench.kernels import spec
from hwbench.kernels.quantization import along_axis

INT8_GEMMS = ("auto", "cublaslt", "cublas")
CONVS = ("auto", "cudnn", "im2col")
_UINT8 = np.dtype(np.uint8)
_INT8 = np.dtype(np.int8)


def _on_gpu(what: str):
    """Run a kernel method with GPU errors translated (``runtime.gpu_errors``)."""
    def wrap(method):
        @functools.wraps(method)
        def call(self, *args, **kwargs):
            with runtime.gpu_errors(what):
                return method(self, *args, **kwargs)
        return call
    return wrap


class CudaBackend(IntegerKernelsCuda,
                  ReductionKernels, UnaryKernels, TensorOpsKernels, BinaryKernelsCuda,
                  UpsamplingKernels, CastKernelsCuda, Backend):
    name = "cuda"
    float_precision = "fp32"  # the default math_mode; an instance's math_mode says tf32/fp16/bf16
    fuses_conv_epilogue = True

    @classmethod
    def sweep_resources(cls, device: str | None) -> dict[str, Any]:
        """A GPU from Ray (which sets CUDA_VISIBLE_DEVICES), not the host's timing slot."""
        return {"num_gpus": 1, "resources": {"hwbench_cuda": 1}, "host_timed": False}

    @classmethod
    def node_resources(cls, devices: list[str]) -> dict[str, float]:
        return {"hwbench_cuda": float(len(devices) or 1)}  # one per GPU

    def __init__(self, device: str | None = None, *, threads: int | None = None,
                 check_finite: bool = True, math_mode: str = "fp32", int8_gemm: str = "auto",
                 conv: str = "auto") -> None:
        # Options first: a bad one is reported even on a machine without a GPU.
        self.math_mode = runtime.check_math_mode(math_mode)
        self.int8_gemm_choice = runtime.check_choice(int8_gemm, "int8_gemm", INT8_GEMMS)
        self.conv_choice = runtime.check_choice(conv, "conv", CONVS)
        ok, why = runtime.availability()
        if not ok:
            raise runtime.unavailable(why)
        super().__init__(device, threads=threads, check_finite=check_finite)
        cp = runtime.load_cupy()
        self.cp = cp
        self.index = runtime.select_device(device, int(cp.cuda.runtime.getDeviceCount()))
        with runtime.gpu_errors("initialising the device"):
            # One device per process: make it current for every CuPy call that follows.
            self.dev = cp.cuda.Device(self.index)
            self.dev.use()
            from cupy_backends.cuda.libs import cublas

            self.cublas = cublas
            self.blas_handle = cublas.create()
            cublas.setMathMode(self.blas_handle, layout.CUBLAS_DEFAULT_MATH)
        self.kernels = Kernels(cp)
        self._consts: dict[tuple, Any] = {}
        self._dnn: Any = None
        self._dnn_why = ""
        self._dnn_loaded = False
        self._lt: Any = None
        self._lt_why = ""
        self._lt_loaded = False
        self.int8_padding: dict[tuple[int, int, int], str] = {}  # (M, N, K) -> what was padded
        self.conv_fallbacks: dict[str, str] = {}  # problem -> why cuDNN was not used

    # -- discovery -------------------------------------------------------------------------
    @classmethod
    def available(cls) -> tuple[bool, str]:
        return runtime.availability()

    @classmethod
    def devices(cls) -> list[str]:
        try:
            count = int(runtime.load_cupy().cuda.runtime.getDeviceCount())
        except Exception:  # noqa: BLE001 - devices never raise
            return []
        return [str(i) for i in range(count)]

    @classmethod
    def versions(cls) -> dict[str, str]:
        try:
            return runtime.versions(runtime.load_cupy())
        except Exception:  # noqa: BLE001 - versions never raise
            return {}

    def info(self) -> dict[str, Any]:
        props = self.cp.cuda.runtime.getDeviceProperties(self.index)
        name = props["name"]
        dnn, lt = self._cudnn(), self._cublaslt()
        info = super().info()
        info.update(
            device=str(self.index), device_name=name.decode() if isinstance(name, bytes)
            else str(name), compute_capability=f"{props['major']}.{props['minor']}",
            memory_gib=round(props["totalGlobalMem"] / 2**30, 1), math_mode=self.math_mode,
            cublas=str(self.cublas.getVersion(self.blas_handle)),
            gemm_compute_type=layout.GEMM_COMPUTE_TYPES[self.math_mode],
            conv_library=f"cudnn {dnn.version_string}" if dnn else "im2col + cuBLAS",
            cudnn_path=dnn.path if dnn else self._dnn_why,
            int8_gemm=f"cuBLASLt IMMA ({lt.version})" if lt else "cublasGemmEx",
            int8_gemm_note=self._lt_why,
            int8_gemm_padding=dict(self.int8_padding) or "none",
            conv_fallbacks=dict(self.conv_fallbacks) or "none",
            cuda_graphs="not used")
        return info

    # -- libraries, loaded on first use ----------------------------------------------------
    def _cudnn(self) -> Any:
        if not self._dnn_loaded:
            self._dnn_loaded = True
            if self.conv_choice == "im2col":
                self._dnn_why = "not used (conv='im2col')"
            else:
                from hwbench.backends.cuda import cudnn

                self._dnn, self._dnn_why = cudnn.load(self.cp)
                if self._dnn is None and self.conv_choice == "cudnn":
                    raise BackendUnavailableError(f"cuda: conv='cudnn' but {self._dnn_why}")
        return self._dnn

    def _cublaslt(self) -> Any:
        if not self._lt_loaded:
            self._lt_loaded = True
            if self.int8_gemm_choice == "cublas":
                self._lt_why = "cuBLASLt not used (int8_gemm='cublas')"
            else:
                from hwbench.backends.cuda import cublaslt

                lt, why = cublaslt.load(self.cp)
                if lt is not None:
                    why = self._self_check(lt)
                    lt = None if why else lt
                self._lt, self._lt_why = lt, why
                if lt is None and self.int8_gemm_choice == "cublaslt":
                    raise BackendUnavailableError(f"cuda: int8_gemm='cublaslt' but {why}")
        return self._lt

    def _self_check(self, lt: Any) -> str:
        """"" if cuBLASLt's int8 GEMM equals cublasGemmEx's and the int64 product on a
        random problem with extreme rows, else why it is not used."""
        rng = np.random.default_rng(0)
        a = rng.integers(-128, 128, (64, 96)).astype(np.int8)
        bt = rng.integers(-128, 128, (80, 96)).astype(np.int8)
        a[0], bt[0] = -128, -128
        want = a.astype(np.int64) @ bt.T.astype(np.int64)
        try:
            with runtime.gpu_errors("cuBLASLt self-check"):
                out = self.cp.empty((64, 80), np.int32)
                lt.matmul(lt.plan(64, 80, 96), self.cp.asarray(a), self.cp.asarray(bt), out)
                got = self.cp.asnumpy(out)
        except Exception as exc:  # noqa: BLE001 - any failure: the exact fallback
            return f"cuBLASLt failed its self-check ({exc}); cublasGemmEx is used"
        if not np.array_equal(got, want):
            bad = int(np.count_nonzero(got != want))
            return f"cuBLASLt int8 GEMM disagreed with int64 in {bad} of 5120 entries; " \
                   f"cublasGemmEx is used"
        return ""

    # -- memory ----------------------------------------------------------------------------
    def asarray(self, x: Any) -> Any:
        if isinstance(x, self.cp.ndarray):
            return x
        host = np.asarray(x)
        if not host.flags.c_contiguous:  # (np.ascontiguousarray would make 0-d arrays 1-d)
            host = np.ascontiguousarray(host)
        with runtime.gpu_errors(f"copying {host.nbytes} bytes to the GPU"):
            return self.cp.asarray(host)

    def to_numpy(self, x: Any) -> np.ndarray:
        if isinstance(x, np.ndarray):
            return x
        with runtime.gpu_errors("copying to the host"):
            return self.cp.asnumpy(x)

    def empty(self, shape: tuple[int, ...], dtype: Any = np.float32) -> Any:
        with runtime.gpu_errors(f"allocating {tuple(shape)} {np.dtype(dtype)}"):
            return self.cp.empty(tuple(shape), dtype)

    def synchronize(self) -> None:
        with runtime.gpu_errors("synchronize"):
            self.dev.synchronize()

    def _all_finite(self, x: Any) -> bool:
        """The NaN/inf screen on the GPU: one reduction, one bool read back."""
        if isinstance(x, self.cp.ndarray) and x.dtype.kind == "f":
            with runtime.gpu_errors("checking for NaN"):
                return bool(self.cp.isfinite(x).all())
        return super()._all_finite(x)

    def _dev(self, x: Any) -> Any:
        return None if x is None else self.asarray(x)

    def _const(self, values: Any, dtype: Any) -> Any:
        """A small host parameter (scales, zero points, multipliers) on the GPU, uploaded
        once per distinct value."""
        host = np.ascontiguousarray(values, dtype=dtype)
        key = (host.dtype.str, host.shape, host.tobytes())
        device = self._consts.get(key)
        if device is None:
            if len(self._consts) > 4096:
                self._consts.clear()
            device = self._consts[key] = self.cp.asarray(host)
        return device

    # -- float GEMM ------------------------------------------------------------------------
    def _row_major(self, x: Any, trans: bool) -> tuple[Any, bool]:
        """``(stored, flag)``: ``stored`` C-contiguous with op(x) = stored(.T if flag)."""
        if x.flags.c_contiguous:
            return x, trans
        if x.flags.f_contiguous:
            return x.T, not trans
        return self.cp.ascontiguousarray(x), trans

    def _sgemm(self, a: Any, trans_a: bool, b: Any, trans_b: bool, out: Any, m: int, n: int,
               k: int, beta: float = 0.0) -> None:
        """out[m, n] = op(a) @ op(b) + beta * out; a, b C-contiguous float32."""
        cm = layout.row_major_gemm(m, n, k, trans_a, trans_b, a.shape[1], b.shape[1])
        alpha_h, beta_h = np.array(1.0, np.float32), np.array(beta, np.float32)
        self.cublas.setStream(self.blas_handle, self.cp.cuda.get_current_stream().ptr)
        self.cublas.gemmEx(
            self.blas_handle, cm.transa, cm.transb, cm.m, cm.n, cm.k, alpha_h.ctypes.data,
            b.data.ptr, layout.CUDA_R_32F, cm.lda, a.data.ptr, layout.CUDA_R_32F, cm.ldb,
            beta_h.ctypes.data, out.data.ptr, layout.CUDA_R_32F, cm.ldc,
            layout.GEMM_COMPUTE_TYPES[self.math_mode], layout.CUBLAS_GEMM_DEFAULT)

    @_on_gpu("gemm")
    def _gemm(self, p: spec.GemmProblem, a, b, bias) -> Any:
        a_s, ta = self._row_major(self._dev(a), p.trans_a)
        b_s, tb = self._row_major(self._dev(b), p.trans_b)
        out = self.cp.empty((p.m, p.n), self.cp.float32)
        beta = 0.0
        if bias is not None:  # ONNX Gemm's C, broadcast into the output, beta = 1
            out[...] = self._dev(bias)
            beta = 1.0
        self._sgemm(a_s, ta, b_s, tb, out, p.m, p.n, p.k, beta)
        return out

    # -- int8 GEMM -------------------------------------------------------------------------
    def _int8_library(self) -> str:
        return "cublaslt" if self._cublaslt() is not None else "cublas"

    def _int8_rows(self, x: Any, rows: int, cols: int) -> Any:
        """(r, c) uint8/int8 (any strides) as a C-contiguous (rows, cols) int8 array,
        uint8 shifted by -128, zero-padded where rows > r or cols > c."""
        r, c = x.shape
        if (r, c) == (rows, cols) and x.dtype == _INT8 and x.flags.c_contiguous:
            return x
        padded = (r, c) != (rows, cols)
        buf = (self.cp.zeros if padded else self.cp.empty)((rows, cols), self.cp.int8)
        view = buf[:r, :c] if padded else buf
        if x.dtype == _UINT8:
            self.kernels.to_int8(x, view)
        else:
            view[...] = x
        return buf

    def _int8_tn(self, a8: Any, bt8: Any, library: str) -> Any:
        """(m, n) int32 = a8 (m, k) @ bt8 (n, k)^T, exact; dims already padded."""
        m, k = a8.shape
        n = bt8.shape[0]
        out = self.cp.empty((m, n), self.cp.int32)
        if library == "cublaslt":
            lt = self._cublaslt()
            try:
                lt.matmul(lt.plan(m, n, k), a8, bt8, out)
                return out
            except UnsupportedError as exc:  # this shape: the exact fallback, said once
                self.int8_padding.setdefault((m, n, k), f"cublasGemmEx ({exc})")
                if k % layout.INT8_ALIGNMENT["cublas"].k:
                    raise
        cm = layout.int8_tn_gemm(m, n, k)
        one, zero = np.array(1, np.int32), np.array(0, np.int32)
        self.cublas.setStream(self.blas_handle, self.cp.cuda.get_current_stream().ptr)
        self.cublas.gemmEx(
            self.blas_handle, cm.transa, cm.transb, cm.m, cm.n, cm.k, one.ctypes.data,
            bt8.data.ptr, layout.CUDA_R_8I, cm.lda, a8.data.ptr, layout.CUDA_R_8I, cm.ldb,
            zero.ctypes.data, out.data.ptr, layout.CUDA_R_32I, cm.ldc,
            layout.CUBLAS_COMPUTE_32I, layout.CUBLAS_GEMM_DEFAULT)
        return out

    def _shifted(self, zp: np.ndarray, dtype: np.dtype) -> np.ndarray:
        """A zero point in the int8 domain the operands were moved to."""
        zp = np.asarray(zp, np.int64)
        return zp - 128 if dtype == _UINT8 else zp

    def _int8_product(self, m: int, a: Any, bt: Any, za: np.ndarray, zb: np.ndarray,
                      a_prepared: Any = None) -> Any:
        """(A - za) @ (Bt - zb)^T, exact int32, (m, N) C-contiguous. ``a``: (m, K) 8-bit,
        or None with ``a_prepared`` an int8 buffer of its rows already padded (im2row's);
        ``bt``: (N, K) 8-bit, any strides; ``za`` scalar or per row of A, ``zb`` scalar or
        per row of Bt, both already in the int8 domain (``_shifted``)."""
        library = self._int8_library()
        n, k = bt.shape
        mp, np_, kp = layout.int8_padding(m, n, k, library)
        a8 = a_prepared if a_prepared is not None else self._int8_rows(a, mp, kp)
        bt8 = self._int8_rows(bt, np_, kp)
        note = layout.describe_padding((m, n, k), (mp, np_, kp))
        if note:
            self.int8_padding[(m, n, k)] = f"{note} ({library})"
        raw = self._int8_tn(a8, bt8, library)
        if (mp, np_) != (m, n):
            raw = raw[:m, :n]
        if not (np.any(za) or np.any(zb)):
            return raw if raw.flags.c_contiguous else self.cp.ascontiguousarray(raw)
        cp = self.cp
        rowsum = (a8[:m].sum(axis=1, dtype=cp.int64).reshape(m, 1) if np.any(zb)
                  else cp.zeros((1, 1), cp.int64))
        colsum = (bt8[:n].sum(axis=1, dtype=cp.int64).reshape(1, n) if np.any(za)
                  else cp.zeros((1, 1), cp.int64))
        za_d = self._const(za.reshape(-1, 1) if za.ndim else za.reshape(1, 1), np.int64)
        zb_d = self._const(zb.reshape(1, -1) if zb.ndim else zb.reshape(1, 1), np.int64)
        return self.kernels.zero_point_correction(raw, rowsum, colsum, za_d, zb_d, k)

    def _int8_gemm(self, p: spec.Int8GemmProblem, a, b, za, zb) -> Any:
        a, b = self._dev(a), self._dev(b)
        return self._int8_product(p.m, a, b.T, self._shifted(za, a.dtype),
                                  self._shifted(zb, b.dtype))

    @_on_gpu("gemm_int8")
    def _gemm_int8(self, p: spec.Int8GemmProblem, a, b, za, zb) -> Any:
        return self._int8_gemm(p, a, b, za, zb)

    @_on_gpu("qgemm")
    def _qgemm(self, p: spec.Int8GemmProblem, a, b, za, zb, fixed, zy) -> Any:
        return self._requantize(self._int8_gemm(p, a, b, za, zb), fixed, zy, axis=1)

    def _requantize(self, acc: Any, fixed: Any, zy: np.ndarray, axis: int,
                    bias: Any = None) -> Any:
        """int32 ``acc`` -> ``zy``'s dtype with per-tensor or per-``axis`` multipliers."""
        rank = acc.ndim
        mult = self._const(along_axis(fixed.multiplier, axis, rank), np.int64)
        shift = self._const(along_axis(fixed.right_shift, axis, rank), np.int64)
        if bias is not None:
            shape = [1] * rank
            shape[axis] = -1
            bias = self._dev(bias).reshape(shape)
        return self.kernels.requantize(acc, mult, shift, int(zy), zy.dtype, bias)

    # -- int8 convolution ------------------------------------------------------------------
    def _int8_conv_rows(self, p: spec.Int8ConvProblem, x: Any, w: Any, zx: np.ndarray,
                        zw: np.ndarray) -> Any:
        """ConvInteger as (N·OH·OW, K) int32, channels last: per group, im2row patches
        (uint8 flipped to int8 on the fly, padding holding the x zero point) times the
        group's filters, which OIHW already stores K-contiguous."""
        library = self._int8_library()
        pixels = p.n * p.out_h * p.out_w
        kg, cg = p.k // p.groups, p.c // p.groups
        taps = cg * p.r * p.s
        zx_s = self._shifted(zx, x.dtype)
        zw_s = self._shifted(zw, w.dtype)
        filters = w.reshape(p.k, taps)
        out = None if p.groups == 1 else self.cp.empty((pixels, p.k), self.cp.int32)
        for g in range(p.groups):
            mp, _, kp = layout.int8_padding(pixels, kg, taps, library)
            padded = (mp, kp) != (pixels, taps)
            rows = (self.cp.zeros if padded else self.cp.empty)((mp, kp), self.cp.int8)
            self.kernels.im2row(x, rows, p, g * cg, cg, pad=zx.item(),
                                to_int8=x.dtype == _UINT8)
            zb = zw_s if zw_s.ndim == 0 else zw_s[g * kg:(g + 1) * kg]
            part = self._int8_product(pixels, None, filters[g * kg:(g + 1) * kg], zx_s, zb,
                                      a_prepared=rows)
            if out is None:
                return part
            out[:, g * kg:(g + 1) * kg] = part
        return out

    def _nchw(self, rows: Any, p: spec.ConvProblem) -> Any:
        return self.cp.ascontiguousarray(
            rows.reshape(p.n, p.out_h, p.out_w, p.k).transpose(0, 3, 1, 2))

    @_on_gpu("conv2d_int8")
    def _conv2d_int8(self, p: spec.Int8ConvProblem, x, w, zx, zw) -> Any:
        x, w = self.cp.ascontiguousarray(self._dev(x)), self.cp.ascontiguousarray(self._dev(w))
        return self._nchw(self._int8_conv_rows(p, x, w, zx, zw), p)

    @_on_gpu("qconv2d")
    def _qconv2d(self, p: spec.Int8ConvProblem, x, w, zx, zw, bias, fixed, zy) -> Any:
        x, w = self.cp.ascontiguousarray(self._dev(x)), self.cp.ascontiguousarray(self._dev(w))
        rows = self._int8_conv_rows(p, x, w, zx, zw)  # filters along the last axis
        return self._nchw(self._requantize(rows, fixed, zy, axis=1, bias=bias), p)

    @_on_gpu("quantize_linear")
    def _quantize_linear(self, p: spec.QuantizeProblem, x, scale, zero_point) -> Any:
        rank = len(p.shape)
        s = self._const(along_axis(scale, p.axis, rank), np.float32)
        z = self._const(along_axis(zero_point.astype(np.float32), p.axis, rank), np.float32)
        return self.kernels.quantize(self._dev(x), s, z, zero_point.dtype)

    @_on_gpu("dequantize_linear")
    def _dequantize_linear(self, p: spec.QuantizeProblem, x, scale, zero_point) -> Any:
        x = self._dev(x)
        rank = len(p.shape)
        s = self._const(along_axis(scale, p.axis, rank), np.float32)
        zdtype = np.int32 if x.dtype == np.int32 else np.float32
        z = self._const(along_axis(zero_point.astype(zdtype), p.axis, rank), zdtype)
        return self.kernels.dequantize(x, s, z)

    # -- float convolution -----------------------------------------------------------------
    @_on_gpu("conv2d")
    def _conv2d(self, p: spec.ConvProblem, x, w, bias, residual=None,
                activation: str | None = None) -> Any:
        x, w = self.cp.ascontiguousarray(self._dev(x)), self.cp.ascontiguousarray(self._dev(w))
        bias, residual = self._dev(bias), self._dev(residual)
        relu = activation == "relu"
        dnn = self._cudnn()
        if dnn is not None and str(p) not in self.conv_fallbacks:
            try:
                return self._conv_cudnn(dnn, p, x, w, bias, residual, relu)
            except UnsupportedError as exc:
                if self.conv_choice == "cudnn":
                    raise
                self.conv_fallbacks[str(p)] = str(exc)
        return self._conv_im2row(p, x, w, bias, residual, relu)

    def _conv_cudnn(self, dnn: Any, p: spec.ConvProblem, x, w, bias, residual, relu: bool) -> Any:
        cp = self.cp
        explicit, (ph, pw) = layout.split_padding(p.padding)
        q = replace(p, padding=(ph, pw, ph, pw))
        if any(explicit):  # cuDNN pads symmetrically: write the difference around x first
            top, left, bottom, right = explicit
            xp = cp.zeros((p.n, p.c, p.h + top + bottom, p.w + left + right), cp.float32)
            xp[:, :, top:top + p.h, left:left + p.w] = x
            x = xp
            q = replace(q, h=xp.shape[2], w=xp.shape[3])
        plan = dnn.plan(q, self.math_mode)
        if self.math_mode == "fp16":
            xin, win = x.astype(cp.float16), w.astype(cp.float16)
            y = cp.empty(p.output_shape, cp.float16)
        elif self.math_mode == "bf16":
            xin, win = self.kernels.to_bfloat16(x), self.kernels.to_bfloat16(w)
            y = cp.empty(p.output_shape, cp.uint16)
        else:
            xin, win = x, w
            y = cp.empty(p.output_shape, cp.float32)
        bias_c = None if bias is None else cp.ascontiguousarray(bias)
        res_c = None if residual is None else cp.ascontiguousarray(residual)
        if dnn.forward(plan, xin, win, y, bias_c, res_c, relu):
            return y
        if bias_c is None and res_c is None and not relu and y.dtype == cp.float32:
            return y
        source = {"fp16": "float16", "bf16": "bfloat16"}.get(self.math_mode, "float32")
        out = y if y.dtype == cp.float32 else cp.empty(p.output_shape, cp.float32)
        return self.kernels.epilogue(y, out, None if bias_c is None
                                     else bias_c.reshape(1, -1, 1, 1), res_c, relu, source)

    def _conv_im2row(self, p: spec.ConvProblem, x, w, bias, residual, relu: bool) -> Any:
        """The lowering without cuDNN: per group, im2row patches (pixels × C/g·R·S) times
        the group's filters transposed, into channels-last rows; one epilogue kernel then
        adds bias and shortcut, applies relu and writes NCHW."""
        cp = self.cp
        pixels = p.n * p.out_h * p.out_w
        kg, cg = p.k // p.groups, p.c // p.groups
        taps = cg * p.r * p.s
        rows = cp.empty((pixels, taps), cp.float32)
        out_rows = cp.empty((pixels, p.k), cp.float32)
        filters = w.reshape(p.k, taps)
        for g in range(p.groups):
            self.kernels.im2row(x, rows, p, g * cg, cg, pad=0.0)
            target = out_rows if p.groups == 1 else cp.empty((pixels, kg), cp.float32)
            self._sgemm(rows, False, filters[g * kg:(g + 1) * kg], True, target, pixels, kg,
                        taps)
            if p.groups > 1:
                out_rows[:, g * kg:(g + 1) * kg] = target
        nchw = out_rows.reshape(p.n, p.out_h, p.out_w, p.k).transpose(0, 3, 1, 2)
        out = cp.empty(p.output_shape, cp.float32)
        return self.kernels.epilogue(nchw, out, None if bias is None
                                     else bias.reshape(1, -1, 1, 1), residual, relu)

    # -- elementwise -----------------------------------------------------------------------
    @_on_gpu("sigmoid")
    def _sigmoid(self, p: spec.ElementwiseProblem, x) -> Any:
        return self.kernels.sigmoid(self._dev(x))

    @_on_gpu("sigmoid_backward")
    def _sigmoid_backward(self, p: spec.ElementwiseProblem, y, dy) -> Any:
        return self.kernels.sigmoid_backward(self._dev(y), self._dev(dy))

    @_on_gpu("relu")
    def _relu(self, p: spec.ElementwiseProblem, x) -> Any:
        return self.kernels.relu(self._dev(x))

    # -- the ops full CNNs need ------------------------------------------------------------
    @_on_gpu("pool2d")
    def _pool(self, p: spec.PoolProblem, x) -> Any:
        return self.kernels.pool2d(self.cp.ascontiguousarray(self._dev(x)), p)

    _max_pool2d = _avg_pool2d = _pool

    @_on_gpu("global_avg_pool2d")
    def _global_avg_pool2d(self, p: spec.PoolProblem, x) -> Any:
        return self.cp.mean(self._dev(x), axis=(2, 3), keepdims=True, dtype=self.cp.float32)

    @_on_gpu("softmax")
    def _softmax(self, p: spec.SoftmaxProblem, x) -> Any:
        cp = self.cp
        x = self._dev(x)
        out = cp.subtract(x, cp.max(x, axis=p.axis, keepdims=True))
        cp.exp(out, out=out)
        out /= cp.sum(out, axis=p.axis, keepdims=True)
        return out

    @_on_gpu("add")
    def _add(self, p: spec.BinaryProblem, a, b) -> Any:
        return self.cp.add(self._dev(a), self._dev(b))

    @_on_gpu("mul")
    def _mul(self, p: spec.BinaryProblem, a, b) -> Any:
        return self.cp.multiply(self._dev(a), self._dev(b))

    @_on_gpu("concat")
    def _concat(self, p: spec.ConcatProblem, arrays) -> Any:
        return self.cp.concatenate([self._dev(a) for a in arrays], axis=p.axis)

    @_on_gpu("lrn")
    def _lrn(self, p: spec.LrnProblem, x) -> Any:
        return self.kernels.lrn(self.cp.ascontiguousarray(self._dev(x)), p)

    @_on_gpu("reshape")
    def _reshape(self, p: spec.LayoutProblem, x) -> Any:
        return self._dev(x).reshape(p.shape)  # a view when contiguous, else a copy

    @_on_gpu("transpose")
    def _transpose(self, p: spec.LayoutProblem, x) -> Any:
        return self.cp.ascontiguousarray(self.cp.transpose(self._dev(x), p.perm))

    def __repr__(self) -> str:
        return f"<CudaBackend {self.full_name!r} math_mode={self.math_mode}>"
