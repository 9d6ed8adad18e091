"""One definition per op type: ``OP_DEFS`` maps each op hwbench knows to its ``OpDef``
(shape rule, host evaluation, backend run and kernels, int8 form, FLOP and byte counts).

Shape inference, the passes, the executor, quantization and ``graph.statistics`` read
this registry and nothing else, so adding an op is one ``OpDef`` in its family's module
(``DEFS``) plus its tests; see docs/adding-an-op.md.
"""

from hwbench.graph.ops import (
    activations,
    affine_quantize,
    arithmetic,
    binary,
    cast,
    channel_affine,
    constants,
    conv,
    integer,
    matmul,
    normalization,
    pooling,
    qconv_add,
    qoperator,
    quantized,
    reductions,
    rnn,
    shape_folding,
    tensor,
    tensor_ops,
    unary,
    upsampling,
)
from hwbench.graph.ops.opdef import Int8Weights, OpDef, Shape, Step, qualified_name
from hwbench.graph.ops.registry import OpRegistry

FAMILIES = (conv, matmul, activations, arithmetic, pooling, normalization, tensor, constants,
            quantized, reductions, unary, tensor_ops, binary, shape_folding,
            qoperator, qconv_add, affine_quantize, channel_affine, rnn, upsampling, cast,
            integer)
OP_DEFS = OpRegistry(d for family in FAMILIES for d in family.DEFS)


def op_def(name: str) -> OpDef:
    """The definition of op type ``name`` (qualified: ``"com.hwbench:FusedConv"``)."""
    return OP_DEFS[name]


__all__ = ["OP_DEFS", "OpDef", "OpRegistry", "Int8Weights", "Shape", "Step", "op_def",
           "qualified_name"]
