"""Broadcasting binary ops run on the backends' ``binary``/``compare``/``where`` kernels:
Sub, Div, Pow, Max, Min (variadic: a chain), Mod (fmod=1 on floats), the comparisons
Equal, Less, Greater, LessOrEqual, GreaterOrEqual, and Where. Each also folds on
constants with ONNX's exact semantics for every dtype (integer Div truncates, Mod with
fmod=0 takes the divisor's sign, Pow keeps the base's type), which is how exported
models' shape and mask arithmetic disappears at load."""

from __future__ import annotations

import functools
import math

import numpy as np

from hwbench.errors import ArgumentError, UnsupportedError
from hwbench.graph.ir import Graph, Node
from hwbench.graph.ops.int_dispatch import is_integer, run_integer
from hwbench.graph.ops.limits import MAX_FOLDED_BYTES
from hwbench.graph.ops.opdef import HostEval, OpDef, Shape, Step
from hwbench.graph.ops.shapes import broadcast_shape
from hwbench.graph.ops.types import BOOL, F32, NUMBERS, U8, const_type, input_type


def _broadcast_checked(node: Node, args) -> tuple[int, ...]:
    """The broadcast shape of constant ``args``, refusing one a hostile file could blow up
    to terabytes by broadcasting (N, 1) against (1, N)."""
    try:
        shape = np.broadcast_shapes(*(np.shape(a) for a in args))
    except ValueError:
        raise ArgumentError(f"{node.label()}: input shapes "
                            f"{[np.shape(a) for a in args]} do not broadcast") from None
    if math.prod(shape) * max(np.asarray(a).itemsize for a in args) > MAX_FOLDED_BYTES:
        raise ArgumentError(f"{node.label()}: refusing to build a constant of shape {shape}")
    return shape


def on_constants(fn) -> HostEval:
    """A broadcasting op of any number of constant inputs, size-checked."""
    def run(node, args, opset):
        _broadcast_checked(node, args)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            return [fn(node, *[np.asarray(a) for a in args])]
    return run


def _div(node, a, b):
    """ONNX Div: integer division truncates toward zero (exactly, in integers)."""
    if np.issubdtype(a.dtype, np.integer):
        if np.any(b == 0):
            raise ArgumentError(f"{node.label()}: integer division by zero")
        q = a // b
        q = q + ((q < 0) & (q * b != a))  # floor -> toward zero
        return q.astype(a.dtype)
    return np.divide(a, b).astype(a.dtype)


def _pow(node, a, b):
    """ONNX Pow: the result has the base's type."""
    if np.issubdtype(a.dtype, np.integer) and np.issubdtype(b.dtype, np.integer):
        if np.any(b < 0):
            raise ArgumentError(f"{node.label()}: integer Pow with a negative exponent")
        return np.power(a, b.astype(a.dtype)).astype(a.dtype)
    return np.power(a.astype(np.float64) if a.dtype.kind in "iu" else a, b).astype(a.dtype)


def _mod(node, a, b):
    """ONNX Mod: fmod=1 is C's fmod (the dividend's sign), fmod=0 Python's (the divisor's);
    floats need fmod=1 before opset 22's float form."""
    if np.issubdtype(a.dtype, np.integer) and np.any(b == 0):
        raise ArgumentError(f"{node.label()}: integer Mod by zero")
    fn = np.fmod if node.attrs.get("fmod", 0) else np.mod
    return fn(a, b).astype(a.dtype)


def _variadic(fn):
    return lambda node, *args: functools.reduce(fn, args)


def _where_host(node, c, x, y):
    return np.where(c.astype(bool), x, y).astype(np.result_type(x, y))


def _elements(node: Node, ins: list) -> int:
    return math.prod(np.broadcast_shapes(*[tuple(s) for s in ins if s is not None]))


def _chain_flops(node: Node, ins: list) -> int:
    return (len([s for s in ins if s is not None]) - 1) * _elements(node, ins)


def _run_binary(op: str):
    def run(be, x, s: Step):
        if is_integer(x[0]):
            return run_integer(be, x, s)
        return functools.reduce(lambda a, b: be.binary(a, b, op), x)
    return run


def _run_mod(be, x, s: Step):
    if is_integer(x[0]):
        return run_integer(be, x, s)
    if not s.node.attrs.get("fmod", 0):
        raise UnsupportedError(f"{s.node.label()}: Mod with fmod=0 runs only on constants "
                               f"(the float kernel is C's fmod: give the node fmod=1)")
    return be.binary(x[0], x[1], "fmod")


def _run_compare(op: str):
    return lambda be, x, s: be.compare(x[0], x[1], op)


def _variadic_shape(node: Node, shapes: list[Shape], graph: Graph) -> list[Shape]:
    if not shapes:
        raise ArgumentError(f"{node.label()}: needs at least one input")
    return broadcast_shape(node, shapes, graph)


def _arith(name: str, op: str, host) -> OpDef:
    return OpDef(name, shape=broadcast_shape, host=on_constants(host), run=_run_binary(op),
                 kernels=("binary",), flops=_elements, same_types=0,
                 in_types=(F32,) if op == "pow" else NUMBERS)


def _compare(name: str, op: str, fn) -> OpDef:
    return OpDef(name, shape=broadcast_shape, host=on_constants(lambda n, a, b: fn(a, b)),
                 run=_run_compare(op), kernels=("compare",), flops=_elements,
                 output_itemsize=1, out_types=const_type(BOOL), same_types=0,
                 in_types=NUMBERS + (BOOL,) if op == "equal" else NUMBERS)


DEFS = (
    _arith("Sub", "sub", lambda n, a, b: np.subtract(a, b).astype(a.dtype)),
    _arith("Div", "div", _div),
    _arith("Pow", "pow", _pow),
    OpDef("Max", shape=_variadic_shape, host=on_constants(_variadic(np.maximum)),
          run=_run_binary("max"), kernels=("binary",), flops=_chain_flops,
          in_types=NUMBERS, same_types=0),
    OpDef("Min", shape=_variadic_shape, host=on_constants(_variadic(np.minimum)),
          run=_run_binary("min"), kernels=("binary",), flops=_chain_flops,
          in_types=NUMBERS, same_types=0),
    OpDef("Mod", shape=broadcast_shape, host=on_constants(_mod), run=_run_mod,
          kernels=("binary",), flops=_elements, in_types=NUMBERS, same_types=0),
    _compare("Equal", "equal", np.equal),
    _compare("Less", "less", np.less),
    _compare("Greater", "greater", np.greater),
    _compare("LessOrEqual", "less_equal", np.less_equal),
    _compare("GreaterOrEqual", "greater_equal", np.greater_equal),
    OpDef("Where", shape=broadcast_shape, host=on_constants(_where_host),
          run=lambda be, x, s: be.where(x[0], x[1], x[2]), kernels=("where",),
          out_types=input_type(1), in_types={0: (BOOL, U8), 1: NUMBERS + (BOOL,),
                                             2: NUMBERS + (BOOL,)}, same_types=1),
)
