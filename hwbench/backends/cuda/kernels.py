"""hwbench's own CUDA kernels, as CuPy ElementwiseKernel / RawKernel sources.

Each is compiled by CuPy (NVRTC) on first use and cached on disk by CuPy; ``Kernels``
builds them lazily so that a backend that never pools never compiles the pooling kernel.
Semantics follow the float64 references in ``hwbench.kernels`` (ONNX's):

- ``requantize`` is gemmlowp's integer form of ``hwbench.kernels.quantization``: an int64
  product of the int32 accumulator (plus bias, saturated to int32) and the 31-bit
  multiplier, a rounding right shift with ties to even, the zero point, saturation. It is
  bit-exact with ``quantization.requantize`` (whose float64 path is proven equal to it).
- ``quantize`` divides in float32 and rounds half to even (``rintf``), as ONNX's reference;
  CuPy compiles without fast-math, so ``x / s`` is IEEE-rounded as NumPy's.
- ``im2row`` writes one row of C/g·R·S taps per output pixel into a row of ``ld`` (padding
  columns stay as the caller zeroed them); the 8-bit variant folds uint8 -> int8 (x ^ 0x80)
  into the copy, so the int8 GEMM's operands need no second pass.

Status: written against CuPy's documented kernel APIs; not yet compiled or run on a GPU.
"""

from __future__ import annotations

from typing import Any

import numpy as np

BLOCK = 256

_IM2ROW = r"""
extern "C" __global__ void {name}(
    const {tin}* __restrict__ x, {tout}* __restrict__ rows,
    int C, int H, int W, int c0, int Cg, int R, int S, int OH, int OW,
    int sh, int sw, int pt, int pl, int dh, int dw, long long ld, {tin} pad, long long total)
{{
    const int crs = Cg * R * S;
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < total;
         i += (long long)blockDim.x * gridDim.x) {{
        long long pix = i / crs;
        int t = (int)(i - pix * crs);
        int c = t / (R * S);
        int rs = t - c * R * S;
        int r = rs / S;
        int s = rs - r * S;
        int ow = (int)(pix % OW);
        long long rest = pix / OW;
        int oh = (int)(rest % OH);
        long long n = rest / OH;
        int ih = oh * sh - pt + r * dh;
        int iw = ow * sw - pl + s * dw;
        {tin} v = pad;
        if (ih >= 0 && ih < H && iw >= 0 && iw < W)
            v = x[((n * C + c0 + c) * H + ih) * (long long)W + iw];
        rows[pix * ld + t] = {convert};
    }}
}}
"""

_POOL = r"""
extern "C" __global__ void hwb_pool2d(
    const float* __restrict__ x, float* __restrict__ y, int C, int H, int W, int OH, int OW,
    int kh, int kw, int sh, int sw, int pt, int pl, int pb, int pr, int dh, int dw,
    int is_max, int include_pad, long long total)
{
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < total;
         i += (long long)blockDim.x * gridDim.x) {
        int ow = (int)(i % OW);
        long long rest = i / OW;
        int oh = (int)(rest % OH);
        long long nc = rest / OH;
        const float* plane = x + nc * (long long)H * W;
        float acc = is_max ? __int_as_float(0xff800000) : 0.0f;  /* -inf */
        int count_h = 0, count_w = 0;
        for (int s = 0; s < kw; ++s) {
            int iw = ow * sw - pl + s * dw;
            count_w += include_pad ? (iw >= -pl && iw < W + pr) : (iw >= 0 && iw < W);
        }
        for (int r = 0; r < kh; ++r) {
            int ih = oh * sh - pt + r * dh;
            count_h += include_pad ? (ih >= -pt && ih < H + pb) : (ih >= 0 && ih < H);
            if (ih < 0 || ih >= H) continue;
            for (int s = 0; s < kw; ++s) {
                int iw = ow * sw - pl + s * dw;
                if (iw < 0 || iw >= W) continue;
                float v = plane[(long long)ih * W + iw];
                acc = is_max ? fmaxf(acc, v) : acc + v;
            }
        }
        y[i] = is_max ? acc : acc / (float)(count_h * count_w);
    }
}
"""

_REQUANTIZE = r"""
long long v = acc;
{bias}
long long prod = v * mult;
long long q;
if (shift >= 63) {{
    q = 0;
}} else {{
    long long p2 = 1LL << shift;
    q = prod >> shift;                 /* floor division by 2**shift */
    long long r = prod - q * p2;       /* 0 <= r < 2**shift */
    long long half = p2 >> 1;
    if (r > half || (r == half && (q & 1LL))) q += 1;   /* ties to even */
}}
q += zp;
q = q < lo ? lo : (q > hi ? hi : q);
out = ({ctype})q;
"""

_CTYPES = {"int8": "signed char", "uint8": "unsigned char", "float32": "float",
           "float16": "half", "int32": "int"}


def grid(total: int) -> tuple[int, ...]:
    """Blocks for a grid-stride loop over ``total`` items."""
    return (max(1, min(-(-total // BLOCK), 2**31 - 1)),)


class Kernels:
    """The compiled kernels of one backend, built on first use."""

    def __init__(self, cupy: Any) -> None:
        self.cp = cupy
        self._cache: dict[tuple, Any] = {}

    def _get(self, key: tuple, build) -> Any:
        kernel = self._cache.get(key)
        if kernel is None:
            kernel = self._cache[key] = build()
        return kernel

    def _elementwise(self, name: str, inputs: str, outputs: str, body: str) -> Any:
        return self._get(("ew", name), lambda: self.cp.ElementwiseKernel(
            inputs, outputs, body, f"hwb_{name}"))

    # -- float elementwise ---------------------------------------------------------------
    def sigmoid(self, x: Any) -> Any:
        # 0.5·tanh(x/2) + 0.5 equals σ(x) and never overflows exp for large |x|
        return self._elementwise("sigmoid", "float32 x", "float32 y",
                                 "y = 0.5f * tanhf(0.5f * x) + 0.5f")(x)

    def sigmoid_backward(self, y: Any, dy: Any) -> Any:
        return self._elementwise("sigmoid_bwd", "float32 y, float32 dy", "float32 dx",
                                 "dx = dy * y * (1.0f - y)")(y, dy)

    def relu(self, x: Any) -> Any:
        return self._elementwise("relu", "float32 x", "float32 y",
                                 "y = x > 0.0f ? x : 0.0f")(x)

    def epilogue(self, y: Any, out: Any, bias: Any = None, residual: Any = None,
                 relu: bool = False, source: str = "float32") -> Any:
        """``out = act(float(y) + bias + residual)`` in one pass; ``y`` float32, float16 or
        bfloat16 bits in uint16 (``source="bfloat16"``), any strides (an NHWC view too)."""
        in_type = "uint16" if source == "bfloat16" else source
        load = ("__uint_as_float(((unsigned int)y) << 16)" if source == "bfloat16"
                else "(float)y")
        names, args = [f"{in_type} y"], [y]
        expr = load
        if bias is not None:
            names.append("float32 b")
            args.append(bias)
            expr += " + b"
        if residual is not None:
            names.append("float32 r")
            args.append(residual)
            expr += " + r"
        body = f"float v = {expr}; out = " + ("v > 0.0f ? v : 0.0f;" if relu else "v;")
        key = ("epilogue", source, bias is not None, residual is not None, relu)
        kernel = self._get(key, lambda: self.cp.ElementwiseKernel(
            ", ".join(names), "float32 out", body,
            f"hwb_epilogue_{source}_{int(bias is not None)}{int(residual is not None)}"
            f"{int(relu)}"))
        return kernel(*args, out)

    def to_bfloat16(self, x: Any) -> Any:
        """float32 -> bfloat16 bits (uint16), round to nearest even (finite inputs)."""
        return self._elementwise(
            "to_bf16", "float32 x", "uint16 y",
            "unsigned int u = __float_as_uint(x); u += 0x7FFFu + ((u >> 16) & 1u); "
            "y = (unsigned short)(u >> 16);")(x)

    # -- quantization --------------------------------------------------------------------
    def requantize(self, acc: Any, mult: Any, shift: Any, zp: int, dtype: np.dtype,
                   bias: Any = None) -> Any:
        """int32 ``acc`` (+ int32 ``bias``, the sum saturated to int32) -> ``dtype``;
        ``mult``/``shift`` int64 arrays broadcasting against ``acc``."""
        dtype = np.dtype(dtype)
        info = np.iinfo(dtype)
        bias_code = ("v += b; v = v < -2147483648LL ? -2147483648LL : "
                     "(v > 2147483647LL ? 2147483647LL : v);") if bias is not None else ""
        inputs = "int32 acc, int64 mult, int64 shift" + (", int32 b" if bias is not None else "")
        inputs += ", int64 zp, int64 lo, int64 hi"
        key = ("requantize", dtype.name, bias is not None)
        kernel = self._get(key, lambda: self.cp.ElementwiseKernel(
            inputs, f"{dtype.name} out",
            _REQUANTIZE.format(bias=bias_code, ctype=_CTYPES[dtype.name]),
            f"hwb_requantize_{dtype.name}_{int(bias is not None)}"))
        out = self.cp.empty(self.cp.broadcast(acc, mult, shift).shape, dtype)
        args = [acc, mult, shift] + ([bias] if bias is not None else [])
        return kernel(*args, np.int64(zp), np.int64(info.min), np.int64(info.max), out)

    def quantize(self, x: Any, scale: Any, zero_point: Any, dtype: np.dtype) -> Any:
        dtype = np.dtype(dtype)
        info = np.iinfo(dtype)
        kernel = self._get(("quantize", dtype.name), lambda: self.cp.ElementwiseKernel(
            "float32 x, float32 s, float32 z, float32 lo, float32 hi", f"{dtype.name} q",
            f"float v = rintf(x / s) + z; v = fminf(fmaxf(v, lo), hi); "
            f"q = ({_CTYPES[dtype.name]})v;", f"hwb_quantize_{dtype.name}"))
        out = self.cp.empty(x.shape, dtype)
        return kernel(x, scale, zero_point, np.float32(info.min), np.float32(info.max), out)

    def dequantize(self, q: Any, scale: Any, zero_point: Any) -> Any:
        name = np.dtype(q.dtype).name
        if name == "int32":  # NumPy computes int32 * float32 in float64, then rounds
            body = "y = (float)((double)(q - z) * (double)s);"
            zero_type = "int32"
        else:  # q - z is a small integer: exact in float32
            body = "y = ((float)q - z) * s;"
            zero_type = "float32"
        kernel = self._get(("dequantize", name), lambda: self.cp.ElementwiseKernel(
            f"{name} q, {zero_type} z, float32 s", "float32 y", body, f"hwb_dequantize_{name}"))
        return kernel(q, zero_point, scale)

    def to_int8(self, x: Any, out: Any) -> Any:
        """uint8 -> int8 as x - 128 (the top bit flipped), into ``out`` (any strides)."""
        return self._elementwise("u8_to_s8", "uint8 x", "int8 y",
                                 "y = (signed char)(x ^ 0x80)")(x, out)

    def zero_point_correction(self, raw: Any, rowsum: Any, colsum: Any, za: Any, zb: Any,
                              k: int) -> Any:
        """(A - za)(B - zb) from raw = A @ B: raw - zb·rowsum(A) - za·colsum(B) + K·za·zb,
        in int64 (the exact result fits int32, as the spec checked)."""
        kernel = self._elementwise(
            "zp_correction", "int32 raw, int64 rs, int64 cs, int64 za, int64 zb, int64 k",
            "int32 out", "out = (int)((long long)raw - zb * rs - za * cs + k * za * zb)")
        return kernel(raw, rowsum, colsum, za, zb, np.int64(k))

    # -- layout --------------------------------------------------------------------------
    def im2row(self, x: Any, rows: Any, p: Any, c0: int, cg: int, pad: Any,
               to_int8: bool = False) -> None:
        """Patches of channels [c0, c0 + cg) of NCHW ``x`` into ``rows`` (pixels × ld):
        row n·OH·OW + oh·OW + ow holds taps (c, r, s) of that pixel; ``pad`` (in ``x``'s
        dtype) fills taps in the padding. ``to_int8`` flips uint8 to int8 on the way."""
        tin = _CTYPES[np.dtype(x.dtype).name]
        tout = _CTYPES[np.dtype(rows.dtype).name]
        if to_int8:
            convert = "(signed char)(v ^ 0x80)"
        else:
            convert = f"({tout})v"
        name = f"hwb_im2row_{np.dtype(x.dtype).name}_{np.dtype(rows.dtype).name}_{int(to_int8)}"
        kernel = self._get(("im2row", name), lambda: self.cp.RawKernel(
            _IM2ROW.format(name=name, tin=tin, tout=tout, convert=convert), name))
        pixels = p.n * p.out_h * p.out_w
        total = pixels * cg * p.r * p.s
        i32 = np.int32
        kernel(grid(total), (BLOCK,), (
            x, rows, i32(p.c), i32(p.h), i32(p.w), i32(c0), i32(cg), i32(p.r), i32(p.s),
            i32(p.out_h), i32(p.out_w), i32(p.stride[0]), i32(p.stride[1]), i32(p.padding[0]),
            i32(p.padding[1]), i32(p.dilation[0]), i32(p.dilation[1]), np.int64(rows.shape[1]),
            np.dtype(x.dtype).type(pad), np.int64(total)))

    def pool2d(self, x: Any, p: Any) -> Any:
        kernel = self._get(("pool",), lambda: self.cp.RawKernel(_POOL, "hwb_pool2d"))
        out = self.cp.empty(p.output_shape, self.cp.float32)
        total = int(out.size)
        i32 = np.int32
        pt, pl, pb, pr = p.padding
        kernel(grid(total), (BLOCK,), (
            x, out, i32(p.c), i32(p.h), i32(p.w), i32(p.out_h), i32(p.out_w),
            i32(p.kernel[0]), i32(p.kernel[1]), i32(p.stride[0]), i32(p.stride[1]), i32(pt),
            i32(pl), i32(pb), i32(pr), i32(p.dilation[0]), i32(p.dilation[1]),
            i32(p.kind == "max"), i32(p.count_include_pad), np.int64(total)))
        return out

    def lrn(self, x: Any, p: Any) -> Any:
        """ONNX LRN: floor((size-1)/2) channels before, the rest after."""
        kernel = self._elementwise(
            "lrn",
            "raw float32 x, int32 C, int32 HW, int32 before, int32 after, float32 aos, "
            "float32 beta, float32 bias",
            "float32 y",
            "long long hw = i % HW; int c = (int)((i / HW) % C); "
            "long long base = i - (long long)c * HW - hw; float sum = 0.0f; "
            "int lo = c - before < 0 ? 0 : c - before; "
            "int hi = c + after > C - 1 ? C - 1 : c + after; "
            "for (int j = lo; j <= hi; ++j) { float v = x[base + (long long)j * HW + hw]; "
            "sum += v * v; } "
            "y = x[i] / powf(sum * aos + bias, beta);")
        n, c, h, w = p.shape
        before = (p.size - 1) // 2
        out = self.cp.empty(p.shape, self.cp.float32)
        return kernel(x, np.int32(c), np.int32(h * w), np.int32(before),
                      np.int32(p.size - 1 - before), np.float32(p.alpha / p.size),
                      np.float32(p.beta), np.float32(p.bias), out)
