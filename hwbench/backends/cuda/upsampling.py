"""The cuda backend's upsampling family (import-safe without CuPy: nothing here touches it
until a kernel runs). ConvTranspose: cuBLAS's batched GEMM (``cupy.matmul``) and a col2im
RawKernel, ``kernels/opencl/upsampling.cl``'s lowering in CUDA C. Resize: the shared
per-axis table pass (``upsampling_reference.resize_axis``) on CuPy arrays, the tables
uploaded, the data never leaving the GPU. Status: written against CuPy's documented
RawKernel/array API, like ``kernels.py``; not yet compiled or run on a GPU here."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from hwbench.backends.cuda import runtime
from hwbench.kernels import spec, upsampling_reference

_COL2IM = r"""
extern "C" __global__ void hwb_col2im_transpose(
    const int total, const int *__restrict__ meta, const float *__restrict__ cols,
    const int ld, const long long gstride, const float *__restrict__ bias, const int has_bias,
    float *__restrict__ out)
{
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= total) return;
    const int h = meta[2], wd = meta[3], k = meta[4], r = meta[5], s = meta[6];
    const int sh = meta[7], sw = meta[8], pt = meta[9], pl = meta[10], dh = meta[11],
              dw = meta[12], groups = meta[13], oh = meta[14], ow = meta[15];
    const int ox = i % ow, oy = (i / ow) % oh, ko = (i / (ow * oh)) % k, ni = i / (ow * oh * k);
    const int kg = k / groups, g = ko / kg, kk = ko % kg;
    const int fy = oy + pt, fx = ox + pl;
    const float *cg = cols + g * gstride + (long long)ni * h * wd;
    float acc = 0.0f;
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
            acc += cg[(long long)((kk * r + ky) * s + kx) * ld + iy * wd + ix];
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
        """Per group ``cols = W_gᵀ · x_g`` (one batched cuBLAS GEMM through
        ``cupy.matmul``), then col2im: each output value gathers its taps, plus the bias."""
        total = math.prod(p.output_shape)
        if total >= 2 ** 31 or p.n * p.h * p.w >= 2 ** 31:
            raise self._unsupported("conv_transpose2d beyond int32 indices")
        cp = self.cp
        g, cg, pixels = p.groups, p.c // p.groups, p.n * p.h * p.w
        m = p.k // g * p.r * p.s
        with runtime.gpu_errors("conv_transpose2d"):
            kernel = self.kernels._get(("col2im_transpose",), lambda: cp.RawKernel(
                _COL2IM, "hwb_col2im_transpose"))
            xg = cp.ascontiguousarray(self._dev(x).reshape(p.n, g, cg, p.h * p.w)
                                      .transpose(1, 2, 0, 3)).reshape(g, cg, pixels)
            wg = self._dev(w).reshape(g, cg, m).transpose(0, 2, 1)
            cols = cp.ascontiguousarray(cp.matmul(wg, xg))  # (g, m, pixels)
            meta = cp.asarray(np.array(
                (p.n, p.c, p.h, p.w, p.k, p.r, p.s, *p.stride, p.padding[0], p.padding[1],
                 *p.dilation, p.groups, p.out_h, p.out_w), np.int32))
            out = cp.empty(p.output_shape, cp.float32)
            kernel(((total + THREADS - 1) // THREADS,), (THREADS,),
                   (np.int32(total), meta, cols, np.int32(pixels), np.int64(m * pixels),
                    cols if bias is None else cp.ascontiguousarray(self._dev(bias)),
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
