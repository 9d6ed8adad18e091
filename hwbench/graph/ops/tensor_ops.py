"""Run-time data movement: Slice, Split, Gather, Expand, Pad, Tile, Squeeze, Unsqueeze.

Their shape-like inputs (Slice's starts/ends/axes/steps, Split's split, Expand's shape,
Pad's pads/value/axes, Tile's repeats, (Un)Squeeze's axes) are read on the host
(``host_inputs``) and must be constants: hwbench resolves every shape before running.
Gather's indices are host values too (bounds-checked exactly): a constant, or a graph
input (token ids), which the executor then keeps on the host instead of uploading, or
indices computed at run time (position ids), read back from the device.
The shape rule, the run and the host evaluation all go through one ``spec`` check, so
they agree; the host evaluation takes any dtype (shape arithmetic is int64).
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np

from hwbench.errors import ArgumentError, HwbenchError, UnsupportedError
from hwbench.graph.ir import Graph, Node
from hwbench.graph.ops.opdef import OpDef, Shape
from hwbench.kernels import spec
from hwbench.kernels.spec.tensor_ops import slice_range


def _ints(value: Any) -> list[int] | None:
    return None if value is None else [int(v) for v in np.asarray(value).ravel()]


def _graph_args(node: Node, graph: Graph, host: tuple[int, ...]) -> list[Any]:
    """The node's inputs as the shape rule sees them: constants' values at ``host``
    positions (a run-time tensor there is refused), None elsewhere and where omitted."""
    out = []
    for i, name in enumerate(node.inputs):
        if not name or i not in host:
            out.append(None)
        elif name in graph.initializers:
            out.append(graph.initializers[name])
        else:
            raise UnsupportedError(
                f"{node.label()}: input {i} ({name!r}) must be a constant: hwbench resolves "
                f"shapes before running, so it cannot be computed at run time")
    return out


def _arg(args: list[Any], i: int) -> Any:
    return args[i] if len(args) > i else None


def _checked(node: Node, check: Any, shape: Shape, /, **params: Any) -> spec.TakeProblem:
    """``check`` on a stand-in of ``shape`` (any dtype: the host evaluation also folds
    int64 shape arithmetic), its message naming the node."""
    try:
        return check(SimpleNamespace(shape=tuple(shape), dtype=spec.FLOAT32), **params)
    except HwbenchError as exc:
        raise type(exc)(f"{node.label()}: {exc}") from None


# -- each op's parameters, from attributes (old opsets) or host inputs ----------------------
def _slice_params(node: Node, args: list[Any], opset: int) -> dict[str, Any]:
    a = node.attrs
    if opset < 10:
        return {"starts": a["starts"], "ends": a["ends"], "axes": a.get("axes")}
    return {"starts": _ints(args[1]), "ends": _ints(args[2]), "axes": _ints(_arg(args, 3)),
            "steps": _ints(_arg(args, 4))}


def _pad_params(node: Node, args: list[Any], opset: int, rank: int) -> dict[str, Any]:
    a = node.attrs
    mode = a.get("mode", "constant")
    mode = mode.decode() if isinstance(mode, bytes) else mode
    if opset < 11:
        return {"pads": list(a["pads"]), "mode": mode, "value": float(a.get("value", 0.0))}
    pads, value, axes = _ints(args[1]), _arg(args, 2), _ints(_arg(args, 3))
    if axes is not None:
        if len(pads) != 2 * len(axes):
            raise ArgumentError(f"{node.label()}: {len(pads)} pads for axes {axes}")
        full = [0] * (2 * rank)
        for j, axis in enumerate(axes):
            axis = axis + rank if axis < 0 else axis
            full[axis], full[axis + rank] = pads[j], pads[j + len(axes)]
        pads = full
    value = 0.0 if value is None else np.asarray(value).ravel()[0].item()
    return {"pads": pads, "mode": mode, "value": value}


def _take_def(name: str, check: Any, params: Any, kernel: str, host: tuple[int, ...],
              x_only: bool = True) -> OpDef:
    """An op that is one ``spec`` take: parameters from ``params(node, args, opset,
    rank)``."""

    def shape(node, shapes, graph):
        args = _graph_args(node, graph, host)
        return [_checked(node, check, shapes[0],
                         **params(node, args, graph.opset, len(shapes[0]))).shape]

    def run(be, x, s):
        return getattr(be, kernel)(x[0], **params(s.node, x, s.opset, len(s.in_shapes[0])))

    def evaluate(node, args, opset):
        if name == "Slice" and opset >= 10:
            return [_slice_host(node, np.asarray(args[0]), args)]
        p = _checked(node, check, args[0].shape, **params(node, args, opset, args[0].ndim))
        return [p.apply(np.asarray(args[0]))]

    return OpDef(name, shape=shape, run=run, kernels=(kernel,), host=evaluate,
                 host_inputs=host)


def _slice_host(node: Node, x: np.ndarray, args: list[Any]) -> np.ndarray:
    """Slice on constants: as the kernel's take, but an empty result is a value here
    (exported shape arithmetic slices ``shape[:0]`` and concatenates it)."""
    p = _slice_params(node, args, 10)
    try:
        return _checked(node, spec.check_slice, x.shape, **p).apply(x)
    except UnsupportedError:
        pass  # an empty result (or a rank past the kernels'): NumPy takes it
    rank = x.ndim
    axes = p["axes"] if p["axes"] is not None else list(range(len(p["starts"])))
    steps = p["steps"] if p["steps"] is not None else [1] * len(axes)
    index = [slice(None)] * rank
    for axis, b, e, step in zip(axes, p["starts"], p["ends"], steps, strict=True):
        axis = axis + rank if axis < 0 else axis
        r = slice_range(x.shape[axis], b, e, step)
        index[axis] = np.arange(r.start, r.stop, r.step, dtype=np.int64)
    out = x
    for axis, pick in enumerate(index):
        if not isinstance(pick, slice):
            out = np.take(out, pick, axis=axis)
    return out


# -- Gather: indices are host values of any shape ---------------------------------------------
def _gather_shape(node: Node, shapes: list[Shape], graph: Graph) -> list[Shape]:
    x, idx = shapes[0], shapes[1]
    axis = node.attrs.get("axis", 0)
    if not -len(x) <= axis < len(x):
        raise ArgumentError(f"{node.label()}: axis {axis} is out of range for shape {x}")
    axis %= len(x)
    return [x[:axis] + tuple(idx) + x[axis + 1:]]


def _host_indices(be, idx: Any) -> Any:
    """Gather's indices on the host: computed at run time on a device (RoBERTa's position
    ids: cumsum of the mask), they are read back, as the kernel bounds-checks them there
    (one small integer tensor, like Clip's run-time bounds)."""
    if isinstance(idx, (np.ndarray, np.generic)):
        return idx
    return be.to_numpy(idx)


def _gather_host(node, args, opset):
    x, idx = np.asarray(args[0]), np.asarray(args[1])
    p = _checked(node, lambda s, **k: spec.check_gather(s, idx, **k), x.shape,
                 axis=node.attrs.get("axis", 0))
    return [p.apply(x)]


# -- Split: slices along one axis ---------------------------------------------------------------
def split_sizes(node: Node, dim: int, split: Any, opset: int) -> list[int]:
    """Split's part lengths: listed (``split``), or equal parts (the last one smaller from
    opset 18, where ``num_outputs`` says how many)."""
    if split is None and opset < 13:
        split = node.attrs.get("split")
    if split is not None:
        sizes = _ints(split)
        if sum(sizes) != dim or min(sizes) < 1 or len(sizes) != len(node.outputs):
            raise ArgumentError(f"{node.label()}: split {sizes} does not cut length {dim} "
                                f"into {len(node.outputs)} non-empty parts")
        return sizes
    parts = int(node.attrs.get("num_outputs", len(node.outputs)))
    chunk = -(-dim // parts)
    if opset >= 18 and "num_outputs" in node.attrs:
        sizes = [chunk] * (parts - 1) + [dim - chunk * (parts - 1)]
    elif dim % parts:
        raise ArgumentError(f"{node.label()}: length {dim} does not split into {parts} "
                            f"equal parts")
    else:
        sizes = [dim // parts] * parts
    if min(sizes) < 1:
        raise ArgumentError(f"{node.label()}: length {dim} leaves an empty part of {parts}")
    return sizes


def _split_axis(node: Node, rank: int) -> int:
    axis = node.attrs.get("axis", 0)
    if not -rank <= axis < rank:
        raise ArgumentError(f"{node.label()}: axis {axis} is out of range for rank {rank}")
    return axis % rank


def _split_parts(node: Node, shape: Shape, split: Any, opset: int) -> list[tuple[int, int]]:
    axis = _split_axis(node, len(shape))
    bounds, start = [], 0
    for size in split_sizes(node, shape[axis], split, opset):
        bounds.append((start, start + size))
        start += size
    return bounds


def _split_shape(node: Node, shapes: list[Shape], graph: Graph) -> list[Shape]:
    split = _graph_args(node, graph, (1,))
    axis = _split_axis(node, len(shapes[0]))
    return [shapes[0][:axis] + (e - b,) + shapes[0][axis + 1:]
            for b, e in _split_parts(node, shapes[0], _arg(split, 1), graph.opset)]


def _split_run(be, x, s):
    axis = _split_axis(s.node, len(s.in_shapes[0]))
    return tuple(be.slice(x[0], [b], [e], [axis])
                 for b, e in _split_parts(s.node, s.in_shapes[0], _arg(x, 1), s.opset))


def _split_host(node, args, opset):
    x = np.asarray(args[0])
    axis = _split_axis(node, x.ndim)
    return [np.take(x, np.arange(b, e), axis=axis)
            for b, e in _split_parts(node, x.shape, _arg(args, 1), opset)]


# -- Squeeze / Unsqueeze: views through reshape ----------------------------------------------
def _axes(node: Node, args: list[Any], opset: int) -> list[int] | None:
    """(Un)Squeeze's axes: an input from opset 13, an attribute before."""
    if _arg(args, 1) is not None:
        return _ints(args[1])
    axes = node.attrs.get("axes")
    return None if axes is None else [int(a) for a in axes]


def squeezed(node: Node, shape: Shape, axes: list[int] | None) -> Shape:
    rank = len(shape)
    if axes is None:
        return tuple(d for d in shape if d != 1)
    picked = {a + rank if a < 0 else a for a in axes}
    if any(not 0 <= a < rank or shape[a] != 1 for a in picked) or len(picked) != len(axes):
        raise ArgumentError(f"{node.label()}: cannot squeeze axes {axes} of shape {shape}")
    return tuple(d for i, d in enumerate(shape) if i not in picked)


def unsqueezed(node: Node, shape: Shape, axes: list[int] | None) -> Shape:
    if not axes:
        raise ArgumentError(f"{node.label()}: Unsqueeze needs axes")
    rank = len(shape) + len(axes)
    picked = {a + rank if a < 0 else a for a in axes}
    if any(not 0 <= a < rank for a in picked) or len(picked) != len(axes):
        raise ArgumentError(f"{node.label()}: axes {axes} do not fit a rank-{rank} result")
    rest = iter(shape)
    return tuple(1 if i in picked else next(rest) for i in range(rank))


def _view_def(name: str, rule: Any) -> OpDef:
    def shape(node, shapes, graph):
        return [rule(node, shapes[0], _axes(node, _graph_args(node, graph, (1,)), graph.opset))]

    def host(node, args, opset):
        x = np.asarray(args[0])
        return [x.reshape(rule(node, x.shape, _axes(node, args, opset)))]

    return OpDef(name, shape=shape, host=host, host_inputs=(1,), kernels=("reshape",),
                 run=lambda be, x, s: be.reshape(x[0], s.out_shapes[0]), output_itemsize=0)


def _tile_params(node, args, opset, rank):
    return {"repeats": _ints(args[1])}


def _expand_params(node, args, opset, rank):
    return {"shape": _ints(args[1])}


DEFS = (
    _take_def("Slice", spec.check_slice, lambda n, a, o, r: _slice_params(n, a, o), "slice",
              (1, 2, 3, 4)),
    _take_def("Expand", spec.check_expand, _expand_params, "expand", (1,)),
    _take_def("Pad", spec.check_pad, _pad_params, "pad", (1, 2, 3)),
    _take_def("Tile", spec.check_tile, _tile_params, "tile", (1,)),
    OpDef("Gather", shape=_gather_shape, host=_gather_host, host_inputs=(1,),
          kernels=("gather",),
          run=lambda be, x, s: be.gather(x[0], _host_indices(be, x[1]),
                                         s.node.attrs.get("axis", 0))),
    OpDef("Split", shape=_split_shape, host=_split_host, host_inputs=(1,), kernels=("slice",),
          run=_split_run),
    _view_def("Squeeze", squeezed),
    _view_def("Unsqueeze", unsqueezed),
)

__all__ = ["DEFS", "split_sizes", "squeezed", "unsqueezed"]
