"""The cuda backend's CPU-side logic, tested without a GPU (CI has none).

What runs on the GPU is covered by the conformance suite, which skips ``cuda`` with the
reason here and runs it on the lent H100 through ``scripts/gpu-check.sh``. What is pinned
down here is everything whose mistakes would only show up there as garbage: availability
messages, option validation, the row-major -> column-major argument mapping (checked by
emulating a column-major GEMM over flat buffers, leading dimensions included), the int8
padding and zero-point algebra, the asymmetric-padding split, cuDNN/cuBLAS status names
and the ctypes signature tables.
"""

from __future__ import annotations

import ctypes
import re
import sys
import types
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from hwbench.backends import REGISTRY, get_backend, list_backends
from hwbench.backends.cuda import cublaslt, cudnn, kernels, layout, runtime
from hwbench.backends.cuda.backend import CudaBackend
from hwbench.errors import (
    ArgumentError,
    BackendUnavailableError,
    HwbenchError,
    NativeLibraryError,
    UnsupportedError,
)
from hwbench.kernels.spec import ConvProblem


# -- fakes -----------------------------------------------------------------------------
class CUDARuntimeError(RuntimeError):
    """Named like cupy_backends.cuda.api.runtime.CUDARuntimeError."""


class OutOfMemoryError(MemoryError):
    """Named like cupy.cuda.memory.OutOfMemoryError."""


def fake_cupy(count: int | None = 1) -> types.SimpleNamespace:
    def get_device_count() -> int:
        if count is None:
            raise CUDARuntimeError("cudaErrorNoDevice: no CUDA-capable device is detected")
        return count

    rt = types.SimpleNamespace(getDeviceCount=get_device_count)
    return types.SimpleNamespace(cuda=types.SimpleNamespace(runtime=rt), __version__="14.0")


def no_cupy():
    raise ImportError("No module named 'cupy'")


# -- availability ----------------------------------------------------------------------
def test_availability_without_cupy_says_how_to_install():
    ok, why = runtime.availability(no_cupy)
    assert not ok
    assert why.startswith("cupy not installed (pip install 'hwbench[cuda]')")


def test_availability_without_a_gpu_names_the_cuda_error():
    ok, why = runtime.availability(lambda: fake_cupy(None))
    assert not ok
    assert why.startswith("no CUDA driver/GPU: CUDARuntimeError: cudaErrorNoDevice")


def test_availability_with_zero_devices():
    assert runtime.availability(lambda: fake_cupy(0)) == (
        False, "no CUDA driver/GPU: the CUDA runtime reports 0 devices")


def test_availability_with_a_gpu():
    assert runtime.availability(lambda: fake_cupy(2)) == (True, "")


def test_availability_never_raises_on_a_broken_cupy():
    def broken():
        raise RuntimeError("CUDA path could not be detected")

    ok, why = runtime.availability(broken)
    assert not ok and "cupy failed to import (RuntimeError: CUDA path" in why


@pytest.fixture
def cupy_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", None)  # `import cupy` now raises ImportError


def test_cuda_is_registered_and_listed_with_its_reason(cupy_missing):
    assert REGISTRY["cuda"] == "hwbench.backends.cuda:CudaBackend"
    row = next(r for r in list_backends() if r.name == "cuda")
    assert not row.available
    assert row.reason.startswith("cupy not installed (pip install 'hwbench[cuda]')")
    assert row.devices == [] and row.versions == {}


def test_get_backend_says_why_cuda_is_unavailable(cupy_missing):
    with pytest.raises(BackendUnavailableError, match=r"backend 'cuda' is unavailable: cupy "
                                                      r"not installed"):
        get_backend("cuda:0")


def test_conformance_skip_reason_reads_well(cupy_missing):
    from hwbench.pytest_plugin import availability  # what tests/conftest.py's fixture asks

    ok, why = availability("cuda")
    assert not ok
    reason = f"backend cuda unavailable: {why}"  # what the backend fixture skips with
    assert reason.startswith("backend cuda unavailable: cupy not installed (pip install "
                             "'hwbench[cuda]')")


def test_backend_without_a_gpu_raises_unavailable(monkeypatch):
    monkeypatch.setattr(runtime, "load_cupy", lambda: fake_cupy(None))
    assert CudaBackend.devices() == []  # never raises
    with pytest.raises(BackendUnavailableError, match="no CUDA driver/GPU"):
        CudaBackend()
    assert isinstance(CudaBackend.versions(), dict)  # never raises


# -- options ---------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["fp64", "FP32", "tf16", "", None, 32])
def test_bad_math_mode_is_an_argument_error_naming_math_mode(mode):
    with pytest.raises(ArgumentError, match="argument 'math_mode' must be one of 'fp32', "
                                            "'tf32', 'fp16', 'bf16'"):
        runtime.check_math_mode(mode)


def test_bad_math_mode_is_refused_before_any_gpu_is_touched(cupy_missing):
    with pytest.raises(ArgumentError, match="math_mode"):
        CudaBackend(math_mode="int4")


@pytest.mark.parametrize("option,value", [("int8_gemm", "cutlass"), ("conv", "fft"),
                                          ("int8_gemm", None)])
def test_bad_library_choice_is_an_argument_error(cupy_missing, option, value):
    with pytest.raises(ArgumentError, match=f"argument '{option}'"):
        CudaBackend(**{option: value})


def test_every_math_mode_has_a_gemm_compute_type_and_a_conv_setup():
    assert runtime.MATH_MODES[0] == "fp32"  # the default, and the only one unless named
    for mode in runtime.MATH_MODES:
        assert runtime.check_math_mode(mode) == mode
        assert mode in layout.GEMM_COMPUTE_TYPES
        assert mode in layout.CONV_MATH_TYPES and mode in cudnn.DATA_TYPES
    # fp32 never lets a library round to TF32: plain 32F compute, FMA-only convolutions
    assert layout.GEMM_COMPUTE_TYPES["fp32"] == layout.CUBLAS_COMPUTE_32F == 68
    assert layout.CONV_MATH_TYPES["fp32"] == layout.CUDNN_FMA_MATH
    assert layout.GEMM_COMPUTE_TYPES["tf32"] == 77


def test_device_selection():
    assert runtime.select_device(None, 1) == 0
    assert runtime.select_device("1", 2) == 1
    with pytest.raises(ArgumentError, match=r"'cuda:2' does not exist: this machine has 2"):
        runtime.select_device("2", 2)
    with pytest.raises(ArgumentError, match="cuda devices are numbered"):
        runtime.select_device("gpu", 2)


def test_version_strings():
    assert runtime.version_string(13000) == "13.0"
    assert runtime.version_string(12080) == "12.8"


# -- the column-major argument mapping -------------------------------------------------
def column_major(flat: np.ndarray, rows: int, cols: int, ld: int) -> np.ndarray:
    """The rows×cols column-major matrix with leading dimension ``ld`` over ``flat``,
    with BLAS's rule that ld >= rows checked."""
    assert ld >= max(1, rows), f"illegal leading dimension {ld} for {rows} rows"
    assert (cols - 1) * ld + rows <= flat.size, "reads past the buffer"
    item = flat.itemsize
    return np.lib.stride_tricks.as_strided(flat, (rows, cols), (item, ld * item))


def emulate(cm: layout.ColumnMajorGemm, x_flat: np.ndarray, y_flat: np.ndarray) -> np.ndarray:
    """What cuBLAS's gemm computes from these arguments, returned as C's flat buffer."""
    x = (column_major(x_flat, cm.k, cm.m, cm.lda).T if cm.transa == layout.OP_T
         else column_major(x_flat, cm.m, cm.k, cm.lda))
    y = (column_major(y_flat, cm.n, cm.k, cm.ldb).T if cm.transb == layout.OP_T
         else column_major(y_flat, cm.k, cm.n, cm.ldb))
    out = np.zeros(cm.ldc * cm.n, np.int64 if x_flat.dtype.kind == "i" else np.float64)
    column_major(out, cm.m, cm.n, cm.ldc)[...] = x.astype(out.dtype) @ y.astype(out.dtype)
    return out


@pytest.mark.parametrize("m,n,k", [(1, 1, 1), (3, 5, 7), (8, 1, 4), (1, 9, 2), (6, 4, 1)])
@pytest.mark.parametrize("trans_a", [False, True])
@pytest.mark.parametrize("trans_b", [False, True])
def test_row_major_gemm_arguments_compute_the_row_major_product(rng, m, n, k, trans_a,
                                                                trans_b):
    a = rng.standard_normal((k, m) if trans_a else (m, k))
    b = rng.standard_normal((n, k) if trans_b else (k, n))
    cm = layout.row_major_gemm(m, n, k, trans_a, trans_b, a.shape[1], b.shape[1])
    assert (cm.first, cm.second) == ("b", "a")
    flat = emulate(cm, b.ravel(), a.ravel())
    want = (a.T if trans_a else a) @ (b.T if trans_b else b)
    np.testing.assert_allclose(flat.reshape(m, n), want, rtol=1e-12)


@pytest.mark.parametrize("m,n,k", [(1, 1, 4), (5, 3, 8), (16, 32, 64), (7, 9, 12)])
def test_int8_tn_arguments_compute_a_times_bt_transposed(rng, m, n, k):
    a = rng.integers(-128, 128, (m, k)).astype(np.int8)
    bt = rng.integers(-128, 128, (n, k)).astype(np.int8)
    cm = layout.int8_tn_gemm(m, n, k)
    assert (cm.transa, cm.transb) == (layout.OP_T, layout.OP_N)  # IMMA's TN form
    assert cm.lda == cm.ldb == k  # both operands K-contiguous
    flat = emulate(cm, bt.ravel(), a.ravel())
    np.testing.assert_array_equal(flat.reshape(m, n), a.astype(np.int64) @ bt.T.astype(np.int64))


# -- int8 padding and zero points ------------------------------------------------------
@pytest.mark.parametrize("library", ["cublas", "cublaslt"])
@pytest.mark.parametrize("m,n,k", [(1, 1, 1), (64, 1000, 147), (8192, 8192, 8192),
                                   (3, 5, 4097)])
def test_int8_padding_meets_the_library_multiples(library, m, n, k):
    align = layout.INT8_ALIGNMENT[library]
    mp, np_, kp = layout.int8_padding(m, n, k, library)
    for size, padded, multiple in ((m, mp, align.m), (n, np_, align.n), (k, kp, align.k)):
        assert padded >= size and padded % multiple == 0 and padded - size < multiple


def test_int8_padding_rules():
    assert layout.int8_padding(64, 1000, 147, "cublas") == (64, 1000, 148)
    assert layout.int8_padding(63, 1001, 147, "cublaslt") == (64, 1004, 160)
    assert layout.int8_padding(8192, 8192, 8192, "cublaslt") == (8192, 8192, 8192)
    assert layout.describe_padding((8, 8, 8), (8, 8, 8)) == ""
    assert layout.describe_padding((63, 8, 147), (64, 8, 160)) == "M 63->64, K 147->160"


@pytest.mark.parametrize("a_dtype", [np.uint8, np.int8])
@pytest.mark.parametrize("b_dtype", [np.uint8, np.int8])
@pytest.mark.parametrize("per_channel", [False, True])
def test_shift_pad_and_correct_is_exact(rng, a_dtype, b_dtype, per_channel):
    """The backend's int8 plan in NumPy: uint8 -> int8 by -128 (zero points alike), K
    zero-padded to cuBLASLt's multiple, raw int32 product, corrections from row and
    column sums in int64. It must equal (A - za) @ (B - zb) exactly."""
    m, n, k = 5, 6, 37
    lo = {np.uint8: 0, np.int8: -128}
    a = rng.integers(lo[a_dtype], lo[a_dtype] + 256, (m, k)).astype(a_dtype)
    b = rng.integers(lo[b_dtype], lo[b_dtype] + 256, (k, n)).astype(b_dtype)
    za = (rng.integers(lo[a_dtype], lo[a_dtype] + 256, m) if per_channel
          else np.asarray(lo[a_dtype] + 17)).astype(a_dtype)
    zb = (rng.integers(lo[b_dtype], lo[b_dtype] + 256, n) if per_channel
          else np.asarray(lo[b_dtype] + 201)).astype(b_dtype)

    def to_int8(x):
        return (x.view(np.int8) ^ np.int8(-128)) if x.dtype == np.uint8 else x

    def shifted(z):
        return z.astype(np.int64) - (128 if z.dtype == np.uint8 else 0)

    mp, np_, kp = layout.int8_padding(m, n, k, "cublaslt")
    a8 = np.zeros((mp, kp), np.int8)
    a8[:m, :k] = to_int8(a)
    bt8 = np.zeros((np_, kp), np.int8)
    bt8[:n, :k] = to_int8(b.T)
    raw = (a8.astype(np.int64) @ bt8.T.astype(np.int64))[:m, :n]
    assert np.abs(raw).max() < 2**31  # the library's int32 accumulators never overflow
    za_s, zb_s = shifted(za), shifted(zb)
    za_c = za_s.reshape(-1, 1) if za_s.ndim else za_s
    zb_c = zb_s.reshape(1, -1) if zb_s.ndim else zb_s
    rowsum = a8[:m].sum(axis=1, dtype=np.int64).reshape(m, 1)
    colsum = bt8[:n].sum(axis=1, dtype=np.int64).reshape(1, n)
    got = raw - zb_c * rowsum - za_c * colsum + k * za_c * zb_c
    want = ((a.astype(np.int64) - (za.astype(np.int64).reshape(-1, 1) if per_channel
                                   else int(za)))
            @ (b.astype(np.int64) - (zb.astype(np.int64).reshape(1, -1) if per_channel
                                     else int(zb))))
    np.testing.assert_array_equal(got, want)


# -- convolution padding ---------------------------------------------------------------
def test_symmetric_padding_needs_no_explicit_copy():
    assert layout.split_padding((1, 2, 1, 2)) == ((0, 0, 0, 0), (1, 2))
    assert not layout.needs_explicit_padding((3, 3, 3, 3))


def test_asymmetric_padding_is_split_into_explicit_and_symmetric():
    # TF "SAME" at stride 2: the extra row/column at the end
    assert layout.split_padding((0, 0, 1, 1)) == ((0, 0, 1, 1), (0, 0))
    assert layout.split_padding((1, 0, 2, 1)) == ((0, 0, 1, 1), (1, 0))
    assert layout.split_padding((3, 1, 2, 0)) == ((1, 1, 0, 0), (2, 0))
    assert layout.needs_explicit_padding((1, 0, 2, 1))


@pytest.mark.parametrize("pads", [(0, 0, 1, 1), (1, 0, 2, 1), (2, 3, 0, 1), (0, 0, 0, 0),
                                  (4, 1, 1, 4)])
@pytest.mark.parametrize("stride,dilation", [((1, 1), (1, 1)), ((2, 2), (1, 1)),
                                             ((2, 1), (2, 2))])
def test_explicit_plus_symmetric_padding_keeps_the_output_shape(pads, stride, dilation):
    p = ConvProblem(2, 3, 11, 9, 4, 3, 3, stride, pads, dilation)
    explicit, (ph, pw) = layout.split_padding(pads)
    top, left, bottom, right = explicit
    q = replace(p, h=p.h + top + bottom, w=p.w + left + right, padding=(ph, pw, ph, pw))
    assert q.output_shape == p.output_shape
    assert min(explicit) >= 0 and min(ph, pw) >= 0


def test_usable_algorithms_keep_fp32_off_tensor_cores():
    perfs = [layout.AlgoPerf(1, 0, 0.5, 0, layout.CUDNN_TENSOR_OP_MATH),     # TF32: not fp32
             layout.AlgoPerf(6, 0, 0.7, 1 << 20, layout.CUDNN_FMA_MATH),
             layout.AlgoPerf(0, 0, 0.9, 0, layout.CUDNN_DEFAULT_MATH),
             layout.AlgoPerf(4, 0, 0.1, 1 << 40, layout.CUDNN_FMA_MATH),   # workspace too big
             layout.AlgoPerf(5, 3000, 0.05, 0, layout.CUDNN_FMA_MATH)]     # did not run
    assert [p.algo for p in layout.usable_algorithms(perfs, "fp32", 1 << 30)] == [6, 0]
    assert [p.algo for p in layout.usable_algorithms(perfs, "tf32", 1 << 30)] == [1, 6, 0]
    assert layout.usable_algorithms(perfs, "fp32", 0) == [perfs[2]]


# -- status codes ----------------------------------------------------------------------
def test_cudnn_status_names():
    assert cudnn.status_name(0) == "CUDNN_STATUS_SUCCESS"
    assert cudnn.status_name(3000) == "CUDNN_STATUS_NOT_SUPPORTED"
    assert cudnn.status_name(1008) == "CUDNN_STATUS_SUBLIBRARY_LOADING_FAILED"
    assert cudnn.status_name(4004) == "CUDNN_STATUS_INTERNAL_ERROR_DEVICE_ALLOCATION_FAILED"
    assert cudnn.status_name(2999) == "CUDNN_STATUS_BAD_PARAM_UNKNOWN(2999)"
    assert cudnn.status_name(7) == "CUDNN_STATUS_UNKNOWN(7)"


def test_cudnn_check_names_the_call_and_the_status():
    cudnn.check(0, "cudnnConvolutionForward")  # success: nothing
    with pytest.raises(UnsupportedError, match=r"cudnnConvolutionForward returned "
                                               r"CUDNN_STATUS_NOT_SUPPORTED_SHAPE \(3002\).*"
                                               r"conv='im2col'"):
        cudnn.check(3002, "cudnnConvolutionForward")
    with pytest.raises(NativeLibraryError, match="out of GPU memory"):
        cudnn.check(4004, "cudnnFindConvolutionForwardAlgorithmEx")
    with pytest.raises(NativeLibraryError, match=r"CUDNN_STATUS_BAD_PARAM \(2000\)"):
        cudnn.check(2000, "cudnnSetTensor4dDescriptor")
    with pytest.raises(NativeLibraryError, match="sub-library"):
        cudnn.check(1008, "cudnnCreate")


def test_cublas_status_check():
    cublaslt.check(0, "cublasLtMatmul")
    with pytest.raises(UnsupportedError, match="CUBLAS_STATUS_NOT_SUPPORTED"):
        cublaslt.check(15, "cublasLtMatmul")
    with pytest.raises(NativeLibraryError, match="CUBLAS_STATUS_ALLOC_FAILED.*out of GPU"):
        cublaslt.check(3, "cublasLtMatmul")
    assert cublaslt.status_name(99) == "CUBLAS_STATUS_UNKNOWN(99)"


# -- ctypes signature tables -----------------------------------------------------------
def _called_functions(module) -> set[str]:
    source = Path(module.__file__).read_text()
    names = set(re.findall(r'call\(\s*"(\w+)"', source))
    # descriptors are made through one f-string: cudnnCreate{kind}Descriptor
    for kind in re.findall(r'_create\("(\w+)"\)', source):
        names.add(f"cudnnCreate{kind}Descriptor")
    names |= set(re.findall(r"self\.lib\.(\w+)\(", source))
    return names


@pytest.mark.parametrize("module", [cudnn, cublaslt])
def test_every_bound_function_has_declared_argtypes(module):
    called = _called_functions(module)
    assert called, "found no calls: the pattern above is out of date"
    missing = called - set(module.SIGNATURES)
    assert not missing, f"called without argtypes: {sorted(missing)}"
    for name, (restype, argtypes) in module.SIGNATURES.items():
        assert isinstance(argtypes, list), name
        assert restype is not None, name
        for arg in argtypes:  # ctypes types only: no bare Python ints reach the library
            assert isinstance(arg, type) and issubclass(arg, ctypes._SimpleCData | ctypes._Pointer
                                                        | ctypes.Structure), (name, arg)


@pytest.mark.parametrize("module", [cudnn, cublaslt])
def test_bind_declares_every_signature_and_names_a_missing_function(module):
    class FakeFunction:
        argtypes = restype = None

    lib = types.SimpleNamespace(**{name: FakeFunction() for name in module.SIGNATURES})
    module.bind(lib)
    for name, (restype, argtypes) in module.SIGNATURES.items():
        assert getattr(lib, name).argtypes == argtypes
        assert getattr(lib, name).restype is restype
    delattr(lib, next(iter(module.SIGNATURES)))
    with pytest.raises(UnsupportedError, match=next(iter(module.SIGNATURES))):
        module.bind(lib)


def test_struct_layouts_match_the_headers():
    assert ctypes.sizeof(cublaslt.MatmulAlgo) == 64
    assert ctypes.sizeof(cublaslt.HeuristicResult) == 96
    assert ctypes.sizeof(cudnn.ConvolutionFwdAlgoPerf) == 48
    assert cudnn.ConvolutionFwdAlgoPerf.memory.offset == 16


def test_missing_libraries_are_reported_not_raised():
    lib, why = runtime.load_library(["libhwbench-no-such-library.so.9"])
    assert lib is None and "libhwbench-no-such-library.so.9" in why
    dnn, why = cudnn.load(fake_cupy())
    assert dnn is None or why == ""  # this machine has libcudnn or not; never an exception


# -- GPU errors ------------------------------------------------------------------------
def test_gpu_errors_become_hwbench_errors_saying_what_to_do():
    err = runtime.translate(OutOfMemoryError("Out of memory allocating 1,073,741,824 bytes"),
                            "conv2d")
    assert isinstance(err, NativeLibraryError)
    assert "cuda conv2d: OutOfMemoryError" in str(err) and "smaller batch" in str(err)
    err = runtime.translate(CUDARuntimeError("cudaErrorLaunchFailure: unspecified launch "
                                             "failure"), "gemm")
    assert isinstance(err, NativeLibraryError) and "restart" in str(err)
    assert runtime.translate(ValueError("x"), "gemm") is None
    assert runtime.translate(ArgumentError("gemm: argument 'a'"), "gemm") is None


def test_gpu_errors_context_manager():
    with pytest.raises(NativeLibraryError, match="cuda relu: OutOfMemoryError") as info:
        with runtime.gpu_errors("relu"):
            raise OutOfMemoryError("out of memory")
    assert isinstance(info.value.__cause__, OutOfMemoryError)
    with pytest.raises(ValueError):  # not a GPU error: unchanged
        with runtime.gpu_errors("relu"):
            raise ValueError("bad")
    assert issubclass(NativeLibraryError, HwbenchError)


# -- timing and launch geometry --------------------------------------------------------
def test_event_seconds_reads_the_elapsed_time_between_events():
    calls = []

    class Event:
        def record(self):
            calls.append("record")

        def synchronize(self):
            calls.append("sync")

    cuda = types.SimpleNamespace(Event=Event, get_elapsed_time=lambda start, end: 2.5)
    fake = types.SimpleNamespace(cuda=cuda)
    seconds = runtime.event_seconds(fake, lambda: calls.append("fn"), warmup=2, repeats=3)
    assert seconds == [0.0025] * 3
    assert calls[:2] == ["fn", "fn"] and calls.count("fn") == 5
    with pytest.raises(ArgumentError):
        runtime.event_seconds(fake, lambda: None, repeats=0)


def test_grid_covers_every_item():
    assert kernels.grid(1) == (1,)
    assert kernels.grid(256) == (1,)
    assert kernels.grid(257) == (2,)
    assert kernels.grid(0) == (1,)


# -- the kernels' C bodies, compiled for the host --------------------------------------
def _host_compiler() -> str | None:
    import shutil

    return shutil.which("cc") or shutil.which("gcc")


@pytest.mark.skipif(_host_compiler() is None, reason="no host C compiler to build the "
                                                      "kernel body with")
@pytest.mark.parametrize("dtype", [np.int8, np.uint8])
def test_requantize_kernel_body_is_bit_exact_with_the_reference(tmp_path, rng, dtype):
    """The CUDA requantization body is plain C: compiled for the host it must agree with
    ``quantization.requantize`` everywhere, ties, saturation and huge shifts included."""
    import subprocess

    from hwbench.kernels.quantization import FixedPointMultiplier, quantize_multiplier, requantize

    ctype = kernels._CTYPES[np.dtype(dtype).name]
    bias = ("v += b; v = v < -2147483648LL ? -2147483648LL : "
            "(v > 2147483647LL ? 2147483647LL : v);")
    body = kernels._REQUANTIZE.format(bias=bias, ctype=ctype)
    source = tmp_path / "rq.c"
    source.write_text(
        f"void rq(long long n, const int* accs, const int* bs, long long mult, long long shift, "
        f"long long zp, long long lo, long long hi, {ctype}* outs) {{\n"
        f"  for (long long i = 0; i < n; ++i) {{ int acc = accs[i]; int b = bs[i]; {ctype} out;\n"
        f"{body}\n  outs[i] = out; }}\n}}\n")
    lib_path = tmp_path / "rq.so"
    subprocess.run([_host_compiler(), "-O1", "-shared", "-fPIC", str(source), "-o",
                    str(lib_path)], check=True)
    lib = ctypes.CDLL(str(lib_path))
    info = np.iinfo(dtype)
    acc = rng.integers(-2**31, 2**31, 4000, dtype=np.int64).astype(np.int32)
    acc[8:2000] = rng.integers(-1000, 1000, 1992)  # in range: rounding, ties at 0.5, 0.25
    acc[:8] = [0, 1, -1, 2**31 - 1, -2**31, 3, -3, 5]
    bias_v = rng.integers(-2**31, 2**31, 4000, dtype=np.int64).astype(np.int32)
    bias_v[:1000] = 0
    cases = [quantize_multiplier(s) for s in (0.5, 0.25, 1e-3, 3.7e-5, 0.9999, 1e-12)]
    cases.append(FixedPointMultiplier(np.int64(2**30), np.int64(70)))  # shift >= 63
    for fixed in cases:
        out = np.empty(acc.size, dtype)
        i64 = ctypes.c_longlong
        lib.rq(i64(acc.size), acc.ctypes.data_as(ctypes.c_void_p),
               bias_v.ctypes.data_as(ctypes.c_void_p), i64(int(fixed.multiplier)),
               i64(int(fixed.right_shift)), i64(3), i64(info.min), i64(info.max),
               out.ctypes.data_as(ctypes.c_void_p))
        want = requantize(acc, fixed, 3, dtype, bias_v)
        np.testing.assert_array_equal(out, want)
