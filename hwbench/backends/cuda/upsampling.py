"""The cuda backend's upsampling family (import-safe without CuPy: nothing here touches it
until a kernel runs). ConvTranspose: one RawKernel, the direct gather of
``kernels/opencl/upsampling.cl`` in CUDA C; Resize: the shared per-axis table pass
(``upsampling_reference.resize_axis``) on CuPy arrays, the tables uploaded, the data never
leaving the GPU. Status: written against CuPy's documented RawKernel/array API, like
``kernels.py``; not yet compiled or run on a GPU here."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from hwbench.backends.cuda import runtime
from hwbench.kernels import spec, upsampling_reference

_CONV_TRANSPOSE = r"""
extern "C" __global__ void hwb_conv_transpose2d(
    const int total, const int *__restrict__ meta, const float *__restrict__ x,
    const float *__restrict__ w, const float *__restrict__ bias, const int has_bias,
    float *__restrict__ out)
{
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= total) return;
    const int c = meta[1], h = meta[2], wd = meta[3], k = meta[4], r = meta[5], s = meta[6];
    const int sh = meta[7], sw = meta[8], pt = meta[9], pl = meta[10], dh = meta[11],
              dw = meta[12], groups = meta[13], oh = meta[14], ow = meta[15];
    const int ox = i % ow, oy = (i / ow) % oh, ko = (i / (ow * oh)) % k, ni = i / (ow * oh * k);
    const int kg = k / groups, cg = c / groups, g = ko / kg, kk = ko % kg;
    const int fy = oy + pt, fx = ox + pl;
    float acc = 0.0f;
    for (int ci = 0; ci < cg; ++ci) {
        const int ch = g * cg + ci;
        const float *xc = x + ((long long)ni * c + ch) * h * wd;
        const float *wc = w + ((long long)ch * kg + kk) * r * s;
        for (int ky = 0; ky < r; ++ky) {
            const int ty = fy - ky * dh;
            if (ty < 0 || ty % sh) continue;
            const int iy = ty / sh;
            if (iy >= h) continue;
            for (int kx = 0; kx < s; ++kx) {
                const int tx = fx - kx * dw;
                if (tx < 0 || tx % sw) continue;
                const int ix = tx / sw;
                if (ix >= wd) continue;
                acc += xc[iy * wd + ix] * wc[ky * s + kx];
            }
        }
    }
    out[i] = has_bias ? acc + bias[ko] : acc;
}
"""
THREADS = 256


class UpsamplingKernels:
    """``_conv_transpose2d`` and ``_resize`` mixed into ``CudaBackend`` (its CuPy module
    ``cp``, its kernel cache ``kernels`` and ``_dev``)."""

    def _conv_transpose2d(self, p: spec.ConvTransposeProblem, x, w, bias) -> Any:
        total = math.prod(p.output_shape)
        if total >= 2 ** 31 or p.n * p.c * p.h * p.w >= 2 ** 31:
            raise self._unsupported("conv_transpose2d beyond int32 indices")
        cp = self.cp
        with runtime.gpu_errors("conv_transpose2d"):
            kernel = self.kernels._get(("conv_transpose2d",), lambda: cp.RawKernel(
                _CONV_TRANSPOSE, "hwb_conv_transpose2d"))
            meta = cp.asarray(np.array(
                (p.n, p.c, p.h, p.w, p.k, p.r, p.s, *p.stride, p.padding[0], p.padding[1],
                 *p.dilation, p.groups, p.out_h, p.out_w), np.int32))
            xd = cp.ascontiguousarray(self._dev(x))
            out = cp.empty(p.output_shape, cp.float32)
            kernel(((total + THREADS - 1) // THREADS,), (THREADS,),
                   (np.int32(total), meta, xd, cp.ascontiguousarray(self._dev(w)),
                    xd if bias is None else cp.ascontiguousarray(self._dev(bias)),
                    np.int32(bias is not None), out))
            return out

    def _resize(self, p: spec.ResizeProblem, x) -> Any:
        cp = self.cp
        with runtime.gpu_errors("resize"):
            out = cp.ascontiguousarray(self._dev(x))
            for t in p.tables:
                out = upsampling_reference.resize_axis(out, t, p.extrapolation_value,
                                                       np.float32, xp=cp)
            return cp.ascontiguousarray(out) if p.tables else out.copy()
