"""The large models: ImageNet architectures whose ONNX files ship in the onnx wheel.

``onnx/backend/test/data/light/light_*.onnx`` are the real architectures (AlexNet,
ZFNet-512, VGG-19, ResNet-50, SqueezeNet, Inception v1/v2, DenseNet-121, ShuffleNet) with
their weights built by ConstantOfShape as the constant 0.02 (a few small tensors, mostly
BatchNorm parameters, are stored with real values), plus the output onnx's own test
runner expects for its fixed input (``reference_input``). With constant weights most
of those outputs are a uniform softmax (0.001 everywhere), which checks shapes and
plumbing but not arithmetic; ``randomize_weights`` gives the same architecture seeded
random weights, scaled so activations stay O(1) through 50+ layers, for a numerical
comparison against onnxruntime on identical weights.
"""

from __future__ import annotations

import math
import os

import numpy as np

from hwbench.errors import ArgumentError, UnsupportedError
from hwbench.graph.ir import Graph, frozen

# zoo name -> file stem in onnx/backend/test/data/light/
ZOO: dict[str, str] = {
    "alexnet": "bvlc_alexnet",
    "zfnet512": "zfnet512",
    "vgg19": "vgg19",
    "resnet50": "resnet50",
    "squeezenet": "squeezenet",
    "inception_v1": "inception_v1",
    "inception_v2": "inception_v2",
    "densenet121": "densenet121",
    "shufflenet": "shufflenet",
}


def data_dir() -> str:
    """The onnx wheel's folder of light model files."""
    try:
        import onnx
    except ImportError as exc:
        raise UnsupportedError(f"the zoo models ship in the onnx wheel (pip install onnx): "
                               f"{exc}") from exc
    return os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light")


def _stem(name: str) -> str:
    if name not in ZOO:
        raise ArgumentError(f"unknown zoo model {name!r}; known: {', '.join(ZOO)}")
    return ZOO[name]


def model_path(name: str) -> str:
    """Path of a zoo model's .onnx file."""
    return os.path.join(data_dir(), f"light_{_stem(name)}.onnx")


def expected_output(name: str) -> np.ndarray:
    """The output onnx's test runner expects for ``reference_input`` (shipped weights)."""
    import onnx
    from onnx import numpy_helper

    path = os.path.join(data_dir(), f"light_{_stem(name)}_output_0.pb")
    return numpy_helper.to_array(onnx.load_tensor(path))


def reference_input(shape: tuple[int, ...]) -> np.ndarray:
    """The input onnx's runner feeds light models: ``arange(n).reshape(shape) / n`` in
    float32 (``onnx.backend.test.runner``'s ``generate_dummy_data``, random=False)."""
    n = math.prod(shape)
    return (np.arange(n).reshape(shape) / n).astype(np.float32)


def _roles(graph: Graph) -> dict[str, tuple[str, int, bool]]:
    """Initializer -> (op type, input index, feeds a residual add) of its first reader."""
    consumers = graph.consumers()
    roles: dict[str, tuple[str, int, bool]] = {}
    for node in graph.nodes:
        residual = any(c.op_type in ("Sum", "Add") and not any(
            i in graph.initializers for i in c.inputs) for c in consumers.get(node.outputs[0], []))
        for i, name in enumerate(node.inputs):
            if name in graph.initializers and name not in roles:
                roles[name] = (node.op_type, i, residual)
    return roles


def _he_uniform(rng: np.random.Generator, shape: tuple[int, ...], fan_in: int) -> np.ndarray:
    """U(-a, a) with a = √(6/fan_in): variance 2/fan_in, drawn in float32, in place."""
    out = rng.random(shape, dtype=np.float32)
    out -= np.float32(0.5)
    out *= np.float32(2.0 * math.sqrt(6.0 / fan_in))
    return out


def randomize_weights(graph: Graph, seed: int = 0) -> Graph:
    """A copy of ``graph`` with seeded random float32 weights, chosen by each weight's role.

    - Conv/Gemm/MatMul weights: He-uniform, U(±√(6/fan_in)) (std √(2/fan_in)), so a ReLU
      network keeps its activations' second moment layer after layer (uniform rather than
      normal because drawing VGG-19's 143 M weights is then ~3x faster); biases
      N(0, 0.05²).
    - BatchNormalization: γ ~ U(0.5, 1) (U(0.2, 0.4) where the BN feeds a residual sum,
      so that 16 residual blocks do not double the variance 16 times), β and the mean
      ~ N(0, 0.1²), variance ~ U(0.5, 1.5) (positive, as running variances are).
    - A per-channel Mul constant (a Caffe "scale" layer) ~ U(0.5, 1.5); an Add constant
      ~ N(0, 0.1²). Integer tensors (shapes) and anything else stay as they are.
    """
    rng = np.random.default_rng(seed)
    g = graph.copy()
    for name, (op, index, residual) in _roles(graph).items():
        w = graph.initializers[name]
        if w.dtype != np.float32:
            continue
        new = None
        if (op, index) == ("Conv", 1):
            new = _he_uniform(rng, w.shape, math.prod(w.shape[1:]))
        elif op in ("Gemm", "MatMul") and index in (0, 1) and w.ndim == 2:
            node = next(n for n in graph.nodes if n.inputs[index:index + 1] == [name])
            trans = node.attrs.get("transB" if index == 1 else "transA", 0)
            fan_in = (w.shape[1] if trans else w.shape[0]) if index == 1 else (
                w.shape[0] if trans else w.shape[1])
            new = _he_uniform(rng, w.shape, fan_in)
        elif (op, index) in (("Conv", 2), ("Gemm", 2)):
            new = rng.normal(0.0, 0.05, w.shape)
        elif op == "BatchNormalization":
            if index == 1:
                new = rng.uniform(0.2, 0.4, w.shape) if residual else rng.uniform(0.5, 1.0,
                                                                                  w.shape)
            elif index in (2, 3):
                new = rng.normal(0.0, 0.1, w.shape)
            elif index == 4:
                new = rng.uniform(0.5, 1.5, w.shape)
        elif op == "Mul":
            new = rng.uniform(0.5, 1.5, w.shape)
        elif op == "Add":
            new = rng.normal(0.0, 0.1, w.shape)
        if new is not None:
            g.initializers[name] = frozen(np.asarray(new, dtype=np.float32))
    return g
