"""Elementwise arithmetic: Add, Mul and Sum run on backends (Sub, Div and the other
broadcasting binary ops: ``binary.py``)."""

from __future__ import annotations

import functools
import math

import numpy as np

from hwbench.errors import ArgumentError
from hwbench.graph.ops.int_dispatch import is_integer, run_integer
from hwbench.graph.ops.limits import MAX_FOLDED_BYTES
from hwbench.graph.ops.opdef import HostEval, OpDef
from hwbench.graph.ops.shapes import broadcast_shape
from hwbench.graph.ops.types import NUMBERS


def _on_constants(fn) -> HostEval:
    """A broadcasting binary op on constants, refusing a result a hostile file could blow
    up to terabytes by broadcasting (N, 1) against (1, N)."""
    def run(node, args, opset):
        shape = np.broadcast_shapes(args[0].shape, args[1].shape)
        if math.prod(shape) * max(args[0].itemsize, args[1].itemsize) > MAX_FOLDED_BYTES:
            raise ArgumentError(f"{node.label()}: refusing to build a constant of shape {shape}")
        return [fn(args[0], args[1])]
    return run


DEFS = (
    OpDef("Add", shape=broadcast_shape, host=_on_constants(np.add),
          run=lambda be, x, s: (run_integer(be, x, s) if is_integer(x[0])
                                else be.add(x[0], x[1])), kernels=("add",),
          in_types=NUMBERS, same_types=0),
    OpDef("Mul", shape=broadcast_shape, host=_on_constants(np.multiply),
          run=lambda be, x, s: (run_integer(be, x, s) if is_integer(x[0])
                                else be.mul(x[0], x[1])), kernels=("mul",),
          in_types=NUMBERS, same_types=0),
    OpDef("Sum", shape=broadcast_shape, run=lambda be, x, s: functools.reduce(be.add, x),
          kernels=("add",), same_types=0),
)
