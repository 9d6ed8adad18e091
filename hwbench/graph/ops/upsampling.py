"""Upsampling: ConvTranspose (``conv_transpose2d``; 1-D runs as 2-D with a unit height),
Resize and the deprecated Upsample (``resize``).

Resize's roi/scales/sizes (and Upsample's scales) are read on the host (``host_inputs``)
and must be constants, as exported models have them: hwbench resolves every shape before
running, so one computed at run time is refused, naming the node. The shape rule and the
run go through the same ``spec`` check, so they agree.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np

from hwbench.errors import ArgumentError, HwbenchError, UnsupportedError
from hwbench.graph.ir import Graph, Node
from hwbench.graph.ops.opdef import OpDef, Shape, Step
from hwbench.graph.ops.types import F32, LAYOUT
from hwbench.kernels import spec


def _text(value: Any, default: str) -> str:
    value = default if value is None else value
    return value.decode() if isinstance(value, bytes) else str(value)


def _stand_in(shape: Shape) -> SimpleNamespace:
    return SimpleNamespace(shape=tuple(shape), dtype=spec.FLOAT32)


def _checked(node: Node, check: Any, *args: Any, **params: Any) -> Any:
    """``check`` with its message naming the node."""
    try:
        return check(*args, **params)
    except HwbenchError as exc:
        raise type(exc)(f"{node.label()}: {exc}") from None


# -- ConvTranspose ---------------------------------------------------------------------------
def conv_transpose_args(node: Node, x: Shape, w: Shape) -> dict[str, Any]:
    """ONNX ConvTranspose's attributes -> ``conv_transpose2d`` keywords for the (N, C, H, W)
    view of ``x`` (a 1-D input as H = 1): explicit pads, auto_pad (SAME_UPPER/LOWER,
    VALID), output_padding and output_shape resolved to begin/end pads."""
    nd = len(x) - 2
    if nd not in (1, 2) or len(w) != len(x):
        raise UnsupportedError(f"{node.label()}: only 1-D and 2-D transposed convolutions "
                               f"are supported, input {x} and weight {w}")
    a = node.attrs
    kernel = list(w[2:])
    if a.get("kernel_shape") is not None and list(a["kernel_shape"]) != kernel:
        raise ArgumentError(f"{node.label()}: kernel_shape {list(a['kernel_shape'])} does "
                            f"not match the weight's {kernel}")
    strides = list(a.get("strides") or [1] * nd)
    dilations = list(a.get("dilations") or [1] * nd)
    extra = list(a.get("output_padding") or [0] * nd)
    pads = a.get("pads")
    auto_pad = _text(a.get("auto_pad"), "NOTSET")
    out_shape = a.get("output_shape")
    if out_shape is not None:
        out_shape = list(out_shape)[-nd:]
    for name, v in (("strides", strides), ("dilations", dilations), ("output_padding", extra)):
        if len(v) != nd:
            raise ArgumentError(f"{node.label()}: attribute '{name}' has {len(v)} values for "
                                f"{nd} spatial axes")
    begin, end = [], []
    for i in range(nd):
        full = strides[i] * (x[2 + i] - 1) + dilations[i] * (kernel[i] - 1) + 1
        natural = full + extra[i]
        if auto_pad in ("SAME_UPPER", "SAME_LOWER") or out_shape is not None:
            target = out_shape[i] if out_shape is not None else x[2 + i] * strides[i]
            total = natural - target
            if auto_pad == "SAME_UPPER":
                b = total // 2
            elif auto_pad == "SAME_LOWER":
                b = total - total // 2
            else:
                b = int(pads[i]) if pads else 0
            begin.append(b)
            end.append(full - b - target)
        elif auto_pad == "VALID" or not pads:
            begin.append(0)
            end.append(-extra[i])
        else:
            begin.append(int(pads[i]))
            end.append(int(pads[i + nd]) - extra[i])
    if nd == 1:
        strides, dilations, begin, end = [1, *strides], [1, *dilations], [0, *begin], [0, *end]
    return {"stride": tuple(strides), "dilation": tuple(dilations),
            "padding": (begin[0], begin[1], end[0], end[1]), "groups": int(a.get("group", 1))}


def _as_2d(shape: Shape) -> Shape:
    return shape if len(shape) == 4 else (shape[0], shape[1], 1, shape[2])


def _conv_transpose_problem(node: Node, shapes: list[Shape]) -> spec.ConvTransposeProblem:
    x, w = shapes[0], shapes[1]
    args = conv_transpose_args(node, x, w)
    bias = _stand_in(shapes[2]) if len(shapes) > 2 and shapes[2] is not None else None
    return _checked(node, spec.check_conv_transpose2d, _stand_in(_as_2d(x)),
                    _stand_in(_as_2d(w)), bias, **args)


def _conv_transpose_shape(node: Node, shapes: list[Shape], graph: Graph) -> list[Shape]:
    p = _conv_transpose_problem(node, shapes)
    out = p.output_shape
    return [out if len(shapes[0]) == 4 else (out[0], out[1], out[3])]


def _run_conv_transpose(be, x, s: Step):
    args = conv_transpose_args(s.node, s.in_shapes[0], s.in_shapes[1])
    data, w = x[0], x[1]
    one_d = len(s.in_shapes[0]) == 3
    if one_d:
        data = be.reshape(data, _as_2d(s.in_shapes[0]))
        w = be.reshape(w, _as_2d(s.in_shapes[1]))
    out = be.conv_transpose2d(data, w, x[2] if len(x) > 2 else None, **args)
    return be.reshape(out, s.out_shapes[0]) if one_d else out


def _conv_transpose_flops(node: Node, shapes: list[Any]) -> int:
    named = [sh for sh in shapes if sh is not None]
    return _conv_transpose_problem(node, named).flops


# -- Resize / Upsample -------------------------------------------------------------------------
def _host_values(node: Node, graph: Graph, positions: tuple[int, ...]) -> list[Any]:
    """The node's inputs as the shape rule sees them: constants at ``positions`` (one
    computed at run time is refused), None elsewhere and where omitted."""
    out = []
    for i, name in enumerate(node.inputs):
        if not name or i not in positions:
            out.append(None)
        elif name in graph.initializers:
            out.append(graph.initializers[name])
        else:
            what = {1: "roi", 2: "scales", 3: "sizes"}.get(i, "scales")
            if node.op_type == "Upsample" or graph.opset < 11:
                what = "scales"
            raise UnsupportedError(
                f"{node.label()}: input {i} ({what}, {name!r}) must be a constant: hwbench "
                f"resolves shapes before running, so it cannot be computed at run time")
    return out


def _given(value: Any) -> Any:
    """An omitted input or an empty tensor (opsets 11-12 pass scales empty with sizes)."""
    if value is None:
        return None
    arr = np.asarray(value)
    return None if arr.size == 0 else arr


def resize_params(node: Node, args: list[Any], opset: int) -> dict[str, Any]:
    """``resize`` keywords (scales, sizes and the options) from the node's attributes and
    host inputs, for every opset: Upsample (7-9) and Resize 10 are asymmetric with
    nearest rounding down; Resize 11+ has ONNX's full attribute set."""
    a = node.attrs
    mode = _text(a.get("mode"), "nearest")
    if node.op_type == "Upsample" or opset < 11:
        scales = a.get("scales") if node.op_type == "Upsample" and opset < 9 else args[1]
        if scales is None:
            raise ArgumentError(f"{node.label()}: no scales")
        return {"scales": [float(v) for v in np.asarray(scales).ravel()],
                "mode": "linear" if mode in ("linear", "bilinear") else mode,
                "coordinate_transformation_mode": "asymmetric", "nearest_mode": "floor"}
    def arg(i):
        return _given(args[i]) if len(args) > i else None
    scales, sizes, roi = arg(2), arg(3), arg(1)
    params: dict[str, Any] = {
        "scales": None if scales is None else [float(v) for v in scales.ravel()],
        "sizes": None if sizes is None else [int(v) for v in sizes.ravel()],
        "mode": mode,
        "coordinate_transformation_mode": _text(a.get("coordinate_transformation_mode"),
                                                "half_pixel"),
        "nearest_mode": _text(a.get("nearest_mode"), "round_prefer_floor"),
        "cubic_coeff_a": float(a.get("cubic_coeff_a", -0.75)),
        "exclude_outside": bool(a.get("exclude_outside", 0)),
        "extrapolation_value": float(a.get("extrapolation_value", 0.0)),
        "antialias": bool(a.get("antialias", 0)),
        "axes": None if a.get("axes") is None else [int(v) for v in a["axes"]],
        "keep_aspect_ratio_policy": _text(a.get("keep_aspect_ratio_policy"), "stretch"),
    }
    if params["coordinate_transformation_mode"] == "tf_crop_and_resize":
        params["roi"] = None if roi is None else [float(v) for v in roi.ravel()]
    return params


def _resize_def(name: str, host: tuple[int, ...]) -> OpDef:
    def problem(node, shape, args, opset):
        return _checked(node, spec.check_resize, _stand_in(shape),
                        **resize_params(node, args, opset))

    def shape(node, shapes, graph):
        args = _host_values(node, graph, host)
        return [problem(node, shapes[0], args, graph.opset).output_shape]

    def run(be, x, s: Step):
        return be.resize(x[0], **resize_params(s.node, x, s.opset))

    def flops(node, shapes):
        # Only input shapes reach a FLOP count, not the scales/sizes values, so the output
        # size is unknown here: 2 per input value, a lower bound (the kernel's
        # ResizeProblem.flops counts 2 per tap per value of every axis pass).
        return 2 * int(np.prod(shapes[0])) if shapes and shapes[0] is not None else 0

    def in_types(node):  # nearest only picks values: any layout type; the rest computes
        return {0: LAYOUT if _text(node.attrs.get("mode"), "nearest") == "nearest" else (F32,)}

    return OpDef(name, shape=shape, run=run, kernels=("resize",), host_inputs=host,
                 flops=flops, in_types=in_types)


DEFS = (
    OpDef("ConvTranspose", shape=_conv_transpose_shape, run=_run_conv_transpose,
          kernels=("conv_transpose2d", "reshape"), flops=_conv_transpose_flops),
    _resize_def("Resize", (1, 2, 3)),
    _resize_def("Upsample", (1,)),
)
