"""A one-row Gemm by a large weight (a CNN's classifier at batch 1) as oneDNN's 1×1
convolution of a 1×1 image (issue 16).

Such a product streams the whole weight once from memory for few FLOPs, and how fast a
kernel streams it is what counts. Measured on the 2-core Zen 4 VM (one thread, CPU
time, busy, the weight evicted from cache by a 48 MB write before each call): 544→1000
(ShuffleNet's classifier) 119 µs as the blocked 1×1 convolution (``jit_1x1``), 138 µs as
the NHWC one (``brgconv_1x1``), 232 µs ``dnnl_sgemm``, 178 µs the inner-product
primitive; 1280→1000 (EfficientNet-B0's) 228 / 253 / 355 / 327 µs; 960→1280 (MobileNet
v3's first, HardSwish fused) 224 / 261 / 290 / 326 µs; 4096×4096 2.4 against 2.8 ms.
The convolution's weights are packed once per session, as ``fused_gemm``'s are.

Its source and output hold exactly the row's ``k`` and ``n`` floats: for a 1×1 image,
NHWC is the plain row, and so is nChw16c where the channels are whole blocks of 16
(then the faster ``jit_1x1`` runs). So a ``GemvConv`` stands in for ``FusedMatmul``
wherever one is bound: same arguments, same byte sizes.
"""

from __future__ import annotations

import numpy as np

from hwbench.backends.cpu import onednn
from hwbench.backends.cpu.buffer_pool import aligned_empty
from hwbench.backends.cpu.onednn import ARG_DST, ARG_SRC, ARG_WEIGHTS
from hwbench.backends.cpu.primitives import Conv
from hwbench.kernels import spec

# Smaller weights stay in cache between runs and gain nothing (and mlp's, autoencoder's
# and LeNet's dense layers keep their chained ``dnnl_sgemm``/matmul links).
GEMV_MIN_WEIGHT_BYTES = 1 << 20
# Larger ones stream from memory as fast either way (9216×4096, AlexNet's first
# classifier layer: 5.6 ms both); the packed copy would only cost memory.
GEMV_MAX_WEIGHT_BYTES = 64 << 20


def runs_as_gemv(p: spec.GemmProblem) -> bool:
    """Whether ``p`` is one row by a weight of ``GEMV_MIN_WEIGHT_BYTES`` up to
    ``GEMV_MAX_WEIGHT_BYTES`` (A not transposed: its row is contiguous). The caller
    checks the bias (``fused_gemm.fuses``)."""
    return p.m == 1 and not p.trans_a \
        and GEMV_MIN_WEIGHT_BYTES <= 4 * p.k * p.n <= GEMV_MAX_WEIGHT_BYTES


class GemvConv:
    """``activation(a @ op(B) + bias)`` for one row ``a``: a 1×1 convolution of the 1×1
    image ``a`` (k channels) by the (n, k, 1, 1) filter ``op(B)ᵀ``, the activation (if
    any) a post-op. Has ``FusedMatmul``'s ``prim`` and ``pack_weights``."""

    def __init__(self, d: onednn.OneDNN, p: spec.GemmProblem, activation: str | None) -> None:
        self.trans_b = p.trans_b
        self.n, self.k = p.n, p.k
        conv = spec.ConvProblem(n=1, c=p.k, h=1, w=1, k=p.n, r=1, s=1,
                                has_bias=p.bias_shape is not None)
        layout = "blocked" if p.k % 16 == 0 and p.n % 16 == 0 else "nhwc"
        self.conv = Conv(d, conv, layout, activation=activation)
        self.prim = self.conv.prim
        self.impl = self.prim.impl
        for arg, size in ((ARG_SRC, p.k), (ARG_DST, p.n)):
            if self.prim.sizes[arg] != 4 * size:
                raise AssertionError(f"GemvConv: a {self.prim.sizes[arg]}-byte argument "
                                     f"{arg} for a row of {size} floats")

    def pack_weights(self, w: np.ndarray) -> np.ndarray:
        """B (as stored: (k, n), or (n, k) when transposed) as the convolution's filter."""
        oihw = np.ascontiguousarray(w if self.trans_b else w.T, dtype=np.float32)
        oihw = oihw.reshape(self.n, self.k, 1, 1)
        reorder = self.conv.wei_reorder
        if reorder is None:
            return oihw
        packed = aligned_empty(self.prim.mds[ARG_WEIGHTS].size, np.uint8)
        reorder.execute({ARG_SRC: oihw, ARG_DST: packed})
        return packed
