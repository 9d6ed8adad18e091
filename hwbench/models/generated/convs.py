"""Conv building blocks the generated CNNs share, in the form torch exports them.

Conv + BatchNormalization stay separate nodes (as an export without BN folding writes
them), so hwbench's own BN folding is exercised; activations are the opset-17 forms:
ReLU6 = Clip(0, 6), Hardswish = HardSwish, Hardsigmoid = HardSigmoid(1/6, 0.5),
SiLU = x·Sigmoid(x).
"""

from __future__ import annotations

import numpy as np

from hwbench.models.generated.builder import Builder


def make_divisible(v: float, divisor: int = 8) -> int:
    """torchvision's ``_make_divisible``: round channels to a multiple of ``divisor``."""
    new = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * v else new


def conv(b: Builder, x: str, prefix: str, c_in: int, c_out: int, k: int, stride: int = 1,
         groups: int = 1, bias: bool = False, gain: float = 2.0) -> str:
    """A Conv with "same" padding (k-1)//2 and He-normal weights."""
    fan_in = c_in // groups * k * k
    inputs = [x, b.he(f"{prefix}.weight", (c_out, c_in // groups, k, k), fan_in, gain)]
    if bias:
        inputs.append(b.normal(f"{prefix}.bias", (c_out,), 0.01))
    pad = (k - 1) // 2
    return b.op("Conv", inputs, kernel_shape=[k, k], strides=[stride, stride],
                pads=[pad] * 4, group=groups)


def batch_norm(b: Builder, x: str, prefix: str, c: int, gamma: tuple[float, float] = (0.5, 1.0),
               eps: float = 1e-5) -> str:
    """BatchNormalization with running statistics that are O(1) and positive variances."""
    inputs = [x, b.uniform(f"{prefix}.weight", (c,), *gamma),
              b.normal(f"{prefix}.bias", (c,), 0.1),
              b.normal(f"{prefix}.running_mean", (c,), 0.1),
              b.uniform(f"{prefix}.running_var", (c,), 0.5, 1.5)]
    return b.op("BatchNormalization", inputs, epsilon=eps)


def activation(b: Builder, x: str, kind: str) -> str:
    if kind == "relu":
        return b.op("Relu", [x])
    if kind == "relu6":
        return b.op("Clip", [x, b.scalar(0.0), b.scalar(6.0)])
    if kind == "hardswish":
        return b.op("HardSwish", [x])
    if kind == "silu":
        return b.op("Mul", [x, b.op("Sigmoid", [x])])
    if kind == "none":
        return x
    raise ValueError(f"unknown activation {kind!r}")


def conv_bn_act(b: Builder, x: str, prefix: str, c_in: int, c_out: int, k: int,
                stride: int = 1, groups: int = 1, act: str = "relu",
                gamma: tuple[float, float] = (0.5, 1.0), eps: float = 1e-5) -> str:
    """torchvision's ``Conv2dNormActivation``: Conv (no bias) -> BN -> activation."""
    y = conv(b, x, f"{prefix}.0", c_in, c_out, k, stride, groups)
    return activation(b, batch_norm(b, y, f"{prefix}.1", c_out, gamma, eps), act)


def squeeze_excitation(b: Builder, x: str, prefix: str, c: int, squeeze: int,
                       inner: str, gate: str) -> str:
    """SE block: GlobalAveragePool -> Conv -> ``inner`` -> Conv -> ``gate`` -> Mul."""
    s = b.op("GlobalAveragePool", [x])
    s = activation(b, conv(b, s, f"{prefix}.fc1", c, squeeze, 1, bias=True), inner)
    s = conv(b, s, f"{prefix}.fc2", squeeze, c, 1, bias=True, gain=1.0)
    s = b.op("HardSigmoid", [s], alpha=1.0 / 6.0, beta=0.5) if gate == "hardsigmoid" else (
        b.op("Sigmoid", [s]))
    return b.op("Mul", [s, x])


def classifier(b: Builder, x: str, prefix: str, width: int, classes: int) -> str:
    """GlobalAveragePool -> Flatten -> (Dropout, absent at inference) -> Linear (Gemm)."""
    x = b.op("Flatten", [b.op("GlobalAveragePool", [x])], axis=1)
    return b.gemm(x, prefix, width, classes, std=1.0 / np.sqrt(width))


def finish(b: Builder, logits: str, batch: int | None, image: int, classes: int):
    """Name the last node's output ``logits`` and make the model (input ``input``)."""
    from hwbench.models.generated.builder import dim

    node = b.nodes[-1]
    assert node.output[0] == logits
    node.output[0] = "logits"
    return b.model([("input", np.float32, [dim(batch), 3, image, image])],
                   [("logits", np.float32, [dim(batch), classes])])
