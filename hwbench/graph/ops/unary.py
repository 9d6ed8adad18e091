"""Unary math and activations (issue 15), each one call of the backend's ``unary``
kernel: Erf, Sqrt, Clip, HardSigmoid, HardSwish, Tanh, Gelu, LeakyRelu, Exp, Log, Abs,
Neg, Reciprocal, Softplus, Elu, Sin, Cos, Floor, Ceil.

Attributes map onto the kernel's ``alpha``/``beta`` with ONNX's defaults (the same at
every opset these ops have). Clip's bounds are attributes before opset 11 and optional
inputs from 11, read on the host (``host_inputs``): a bound fed at run time is one value
read back from the device, as a kernel parameter, not a tensor moved between kernels.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from hwbench.errors import ArgumentError, UnsupportedError
from hwbench.graph.ir import Node
from hwbench.graph.ops.int_dispatch import is_integer, run_integer
from hwbench.graph.ops.opdef import OpDef, Step
from hwbench.graph.ops.shapes import same_shape
from hwbench.graph.ops.types import NUMBERS
from hwbench.kernels import spec, unary_reference

# ONNX op -> (kernel op, {ONNX attribute: kernel parameter})
ONNX_UNARY: dict[str, tuple[str, dict[str, str]]] = {
    "Erf": ("erf", {}), "Sqrt": ("sqrt", {}), "Tanh": ("tanh", {}), "Exp": ("exp", {}),
    "Log": ("log", {}), "Abs": ("abs", {}), "Neg": ("neg", {}),
    "Reciprocal": ("reciprocal", {}), "Softplus": ("softplus", {}), "Sin": ("sin", {}),
    "Cos": ("cos", {}), "Floor": ("floor", {}), "Ceil": ("ceil", {}),
    "HardSwish": ("hard_swish", {}),
    "HardSigmoid": ("hard_sigmoid", {"alpha": "alpha", "beta": "beta"}),
    "LeakyRelu": ("leaky_relu", {"alpha": "alpha"}),
    "Elu": ("elu", {"alpha": "alpha"}),
}
GELU = {"none": "gelu", "tanh": "gelu_tanh"}
# integer inputs: what constant folding can still evaluate (shape arithmetic)
INTEGER_HOST = {"abs": np.abs, "neg": np.negative, "floor": np.asarray, "ceil": np.asarray}


def kernel_call(node: Node) -> tuple[str, dict[str, float]]:
    """The kernel op and its parameters for ``node`` (Clip's bounds aside)."""
    if node.op_type == "Gelu":
        approximate = node.attrs.get("approximate", "none")
        if approximate not in GELU:
            raise UnsupportedError(f"{node.label()}: approximate={approximate!r} (ONNX "
                                   f"allows 'none' or 'tanh')")
        return GELU[approximate], {}
    op, params = ONNX_UNARY[node.op_type]
    return op, {kernel: float(node.attrs[attr]) for attr, kernel in params.items()
                if attr in node.attrs}


def _bound(value: Any, name: str, node: Node, backend: Any = None) -> float | None:
    """A Clip bound as a float (None where omitted): an attribute, a host constant or a
    value fed at run time (read back from ``backend``)."""
    if value is None:
        return None
    if not isinstance(value, (np.ndarray, np.generic, int, float)):
        value = backend.to_numpy(value)
    array = np.asarray(value)
    if array.size != 1:
        raise ArgumentError(f"{node.label()}: input '{name}' must be one value, got shape "
                            f"{array.shape}")
    return array.reshape(()).item()


def clip_bounds(node: Node, inputs: list[Any], opset: int,
                backend: Any = None) -> tuple[float | None, float | None]:
    if opset < 11:
        return node.attrs.get("min"), node.attrs.get("max")
    extra = list(inputs[1:3]) + [None] * (3 - len(inputs))
    return (_bound(extra[0], "min", node, backend), _bound(extra[1], "max", node, backend))


def _run(be, x, s: Step):
    if s.node.op_type == "Clip":
        lo, hi = clip_bounds(s.node, x, s.opset, be)
        return be.unary(x[0], "clip", alpha=lo, beta=hi)
    if s.node.op_type in ("Neg", "Abs") and is_integer(x[0]):
        return run_integer(be, x, s)
    op, params = kernel_call(s.node)
    return be.unary(x[0], op, **params)


def _host(node: Node, args: list[Any], opset: int) -> list[Any]:
    x = np.asarray(args[0])
    if node.op_type == "Clip":
        lo, hi = clip_bounds(node, args, opset)
        out = x
        if lo is not None:
            out = np.maximum(out, np.asarray(lo, x.dtype))
        if hi is not None:
            out = np.minimum(out, np.asarray(hi, x.dtype))
        return [np.asarray(out, x.dtype)]
    op, params = kernel_call(node)
    if x.dtype.kind != "f":
        if op not in INTEGER_HOST:
            raise UnsupportedError(f"{node.label()}: {node.op_type} of a {x.dtype} constant")
        return [np.asarray(INTEGER_HOST[op](x), x.dtype)]
    problem = spec.check_unary_op(x.astype(np.float32, copy=False), op, **params)
    return [unary_reference.unary(x, op, problem.alpha, problem.beta, x.dtype)]


def _flops(node: Node, ins: list[Any]) -> int:
    op = "clip" if node.op_type == "Clip" else kernel_call(node)[0]
    return spec.UNARY_OPS[op].flops_per_element * math.prod(ins[0])


def _def(name: str, **extra: Any) -> OpDef:
    return OpDef(name, shape=same_shape, run=_run, kernels=("unary",), host=_host,
                 flops=_flops, **extra)


# Neg and Abs also take int32/int64 (the integer family's int_unary)
DEFS = tuple(_def(name, **({"in_types": NUMBERS} if ONNX_UNARY[name][0] in ("neg", "abs")
                           else {})) for name in ONNX_UNARY) + (
    _def("Gelu"),
    _def("Clip", host_inputs=(1, 2)),
)
