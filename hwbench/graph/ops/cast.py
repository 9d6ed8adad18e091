"""Cast: folded on the host where its input is a constant, and at run time the backend's
``cast`` kernel (float32/float64/float16 <-> int64/int32/int8/uint8/bool, ONNX's rules:
``hwbench.kernels.cast_reference``)."""

from __future__ import annotations

import numpy as np

from hwbench.errors import UnsupportedError
from hwbench.graph.ir import Graph, Node
from hwbench.graph.ops.constants import ONNX_DTYPES
from hwbench.graph.ops.opdef import OpDef, Shape, Step
from hwbench.graph.ops.shapes import same_shape
from hwbench.graph.ops.types import attr_type
from hwbench.kernels import cast_reference, spec


def _target(node: Node) -> np.dtype:
    to = node.attrs.get("to")
    if to not in ONNX_DTYPES:
        raise UnsupportedError(f"{node.label()}: Cast to ONNX type {to} (hwbench casts to "
                               f"{', '.join(str(np.dtype(t)) for t in ONNX_DTYPES.values())})")
    return np.dtype(ONNX_DTYPES[to])


def _cast_host(node, args, opset):
    return [cast_reference.cast(np.asarray(args[0]), _target(node))]


def _cast_shape(node: Node, shapes: list[Shape], graph: Graph) -> list[Shape]:
    target = _target(node)
    if target not in spec.CAST_DTYPES:  # int16, uint32, uint64: constants only
        raise UnsupportedError(f"{node.label()}: Cast to {target} of a tensor computed at "
                               f"run time (the cast kernel converts to "
                               f"{', '.join(str(d) for d in spec.CAST_DTYPES)})")
    return same_shape(node, shapes, graph)


def _run_cast(be, x, s: Step):
    return be.cast(x[0], _target(s.node))


DEFS = (
    OpDef("Cast", shape=_cast_shape, host=_cast_host, run=_run_cast, kernels=("cast",),
          out_types=lambda node, ins: [attr_type(node, ONNX_DTYPES, "to")],
          in_types=tuple(spec.CAST_DTYPES)),
)
