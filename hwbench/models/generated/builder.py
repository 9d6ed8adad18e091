"""The one helper every generated architecture builds with: nodes, seeded weights, opset 17.

Why a builder rather than ``onnx.helper`` calls in each module: the weights must be drawn
fast (BERT-base's 110 M in seconds: float32 straight from the generator, no float64
detour), named like the PyTorch parameters they stand for, and drawn in a fixed order so
that one seed is one set of weights.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

OPSET = 17
IR_VERSION = 8  # what onnxruntime >= 1.10 reads


class Builder:
    """Collects nodes and initializers of one graph; ``model()`` makes the ModelProto."""

    def __init__(self, name: str, seed: int = 0) -> None:
        self.name = name
        self.rng = np.random.default_rng(seed)
        self.nodes: list[Any] = []
        self.initializers: dict[str, np.ndarray] = {}
        self._count: dict[str, int] = {}

    def _unique(self, base: str) -> str:
        n = self._count.get(base, 0)
        self._count[base] = n + 1
        return base if n == 0 else f"{base}_{n}"

    # -- weights ---------------------------------------------------------------------------
    def const(self, name: str, value: Any, dtype: Any = np.float32) -> str:
        """A fixed (not random) tensor: shapes, scalars, masks, index buffers."""
        name = self._unique(name)
        self.initializers[name] = np.asarray(value, dtype=dtype)
        return name

    def normal(self, name: str, shape: tuple[int, ...], std: float, mean: float = 0.0) -> str:
        """N(mean, std²) drawn in float32 (HF's Linear/Embedding init uses std 0.02)."""
        w = self.rng.standard_normal(shape, dtype=np.float32)
        w *= np.float32(std)
        if mean:
            w += np.float32(mean)
        return self.const(name, w)

    def he(self, name: str, shape: tuple[int, ...], fan_in: int, gain: float = 2.0) -> str:
        """N(0, gain/fan_in): He init for convolutions, so activations stay O(1)."""
        return self.normal(name, shape, math.sqrt(gain / fan_in))

    def uniform(self, name: str, shape: tuple[int, ...], low: float, high: float) -> str:
        w = self.rng.random(shape, dtype=np.float32)
        w *= np.float32(high - low)
        w += np.float32(low)
        return self.const(name, w)

    # -- nodes -----------------------------------------------------------------------------
    def op(self, op_type: str, inputs: list[str], outputs: int = 1, **attrs: Any) -> Any:
        """Append one node; returns its output name (or the list of them)."""
        from onnx import helper

        base = self._unique(op_type)
        names = [base if i == 0 else f"{base}:{i}" for i in range(outputs)]
        self.nodes.append(helper.make_node(op_type, inputs, names, name=base, **attrs))
        return names[0] if outputs == 1 else names

    def linear(self, x: str, prefix: str, n_in: int, n_out: int, std: float = 0.02) -> str:
        """``nn.Linear`` on an N-D input as torch exports it: MatMul(x, Wᵀ) + Add(bias)."""
        w = self.normal(f"{prefix}.weight", (n_in, n_out), std)
        b = self.const(f"{prefix}.bias", np.zeros(n_out, np.float32))
        return self.op("Add", [self.op("MatMul", [x, w]), b])

    def gemm(self, x: str, prefix: str, n_in: int, n_out: int, std: float) -> str:
        """``nn.Linear`` on a 2-D input as torch exports it: Gemm with transB=1."""
        w = self.normal(f"{prefix}.weight", (n_out, n_in), std)
        b = self.normal(f"{prefix}.bias", (n_out,), 0.01)
        return self.op("Gemm", [x, w, b], alpha=1.0, beta=1.0, transB=1)

    def layer_norm(self, x: str, prefix: str, width: int, eps: float = 1e-5) -> str:
        """LayerNormalization over the last axis (opset 17), γ ≈ 1 and β ≈ 0."""
        gamma = self.normal(f"{prefix}.weight", (width,), 0.02, mean=1.0)
        beta = self.normal(f"{prefix}.bias", (width,), 0.02)
        return self.op("LayerNormalization", [x, gamma, beta], axis=-1, epsilon=eps)

    def scalar(self, value: float) -> str:
        return self.const("const", np.float32(value))

    # -- the model -------------------------------------------------------------------------
    def model(self, inputs: list[tuple[str, Any, list[Any]]],
              outputs: list[tuple[str, Any, list[Any]]]) -> Any:
        """The ONNX model; ``inputs``/``outputs`` are (name, numpy dtype, dims) with dims
        ints or symbol names."""
        from onnx import helper, numpy_helper

        def info(name: str, dtype: Any, dims: list[Any]) -> Any:
            elem = helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
            return helper.make_tensor_value_info(name, elem, dims)

        tensors = [numpy_helper.from_array(w, name) for name, w in self.initializers.items()]
        graph = helper.make_graph(self.nodes, self.name, [info(*i) for i in inputs],
                                  [info(*o) for o in outputs], initializer=tensors)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                                  producer_name="hwbench.models.generated")
        model.ir_version = IR_VERSION
        return model


def dim(batch: int | None, symbol: str = "batch") -> Any:
    """A fixed size, or the symbol a dynamic-axes export gives the dimension."""
    return symbol if batch is None else int(batch)
