"""The kernel interface's argument contracts, checked once for every backend.

Each ``check_*`` function validates shapes, dtypes, ranks and attribute values the way
NumPy does (naming the argument, its shape and what was expected) and returns a small
frozen *problem* object. Backends receive only validated problems, so no bad size or
pointer ever reaches a native library. FLOP and byte counts live on the problems so that
every report counts work the same way.

By op family: ``dense`` (float32 GEMM, convolution, elementwise), ``quantized`` (the int8
ops), ``model_ops`` (pooling, softmax, add/mul, concat, LRN, layout), ``unary``
(elementwise math and activations), on the shared
argument checks of ``arguments``. Backends read it as one namespace:
``from hwbench.kernels import spec``, then ``spec.GemmProblem``, ``spec.check_gemm``.
"""

from hwbench.kernels.spec.arguments import (
    FLOAT32,
    INT8_DTYPES,
    LAYOUT_DTYPES,
    dtype_of,
    normalize_padding,
)
from hwbench.kernels.spec.binary import (
    BINARY_OPS,
    COMPARISONS,
    CompareProblem,
    WhereProblem,
    broadcast_strides,
    check_binary_op,
    check_compare,
    check_where,
)
from hwbench.kernels.spec.cast import CAST_DTYPES, CastProblem, cast_target, check_cast
from hwbench.kernels.spec.dense import (
    ACTIVATIONS,
    ConvProblem,
    ElementwiseProblem,
    GemmProblem,
    check_activation,
    check_conv2d,
    check_conv_epilogue,
    check_gemm,
    check_sigmoid_backward,
    check_unary,
    conv_problem,
    onnx_conv_padding,
)
from hwbench.kernels.spec.model_ops import (
    BinaryProblem,
    ConcatProblem,
    LayoutProblem,
    LrnProblem,
    PoolProblem,
    SoftmaxProblem,
    check_avg_pool2d,
    check_binary,
    check_concat,
    check_global_avg_pool2d,
    check_lrn,
    check_max_pool2d,
    check_reshape,
    check_softmax,
    check_transpose,
)
from hwbench.kernels.spec.normalization import LayerNormProblem, check_layer_norm
from hwbench.kernels.spec.quantized import (
    Int8ConvProblem,
    Int8GemmProblem,
    QuantizeProblem,
    check_conv2d_int8,
    check_dequantize_linear,
    check_gemm_int8,
    check_quantize_linear,
    check_requantization,
    check_scale,
    check_zero_point,
)
from hwbench.kernels.spec.reductions import (
    REDUCE_OPS,
    MatmulProblem,
    ReduceProblem,
    check_matmul,
    check_reduce,
)
from hwbench.kernels.spec.rnn import RNN_ACTIVATIONS, RnnActivation, RnnProblem, check_rnn
from hwbench.kernels.spec.tensor_ops import (
    PAD_MODES,
    TakeProblem,
    check_expand,
    check_gather,
    check_pad,
    check_slice,
    check_tile,
)
from hwbench.kernels.spec.unary import UNARY_OPS, UnaryOp, UnaryProblem, check_unary_op
from hwbench.kernels.spec.upsampling import (
    ConvTransposeProblem,
    ResizeProblem,
    check_conv_transpose2d,
    check_resize,
)

__all__ = ["ACTIVATIONS", "BinaryProblem", "ConcatProblem", "ConvProblem", "ElementwiseProblem",
           "FLOAT32", "GemmProblem", "INT8_DTYPES", "Int8ConvProblem", "Int8GemmProblem",
           "LAYOUT_DTYPES", "LayoutProblem", "LrnProblem", "PoolProblem", "QuantizeProblem",
           "SoftmaxProblem", "check_activation", "check_avg_pool2d", "check_binary",
           "check_concat", "check_conv2d", "check_conv2d_int8", "check_conv_epilogue",
           "check_dequantize_linear", "check_gemm", "check_gemm_int8", "check_global_avg_pool2d",
           "check_lrn", "check_max_pool2d", "check_quantize_linear", "check_requantization",
           "check_reshape", "check_scale", "check_sigmoid_backward", "check_softmax",
           "check_transpose", "check_unary", "check_zero_point", "conv_problem", "dtype_of",
           "normalize_padding", "onnx_conv_padding"]
__all__ += ["LayerNormProblem", "MatmulProblem", "REDUCE_OPS", "ReduceProblem",
            "check_layer_norm", "check_matmul", "check_reduce"]
__all__ += ["UNARY_OPS", "UnaryOp", "UnaryProblem", "check_unary_op"]
__all__ += ["PAD_MODES", "TakeProblem", "check_expand", "check_gather", "check_pad",
            "check_slice", "check_tile"]
__all__ += ["BINARY_OPS", "COMPARISONS", "CompareProblem", "WhereProblem", "broadcast_strides",
            "check_binary_op", "check_compare", "check_where"]
__all__ += ["RNN_ACTIVATIONS", "RnnActivation", "RnnProblem", "check_rnn"]
__all__ += ["ConvTransposeProblem", "ResizeProblem", "check_conv_transpose2d", "check_resize"]
__all__ += ["CAST_DTYPES", "CastProblem", "cast_target", "check_cast"]
from hwbench.kernels.spec.integer import (  # noqa: E402
    ARG_OPS,
    INT_BINARY_OPS,
    INT_DTYPES,
    INT_UNARY_OPS,
    LOGICAL_OPS,
    SCAN_DTYPES,
    ArgReduceProblem,
    CumsumProblem,
    IntBinaryProblem,
    IntUnaryProblem,
    check_arg_reduce,
    check_cumsum,
    check_int_binary,
    check_int_unary,
)

__all__ += ["ARG_OPS", "ArgReduceProblem", "CumsumProblem", "INT_BINARY_OPS", "INT_DTYPES",
            "INT_UNARY_OPS", "IntBinaryProblem", "IntUnaryProblem", "LOGICAL_OPS",
            "SCAN_DTYPES", "check_arg_reduce", "check_cumsum", "check_int_binary",
            "check_int_unary"]
