"""Recurrent nets: RNN, GRU and LSTM (opsets 14-22; layout is opset 14's), one ``rnn``
kernel. Every input past R is optional (an empty name); ``sequence_lens`` is read on the
host (a constant, or a graph input the executor keeps there). Outputs Y, Y_h (and LSTM's
Y_c) may each be omitted."""

from __future__ import annotations

from typing import Any

import numpy as np

from hwbench.errors import ArgumentError
from hwbench.graph.ir import Graph, Node
from hwbench.graph.ops.opdef import OpDef, Shape, Step
from hwbench.kernels import rnn_reference, spec

INPUTS = ("X", "W", "R", "B", "sequence_lens", "initial_h", "initial_c", "P")
CELL = {"RNN": "rnn", "GRU": "gru", "LSTM": "lstm"}


def _attrs(node: Node) -> dict[str, Any]:
    a = node.attrs
    out: dict[str, Any] = dict(
        cell=CELL[node.op_type], hidden_size=a.get("hidden_size"),
        direction=a.get("direction", "forward"), layout=int(a.get("layout", 0)),
        activations=a.get("activations"), activation_alpha=a.get("activation_alpha"),
        activation_beta=a.get("activation_beta"), clip=a.get("clip"))
    if node.op_type == "LSTM":
        out["input_forget"] = int(a.get("input_forget", 0))
    if node.op_type == "GRU":
        out["linear_before_reset"] = int(a.get("linear_before_reset", 0))
    return out


def _problem(node: Node, values: list[Any]) -> spec.RnnProblem:
    """``spec.check_rnn`` on the node's inputs by position (None where omitted)."""
    args = list(values) + [None] * (len(INPUTS) - len(values))
    try:
        return spec.check_rnn(*args, **_attrs(node))
    except ArgumentError as exc:
        raise ArgumentError(f"{node.label()}: {exc}") from exc


def _stand_ins(node: Node, shapes: list[Any]) -> list[Any]:
    """Zero-strided float32 arrays of each input's shape (None where omitted);
    sequence_lens left out (the shapes do not depend on it)."""
    return [None if s is None or i == 4 else np.broadcast_to(np.float32(0), s)
            for i, s in enumerate(shapes)]


def _shape(node: Node, shapes: list[Shape], graph: Graph) -> list[Shape]:
    named = iter(shapes)
    by_position = [next(named) if name else None for name in node.inputs]
    p = _problem(node, _stand_ins(node, by_position))
    return [p.y_shape, p.state_shape, p.state_shape][:len(node.outputs)]


def _host_lens(be, value: Any) -> np.ndarray | None:
    if value is None or isinstance(value, np.ndarray):
        return value
    return be.to_numpy(value)  # computed at run time on the device: one small read


def _run(be, x, s: Step):
    args = list(x) + [None] * (len(INPUTS) - len(x))
    return be.rnn(args[0], args[1], args[2], args[3], _host_lens(be, args[4]), args[5],
                  args[6], args[7], **_attrs(s.node))


def _host(node: Node, args: list[Any], opset: int) -> list[Any]:
    args = [None if v is None else np.asarray(v) for v in args]
    p = _problem(node, args)
    outs = rnn_reference.rnn(p, args[0], args[1], args[2], *_optional(args))
    return [None if v is None else v.astype(np.float32) for v in outs][:len(node.outputs)]


def _optional(args: list[Any]) -> list[Any]:
    args = list(args) + [None] * (len(INPUTS) - len(args))
    return [args[3], args[5], args[6], args[7]]


def _flops(node: Node, shapes: list[Any]) -> int:
    return _problem(node, _stand_ins(node, list(shapes))).flops


DEFS = tuple(OpDef(name, shape=_shape, run=_run, kernels=("rnn",), host=_host,
                   host_inputs=(4,), flops=_flops) for name in ("RNN", "GRU", "LSTM"))
