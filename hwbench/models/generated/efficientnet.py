"""EfficientNet-B0 as torchvision defines it: MBConv blocks with SiLU (x·Sigmoid(x)) and
squeeze-excitation; stochastic depth is the identity at inference, so it is absent.
"""

from __future__ import annotations

from typing import Any

from hwbench.models.generated.builder import Builder
from hwbench.models.generated.convs import classifier, conv_bn_act, finish, squeeze_excitation

# expand ratio, kernel, stride, in, out, repeats: torchvision's B0 table
B0_SETTINGS = [(1, 3, 1, 32, 16, 1), (6, 3, 2, 16, 24, 2), (6, 5, 2, 24, 40, 2),
               (6, 3, 2, 40, 80, 3), (6, 5, 1, 80, 112, 3), (6, 5, 2, 112, 192, 4),
               (6, 3, 1, 192, 320, 1)]


def efficientnet_b0(batch: int | None = None, seed: int = 0, *, image: int = 224,
                    classes: int = 1000) -> Any:
    b = Builder("efficientnet_b0", seed)
    eps = 1e-3
    x = conv_bn_act(b, "input", "features.0", 3, 32, 3, 2, act="silu", eps=eps)
    for stage, (ratio, k, s, c_first, c_out, n) in enumerate(B0_SETTINGS, start=1):
        for i in range(n):
            p = f"features.{stage}.{i}.block"
            c_in, stride = (c_first, s) if i == 0 else (c_out, 1)
            expanded, y, j = c_in * ratio, x, 0
            if ratio != 1:
                y = conv_bn_act(b, y, f"{p}.0", c_in, expanded, 1, act="silu", eps=eps)
                j = 1
            y = conv_bn_act(b, y, f"{p}.{j}", expanded, expanded, k, stride, expanded,
                            "silu", eps=eps)
            y = squeeze_excitation(b, y, f"{p}.{j + 1}", expanded, max(1, c_in // 4),
                                   "silu", "sigmoid")
            residual = stride == 1 and c_in == c_out
            y = conv_bn_act(b, y, f"{p}.{j + 2}", expanded, c_out, 1, act="none", eps=eps,
                            gamma=(0.2, 0.4) if residual else (0.5, 1.0))
            x = b.op("Add", [y, x]) if residual else y
    x = conv_bn_act(b, x, "features.8", 320, 1280, 1, act="silu", eps=eps)
    return finish(b, classifier(b, x, "classifier.1", 1280, classes), batch, image, classes)
