"""The opencl backend's upsampling family (``kernels/opencl/upsampling.cl``): ConvTranspose
as one direct gather kernel, Resize as one ``resize_axis`` pass per resized axis reading
``spec``'s per-axis tables (uploaded as small device arrays)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from hwbench.backends.opencl.gemm import LOCAL, i32
from hwbench.kernels import spec


class UpsamplingKernels:
    """``_conv_transpose2d`` and ``_resize`` mixed into ``OpenclBackend``."""

    def _upsampling_program(self) -> Any:
        return self.compiler.program("upsampling", {},
                                     {"conv_transpose2d": (LOCAL,), "resize_axis": (LOCAL,)})

    def _conv_transpose2d(self, p: spec.ConvTransposeProblem, x, w, bias) -> Any:
        total = math.prod(p.output_shape)
        i32(total)  # int32 indices in the kernel: larger outputs are refused, not wrapped
        i32(p.n * p.c * p.h * p.w)
        meta = (p.n, p.c, p.h, p.w, p.k, p.r, p.s, *p.stride, p.padding[0], p.padding[1],
                *p.dilation, p.groups, p.out_h, p.out_w)
        out = self.empty(p.output_shape)
        xb = self._buf(x)
        self._upsampling_program().launch(
            "conv_transpose2d", (total,), i32(total), self._meta_buffer(meta), xb,
            self._buf(w), xb if bias is None else self._buf(bias), i32(bias is not None),
            out.data)
        return out

    def _resize(self, p: spec.ResizeProblem, x) -> Any:
        i32(p.size)
        current, shape = x, p.shape
        for t, after in zip(p.tables, p.pass_shapes(), strict=True):
            total = math.prod(after)
            i32(math.prod(shape))
            inner = math.prod(shape[t.axis + 1:])
            index = self.asarray(np.ascontiguousarray(t.index, np.int32))
            weight = self.asarray(t.weight.astype(np.float32))
            outside = (index if t.outside is None
                       else self.asarray(t.outside.astype(np.int32)))
            out = self.empty(after)
            self._upsampling_program().launch(
                "resize_axis", (total,), i32(total), i32(t.out_len), i32(t.in_len),
                i32(inner), i32(t.taps), index.data, weight.data, outside.data,
                i32(t.outside is not None), np.float32(p.extrapolation_value),
                self._buf(current), out.data)
            current, shape = out, after
        return current if p.tables else self._copy(current, p.shape)

    def _copy(self, x, shape) -> Any:
        out = self.empty(shape)
        self.dev.cl.enqueue_copy(self.dev.queue, out.data, self._buf(x))
        return out
