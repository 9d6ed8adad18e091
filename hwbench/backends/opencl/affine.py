"""ChannelAffine (``graph/ops/channel_affine.py``) as one kernel
(``kernels/opencl/affine.cl``): DenseNet's BatchNormalization and Relu before each conv
in one pass instead of a Mul, an Add and a Relu."""

from __future__ import annotations

from typing import Any

import numpy as np

from hwbench.backends.opencl.compiler import kernel_source
from hwbench.backends.opencl.gemm import i32, vec8_defines


class ChannelAffineOpencl:
    """``channel_affine`` and the flag that has ``Session`` fuse the chains for it."""

    @property
    def fuses_channel_affine(self) -> bool:
        """On CPU devices: its plane per work-item would leave most of a GPU idle, where
        the three elementwise kernels run an element per work-item."""
        return bool(self.dev.is_cpu)

    def channel_affine(self, x: Any, scale: Any, shift: Any, relu: bool) -> Any:
        """x · scale (+ shift) (then Relu) by one value per channel of NCHW float32 ``x``;
        None (the caller runs the ops one by one) for anything else."""
        if (not self._is_device_array(x) or np.dtype(x.dtype) != np.float32 or x.ndim != 4
                or not x.flags.c_contiguous or x.offset):
            return None
        n, c, h, w = x.shape
        if np.size(scale) != c or (shift is not None and np.size(shift) != c):
            return None
        self._screen("channel_affine", x=x, scale=scale, shift=shift)
        out = self._empty(tuple(x.shape))
        program = self.compiler.program(
            "affine", vec8_defines(self.dev), {"channel_affine": (1, 16)},
            source=kernel_source("vec8") + "\n" + kernel_source("affine"))
        scale_buf = self._buf(scale)
        program.launch("channel_affine", (1, n * c), self._buf(x), i32(c), i32(h * w),
                       i32(n * c), scale_buf, scale_buf if shift is None else self._buf(shift),
                       i32(shift is not None), i32(bool(relu)), out.data)
        return out
