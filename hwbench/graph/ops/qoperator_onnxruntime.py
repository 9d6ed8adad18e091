"""The ``com.microsoft`` ops between codes in the ``onnxruntime-requant`` mode
(``backends.onnxruntime_requant``): onnxruntime's own arithmetic
(``kernels.onnxruntime_rounding``) on the host, so that their codes are onnxruntime's
bit for bit. The default mode runs them as the backend's dequantize -> float kernel ->
quantize (``qoperator``); the ops whose float path already matches onnxruntime's
(QLinearConcat, QLinearSoftmax) keep it."""

from __future__ import annotations

import numpy as np

from hwbench.backends import onnxruntime_requant
from hwbench.graph.ops.opdef import Step
from hwbench.graph.ops.quantized import _host, _optional
from hwbench.kernels import onnxruntime_rounding as ort

enabled = onnxruntime_requant.enabled


def _scalar(be, value, like=None):
    """A scale or zero point as a NumPy scalar; an omitted zero point is 0."""
    value = _host(be, value)
    if value is None:
        return 0
    return np.asarray(value).reshape(())


def binary(be, x: list, kind: str):
    """QLinearAdd (``kind`` "add") or QLinearMul ("mul")."""
    a, b = be.to_numpy(x[0]), be.to_numpy(x[3])
    fn = ort.qlinear_add if kind == "add" else ort.qlinear_mul
    y = fn(a, _scalar(be, x[1]), _scalar(be, _optional(x, 2)), b, _scalar(be, x[4]),
           _scalar(be, _optional(x, 5)), _scalar(be, x[6]), _scalar(be, _optional(x, 7)),
           a.dtype)
    return be.asarray(np.ascontiguousarray(y))


def table_op(be, x: list, fn):
    """QLinearSigmoid/QLinearLeakyRelu: ``fn`` through a 256-entry table."""
    codes = be.to_numpy(x[0])
    table = ort.lookup_table(fn, _scalar(be, x[1]), _scalar(be, _optional(x, 2)),
                             _scalar(be, x[3]), _scalar(be, _optional(x, 4)), codes.dtype)
    return be.asarray(ort.apply_table(table, codes))


def sigmoid(be, x: list, s: Step):
    return table_op(be, x, ort.sigmoid)


def leaky_relu(be, x: list, s: Step):
    return table_op(be, x, ort.leaky_relu(float(s.node.attrs.get("alpha", 0.01))))


def global_average_pool(be, x: list, s: Step):
    codes = be.to_numpy(x[0])
    return be.asarray(ort.global_average_pool(
        codes, _scalar(be, x[1]), _scalar(be, _optional(x, 2)), _scalar(be, x[3]),
        _scalar(be, _optional(x, 4)), codes.dtype))


def average_pool(be, x: list, s: Step):
    """QLinearAveragePool (NCHW, undilated: ``qoperator`` checks) in onnxruntime's order."""
    from hwbench.graph.ops.shapes import conv_params

    node = s.node
    kernel = tuple(node.attrs["kernel_shape"])
    p = conv_params(node, s.in_shapes[0], kernel)
    codes = be.to_numpy(x[0])
    return be.asarray(ort.average_pool(
        codes, _scalar(be, x[1]), _scalar(be, _optional(x, 2)), _scalar(be, x[3]),
        _scalar(be, _optional(x, 4)), kernel, p["stride"], p["padding"],
        tuple(s.out_shapes[0][2:]), bool(node.attrs.get("count_include_pad", 0)),
        codes.dtype))
