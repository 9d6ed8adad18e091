"""ConvNeXt-T as torchvision defines it: a 4x4/4 stem, stages of depths 3-3-9-3 with
depthwise 7x7 convs, LayerNorm over channels (Transpose to NHWC, LayerNormalization,
Transpose back: torchvision's LayerNorm2d and the block's permutes), Linear as MatMul,
erf GELU, layer scale as a Mul, residual Add.
"""

from __future__ import annotations

from typing import Any

from hwbench.models.generated.builder import Builder
from hwbench.models.generated.convs import conv, finish
from hwbench.models.generated.transformers import gelu_erf

DEPTHS = (3, 3, 9, 3)
WIDTHS = (96, 192, 384, 768)


def _layer_norm_2d(b: Builder, x: str, prefix: str, c: int) -> str:
    nhwc = b.op("Transpose", [x], perm=[0, 2, 3, 1])
    return b.op("Transpose", [b.layer_norm(nhwc, prefix, c, 1e-6)], perm=[0, 3, 1, 2])


def _block(b: Builder, x: str, prefix: str, c: int) -> str:
    y = conv(b, x, f"{prefix}.block.0", c, c, 7, groups=c, bias=True, gain=1.0)
    y = b.layer_norm(b.op("Transpose", [y], perm=[0, 2, 3, 1]), f"{prefix}.block.2", c, 1e-6)
    y = gelu_erf(b, b.linear(y, f"{prefix}.block.3", c, 4 * c, std=(2 / c) ** 0.5))
    y = b.linear(y, f"{prefix}.block.5", 4 * c, c, std=(1 / (4 * c)) ** 0.5)
    y = b.op("Transpose", [y], perm=[0, 3, 1, 2])
    # layer scale (torchvision initialises it to 1e-6; here O(0.1) so blocks matter)
    scale = b.uniform(f"{prefix}.layer_scale", (c, 1, 1), 0.05, 0.15)
    return b.op("Add", [b.op("Mul", [scale, y]), x])


def convnext_tiny(batch: int | None = None, seed: int = 0, *, image: int = 224,
                  classes: int = 1000, depths: tuple[int, ...] = DEPTHS,
                  widths: tuple[int, ...] = WIDTHS) -> Any:
    b = Builder("convnext_tiny", seed)
    x = b.op("Conv", ["input", b.he("features.0.0.weight", (widths[0], 3, 4, 4), 48),
                      b.normal("features.0.0.bias", (widths[0],), 0.01)],
             kernel_shape=[4, 4], strides=[4, 4])
    x = _layer_norm_2d(b, x, "features.0.1", widths[0])
    for stage, (depth, c) in enumerate(zip(depths, widths, strict=True)):
        if stage:
            p = f"features.{2 * stage}"
            x = _layer_norm_2d(b, x, f"{p}.0", widths[stage - 1])
            x = b.op("Conv", [x, b.he(f"{p}.1.weight", (c, widths[stage - 1], 2, 2),
                                      4 * widths[stage - 1], gain=1.0),
                              b.normal(f"{p}.1.bias", (c,), 0.01)],
                     kernel_shape=[2, 2], strides=[2, 2])
        for i in range(depth):
            x = _block(b, x, f"features.{2 * stage + 1}.{i}", c)
    x = b.op("GlobalAveragePool", [x])
    x = b.op("Flatten", [_layer_norm_2d(b, x, "classifier.0", widths[-1])], axis=1)
    logits = b.gemm(x, "classifier.2", widths[-1], classes, std=(1 / widths[-1]) ** 0.5)
    return finish(b, logits, batch, image, classes)
