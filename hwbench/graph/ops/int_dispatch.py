"""How the float ops that also take integers (Add, Sub, Mul, Div, Mod, Max, Min, Neg,
Abs) choose their integer kernels at run time: by the dtype of the device array, which
element-type inference (``hwbench.graph.element_types``) has checked at load."""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from hwbench.graph.ir import Node
from hwbench.graph.ops.opdef import Step
from hwbench.graph.ops.types import array_dtype

# ONNX op -> the int_binary op of its integer form (Mod: by its fmod attribute)
INT_BINARY = {"Add": "add", "Sub": "sub", "Mul": "mul", "Div": "div", "Max": "max",
              "Min": "min", "And": "and", "Or": "or", "Xor": "xor"}


def is_integer(x: Any) -> bool:
    """Whether a device array holds integers or bools (its dtype; float32 without one)."""
    return array_dtype(x, np.float32).kind in "iub"


def int_binary_op(node: Node) -> str:
    if node.op_type == "Mod":
        return "fmod" if node.attrs.get("fmod", 0) else "mod"
    return INT_BINARY[node.op_type]


def run_integer(be, x: list, s: Step) -> Any:
    """An integer Add/Sub/Mul/Div/Mod/Max/Min (a chain over variadic inputs), Neg, Abs."""
    if s.node.op_type in ("Neg", "Abs"):
        return be.int_unary(x[0], s.node.op_type.lower())
    op = int_binary_op(s.node)
    return functools.reduce(lambda a, b: be.int_binary(a, b, op),
                            [v for v in x if v is not None])
