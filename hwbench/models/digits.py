"""The zoo's small models, trained on the digits split with the backends' own kernels.

Three architectures (``mlp`` with sigmoid activations, a LeNet-style CNN, an
autoencoder) trained by minibatch SGD with momentum. Forward passes and the matrix work
of the backward pass go through the kernel interface — ``gemm`` (with its transpose
flags), ``conv2d``, ``sigmoid``/``sigmoid_backward``, ``relu`` — and the conv gradients
through the shared ``im2col``/``col2im`` lowering, as the talk's Op layer shows. The
small elementwise glue (ReLU's mask, the loss, the SGD update) runs on the host.

The same seed on the same backend gives the same weights; the shipped weights in
``models/weights/`` are ``hwbench train``'s output on the ``numpy`` backend.
"""

from __future__ import annotations

import json
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hwbench.backends.base import Backend
from hwbench.datasets import digits
from hwbench.errors import ArgumentError, ResultsError
from hwbench.files import write_atomic, write_new
from hwbench.kernels import spec
from hwbench.kernels.im2col import col2im, im2col
from hwbench.models import train_report

WEIGHTS_DIR = Path(__file__).with_name("weights")


@dataclass(frozen=True)
class Layer:
    """One trainable layer: ``dense`` (in → out) or ``conv`` (3-D in → out channels)."""

    kind: str
    shape: tuple[int, ...]  # dense: (in, out); conv: (k, c, r, s)
    activation: str | None = None  # "sigmoid", "relu", "elu" or None
    stride: int = 1
    padding: int = 0


@dataclass(frozen=True)
class Architecture:
    name: str
    layers: tuple[Layer, ...]
    task: str  # "classify" (softmax cross-entropy) or "reconstruct" (mean squared error)
    epochs: int
    learning_rate: float


ARCHITECTURES = {
    "mlp": Architecture("mlp", (
        Layer("dense", (64, 64), "sigmoid"),
        Layer("dense", (64, 10)),
    ), "classify", epochs=60, learning_rate=0.3),
    # LeNet-5's shape (5×5 convs, 120-84-10 head) on 8×8 inputs; a stride-2 conv stands
    # in for the subsampling layer, since the kernel interface has no pooling backward.
    "lenet": Architecture("lenet", (
        Layer("conv", (6, 1, 5, 5), "relu", padding=2),              # 6×8×8
        Layer("conv", (16, 6, 5, 5), "relu", stride=2, padding=2),   # 16×4×4
        Layer("dense", (256, 120), "relu"),
        Layer("dense", (120, 84), "relu"),
        Layer("dense", (84, 10)),
    ), "classify", epochs=40, learning_rate=0.05),
    "autoencoder": Architecture("autoencoder", (
        Layer("dense", (64, 32), "sigmoid"),
        Layer("dense", (32, 16), "sigmoid"),
        Layer("dense", (16, 32), "sigmoid"),
        Layer("dense", (32, 64), "sigmoid"),
    ), "reconstruct", epochs=200, learning_rate=3.0),
}


def architecture(name: str) -> Architecture:
    if name not in ARCHITECTURES:
        raise ArgumentError(
            f"argument 'model': unknown digits model {name!r}; known: {', '.join(ARCHITECTURES)}")
    return ARCHITECTURES[name]


Params = list[tuple[np.ndarray, np.ndarray]]  # (weights, bias) per layer, host float32


def init_params(arch: Architecture, seed: int) -> Params:
    """He (ReLU) or Glorot (sigmoid, linear) uniform initialisation from ``seed``."""
    return init_layers(arch.layers, np.random.default_rng(seed))


def init_layers(layers: tuple[Layer, ...], rng: np.random.Generator) -> Params:
    """``init_params`` of a layer sequence from ``rng`` (ELU initialised as ReLU)."""
    params = []
    for layer in layers:
        fan_in = int(np.prod(layer.shape[1:])) if layer.kind == "conv" else layer.shape[0]
        fan_out = layer.shape[0] if layer.kind == "conv" else layer.shape[1]
        scale = np.sqrt(6.0 / fan_in) if layer.activation in ("relu", "elu") else np.sqrt(
            6.0 / (fan_in + fan_out))
        w = rng.uniform(-scale, scale, layer.shape).astype(np.float32)
        params.append((w, np.zeros(fan_out, np.float32)))
    return params


def _conv_problem(layer: Layer, x: np.ndarray) -> spec.ConvProblem:
    w = np.empty(layer.shape, np.float32)
    return spec.check_conv2d(x, w, None, layer.stride, layer.padding)


@dataclass
class _Trace:
    """What the backward pass needs of one forward pass."""

    inputs: list[np.ndarray] = field(default_factory=list)
    outputs: list[np.ndarray] = field(default_factory=list)


def layer_forward(be: Backend, layer: Layer, w: np.ndarray, b: np.ndarray,
                  h: np.ndarray) -> np.ndarray:
    """One layer's output (host array) for host input ``h`` (dense: 2-D, conv: NCHW)."""
    if layer.kind == "dense":
        y = be.gemm(be.asarray(h), be.asarray(w), be.asarray(b))
    else:
        y = be.conv2d(be.asarray(h), be.asarray(w), be.asarray(b), stride=layer.stride,
                      padding=layer.padding)
    if layer.activation == "sigmoid":
        y = be.sigmoid(y)
    elif layer.activation == "relu":
        y = be.relu(y)
    elif layer.activation == "elu":
        y = be.unary(y, "elu")
    return be.to_numpy(y)


def forward(be: Backend, arch: Architecture, params: Params, x: np.ndarray,
            trace: _Trace | None = None) -> np.ndarray:
    """Logits (classify) or reconstructions (reconstruct) for host images ``x``."""
    h = x if arch.layers[0].kind == "conv" else x.reshape(len(x), -1)
    for layer, (w, b) in zip(arch.layers, params, strict=True):
        if layer.kind == "dense" and h.ndim != 2:
            h = h.reshape(len(h), -1)
        if trace is not None:
            trace.inputs.append(h)
        h = layer_forward(be, layer, w, b, h)
        if trace is not None:
            trace.outputs.append(h)
    return h


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def loss_and_gradient(arch: Architecture, out: np.ndarray, x: np.ndarray,
                      y: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean loss over the batch and its gradient with respect to ``out``."""
    n = len(out)
    if arch.task == "classify":
        p = _softmax(out.astype(np.float64))
        loss = -np.log(np.maximum(p[np.arange(n), y], 1e-12)).mean()
        p[np.arange(n), y] -= 1.0
        return float(loss), (p / n).astype(np.float32)
    target = x.reshape(n, -1)
    diff = out - target
    return float(np.mean(diff**2)), (2.0 * diff / diff.size).astype(np.float32)


def layer_backward(be: Backend, layer: Layer, w: np.ndarray, x_in: np.ndarray,
                   y_out: np.ndarray, g: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(dw, db, dx)`` of one layer from the gradient ``g`` of its output ``y_out``:
    the activation's backward, then GEMMs with transpose flags (conv: im2col/col2im)."""
    g = g.reshape(y_out.shape)
    if layer.activation == "sigmoid":
        g = be.to_numpy(be.sigmoid_backward(be.asarray(y_out), be.asarray(g)))
    elif layer.activation == "relu":
        g = g * (y_out > 0)
    elif layer.activation == "elu":  # d elu = 1 above zero, elu(x) + 1 below (alpha 1)
        g = g * np.where(y_out > 0, np.float32(1.0), y_out + np.float32(1.0))
    if layer.kind == "dense":
        dw = be.to_numpy(be.gemm(be.asarray(x_in), be.asarray(g), trans_a=True))
        db = g.sum(axis=0)
        dx = be.to_numpy(be.gemm(be.asarray(g), be.asarray(w), trans_b=True))
    else:
        p = _conv_problem(layer, x_in)
        g_mat = np.ascontiguousarray(g.transpose(1, 0, 2, 3)).reshape(p.k, -1)
        cols = im2col(x_in, p)[0]  # (C·R·S, N·OH·OW)
        dw = be.to_numpy(be.gemm(be.asarray(g_mat), be.asarray(cols), trans_b=True))
        dw = dw.reshape(w.shape)
        db = g.sum(axis=(0, 2, 3))
        w_mat = w.reshape(p.k, -1)
        dcols = be.to_numpy(be.gemm(be.asarray(w_mat), be.asarray(g_mat), trans_a=True))
        dx = col2im(dcols[None], p)
    return dw.astype(np.float32), db.astype(np.float32), dx


def backward(be: Backend, arch: Architecture, params: Params, trace: _Trace,
             grad: np.ndarray) -> Params:
    """Gradients of every (weights, bias), through the backends' GEMM and sigmoid kernels."""
    grads: Params = []
    g = grad
    for index in reversed(range(len(arch.layers))):
        dw, db, g = layer_backward(be, arch.layers[index], params[index][0],
                                   trace.inputs[index], trace.outputs[index], g)
        grads.append((dw, db))
    return grads[::-1]


@dataclass
class TrainReport(train_report.TrainReport):
    metric_name: str
    metric: float


def train(be: Backend, name: str, *, seed: int = 0, epochs: int | None = None,
          batch_size: int = 32, momentum: float = 0.9) -> tuple[Params, TrainReport]:
    """SGD with momentum on the digits train split; returns weights and a report."""
    arch = architecture(name)
    epochs = arch.epochs if epochs is None else epochs
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ArgumentError(f"argument 'seed' must be a non-negative int (NumPy's seeds), "
                            f"got {seed!r}")
    if epochs < 1 or batch_size < 1:
        raise ArgumentError(f"argument 'epochs'/'batch_size' must be >= 1, got {epochs}, "
                            f"{batch_size}")
    x, y = digits("train")
    params = init_params(arch, seed)
    velocity = [(np.zeros_like(w), np.zeros_like(b)) for w, b in params]
    order_rng = np.random.default_rng(seed + 1)
    losses = []
    start = time.perf_counter()
    for epoch in range(epochs):
        # Cosine decay: large steps early, fine ones at the end (steadier final weights).
        lr = arch.learning_rate * 0.5 * (1.0 + np.cos(np.pi * epoch / epochs))
        order = order_rng.permutation(len(x))
        total = 0.0
        for first in range(0, len(x), batch_size):
            batch = order[first:first + batch_size]
            trace = _Trace()
            out = forward(be, arch, params, x[batch], trace)
            loss, grad = loss_and_gradient(arch, out, x[batch], y[batch])
            total += loss * len(batch)
            grads = backward(be, arch, params, trace, grad)
            for i, ((w, b), (dw, db), (vw, vb)) in enumerate(
                    zip(params, grads, velocity, strict=True)):
                vw = momentum * vw - lr * dw
                vb = momentum * vb - lr * db
                velocity[i] = (vw, vb)
                params[i] = ((w + vw).astype(np.float32), (b + vb).astype(np.float32))
        losses.append(total / len(x))
    be.synchronize()
    seconds = time.perf_counter() - start
    metric_name, metric = evaluate(be, name, params)
    report = TrainReport(name, be.full_name, seed, epochs, seconds,
                         epochs * len(x) / seconds, losses, metric_name, metric)
    return params, report


def evaluate(be: Backend, name: str, params: Params,
             split: str = "test") -> tuple[str, float]:
    """Top-1 accuracy (classifiers) or mean squared reconstruction error (autoencoder)."""
    arch = architecture(name)
    x, y = digits(split)
    out = forward(be, arch, params, x)
    if arch.task == "classify":
        return "top1", float(np.mean(out.argmax(axis=1) == y))
    return "mse", float(np.mean((out - x.reshape(len(x), -1)) ** 2))


def save_params(path: str | Path, name: str, params: Params, meta: dict[str, Any],
                new: bool = False) -> Path:
    """Weights as a plain ``.npz`` (no pickled objects), with the model name and metadata.
    ``new``: never replace a file (``path`` taken: ``stem-2.npz``, ...); returns the path
    written."""
    arrays = {f"w{i}": w for i, (w, _) in enumerate(params)}
    arrays.update({f"b{i}": b for i, (_, b) in enumerate(params)})
    arrays["model"] = np.array(name)
    arrays["meta"] = np.array(json.dumps(meta, sort_keys=True, default=str))
    if new:
        return write_new(path, lambda fh: np.savez(fh, **arrays), binary=True)
    return write_atomic(path, lambda fh: np.savez(fh, **arrays), binary=True)


def load_params(name: str, path: str | Path | None = None) -> Params:
    """Shipped (or given) weights of a digits model; ``allow_pickle`` stays off."""
    arch = architecture(name)
    path = Path(path) if path is not None else WEIGHTS_DIR / f"{name}.npz"
    try:
        with np.load(path, allow_pickle=False) as data:
            if str(data["model"]) != name:
                raise ResultsError(f"{path} holds weights of {str(data['model'])!r}, not {name!r}")
            params = [(data[f"w{i}"], data[f"b{i}"]) for i in range(len(arch.layers))]
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise ResultsError(f"cannot read {name} weights from {path}: {exc}") from exc
    for layer, (w, b) in zip(arch.layers, params, strict=True):
        if w.shape != layer.shape or w.dtype != np.float32 or b.dtype != np.float32:
            raise ResultsError(f"{path}: weights of shape {w.shape} do not fit {layer}")
    return params


def to_onnx(name: str, params: Params, batch: int | None = None):
    """The trained model as an ONNX ModelProto (opset 13), so every backend's graph
    executor — and onnxruntime — runs exactly these weights."""
    from onnx import TensorProto, helper, numpy_helper

    arch = architecture(name)
    nodes, inits = [], []
    current = "input"
    if arch.layers[0].kind == "dense":
        nodes.append(helper.make_node("Flatten", [current], ["flat0"], axis=1))
        current = "flat0"
    for i, (layer, (w, b)) in enumerate(zip(arch.layers, params, strict=True)):
        inits += [numpy_helper.from_array(w, f"w{i}"), numpy_helper.from_array(b, f"b{i}")]
        out = f"z{i}"
        if layer.kind == "dense":
            if i > 0 and arch.layers[i - 1].kind == "conv":
                nodes.append(helper.make_node("Flatten", [current], [f"flat{i}"], axis=1))
                current = f"flat{i}"
            nodes.append(helper.make_node("Gemm", [current, f"w{i}", f"b{i}"], [out]))
        else:
            nodes.append(helper.make_node(
                "Conv", [current, f"w{i}", f"b{i}"], [out], kernel_shape=list(layer.shape[2:]),
                strides=[layer.stride] * 2, pads=[layer.padding] * 4))
        current = out
        if layer.activation:
            act = {"sigmoid": "Sigmoid", "relu": "Relu"}[layer.activation]
            nodes.append(helper.make_node(act, [current], [f"a{i}"]))
            current = f"a{i}"
    if arch.task == "classify":
        nodes.append(helper.make_node("Softmax", [current], ["output"], axis=1))
        out_shape = [batch, 10]
    else:
        nodes.append(helper.make_node("Identity", [current], ["output"]))
        out_shape = [batch, 64]
    graph = helper.make_graph(
        nodes, f"digits_{name}",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [batch, 1, 8, 8])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, out_shape)], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)],
                             producer_name="hwbench")
