// ONNX QuantizeLinear / DequantizeLinear, bit-exact with hwbench.kernels.quantization.
// Element o's parameter index is (o / inner) % channels (channels 1: per tensor). Built
// with -cl-fp32-correctly-rounded-divide-sqrt: x / scale must round as NumPy's does.

#ifndef Q_T
#define Q_T uchar
#endif

// q = saturate(rint(x / scale) + zero_point); rint rounds half to even.
__kernel void quantize(int total, int inner, int channels, __global const float *restrict x,
                       __global const float *restrict scale,
                       __global const float *restrict zero_point, float lo, float hi,
                       __global Q_T *restrict q)
{
    const int o = get_global_id(0);
    if (o >= total)
        return;
    const int ch = (o / inner) % channels;
    const float v = rint(x[o] / scale[ch]) + zero_point[ch];
    q[o] = (Q_T)clamp(v, lo, hi);
}

// 8-bit data: (float(q) - zero_point) * scale, exact but for the one rounding of the
// product, as in float32 NumPy.
__kernel void dequantize(int total, int inner, int channels, __global const Q_T *restrict q,
                         __global const float *restrict scale,
                         __global const float *restrict zero_point, __global float *restrict y)
{
    const int o = get_global_id(0);
    if (o >= total)
        return;
    const int ch = (o / inner) % channels;
    y[o] = ((float)q[o] - zero_point[ch]) * scale[ch];
}
