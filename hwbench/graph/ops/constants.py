"""Ops that build constants and shape arithmetic (Constant, ConstantOfShape, Shape):
evaluated on the host by constant folding, never run on a backend (Gather: ``tensor_ops``;
Cast, which also runs at run time: ``cast``)."""

from __future__ import annotations

import math

import numpy as np

from hwbench.errors import ArgumentError, UnsupportedError
from hwbench.graph.ops.limits import MAX_FOLDED_BYTES
from hwbench.graph.ops.opdef import OpDef

# ONNX TensorProto element types -> NumPy (what Cast's 'to' and ConstantOfShape use).
ONNX_DTYPES = {1: np.float32, 2: np.uint8, 3: np.int8, 5: np.int16, 6: np.int32,
               7: np.int64, 9: np.bool_, 10: np.float16, 11: np.float64, 12: np.uint32,
               13: np.uint64}


def _constant_of_shape(node, args, opset):
    shape = tuple(int(d) for d in np.asarray(args[0]).ravel())
    value = node.attrs.get("value")
    value = np.zeros(1, np.float32) if value is None else np.asarray(value).ravel()
    if any(d < 0 for d in shape) or math.prod(shape) * value.itemsize > MAX_FOLDED_BYTES:
        raise ArgumentError(f"{node.label()}: refusing to build a constant of shape {shape}")
    return [np.full(shape, value[0], dtype=value.dtype)]


def _constant(node, args, opset):
    a = node.attrs
    for key in ("value", "value_float", "value_floats", "value_int", "value_ints"):
        if key in a:
            dtype = np.float32 if "float" in key else np.int64 if "int" in key else None
            return [np.asarray(a[key], dtype=dtype)]
    raise UnsupportedError(f"{node.label()}: Constant with attributes {sorted(a)}")


def _shape(node, args, opset):
    shape = np.asarray(args[0].shape, np.int64)
    start, end = node.attrs.get("start", 0), node.attrs.get("end")
    return [shape[start:end]]


DEFS = (
    OpDef("Constant", host=_constant),
    OpDef("ConstantOfShape", host=_constant_of_shape),
    OpDef("Shape", host=_shape, static_shape_host=True),
)
