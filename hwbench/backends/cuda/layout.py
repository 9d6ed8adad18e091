"""How hwbench's row-major problems are handed to column-major cuBLAS/cuBLASLt and cuDNN.

Pure Python, no CuPy: every decision here is unit-tested without a GPU, because its
mistakes (a wrong leading dimension, a transposed operand, a padding on the wrong side)
read out of bounds or return plausible garbage rather than failing loudly.

- ``row_major_gemm``: C = op(A) @ op(B) in row-major memory is C^T = op(B)^T @ op(A)^T in
  column-major terms, so cuBLAS gets B first and A second, with the flags swapped in.
- int8 GEMMs run in the "TN" form cuBLAS's integer tensor-core (IMMA) kernels want: both
  operands K-contiguous (A as M×K rows, B transposed to N×K rows), K padded with zeros
  to the multiple the library needs (``int8_padding``).
- cuDNN's legacy convolution takes one padding per side pair (symmetric); ONNX pads may
  differ at the two ends, so the input is padded explicitly first (``split_padding``).
"""

from __future__ import annotations

from dataclasses import dataclass

# cublasOperation_t
OP_N, OP_T = 0, 1
# cudaDataType_t (library_types.h)
CUDA_R_32F, CUDA_R_16F, CUDA_R_8I, CUDA_R_32I, CUDA_R_8U, CUDA_R_16BF = 0, 2, 3, 10, 8, 14
# cublasComputeType_t (cublas_api.h)
CUBLAS_COMPUTE_32F = 68
CUBLAS_COMPUTE_32F_FAST_16F = 74
CUBLAS_COMPUTE_32F_FAST_16BF = 75
CUBLAS_COMPUTE_32F_FAST_TF32 = 77
CUBLAS_COMPUTE_32I = 72
# cublasGemmAlgo_t: let cuBLAS choose (tensor cores where the compute type allows them)
CUBLAS_GEMM_DEFAULT = -1
# cublasMath_t: the handle's own mode stays DEFAULT; the compute type names the precision
CUBLAS_DEFAULT_MATH = 0

# float32 data on every path; the compute type alone says how cuBLAS may round inside.
GEMM_COMPUTE_TYPES = {
    "fp32": CUBLAS_COMPUTE_32F,
    "tf32": CUBLAS_COMPUTE_32F_FAST_TF32,
    "fp16": CUBLAS_COMPUTE_32F_FAST_16F,
    "bf16": CUBLAS_COMPUTE_32F_FAST_16BF,
}


@dataclass(frozen=True)
class ColumnMajorGemm:
    """Arguments of one column-major ``C = op(X) @ op(Y)`` call (cuBLAS's ``gemm``):
    ``first`` and ``second`` name which of hwbench's operands ("a"/"b") are X and Y."""

    transa: int
    transb: int
    m: int
    n: int
    k: int
    lda: int
    ldb: int
    ldc: int
    first: str = "b"
    second: str = "a"


def row_major_gemm(m: int, n: int, k: int, trans_a: bool, trans_b: bool,
                   a_cols: int, b_cols: int) -> ColumnMajorGemm:
    """Row-major ``C[m, n] = op(A) @ op(B)`` with A and B stored C-contiguous with
    ``a_cols``/``b_cols`` columns, as one column-major call computing C^T = op(B)^T op(A)^T.

    A row-major matrix read column-major is its transpose, so B's storage is op(B)^T
    when ``trans_b`` is False (no flag) and op(B) itself when True (flag T); likewise A.
    """
    return ColumnMajorGemm(transa=OP_T if trans_b else OP_N, transb=OP_T if trans_a else OP_N,
                           m=n, n=m, k=k, lda=max(1, b_cols), ldb=max(1, a_cols),
                           ldc=max(1, n))


def int8_tn_gemm(m: int, n: int, k: int) -> ColumnMajorGemm:
    """Row-major ``C[m, n] = A[m, k] @ Bt[n, k]^T`` (both operands K-contiguous), the TN
    form of cuBLAS's IMMA kernels: X = Bt read column-major (K×N) with flag T, Y = A read
    column-major (K×M) with flag N, C^T column-major (N×M, ldc = n)."""
    return ColumnMajorGemm(transa=OP_T, transb=OP_N, m=n, n=m, k=k, lda=k, ldb=k, ldc=n,
                           first="bt", second="a")


@dataclass(frozen=True)
class Int8Alignment:
    """Multiples each dimension of an int8 GEMM is padded to for one library."""

    m: int
    n: int
    k: int
    why: str


# cublasGemmEx with CUDA_R_8I inputs and CUBLAS_COMPUTE_32I: "A, B 32-bit aligned and
# lda, ldb multiples of 4" (cuBLAS docs), and lda = ldb = K in the TN form.
# cuBLASLt's IMMA kernels with plain column-major (CUBLASLT_ORDER_COL) layouts want every
# dimension a multiple of 4 and 16-byte rows for full speed: K (the rows of both
# K-contiguous operands) to 16, M and N to 4 (ldc = N int32s: 16 bytes).
INT8_ALIGNMENT = {
    "cublas": Int8Alignment(1, 1, 4, "cublasGemmEx int8: lda, ldb (= K) multiples of 4"),
    "cublaslt": Int8Alignment(4, 4, 16, "cuBLASLt IMMA: K to 16 bytes, M and N to 4"),
}


def round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def int8_padding(m: int, n: int, k: int, library: str) -> tuple[int, int, int]:
    """The (M, N, K) an int8 GEMM is run at on ``library`` ("cublas" or "cublaslt").

    Padding is with zeros *after* the zero points are folded out of the operands, so the
    padded products are exact: a zero K column adds nothing, padded rows and columns of C
    are dropped. Zero-point corrections use the true K.
    """
    align = INT8_ALIGNMENT[library]
    return round_up(m, align.m), round_up(n, align.n), round_up(k, align.k)


def describe_padding(shape: tuple[int, int, int], padded: tuple[int, int, int]) -> str:
    """"" when nothing was padded, else e.g. "K 147->160" (recorded in the backend info)."""
    parts = [f"{name} {a}->{b}" for name, a, b in zip("MNK", shape, padded, strict=True)
             if a != b]
    return ", ".join(parts)


# -- convolution -------------------------------------------------------------------------
def split_padding(pads: tuple[int, int, int, int]
                  ) -> tuple[tuple[int, int, int, int], tuple[int, int]]:
    """ONNX ``(top, left, bottom, right)`` -> ``(explicit, symmetric)``: ``symmetric``
    ``(ph, pw)`` is what cuDNN pads on both sides of each axis, ``explicit`` the extra
    ``(top, left, bottom, right)`` zeros to write around the input first. All zero
    ``explicit`` means cuDNN handles the padding alone."""
    top, left, bottom, right = pads
    ph, pw = min(top, bottom), min(left, right)
    return (top - ph, left - pw, bottom - ph, right - pw), (ph, pw)


def needs_explicit_padding(pads: tuple[int, int, int, int]) -> bool:
    return any(split_padding(pads)[0])


# cudnnMathType_t
CUDNN_DEFAULT_MATH, CUDNN_TENSOR_OP_MATH = 0, 1
CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION, CUDNN_FMA_MATH = 2, 3

# The convolution descriptor's math type per hwbench math mode. fp32 is FMA_MATH: cuDNN's
# DEFAULT_MATH lets Ampere and later GPUs run float32 convolutions in TF32 (as PyTorch's
# torch.backends.cudnn.allow_tf32 does by default), which would switch precision silently.
CONV_MATH_TYPES = {"fp32": CUDNN_FMA_MATH, "tf32": CUDNN_TENSOR_OP_MATH,
                   "fp16": CUDNN_TENSOR_OP_MATH, "bf16": CUDNN_TENSOR_OP_MATH}
# Which math types an algorithm found by cudnnFind... may report and still be used.
ALLOWED_MATH_TYPES = {"fp32": (CUDNN_FMA_MATH, CUDNN_DEFAULT_MATH),
                      "tf32": (CUDNN_TENSOR_OP_MATH, CUDNN_FMA_MATH, CUDNN_DEFAULT_MATH),
                      "fp16": (CUDNN_TENSOR_OP_MATH, CUDNN_FMA_MATH, CUDNN_DEFAULT_MATH),
                      "bf16": (CUDNN_TENSOR_OP_MATH, CUDNN_FMA_MATH, CUDNN_DEFAULT_MATH)}


@dataclass(frozen=True)
class AlgoPerf:
    """One row of cudnnFindConvolutionForwardAlgorithmEx's answer."""

    algo: int
    status: int
    time_ms: float
    memory: int
    math_type: int


def usable_algorithms(perfs: list[AlgoPerf], math_mode: str,
                      workspace_limit: int) -> list[AlgoPerf]:
    """The algorithms that ran (status 0), fit the workspace and keep the math mode, fastest
    first. For fp32 that excludes any tensor-op (TF32) algorithm cuDNN may offer."""
    allowed = ALLOWED_MATH_TYPES[math_mode]
    ok = [p for p in perfs if p.status == 0 and p.memory <= workspace_limit
          and p.math_type in allowed and p.time_ms >= 0]
    return sorted(ok, key=lambda p: p.time_ms)
