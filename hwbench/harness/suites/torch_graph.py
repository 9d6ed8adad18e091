"""PyTorch as a whole-model peer: the ONNX graph hwbench runs, converted to PyTorch calls.

``TorchGraph(graph)`` turns every node of a ``hwbench.graph.ir.Graph`` into the
``torch`` / ``torch.nn.functional`` call PyTorch's own model code makes for it (Conv ->
``F.conv2d``, Gemm -> ``F.linear``, BatchNormalization -> ``F.batch_norm`` in inference,
LayerNormalization -> ``F.layer_norm``, ...), with the initializers as float32 tensors
converted once. A run walks that list in eager mode, under ``torch.inference_mode``:
what a PyTorch user's ``model.eval()`` forward does, on the same weights and inputs as
hwbench and onnxruntime. fp32 graphs only; an op outside ``CONVERTERS`` raises
``UnsupportedError`` naming it, so the peer's row says why it is absent.

``TorchModelPeer`` offers what the model suite asks of a peer (``session``, ``info``,
``synchronize``) at hwbench's thread count, like ``peers.OnnxRuntimePeer``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from hwbench.errors import UnsupportedError
from hwbench.graph.ir import Graph, Node

Fn = Callable[..., Any]  # (*input tensors) -> tensor or tuple of tensors


class _Build:
    """What a converter sees of a node: its attributes, its constant inputs as numpy."""

    def __init__(self, torch: Any, graph: Graph, node: Node) -> None:
        self.torch, self.f, self.graph, self.node = torch, torch.nn.functional, graph, node
        self.attrs = node.attrs
        self.weights: dict[int, np.ndarray] = {}  # constant inputs stored in a new layout

    def const(self, index: int) -> np.ndarray | None:
        """Input ``index`` as numpy where it is an initializer; None where absent or live."""
        inputs = self.node.inputs
        if index >= len(inputs) or not inputs[index]:
            return None
        return self.graph.initializers.get(inputs[index])

    def ints(self, name: str, default: list[int]) -> list[int]:
        return [int(v) for v in self.attrs.get(name, default)]

    def pads(self, rank: int) -> tuple[list[int], list[int]]:
        """ONNX ``pads`` as (begins, ends); ``auto_pad`` other than NOTSET is refused."""
        auto = self.attrs.get("auto_pad", "NOTSET")
        auto = auto.decode() if isinstance(auto, bytes) else auto
        if auto not in ("NOTSET", ""):
            raise UnsupportedError(f"torch peer: {self.node.op_type} with auto_pad={auto}")
        pads = self.ints("pads", [0] * 2 * rank)
        return pads[:rank], pads[rank:]


def _padded(b: _Build, begins: list[int], ends: list[int], value: float,
            kernel: list[int] | None = None) -> tuple[Fn, Any]:
    """(input transform, padding argument): symmetric pads go to the op itself, others
    through ``F.pad`` first (PyTorch's ops take one pad per side pair, and a pooling
    window at most twice its pad)."""
    if begins == ends and (kernel is None or 2 * max(begins, default=0) <= min(kernel)):
        return (lambda x: x), tuple(begins)
    flat = [p for pair in zip(reversed(begins), reversed(ends), strict=True) for p in pair]
    return (lambda x: b.f.pad(x, flat, value=value)), (0,) * len(begins)


def _conv(b: _Build) -> Fn:
    w = b.const(1)
    if w is None or w.ndim != 4:
        raise UnsupportedError("torch peer: Conv needs a constant 4-D weight (2-D convs only)")
    begins, ends = b.pads(2)
    pad, padding = _padded(b, begins, ends, 0.0)
    strides, dilations = b.ints("strides", [1, 1]), b.ints("dilations", [1, 1])
    group = int(b.attrs.get("group", 1))
    return lambda x, w, bias=None: b.f.conv2d(pad(x), w, bias, strides, padding, dilations,
                                              group)


def _max_pool(b: _Build) -> Fn:
    begins, ends = b.pads(2)
    kernel = b.ints("kernel_shape", [])
    pad, padding = _padded(b, begins, ends, -math.inf, kernel)
    strides, dilations = b.ints("strides", [1, 1]), b.ints("dilations", [1, 1])
    ceil = bool(b.attrs.get("ceil_mode", 0))
    return lambda x: b.f.max_pool2d(pad(x), kernel, strides, padding, dilations, ceil)


def _avg_pool(b: _Build) -> Fn:
    begins, ends = b.pads(2)
    kernel = b.ints("kernel_shape", [])
    strides = b.ints("strides", [1, 1])
    ceil = bool(b.attrs.get("ceil_mode", 0))
    include = bool(b.attrs.get("count_include_pad", 0))
    if begins == ends and 2 * max(begins) <= min(kernel):
        return lambda x: b.f.avg_pool2d(x, kernel, strides, tuple(begins), ceil, include)
    pad, _ = _padded(b, begins, ends, 0.0, [0])  # every pad through F.pad
    counts: dict[tuple[int, ...], Any] = {}  # the window sizes without padding, per shape

    def run(x: Any) -> Any:
        total = b.f.avg_pool2d(pad(x), kernel, strides, 0, ceil, True)
        if include:
            return total
        key = tuple(x.shape[2:])
        if key not in counts:
            ones = b.torch.ones((1, 1, *key), dtype=x.dtype)
            counts[key] = b.f.avg_pool2d(pad(ones), kernel, strides, 0, ceil, True)
        return total / counts[key]
    return run


def _gemm(b: _Build) -> Fn:
    alpha, beta = float(b.attrs.get("alpha", 1.0)), float(b.attrs.get("beta", 1.0))
    trans_a, trans_b = int(b.attrs.get("transA", 0)), int(b.attrs.get("transB", 0))
    w = b.const(1)
    if w is not None and alpha == 1.0 and beta == 1.0 and not trans_a:
        # F.linear's weight is (N, K): a constant B is stored so once, as PyTorch keeps it
        b.weights = {1: np.ascontiguousarray(w if trans_b else w.T)}
        return lambda a, w, c=None: b.f.linear(a, w, c)

    def run(a: Any, w: Any, c: Any = None) -> Any:
        y = b.torch.matmul(a.T if trans_a else a, w.T if trans_b else w)
        y = y * alpha if alpha != 1.0 else y
        return y if c is None else y + (c * beta if beta != 1.0 else c)
    return run


def _batch_norm(b: _Build) -> Fn:
    eps = float(b.attrs.get("epsilon", 1e-5))
    return lambda x, scale, bias, mean, var: b.f.batch_norm(x, mean, var, scale, bias,
                                                            False, 0.0, eps)


def _layer_norm(b: _Build) -> Fn:
    axis, eps = int(b.attrs.get("axis", -1)), float(b.attrs.get("epsilon", 1e-5))
    return lambda x, w, bias=None: b.f.layer_norm(x, x.shape[axis:], w, bias, eps)


def _softmax(b: _Build) -> Fn:
    if b.graph.opset >= 13:
        axis = int(b.attrs.get("axis", -1))
        return lambda x: b.torch.softmax(x, axis)
    axis = int(b.attrs.get("axis", 1))  # before opset 13: over the flattened [axis:] dims

    def run(x: Any) -> Any:
        flat = x.reshape(math.prod(x.shape[:axis]), -1)
        return b.torch.softmax(flat, 1).reshape(x.shape)
    return run


def _reshape(b: _Build) -> Fn:
    shape = b.const(1)
    if shape is None:
        raise UnsupportedError("torch peer: Reshape to a shape computed at run time")
    target = [int(s) for s in shape]
    if 0 not in target or int(b.attrs.get("allowzero", 0)):
        return lambda x, _shape=None: x.reshape(target)
    return lambda x, _shape=None: x.reshape(
        [x.shape[i] if s == 0 else s for i, s in enumerate(target)])


def _flatten(b: _Build) -> Fn:
    axis = int(b.attrs.get("axis", 1))
    return lambda x: x.reshape(math.prod(x.shape[:axis]), -1)


def _transpose(b: _Build) -> Fn:
    perm = b.attrs.get("perm")
    return lambda x: x.permute(*(perm if perm is not None else reversed(range(x.dim()))))


def _unsqueeze(b: _Build) -> Fn:
    axes = b.const(1)
    axes = [int(a) for a in (axes if axes is not None else b.attrs.get("axes", []))]

    def run(x: Any, _axes: Any = None) -> Any:
        rank = x.dim() + len(axes)
        for axis in sorted(a % rank for a in axes):
            x = x.unsqueeze(axis)
        return x
    return run


def _squeeze(b: _Build) -> Fn:
    axes = b.const(1)
    axes = [int(a) for a in (axes if axes is not None else b.attrs.get("axes", []))]
    if not axes:
        raise UnsupportedError("torch peer: Squeeze without axes (every size-1 dim)")

    def run(x: Any, _axes: Any = None) -> Any:
        for axis in sorted((a % x.dim() for a in axes), reverse=True):
            x = x.squeeze(axis)
        return x
    return run


def _text(b: _Build, name: str, default: str) -> str:
    value = b.attrs.get(name, default)
    return value.decode() if isinstance(value, bytes) else str(value)


def _resize(b: _Build) -> Fn:
    """Nearest-neighbour upsampling by whole factors (the BEGAN's ×2): ``F.interpolate``,
    which picks floor(x / s), as ONNX's half_pixel + round or asymmetric + floor do at
    integer scales. Other modes and sizes are refused."""
    mode = _text(b, "mode", "nearest")
    coords = _text(b, "coordinate_transformation_mode", "half_pixel")
    rounding = _text(b, "nearest_mode", "round_prefer_floor")
    scales = b.const(2)
    fits = (mode == "nearest" and scales is not None and len(scales) == 4
            and list(scales[:2]) == [1.0, 1.0] and all(float(v).is_integer() for v in scales)
            and (coords == "half_pixel" and rounding.startswith("round")
                 or coords == "asymmetric" and rounding == "floor"))
    if not fits:
        raise UnsupportedError(f"torch peer: Resize other than nearest by whole factors "
                               f"(mode={mode}, {coords}, {rounding}, scales={scales})")
    factor = (float(scales[2]), float(scales[3]))
    return lambda x, *_: b.f.interpolate(x, scale_factor=factor, mode="nearest")


# ONNX LSTM's gate blocks are (i, o, f, c); PyTorch's (i, f, g = c, o).
_LSTM_GATES = (0, 2, 3, 1)


def _lstm(b: _Build) -> Fn:
    """ONNX LSTM (forward, default activations, no peepholes) as ``torch.nn.LSTM`` with
    the same weights, as a PyTorch model would hold them; ``sequence_lens`` through
    ``pack_padded_sequence`` (zeros past each end, the last valid step's states)."""
    node, torch = b.node, b.torch
    w, r, bias = b.const(1), b.const(2), b.const(3)
    present = [k for k, name in enumerate(node.inputs) if name]
    unsupported = [k for k in (1, 2) if k not in present or b.const(k) is None]
    if (unsupported or 7 in present or _text(b, "direction", "forward") != "forward"
            or "activations" in b.attrs or "clip" in b.attrs
            or int(b.attrs.get("input_forget", 0)) or int(b.attrs.get("layout", 0))):
        raise UnsupportedError("torch peer: LSTM other than one forward layer with "
                               "constant weights, default activations, no peepholes")
    hidden = int(b.attrs["hidden_size"])
    lstm = torch.nn.LSTM(w.shape[2], hidden)
    order = np.concatenate([np.arange(g * hidden, (g + 1) * hidden) for g in _LSTM_GATES])
    bias = np.zeros((1, 8 * hidden), np.float32) if bias is None else bias
    with torch.no_grad():
        for tensor, value in ((lstm.weight_ih_l0, w[0][order]), (lstm.weight_hh_l0, r[0][order]),
                              (lstm.bias_ih_l0, bias[0, :4 * hidden][order]),
                              (lstm.bias_hh_l0, bias[0, 4 * hidden:][order])):
            tensor.copy_(torch.from_numpy(np.ascontiguousarray(value, np.float32)))
    lstm.eval()
    packing = torch.nn.utils.rnn

    def run(*args: Any) -> Any:
        got = dict(zip(present, args, strict=True))
        x, lengths = got[0], got.get(4)
        zeros = x.new_zeros((1, x.shape[1], hidden))
        state = (got.get(5, zeros), got.get(6, zeros))
        if lengths is None:
            y, (h, c) = lstm(x, state)
        else:
            packed = packing.pack_padded_sequence(x, lengths.to(torch.int64),
                                                  enforce_sorted=False)
            y, (h, c) = lstm(packed, state)
            y, _ = packing.pad_packed_sequence(y, total_length=x.shape[0])
        return (y.unsqueeze(1), h, c)[:len(node.outputs)]
    return run


def _split(b: _Build) -> Fn:
    axis = int(b.attrs.get("axis", 0))
    sizes = b.const(1)
    sizes = [int(s) for s in (sizes if sizes is not None else b.attrs.get("split", []))]
    count = len(b.node.outputs)

    def run(x: Any, _sizes: Any = None) -> Any:
        return b.torch.split(x, sizes or x.shape[axis] // count, dim=axis)
    return run


def _gather(b: _Build) -> Fn:
    axis = int(b.attrs.get("axis", 0))

    def run(data: Any, index: Any) -> Any:
        index = b.torch.where(index < 0, index + data.shape[axis], index)
        picked = b.torch.index_select(data, axis, index.reshape(-1))
        return picked.reshape(*data.shape[:axis], *index.shape, *data.shape[axis + 1:])
    return run


def _clip(b: _Build) -> Fn:
    low, high = b.const(1), b.const(2)
    low = float(low) if low is not None else b.attrs.get("min")
    high = float(high) if high is not None else b.attrs.get("max")
    if (low, high) == (0.0, 6.0):
        return lambda x, *_: b.f.relu6(x)
    return lambda x, *_: b.torch.clamp(x, low, high)


def _hard_sigmoid(b: _Build) -> Fn:
    alpha, beta = float(b.attrs.get("alpha", 0.2)), float(b.attrs.get("beta", 0.5))
    if math.isclose(alpha, 1 / 6, rel_tol=1e-6) and beta == 0.5:
        return lambda x: b.f.hardsigmoid(x)
    return lambda x: b.torch.clamp(x * alpha + beta, 0.0, 1.0)


def _cast(b: _Build) -> Fn:
    from onnx import helper

    dtype = _torch_dtype(b.torch, helper.tensor_dtype_to_np_dtype(int(b.attrs["to"])))
    return lambda x: x.to(dtype)


def _sum(b: _Build) -> Fn:
    def run(*xs: Any) -> Any:
        out = xs[0]
        for x in xs[1:]:
            out = out + x
        return out
    return run


def _unary(name: str) -> Callable[[_Build], Fn]:
    return lambda b: getattr(b.torch, name)


def _binary(name: str) -> Callable[[_Build], Fn]:
    return lambda b: getattr(b.torch, name)


def _identity(b: _Build) -> Fn:
    if len(b.node.outputs) > 1:  # Dropout's optional mask: all kept in inference
        return lambda x, *_: (x, b.torch.ones_like(x, dtype=b.torch.bool))
    return lambda x, *_: x


CONVERTERS: dict[str, Callable[[_Build], Fn]] = {
    "Conv": _conv, "MaxPool": _max_pool, "AveragePool": _avg_pool,
    "GlobalAveragePool": lambda b: (lambda x: b.f.adaptive_avg_pool2d(x, 1)),
    "Gemm": _gemm, "MatMul": _binary("matmul"),
    "BatchNormalization": _batch_norm, "LayerNormalization": _layer_norm,
    "LRN": lambda b: (lambda x: b.f.local_response_norm(  # alpha / size, as ONNX
        x, int(b.attrs["size"]), float(b.attrs.get("alpha", 1e-4)),
        float(b.attrs.get("beta", 0.75)), float(b.attrs.get("bias", 1.0)))),
    "Softmax": _softmax, "Relu": _unary("relu"), "Sigmoid": _unary("sigmoid"),
    "Tanh": _unary("tanh"), "Erf": _unary("erf"),
    "Elu": lambda b: (lambda x: b.f.elu(x, float(b.attrs.get("alpha", 1.0)))),
    "Resize": _resize, "LSTM": _lstm, "Squeeze": _squeeze,
    "HardSwish": lambda b: b.f.hardswish, "HardSigmoid": _hard_sigmoid, "Clip": _clip,
    "Add": _binary("add"), "Sub": _binary("sub"), "Mul": _binary("mul"),
    "Div": _binary("div"), "Pow": _binary("pow"), "Where": _binary("where"), "Sum": _sum,
    "Concat": lambda b: (lambda *xs: b.torch.cat(xs, int(b.attrs["axis"]))),
    "Split": _split, "Gather": _gather, "Reshape": _reshape, "Flatten": _flatten,
    "Transpose": _transpose, "Unsqueeze": _unsqueeze, "Cast": _cast,
    "Dropout": _identity, "Identity": _identity,  # inference: Dropout passes through
}


def _torch_dtype(torch: Any, dtype: Any) -> Any:
    return torch.from_numpy(np.zeros(0, dtype=np.dtype(dtype))).dtype


class TorchGraph:
    """A graph as a list of PyTorch calls; ``run(feeds)`` -> outputs as numpy."""

    def __init__(self, graph: Graph, torch: Any) -> None:
        if any(n.domain not in ("", "ai.onnx") for n in graph.nodes):
            raise UnsupportedError("torch peer: ops outside the default ONNX domain "
                                   "(a quantized or contrib graph); fp32 graphs only")
        missing = sorted({n.op_type for n in graph.nodes} - set(CONVERTERS))
        if missing:
            raise UnsupportedError(f"torch peer: no PyTorch conversion for "
                                   f"{', '.join(missing)} (fp32 graphs of the zoo's ops only)")
        self.torch = torch
        self.inputs = graph.input_names
        self.outputs = graph.output_names
        values: dict[str, Any] = {}
        self.steps: list[tuple[Fn, list[str], list[str]]] = []
        for node in graph.nodes:
            build = _Build(torch, graph, node)
            fn = CONVERTERS[node.op_type](build)
            for index, array in build.weights.items():  # a stored layout
                name = f"{node.inputs[index]}#{node.name or len(self.steps)}"
                values[name] = torch.tensor(array)
                node = Node(node.op_type, [*node.inputs[:index], name,
                                           *node.inputs[index + 1:]], node.outputs)
            self.steps.append((fn, [i for i in node.inputs if i], node.outputs))
        used = {name for _, inputs, _ in self.steps for name in inputs}
        for name, array in graph.initializers.items():
            if name in used:
                values[name] = torch.tensor(np.asarray(array))
        self.constants = values

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        torch = self.torch
        env = dict(self.constants)
        for name in self.inputs:
            env[name] = torch.from_numpy(np.ascontiguousarray(feeds[name]))
        with torch.inference_mode():
            for fn, inputs, outputs in self.steps:
                out = fn(*[env[i] for i in inputs])
                if len(outputs) == 1:
                    env[outputs[0]] = out
                else:
                    env.update(zip(outputs, out, strict=True))
        return [env[name].contiguous().numpy() for name in self.outputs]


class TorchModelPeer:
    """PyTorch eager on the CPU, running the ONNX graph converted by ``TorchGraph``, at
    hwbench's thread count (intra-op; inter-op 1). fp32 only: an int8 case is refused
    with the reason (PyTorch's int8 path is its own quantization flow, not a QDQ file)."""

    name = "torch"
    runs_on_host_cpu = True

    def __init__(self, threads: int) -> None:
        from hwbench.harness.suites.peers import import_peer

        self.torch = torch = import_peer("torch", self.name)
        self.threads = threads
        self.full_name = self.name
        torch.set_num_threads(threads)
        try:
            torch.set_num_interop_threads(1)
        except RuntimeError:  # already set in this process: keep what it is
            pass

    def info(self) -> dict[str, Any]:
        from hwbench.harness.suites.peers import torch_build

        torch = self.torch
        return {"backend": self.name, "torch": torch.__version__,
                "torch_build": torch_build(torch), "threads": torch.get_num_threads(),
                "interop_threads": torch.get_num_interop_threads(),
                "torch_mkldnn": str(torch.backends.mkldnn.is_available()),
                "mode": "eager, torch.inference_mode, the ONNX graph converted op by op "
                        "(hwbench.harness.suites.torch_graph)", "math_mode": "fp32"}

    def synchronize(self) -> None:
        """PyTorch's CPU ops are synchronous."""

    def session(self, model: Any, precision: str = "fp32") -> TorchGraph:
        if precision != "fp32":
            raise UnsupportedError(
                "torch peer: fp32 only (PyTorch runs int8 through its own quantization "
                "flow, not the QDQ graph hwbench and onnxruntime run)")
        return TorchGraph(model.graph, self.torch)
