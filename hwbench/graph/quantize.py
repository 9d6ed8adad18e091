"""Post-training static quantization to int8: calibrate, then rewrite to ONNX's QLinear ops.

The result is a standard ONNX graph (QuantizeLinear, QLinearConv, DequantizeLinear), so
onnxruntime can run exactly what hwbench runs. The scheme is the one gemmlowp, TFLite and
onnxruntime's QOperator format use:

- weights: int8, symmetric (zero point 0), one scale per output channel (max |w| / 127);
- activations: uint8, asymmetric, one scale and zero point per tensor from the range
  seen on calibration inputs (widened to hold 0, so that padding and ReLU are exact);
- bias: int32 at scale ``x_scale * w_scale`` (QLinearConv's convention);
- Conv, and Gemm/MatMul with constant weights (as 1×1 QLinearConv on (N, K, 1, 1), which
  takes a bias where QLinearMatMul does not), run in int8. A Relu after one is folded
  into it: the output is quantized with the Relu's range, whose zero point 0 makes
  saturation the Relu. A tensor passing from one int8 op to the next stays uint8; every
  other op reads a DequantizeLinear of it and stays float32.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from hwbench.backends.base import Backend
from hwbench.errors import ArgumentError
from hwbench.graph.executor import Executor
from hwbench.graph.ir import Graph, Node, ValueInfo, prune
from hwbench.graph.ops import OP_DEFS, Int8Weights
from hwbench.graph.shape_inference import infer_shapes

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


@dataclass(frozen=True)
class TensorRange:
    """Smallest and largest value a tensor took over the calibration inputs."""

    low: float
    high: float

    def union(self, other: TensorRange) -> TensorRange:
        return TensorRange(min(self.low, other.low), max(self.high, other.high))


def is_quantized(graph: Graph) -> bool:
    """Whether ``graph`` came quantized: it holds integer ops (QOperator format, or this
    module's output), or both QuantizeLinear and DequantizeLinear (QDQ format)."""
    ops = {node.op_type for node in graph.nodes}
    return bool(ops & OP_DEFS.integer()) or {"QuantizeLinear", "DequantizeLinear"} <= ops


def uint8_params(r: TensorRange) -> tuple[np.float32, np.uint8]:
    """Scale and zero point mapping ``r`` (widened to include 0) onto 0..255."""
    low, high = min(r.low, 0.0), max(r.high, 0.0)
    scale = np.float32((high - low) / 255.0) if high > low else np.float32(1.0)
    zero_point = np.clip(np.rint(-low / float(scale)), 0, 255)
    return scale, np.uint8(zero_point)


def int8_weights(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-output-channel (axis 0) symmetric int8 weights and their float32 scales."""
    flat = np.abs(w.reshape(w.shape[0], -1)).max(axis=1).astype(np.float64)
    scales = np.where(flat > 0, flat / 127.0, 1.0).astype(np.float32)
    shape = (-1,) + (1,) * (w.ndim - 1)
    q = np.clip(np.rint(w / scales.reshape(shape)), -127, 127).astype(np.int8)
    return q, scales


def int32_bias(bias: np.ndarray, x_scale: np.float32, w_scales: np.ndarray) -> np.ndarray:
    """Bias at scale ``x_scale * w_scale`` (float32 product, as QLinearConv defines it)."""
    scale = (np.float32(x_scale) * w_scales).astype(np.float64)
    return np.clip(np.rint(bias.astype(np.float64) / scale), INT32_MIN, INT32_MAX).astype(
        np.int32)


# -- calibration --------------------------------------------------------------------------
def _int8_form(graph: Graph, node: Node) -> Int8Weights | None:
    """``node``'s weights as a QLinearConv takes them (its ``OpDef.int8``), or None where
    it stays float."""
    op = OP_DEFS.of(node)
    return op.int8(graph, node) if op is not None and op.int8 is not None else None


def _candidates(graph: Graph) -> list[Node]:
    """The nodes this pass turns into int8: those whose op's int8 form accepts them
    (Conv, and Gemm/MatMul with constant weights)."""
    return [node for node in graph.nodes if _int8_form(graph, node) is not None]


def _sole_relu(graph: Graph, value: str, consumers) -> Node | None:
    readers = consumers.get(value, [])
    if len(readers) == 1 and readers[0].op_type == "Relu" and value not in graph.output_names:
        return readers[0]
    return None


def observed_tensors(graph: Graph) -> list[str]:
    """The float tensors whose ranges quantization needs: every candidate's input and
    output, and the output of a Relu that follows one."""
    consumers = graph.consumers()
    names: list[str] = []
    for node in _candidates(graph):
        names += [node.inputs[0], node.outputs[0]]
        relu = _sole_relu(graph, node.outputs[0], consumers)
        if relu is not None:
            names.append(relu.outputs[0])
    return list(dict.fromkeys(names))


def calibrate(graph: Graph, feeds: Iterable[Mapping[str, np.ndarray]],
              backend: Backend) -> dict[str, TensorRange]:
    """Run ``graph`` (an optimized float32 graph) on ``backend`` for each feed dict and
    record the range of every tensor ``observed_tensors`` names.

    The caller picks the backend (``hwbench.models.quantization`` uses ``numpy``, so that
    the ranges, and the quantized model, are the same whichever backend later runs it).
    """
    names = observed_tensors(graph)
    if not names:
        return {}
    probe = graph.copy()
    shapes = infer_shapes(probe)
    known = set(probe.output_names)
    probe.outputs += [ValueInfo(n, shapes[n]) for n in names if n not in known]
    executor = Executor(probe, backend)
    ranges: dict[str, TensorRange] = {}
    count = 0
    for feed in feeds:
        outputs = executor.run(dict(feed))
        count += 1
        for name, value in zip(probe.output_names, outputs, strict=True):
            if name in names:
                seen = TensorRange(float(value.min()), float(value.max()))
                ranges[name] = ranges[name].union(seen) if name in ranges else seen
    if count == 0:
        raise ArgumentError("calibration: no calibration inputs were given")
    return ranges


# -- the rewrite ------------------------------------------------------------------------
class _Rewriter:
    def __init__(self, graph: Graph, ranges: Mapping[str, TensorRange]) -> None:
        self.g = graph
        self.ranges = ranges
        self.shapes = infer_shapes(graph)
        self.consumers = graph.consumers()
        self.params: dict[str, tuple[str, str]] = {}  # float tensor -> (scale, zp) names
        self.quantized: dict[str, str] = {}  # float tensor -> its uint8 twin
        self.out: list[Node] = []

    def _params(self, tensor: str) -> tuple[str, str]:
        if tensor not in self.params:
            if tensor not in self.ranges:
                raise ArgumentError(f"quantize: no calibrated range for tensor {tensor!r}")
            scale, zero_point = uint8_params(self.ranges[tensor])
            self.params[tensor] = (self.g.add_initializer(f"{tensor}_scale", scale),
                                   self.g.add_initializer(f"{tensor}_zero_point", zero_point))
        return self.params[tensor]

    def _uint8(self, tensor: str) -> str:
        """``tensor`` as uint8: the twin an int8 op produced, or a new QuantizeLinear."""
        if tensor not in self.quantized:
            name = self.g.fresh_name(f"{tensor}_quantized")
            self.out.append(Node("QuantizeLinear", [tensor, *self._params(tensor)], [name],
                                 name=f"{name}_q"))
            self.quantized[tensor] = name
        return self.quantized[tensor]

    def _reshape(self, tensor: str, shape: tuple[int, ...], base: str) -> str:
        target = self.g.add_initializer(f"{base}_shape", np.asarray(shape, np.int64))
        name = self.g.fresh_name(base)
        self.out.append(Node("Reshape", [tensor, target], [name], name=name))
        return name

    def rewrite(self) -> Graph:
        skip: set[int] = set()
        for node in self.g.nodes:
            if id(node) in skip:
                continue
            form = _int8_form(self.g, node)
            if form is None:
                self.out.append(node)
                continue
            relu = _sole_relu(self.g, node.outputs[0], self.consumers)
            if relu is not None:
                skip.add(id(relu))
            self._int8(node, form, relu)
        self.g.nodes = self.out
        return prune(self.g)

    def _int8(self, node: Node, form: Int8Weights, relu: Node | None) -> None:
        g = self.g
        x, y = node.inputs[0], (relu or node).outputs[0]
        w, bias, attrs = form.weight, form.bias, dict(form.attrs)
        x_scale_name, x_zp_name = self._params(x)
        y_scale_name, y_zp_name = self._params(y)
        wq, w_scales = int8_weights(w)
        inputs = [self._uint8(x), x_scale_name, x_zp_name,
                  g.add_initializer(f"{node.inputs[1]}_int8", wq),
                  g.add_initializer(f"{node.inputs[1]}_scale", w_scales),
                  g.add_initializer(f"{node.inputs[1]}_zero_point",
                                    np.zeros(w.shape[0], np.int8)),
                  y_scale_name, y_zp_name]
        if bias is not None:
            x_scale = g.initializers[x_scale_name]
            inputs.append(g.add_initializer(f"{node.inputs[2]}_int32",
                                            int32_bias(np.asarray(bias).reshape(-1), x_scale,
                                                       w_scales)))
        label = node.name or y
        if form.as_1x1:  # Reshape targets copy the batch (0): any batch works
            x_shape = self.shapes[x]  # N-D MatMul: its leading dimensions are the rows
            rows = 0 if len(x_shape) == 2 else math.prod(x_shape[:-1])
            inputs[0] = self._reshape(inputs[0], (rows, x_shape[-1], 1, 1),
                                      f"{label}_nk11")
        y_q = g.fresh_name(f"{y}_quantized")
        self.out.append(Node("QLinearConv", inputs, [y_q], attrs, name=f"{label}_int8"))
        if form.as_1x1:
            y_shape = self.shapes[y]
            y_q = self._reshape(y_q, (0, y_shape[1]) if len(y_shape) == 2 else y_shape,
                                f"{label}_nm")
        self.quantized[y] = y_q
        self.out.append(Node("DequantizeLinear", [y_q, y_scale_name, y_zp_name], [y],
                             name=f"{label}_dq"))


def quantize_graph(graph: Graph, ranges: Mapping[str, TensorRange]) -> Graph:
    """A copy of ``graph`` (optimized, float32) with its convolutions and constant-weight
    GEMMs in int8, using the calibrated ``ranges``. DequantizeLinear nodes nobody reads
    (between two int8 ops) are pruned."""
    quantized = _Rewriter(graph.copy(), ranges).rewrite()
    # QuantizeLinear and QLinearConv exist from opset 10. Raising an opset-9 graph to 10
    # changes nothing the passes leave in it (MaxPool/AveragePool gain ceil_mode, off by
    # default; Slice, Upsample and Dropout, which did change, are not among them).
    quantized.opset = max(quantized.opset, 10)
    return quantized


# -- QDQ models (onnxruntime's quantize_static, QuantFormat.QDQ) ---------------------------
def _constant(graph: Graph, name: str) -> np.ndarray | None:
    return graph.initializers.get(name) if name else None


def fuse_qdq_convs(graph: Graph) -> Graph:
    """DequantizeLinear(x) and DequantizeLinear(w) -> Conv -> QuantizeLinear, the "QDQ"
    form of an int8 convolution, becomes one QLinearConv (in place), as onnxruntime fuses
    it: such a model then runs on the exact integer kernels its producer meant, instead of
    a float convolution between (de)quantizations. Fused only where every scale and zero
    point is a constant, activations are per tensor, weights per tensor or per output
    channel (axis 0), and the bias is an int32 at ``x_scale * w_scale`` (or float)."""
    producers, consumers = graph.producers(), graph.consumers()
    replace: dict[int, Node | None] = {}
    for node in graph.nodes:
        fused = _fused_qdq_conv(graph, node, producers, consumers)
        if fused is not None:
            conv_out = node.outputs[0]
            replace[id(node)] = fused
            replace[id(consumers[conv_out][0])] = None  # the QuantizeLinear
    if replace:
        graph.nodes = [replace.get(id(n), n) for n in graph.nodes if replace.get(id(n), n)]
        prune(graph)
    return graph


def _through_identities(producers, name: str) -> Node | None:
    """The node producing ``name``, looking through Identity nodes (an exporter's alias of
    a shared initializer, kept where it names a graph output)."""
    node = producers.get(name)
    while node is not None and node.op_type == "Identity":
        node = producers.get(node.inputs[0])
    return node


def _fused_qdq_conv(graph: Graph, node: Node, producers, consumers) -> Node | None:
    if node.op_type != "Conv" or node.outputs[0] in graph.output_names:
        return None
    x_dq = _through_identities(producers, node.inputs[0])
    w_dq = _through_identities(producers, node.inputs[1])
    readers = consumers.get(node.outputs[0], [])
    if (x_dq is None or w_dq is None or x_dq.op_type != "DequantizeLinear"
            or w_dq.op_type != "DequantizeLinear" or len(readers) != 1
            or readers[0].op_type != "QuantizeLinear"):
        return None
    q = readers[0]
    parts = [list(n.inputs) + [""] * (3 - len(n.inputs)) for n in (x_dq, w_dq, q)]
    if any(n.attrs.get("block_size", 0) for n in (x_dq, w_dq, q)):
        return None
    constants = [_constant(graph, name) for p in parts for name in p[1:]]
    weights = _constant(graph, w_dq.inputs[0])
    if weights is None or any(c is None for c in constants):
        return None
    x_scale, x_zp, w_scale, w_zp, y_scale, y_zp = constants
    if x_scale.size != 1 or x_zp.size != 1 or y_scale.size != 1 or y_zp.size != 1:
        return None
    if w_scale.size > 1 and (w_dq.attrs.get("axis", 1) != 0 or w_scale.size != weights.shape[0]):
        return None
    inputs = [x_dq.inputs[0], parts[0][1], parts[0][2], w_dq.inputs[0], parts[1][1],
              parts[1][2], parts[2][1], parts[2][2]]
    if len(node.inputs) > 2 and node.inputs[2]:
        bias = _qdq_bias(graph, node.inputs[2], producers, x_scale, w_scale)
        if bias is None:
            return None
        inputs.append(bias)
    return Node("QLinearConv", inputs, [q.outputs[0]], dict(node.attrs),
                name=f"{node.name or node.outputs[0]}_qdq")


def _qdq_bias(graph: Graph, name: str, producers, x_scale: np.ndarray,
              w_scale: np.ndarray) -> str | None:
    """The int32 bias input of a fused QDQ conv: DequantizeLinear(int32) at the product of
    the scales (as onnxruntime writes it), or a float constant quantized to it."""
    expected = (np.float32(x_scale.reshape(())) * w_scale.astype(np.float32)).reshape(-1)
    dq = _through_identities(producers, name)
    if dq is not None and dq.op_type == "DequantizeLinear":
        values = _constant(graph, dq.inputs[0])
        scale = _constant(graph, dq.inputs[1])
        zero = _constant(graph, dq.inputs[2]) if len(dq.inputs) > 2 else None
        if (values is None or values.dtype != np.int32 or scale is None
                or (zero is not None and np.any(zero != 0))
                or scale.size not in (1, expected.size) or values.size != expected.size):
            return None
        scale = scale.astype(np.float32).reshape(-1)
        if np.array_equal(np.broadcast_to(scale, expected.shape), expected):
            return dq.inputs[0]
        # A DequantizeLinear shared by several convs (onnxruntime quantizes an initializer
        # the exporter shared once, at the scales of its first reader): its float value,
        # requantized at this conv's x_scale * w_scale.
        real = (values.reshape(-1).astype(np.float32) * scale).astype(np.float32)
        return graph.add_initializer(f"{dq.inputs[0]}_int32",
                                     int32_bias(real, np.float32(x_scale.reshape(())),
                                                w_scale.astype(np.float32)))
    values = _constant(graph, name)
    if values is None or values.dtype != np.float32:
        return None
    return graph.add_initializer(f"{name}_int32",
                                 int32_bias(values, np.float32(x_scale.reshape(())),
                                            w_scale.astype(np.float32)))
