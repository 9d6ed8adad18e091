"""The ``numpy`` backend: the portable baseline, NumPy only.

Conv is lowered to the shared im2col + one GEMM per group, exactly as the talk's Op
layer shows; int8 GEMM runs exactly through float64 BLAS (every |sum| of int8 products
stays far below 2**53), which is far faster than NumPy's integer matmul loops.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from hwbench.backends.base import Backend
from hwbench.errors import ArgumentError
from hwbench.kernels import (
    array_ops,
    cast_reference,
    integer_reference,
    rnn_reference,
    spec,
    unary_reference,
    upsampling_reference,
)
from hwbench.kernels.conv_transpose_lowering import conv_transpose_by_gemm
from hwbench.kernels.im2col import col2output, conv2d_int8_by_gemm, im2col
from hwbench.kernels.quantization import (
    dequantize,
    int8_gemm_by_float64,
    quantize,
    requantize,
)


class NumpyBackend(Backend):
    name = "numpy"
    uses_numpy_blas = True
    runs_on_host_cpu = True

    def __init__(self, device: str | None = None, *, threads: int | None = None,
                 check_finite: bool = True) -> None:
        if device is not None and type(self) is NumpyBackend:  # (systolic names configs)
            raise ArgumentError(f"argument 'backend': numpy has no devices to choose, got "
                                f"'numpy:{device}'")
        super().__init__(device, threads=threads, check_finite=check_finite)

    @classmethod
    def available(cls) -> tuple[bool, str]:
        return True, ""

    @classmethod
    def versions(cls) -> dict[str, str]:
        return {"numpy": np.__version__}

    def info(self) -> dict[str, Any]:
        # NumPy's BLAS threads are whatever the process has; say which BLAS it is.
        blas = np.show_config(mode="dicts").get("Build Dependencies", {}).get("blas", {})
        return {**super().info(), "blas": f"{blas.get('name', '?')} {blas.get('version', '')}"}

    def asarray(self, x: Any) -> np.ndarray:
        return np.array(x, copy=True)

    def to_numpy(self, x: Any) -> np.ndarray:
        return np.asarray(x)

    def empty(self, shape: tuple[int, ...], dtype: Any = np.float32) -> np.ndarray:
        return np.empty(shape, dtype=dtype)

    def _rnn(self, p: spec.RnnProblem, x, w, r, b, initial_h, initial_c, peep) -> tuple:
        """The float64 reference's code in float32: one input product for the sequence,
        the recurrent product and the gates in NumPy per step (not ~25 lowered kernels)."""
        outs = rnn_reference.rnn(p, x, w, r, b, initial_h, initial_c, peep, np.float32)
        return tuple(np.ascontiguousarray(v) for v in outs if v is not None)

    def _gemm(self, p: spec.GemmProblem, a, b, bias) -> np.ndarray:
        out = np.matmul(a.T if p.trans_a else a, b.T if p.trans_b else b)
        if bias is not None:
            out += bias
        return out

    def _conv2d(self, p: spec.ConvProblem, x, w, bias) -> np.ndarray:
        cols = im2col(np.asarray(x), p)
        wmat = np.ascontiguousarray(w).reshape(p.groups, p.k // p.groups, -1)
        out = col2output(np.matmul(wmat, cols), p)
        if bias is not None:
            out += bias.reshape(1, -1, 1, 1)
        return out

    def _sigmoid(self, p: spec.ElementwiseProblem, x) -> np.ndarray:
        # 0.5·tanh(x/2) + 0.5 equals σ(x) and never overflows exp for large |x|.
        # (out=: a ufunc of 0-d input returns a NumPy scalar, which tanh cannot write to)
        out = np.multiply(x, np.float32(0.5), out=np.empty(p.shape, np.float32))
        np.tanh(out, out=out)
        out *= np.float32(0.5)
        out += np.float32(0.5)
        return out

    def _sigmoid_backward(self, p: spec.ElementwiseProblem, y, dy) -> np.ndarray:
        out = np.subtract(np.float32(1.0), y, out=np.empty(p.shape, np.float32))
        out *= y
        out *= dy
        return out

    def _relu(self, p: spec.ElementwiseProblem, x) -> np.ndarray:
        return np.maximum(x, np.float32(0.0), out=np.empty(p.shape, np.float32))

    def _workspace_bytes(self, op: str, problem: Any) -> int:
        """Bytes besides the output: im2col's columns and the GEMM's result before
        ``col2output`` copies it out (float32; the int8 convolution's uint8 columns plus one
        group's float64 copy of them and of its result), and the int8 GEMM's float64
        copies of both operands and of the result."""
        p = problem
        if op == "conv2d":
            return 4 * p.n * p.out_h * p.out_w * p.c * p.r * p.s + p.output_bytes
        if op in ("conv2d_int8", "qconv2d"):
            columns = p.n * p.out_h * p.out_w * p.c * p.r * p.s
            return columns + 8 * columns // p.groups + 3 * p.output_bytes // p.groups + (
                p.output_bytes)
        if op in ("gemm_int8", "qgemm"):
            return 8 * (p.m * p.k + p.k * p.n + p.m * p.n)
        return 0

    def _gemm_int8(self, p: spec.Int8GemmProblem, a, b, za, zb) -> np.ndarray:
        return int8_gemm_by_float64(a, b, za, zb)

    def _qgemm(self, p: spec.Int8GemmProblem, a, b, za, zb, fixed, zy) -> np.ndarray:
        return requantize(self._gemm_int8(p, a, b, za, zb), fixed, zy.item(), zy.dtype)

    # (De)quantization straight on host arrays: base's default would copy the result
    # once more through ``asarray``.
    def _quantize_linear(self, p: spec.QuantizeProblem, x, scale, zero_point) -> np.ndarray:
        return quantize(np.asarray(x), scale, zero_point, zero_point.dtype, p.axis)

    def _dequantize_linear(self, p: spec.QuantizeProblem, x, scale, zero_point) -> np.ndarray:
        return dequantize(np.asarray(x), scale, zero_point, p.axis)

    def _conv2d_int8(self, p: spec.Int8ConvProblem, x, w, zx, zw) -> np.ndarray:
        return conv2d_int8_by_gemm(np.asarray(x), np.asarray(w), p, zx, zw, self.gemm_int8)

    # -- the ops full CNNs need ------------------------------------------------------------
    def _max_pool2d(self, p: spec.PoolProblem, x) -> np.ndarray:
        return _pool_windows(x, p, -np.inf).max(axis=(-2, -1))

    def _avg_pool2d(self, p: spec.PoolProblem, x) -> np.ndarray:
        sums = _pool_windows(x, p, 0.0).sum(axis=(-2, -1), dtype=np.float32)
        counts = np.outer(p.window_counts(0), p.window_counts(1)).astype(np.float32)
        return np.divide(sums, counts, out=sums)

    def _global_avg_pool2d(self, p: spec.PoolProblem, x) -> np.ndarray:
        return np.mean(x, axis=(2, 3), keepdims=True, dtype=np.float32)

    def _softmax(self, p: spec.SoftmaxProblem, x) -> np.ndarray:
        with np.errstate(invalid="ignore"):  # a row of only -inf (masked): NaN, as in ORT
            out = np.subtract(x, np.max(x, axis=p.axis, keepdims=True))
            np.exp(out, out=out)
            out /= np.sum(out, axis=p.axis, keepdims=True)
        return out

    def _add(self, p: spec.BinaryProblem, a, b) -> np.ndarray:
        return np.add(a, b, out=np.empty(p.shape, np.float32))

    def _mul(self, p: spec.BinaryProblem, a, b) -> np.ndarray:
        return np.multiply(a, b, out=np.empty(p.shape, np.float32))

    def _concat(self, p: spec.ConcatProblem, arrays) -> np.ndarray:
        return np.concatenate(arrays, axis=p.axis)

    def _lrn(self, p: spec.LrnProblem, x) -> np.ndarray:
        before = (p.size - 1) // 2  # ONNX: floor((size-1)/2) channels before, the rest after
        squares = np.zeros((p.shape[0], p.shape[1] + p.size - 1) + p.shape[2:], np.float32)
        np.square(x, out=squares[:, before:before + p.shape[1]])
        window = sliding_window_view(squares, p.size, axis=1)  # (n, c, h, w, size)
        denom = window.sum(axis=-1)
        denom *= np.float32(p.alpha / p.size)
        denom += np.float32(p.bias)
        np.power(denom, np.float32(p.beta), out=denom)
        return np.divide(x, denom, out=denom)

    def _reshape(self, p: spec.LayoutProblem, x) -> np.ndarray:
        return np.reshape(x, p.shape)

    def _transpose(self, p: spec.LayoutProblem, x) -> np.ndarray:
        return np.ascontiguousarray(np.transpose(x, p.perm))

    # -- normalization and reductions family (LayerNormalization, ReduceX, MatMul) ---------
    def _layer_norm(self, p: spec.LayerNormProblem, x, scale, bias):
        return array_ops.layer_norm(np, np.asarray(x), np.asarray(scale),
                                    None if bias is None else np.asarray(bias), p)

    def _reduce(self, p: spec.ReduceProblem, x) -> np.ndarray:
        return array_ops.reduce(np, np.asarray(x), p)

    def _matmul(self, p: spec.MatmulProblem, a, b) -> np.ndarray:
        return np.asarray(np.matmul(a, b, dtype=np.float32))  # 1-D @ 1-D: a 0-d array

    # -- unary family (issue 15): elementwise math and activations, in float32 ------------
    def _unary_op(self, p: spec.UnaryProblem, x) -> np.ndarray:
        return unary_reference.unary(x, p.op, p.alpha, p.beta, np.float32)

    # -- tensor_ops: Slice, Gather, Expand, Pad, Tile as one axis-wise take -----------------
    def _take(self, p: spec.TakeProblem, x) -> np.ndarray:
        return p.apply(np.asarray(x))

    # -- binary arithmetic, comparisons, where (binary_interface) --------------------------
    def _binary_op(self, p: spec.BinaryProblem, a, b) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            return NUMPY_BINARY[p.op](a, b, out=np.empty(p.shape, np.float32))

    def _compare(self, p: spec.CompareProblem, a, b) -> np.ndarray:
        return NUMPY_COMPARE[p.op](a, b, out=np.empty(p.shape, np.bool_))

    def _where(self, p: spec.WhereProblem, condition, x, y) -> np.ndarray:
        out = np.empty(p.shape, p.dtype)
        out[...] = np.where(np.asarray(condition, bool), x, y)
        return out

    # -- upsampling family: ConvTranspose (GEMM + col2im), Resize (per-axis tables) --------
    def _conv_transpose2d(self, p: spec.ConvTransposeProblem, x, w, bias) -> np.ndarray:
        return conv_transpose_by_gemm(np.asarray(x), np.asarray(w), bias, p)

    def _resize(self, p: spec.ResizeProblem, x) -> np.ndarray:
        return upsampling_reference.resize(x, p, np.float32)

    # -- run-time Cast (cast_interface) ----------------------------------------------------
    def _cast(self, p: spec.CastProblem, x) -> np.ndarray:
        return cast_reference.cast(x, p.target)

    # -- integer family: int/bool arithmetic, cumsum, argmax (integer_interface) ----------
    def _int_binary(self, p: spec.IntBinaryProblem, a, b) -> np.ndarray:
        return integer_reference.int_binary(a, b, p.op)

    def _int_unary(self, p: spec.IntUnaryProblem, x) -> np.ndarray:
        return integer_reference.int_unary(x, p.op)

    def _cumsum(self, p: spec.CumsumProblem, x) -> np.ndarray:
        return integer_reference.cumsum(x, p.axis, p.exclusive, p.reverse)

    def _arg_reduce(self, p: spec.ArgReduceProblem, x) -> np.ndarray:
        return integer_reference.arg_reduce(x, p.axis, p.keepdims, p.select_last, p.op)


# ufuncs computing each binary/compare op in the inputs' float32 (shared with the cpu
# backend, whose arrays are host memory too)
NUMPY_BINARY = {"sub": np.subtract, "div": np.divide, "pow": np.power, "max": np.maximum,
                "min": np.minimum, "fmod": np.fmod}
NUMPY_COMPARE = {"equal": np.equal, "less": np.less, "greater": np.greater,
                 "less_equal": np.less_equal, "greater_equal": np.greater_equal}


def _pool_windows(x: np.ndarray, p: spec.PoolProblem, fill: float) -> np.ndarray:
    """(n, c, out_h, out_w, kh, kw) windows over a copy of ``x`` padded with ``fill``
    (the explicit padding plus ceil mode's overhang)."""
    pt, pl, pb, pr = p.padding
    eh, ew = p.ceil_extra
    padded = np.full((p.n, p.c, p.h + pt + pb + eh, p.w + pl + pr + ew), fill, np.float32)
    padded[:, :, pt:pt + p.h, pl:pl + p.w] = x
    windows = sliding_window_view(padded, p.span, axis=(2, 3))
    (sh, sw), (dh, dw) = p.stride, p.dilation
    return windows[:, :, ::sh, ::sw, ::dh, ::dw][:, :, :p.out_h, :p.out_w]

