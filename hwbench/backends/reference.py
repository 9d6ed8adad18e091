"""The float64 reference behind the backend interface.

Not a speed target and not registered for ``--backend all``: it exists so that the graph
executor can run a whole model in float64 (``hwbench.kernels.reference`` for every op),
which is what every backend's output is compared with. Arrays are float64 NumPy arrays;
the argument checks are the real backends' business, so calls go straight to the
references.
"""

from __future__ import annotations

import abc
from typing import Any

import numpy as np

from hwbench.backends.base import Backend
from hwbench.kernels import (
    binary_reference,
    cast_reference,
    integer_reference,
    normalization_reference,
    reductions_reference,
    reference,
    rnn_reference,
    spec,
    tensor_ops_reference,
    unary_reference,
    upsampling_reference,
)

OPS = ("gemm", "conv2d", "sigmoid", "sigmoid_backward", "relu", "gemm_int8", "qgemm",
       "conv2d_int8", "qconv2d", "max_pool2d", "avg_pool2d", "global_avg_pool2d", "softmax",
       "add", "mul", "concat", "lrn", "reshape", "transpose")


def _reference_op(op: str):
    fn = getattr(reference, op)

    def call(self, *args: Any, **kwargs: Any) -> Any:
        return fn(*args, **kwargs)

    call.__name__ = op
    call.__doc__ = f"float64 ``hwbench.kernels.reference.{op}``."
    return call


def _validated_op(op: str):
    """``_op(problem, *arrays)`` for the interface's abstract hooks (never reached via the
    public methods, which this backend overrides)."""
    fn = getattr(reference, op)

    def call(self, problem: Any, *args: Any) -> Any:
        return fn(*args)

    return call


class ReferenceBackend(Backend):
    name = "reference"
    float_precision = "fp64"

    @classmethod
    def available(cls) -> tuple[bool, str]:
        return True, ""

    def info(self) -> dict[str, Any]:
        return {**super().info(), "math_mode": "fp64"}

    def asarray(self, x: Any) -> np.ndarray:
        x = np.asarray(x)
        return x.astype(np.float64) if x.dtype.kind == "f" else x.copy()

    def to_numpy(self, x: Any) -> np.ndarray:
        return np.asarray(x)

    def quantize_linear(self, x: Any, scale: Any, zero_point: Any = None, axis: int = 1) -> Any:
        """A quantized graph's (a QDQ file's) float64 activations quantized as ONNX defines
        QuantizeLinear, from float32: the reference of what the file computes."""
        x = np.asarray(x)
        return super().quantize_linear(x.astype(np.float32) if x.dtype == np.float64 else x,
                                       scale, zero_point, axis)

    def empty(self, shape: tuple[int, ...], dtype: Any = np.float64) -> np.ndarray:
        return np.empty(shape, dtype=dtype)

    # -- the issue-15 kernels, each straight on its family's float64 reference -------------
    # (public methods: no float32 checks; the private hooks answer ``lacks_kernel`` and run
    # the same references from a checked problem)
    def slice(self, x, starts, ends, axes=None, steps=None) -> np.ndarray:
        return _keep(x, tensor_ops_reference.slice_ref(x, starts, ends, axes, steps))

    def gather(self, x, indices, axis: int = 0) -> np.ndarray:
        return _keep(x, tensor_ops_reference.gather_ref(x, indices, axis))

    def expand(self, x, shape) -> np.ndarray:
        return _keep(x, tensor_ops_reference.expand_ref(x, shape))

    def pad(self, x, pads, mode: str = "constant", value: float = 0.0) -> np.ndarray:
        return _keep(x, tensor_ops_reference.pad_ref(x, pads, mode, value))

    def tile(self, x, repeats) -> np.ndarray:
        return _keep(x, tensor_ops_reference.tile_ref(x, repeats))

    def _take(self, p: spec.TakeProblem, x) -> np.ndarray:
        return _keep(x, p.apply(_float64(x)))

    def layer_norm(self, x, scale, bias=None, axis: int = -1, epsilon: float = 1e-5,
                   stats: bool = False):
        return normalization_reference.layer_norm(x, scale, bias, axis, epsilon, stats)

    def _layer_norm(self, p: spec.LayerNormProblem, x, scale, bias):
        return normalization_reference.layer_norm(x, scale, bias, p.axis, p.epsilon, p.stats)

    def reduce(self, x, op: str, axes=None, keepdims: bool = True,
               noop_with_empty_axes: bool = False) -> np.ndarray:
        return reductions_reference.reduce(x, op, axes, keepdims, noop_with_empty_axes)

    def _reduce(self, p: spec.ReduceProblem, x) -> np.ndarray:
        return reductions_reference.reduce(x, p.op, p.axes or None, p.keepdims,
                                           noop_with_empty_axes=not p.axes)

    def matmul(self, a, b) -> np.ndarray:
        return reductions_reference.matmul(a, b)

    def _matmul(self, p: spec.MatmulProblem, a, b) -> np.ndarray:
        return reductions_reference.matmul(a, b)

    def unary(self, x, op: str, *, alpha: float | None = None,
              beta: float | None = None) -> np.ndarray:
        # the spec resolves the op's defaults; it sees a float32 stand-in of x's shape
        problem = spec.check_unary_op(_stand_in(x), op, alpha, beta)
        return self._unary_op(problem, x)

    def _unary_op(self, p: spec.UnaryProblem, x) -> np.ndarray:
        return unary_reference.unary(x, p.op, p.alpha, p.beta, np.float64)

    def binary(self, a, b, op: str) -> np.ndarray:
        return binary_reference.binary(a, b, op)

    def _binary_op(self, p: spec.BinaryProblem, a, b) -> np.ndarray:
        return binary_reference.binary(a, b, p.op)

    def compare(self, a, b, op: str) -> np.ndarray:
        if np.asarray(a).dtype.kind in "iub":  # integers compare exactly, not via float64
            return integer_reference.compare(a, b, op)
        return binary_reference.compare(a, b, op)

    def _compare(self, p: spec.CompareProblem, a, b) -> np.ndarray:
        return binary_reference.compare(a, b, p.op)

    def where(self, condition, x, y) -> np.ndarray:
        if np.asarray(x).dtype.kind in "iub":
            return integer_reference.where(condition, x, y)
        return binary_reference.where(condition, x, y)

    def _where(self, p: spec.WhereProblem, condition, x, y) -> np.ndarray:
        return binary_reference.where(condition, x, y)

    # integer family: exact in the inputs' integer types; float cumsum in float64
    def int_binary(self, a, b, op: str) -> np.ndarray:
        return integer_reference.int_binary(a, b, op)

    def _int_binary(self, p: spec.IntBinaryProblem, a, b) -> np.ndarray:
        return integer_reference.int_binary(a, b, p.op)

    def int_unary(self, x, op: str) -> np.ndarray:
        return integer_reference.int_unary(x, op)

    def _int_unary(self, p: spec.IntUnaryProblem, x) -> np.ndarray:
        return integer_reference.int_unary(x, p.op)

    def cumsum(self, x, axis: int, exclusive: bool = False, reverse: bool = False):
        return integer_reference.cumsum(x, axis, exclusive, reverse)

    def _cumsum(self, p: spec.CumsumProblem, x) -> np.ndarray:
        return integer_reference.cumsum(x, p.axis, p.exclusive, p.reverse)

    def arg_reduce(self, x, axis: int, keepdims: bool = True, select_last: bool = False,
                   op: str = "argmax") -> np.ndarray:
        return integer_reference.arg_reduce(x, axis, keepdims, select_last, op)

    def _arg_reduce(self, p: spec.ArgReduceProblem, x) -> np.ndarray:
        return integer_reference.arg_reduce(x, p.axis, p.keepdims, p.select_last, p.op)

    def cast(self, x, to) -> np.ndarray:
        return cast_reference.cast(x, spec.cast_target(to))

    def _cast(self, p: spec.CastProblem, x) -> np.ndarray:
        return cast_reference.cast(x, p.target)

    def conv_transpose2d(self, x, w, bias=None, stride=1, padding=0, dilation=1, groups=1,
                         output_padding=0) -> np.ndarray:
        p = spec.check_conv_transpose2d(_stand_in(x), _stand_in(w), _maybe_stand_in(bias),
                                        stride, padding, dilation, groups, output_padding)
        return self._conv_transpose2d(p, x, w, bias)

    def _conv_transpose2d(self, p: spec.ConvTransposeProblem, x, w, bias) -> np.ndarray:
        return upsampling_reference.conv_transpose2d(x, w, bias, p)

    def resize(self, x, scales=None, sizes=None, **options: Any) -> np.ndarray:
        return self._resize(spec.check_resize(_stand_in(x), scales, sizes, **options), x)

    def _resize(self, p: spec.ResizeProblem, x) -> np.ndarray:
        return upsampling_reference.resize(_float64(x), p, np.float64)

    def rnn(self, x, w, r, b=None, sequence_lens=None, initial_h=None, initial_c=None,
            p=None, **attributes: Any) -> tuple:
        arrays = [_maybe_stand_in(a) for a in (x, w, r, b)]
        states = [_maybe_stand_in(a) for a in (initial_h, initial_c, p)]
        problem = spec.check_rnn(*arrays, sequence_lens, *states, **attributes)
        return self._rnn(problem, x, w, r, b, initial_h, initial_c, p)

    def _rnn(self, problem: spec.RnnProblem, x, w, r, b, initial_h, initial_c, p) -> tuple:
        y, y_h, y_c = rnn_reference.rnn(problem, x, w, r, b, initial_h, initial_c, p)
        return (y, y_h) if y_c is None else (y, y_h, y_c)


def _float64(x) -> np.ndarray:
    x = np.asarray(x)
    return x.astype(np.float64) if x.dtype.kind == "f" else x


def _keep(x, out: np.ndarray) -> np.ndarray:
    """Data movement keeps an integer (or bool) tensor's dtype; the float64 references
    compute in float64, exact for every integer below 2**53."""
    dtype = np.asarray(x).dtype
    return out if dtype.kind == "f" else np.asarray(out).astype(dtype)


def _stand_in(x) -> np.ndarray:
    """A float32 array of ``x``'s shape (a broadcast view: no memory) for the spec's checks."""
    return np.broadcast_to(np.zeros((), np.float32), np.shape(x))


def _maybe_stand_in(x) -> np.ndarray | None:
    return None if x is None else _stand_in(x)


for _op in OPS:
    setattr(ReferenceBackend, _op, _reference_op(_op))
    setattr(ReferenceBackend, f"_{_op}", _validated_op(_op))
abc.update_abstractmethods(ReferenceBackend)  # the hooks were added after class creation
