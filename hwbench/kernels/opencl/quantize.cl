// ONNX QuantizeLinear / DequantizeLinear, bit-exact with hwbench.kernels.quantization.
// The data is read as rows of `inner` elements, row r's parameters at r % channels
// (per tensor: one row, one channel). One work-item per 16 consecutive elements of a row:
// the channel is found once, not per element (an integer division per element, which no
// x86 vector unit has, cost most of the time on PoCL), and PoCL's min()/clamp() built-ins,
// which it calls out of line and which stop loops from vectorizing, are not used. Built
// with -cl-fp32-correctly-rounded-divide-sqrt: x / scale must round as NumPy's does.

#ifndef Q_T
#define Q_T uchar
#endif
#define CLAMP(x, lo, hi) ((x) < (lo) ? (lo) : (x) > (hi) ? (hi) : (x))

// q = saturate(rint(x / scale) + zero_point); rint rounds half to even.
__kernel void quantize(int inner, int rows, int channels, __global const float *restrict x,
                       __global const float *restrict scale,
                       __global const float *restrict zero_point, float lo, float hi,
                       __global Q_T *restrict q)
{
    const int c0 = get_global_id(0) * 16;
    const int r = get_global_id(1);
    if (c0 >= inner || r >= rows)
        return;
    const int ch = r % channels;
    const float s = scale[ch];
    const float z = zero_point[ch];
    const size_t base = (size_t)r * inner + c0;
    const int n = inner - c0;
    for (int t = 0; t < 16; ++t) {
        if (t < n) {
            const float v = rint(x[base + t] / s) + z;
            q[base + t] = (Q_T)CLAMP(v, lo, hi);
        }
    }
}

// 8-bit data: (float(q) - zero_point) * scale, exact but for the one rounding of the
// product, as in float32 NumPy.
__kernel void dequantize(int inner, int rows, int channels, __global const Q_T *restrict q,
                         __global const float *restrict scale,
                         __global const float *restrict zero_point, __global float *restrict y)
{
    const int c0 = get_global_id(0) * 16;
    const int r = get_global_id(1);
    if (c0 >= inner || r >= rows)
        return;
    const int ch = r % channels;
    const float s = scale[ch];
    const float z = zero_point[ch];
    const size_t base = (size_t)r * inner + c0;
    const int n = inner - c0;
    for (int t = 0; t < 16; ++t) {
        if (t < n)
            y[base + t] = ((float)q[base + t] - z) * s;
    }
}
