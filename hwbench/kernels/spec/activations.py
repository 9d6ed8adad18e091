"""Activations a convolution may fuse into its output (``conv2d(..., activation=...)``).

Each entry names the elementwise kernel that applies it on its own, for the backends that
do not fuse it: a ``spec.UNARY_OPS`` op with its (alpha, beta), or None where the
activation has a kernel of its own (relu, sigmoid) or is built from them (silu:
``x · sigmoid(x)``). ``hwbench.backends.conv_epilogue`` applies them; the cpu backend fuses
every one as a oneDNN post-op.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Activation:
    name: str
    unary: str | None = None  # the UNARY_OPS op applying it; None: relu/sigmoid/silu
    alpha: float = 0.0
    beta: float = 0.0


ACTIVATIONS: dict[str, Activation] = {a.name: a for a in (
    Activation("relu"),
    Activation("relu6", "clip", 0.0, 6.0),                   # Clip(x, 0, 6)
    Activation("sigmoid"),
    Activation("silu"),                                      # x · sigmoid(x)
    Activation("hardswish", "hard_swish", 1.0 / 6.0, 0.5),   # ONNX HardSwish
    Activation("hardsigmoid", "hard_sigmoid", 1.0 / 6.0, 0.5),  # PyTorch's HardSigmoid
    Activation("tanh", "tanh"),                              # Tanh
    Activation("gelu", "gelu"),                              # Gelu (erf): BERT, ViT
    Activation("gelu_tanh", "gelu_tanh"),                    # Gelu(approximate="tanh"): GPT-2
    Activation("elu", "elu", 1.0),                           # Elu(alpha=1): BEGAN's convs
)}
