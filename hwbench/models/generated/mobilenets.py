"""MobileNet v2 (width 1.0) and MobileNet v3-large as torchvision defines them.

Inverted residuals with depthwise (group = channels) convolutions; v2 with ReLU6
(Clip(0, 6)), v3 with HardSwish and squeeze-excitation gated by HardSigmoid.
"""

from __future__ import annotations

from typing import Any

from hwbench.models.generated.builder import Builder
from hwbench.models.generated.convs import (
    classifier,
    conv_bn_act,
    finish,
    make_divisible,
    squeeze_excitation,
)

# t (expansion), c (channels), n (repeats), s (first stride): torchvision's table
V2_SETTINGS = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
               (6, 160, 3, 2), (6, 320, 1, 1)]

# kernel, expanded, out, SE, activation, stride (input channels follow from the previous)
V3_LARGE = [(3, 16, 16, False, "relu", 1), (3, 64, 24, False, "relu", 2),
            (3, 72, 24, False, "relu", 1), (5, 72, 40, True, "relu", 2),
            (5, 120, 40, True, "relu", 1), (5, 120, 40, True, "relu", 1),
            (3, 240, 80, False, "hardswish", 2), (3, 200, 80, False, "hardswish", 1),
            (3, 184, 80, False, "hardswish", 1), (3, 184, 80, False, "hardswish", 1),
            (3, 480, 112, True, "hardswish", 1), (3, 672, 112, True, "hardswish", 1),
            (5, 672, 160, True, "hardswish", 2), (5, 960, 160, True, "hardswish", 1),
            (5, 960, 160, True, "hardswish", 1)]


def mobilenet_v2(batch: int | None = None, seed: int = 0, *, image: int = 224,
                 classes: int = 1000) -> Any:
    b = Builder("mobilenet_v2", seed)
    x = conv_bn_act(b, "input", "features.0", 3, 32, 3, 2, act="relu6")
    c_in, index = 32, 1
    for t, c, n, s in V2_SETTINGS:
        for i in range(n):
            p, stride, hidden = f"features.{index}.conv", s if i == 0 else 1, c_in * t
            y, j = x, 0
            if t != 1:
                y = conv_bn_act(b, y, f"{p}.0", c_in, hidden, 1, act="relu6")
                j = 1
            y = conv_bn_act(b, y, f"{p}.{j}", hidden, hidden, 3, stride, hidden, "relu6")
            residual = stride == 1 and c_in == c
            y = conv_bn_act(b, y, f"{p}.{j + 1}", hidden, c, 1, act="none",
                            gamma=(0.2, 0.4) if residual else (0.5, 1.0))
            x = b.op("Add", [x, y]) if residual else y
            c_in, index = c, index + 1
    x = conv_bn_act(b, x, f"features.{index}", c_in, 1280, 1, act="relu6")
    return finish(b, classifier(b, x, "classifier.1", 1280, classes), batch, image, classes)


def mobilenet_v3_large(batch: int | None = None, seed: int = 0, *, image: int = 224,
                       classes: int = 1000) -> Any:
    b = Builder("mobilenet_v3_large", seed)
    x = conv_bn_act(b, "input", "features.0", 3, 16, 3, 2, act="hardswish", eps=1e-3)
    c_in = 16
    for index, (k, expanded, c, se, act, stride) in enumerate(V3_LARGE, start=1):
        p, y, j = f"features.{index}.block", x, 0
        if expanded != c_in:
            y = conv_bn_act(b, y, f"{p}.0", c_in, expanded, 1, act=act, eps=1e-3)
            j = 1
        y = conv_bn_act(b, y, f"{p}.{j}", expanded, expanded, k, stride, expanded, act,
                        eps=1e-3)
        if se:
            y = squeeze_excitation(b, y, f"{p}.{j + 1}", expanded,
                                   make_divisible(expanded // 4), "relu", "hardsigmoid")
            j += 1
        residual = stride == 1 and c_in == c
        y = conv_bn_act(b, y, f"{p}.{j + 1}", expanded, c, 1, act="none", eps=1e-3,
                        gamma=(0.2, 0.4) if residual else (0.5, 1.0))
        x = b.op("Add", [x, y]) if residual else y
        c_in = c
    x = conv_bn_act(b, x, f"features.{len(V3_LARGE) + 1}", c_in, 960, 1, act="hardswish",
                    eps=1e-3)
    x = b.op("Flatten", [b.op("GlobalAveragePool", [x])], axis=1)
    x = b.op("HardSwish", [b.gemm(x, "classifier.0", 960, 1280, std=(2 / 960) ** 0.5)])
    logits = b.gemm(x, "classifier.3", 1280, classes, std=(1 / 1280) ** 0.5)
    return finish(b, logits, batch, image, classes)
