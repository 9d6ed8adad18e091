"""One random QLinearConv geometry drawn by hypothesis, shared by the int8 convolution
property tests (float32-requant's 1-LSB bound, the exact mode's bracket), and an NCHW
array held channels-last as the cpu backend's fused int8 steps hold them."""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import strategies as st

from hwbench.backends.cpu.layouts import ChannelsLastArray


def held(x: np.ndarray) -> ChannelsLastArray:
    """``x`` (NCHW) held channels-last, as a conv the cpu backend fused wrote it."""
    return ChannelsLastArray(np.ascontiguousarray(x.transpose(0, 2, 3, 1)))


def draw_qconv(data: Any, max_c_per_group: int, max_hw: int) -> dict[str, Any]:
    """Strides, asymmetric padding, dilation, groups (depthwise too), batch, int8/uint8
    input and output, and a seeded generator for the values."""
    groups = data.draw(st.sampled_from([1, 1, 2, 3]), label="groups")
    depthwise = data.draw(st.booleans(), label="depthwise") and groups > 1
    c = groups * (1 if depthwise else data.draw(st.integers(1, max_c_per_group),
                                                 label="c/group"))
    k = groups * data.draw(st.integers(1, 4), label="k/group")
    r, s = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3))
    stride = (data.draw(st.integers(1, 2)), data.draw(st.integers(1, 2)))
    dilation = (data.draw(st.integers(1, 2)), data.draw(st.integers(1, 2)))
    padding = tuple(data.draw(st.integers(0, 2)) for _ in range(4))
    h = data.draw(st.integers(dilation[0] * (r - 1) + 1, max_hw), label="h")
    w = data.draw(st.integers(dilation[1] * (s - 1) + 1, max_hw), label="w")
    n = data.draw(st.integers(1, 2), label="n")
    return {"x_shape": (n, c, h, w), "w_shape": (k, c // groups, r, s), "stride": stride,
            "padding": padding, "dilation": dilation, "groups": groups,
            "x_dtype": data.draw(st.sampled_from([np.uint8, np.int8]), label="x dtype"),
            "y_dtype": data.draw(st.sampled_from([np.uint8, np.int8]), label="y dtype"),
            "rng": np.random.default_rng(data.draw(st.integers(0, 2**32 - 1), label="seed"))}
