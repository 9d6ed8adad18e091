// The int8 GEMM's requantization, shared by gemm_packed.cl and gemm_tiled.cl built with
// INT8=1 (the host appends this file, and col2output.cl for the int32 results to NCHW, to
// either).

#ifndef OUT_T
#define OUT_T uchar
#endif

#ifndef INLINE
// PoCL 3.0 calls its min() and clamp() built-ins out of line, and leaves helpers of this
// size out of line too: either stops the loops below from vectorizing.
#define INLINE inline __attribute__((always_inline))
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#endif
#define CLAMP(x, lo, hi) ((x) < (lo) ? (lo) : (x) > (hi) ? (hi) : (x))

// gemmlowp requantization, bit-exact with hwbench.kernels.quantization: acc (plus an
// int32 bias, the sum saturated to int32), times the multiplier as an int64 product, a
// rounding right shift (ties to even), plus the zero point, saturated to [lo, hi];
// multiplier in [2^30, 2^31), shift >= 1. Branch-free (selects, bitwise logic), so that
// the loop of requantize16 vectorizes.
INLINE int requantize_value(int acc, int bias, int has_bias, long multiplier, int shift,
                            int zero_point, int lo, int hi)
{
    const long v = acc;
    const long biased = has_bias ? CLAMP(v + bias, (long)INT_MIN, (long)INT_MAX) : v;
    const long product = biased * multiplier;
    const int s = MIN(shift, 62);  // |product| < 2^62: a shift past 62 rounds to 0
    const long floor_q = product >> s;             // arithmetic: rounds toward -inf
    const long rem = product & ((1L << s) - 1);    // product - floor_q * 2^s, in [0, 2^s)
    const long halfway = 1L << (s - 1);
    const long rounded = floor_q + ((rem > halfway) | ((rem == halfway) & (floor_q & 1)));
    const long q = shift < 63 ? rounded : 0;
    return (int)CLAMP(q + zero_point, (long)lo, (long)hi);
}

// out[t] for t < valid (<= 16) of 16 consecutive elements; element t's bias is
// bias[t * b_step], its multiplier and shift at [t * m_step]. Called with constant
// valid and steps for the common cases, so that each call's loop is specialized.
INLINE void requantize16(__global const int *restrict acc, __global const int *restrict bias,
                         int b_step, int has_bias, __global const long *restrict multiplier,
                         __global const int *restrict shift, int m_step, int zero_point,
                         int lo, int hi, __global OUT_T *restrict out, int valid)
{
    for (int t = 0; t < 16; ++t) {
        const int e = MIN(t, valid - 1);
        const int q = requantize_value(acc[e], bias[e * b_step], has_bias,
                                       multiplier[e * m_step], shift[e * m_step], zero_point,
                                       lo, hi);
        if (t < valid)
            out[t] = (OUT_T)q;
    }
}

// The result is read as rows x cols (row-major); element (r, c)'s channel is c when
// by_column (a GEMM's columns; an NCHW tensor with H * W = 1), else r % channels (an
// NCHW tensor as (N * C) rows of H * W). Multiplier and shift are per channel when
// per_channel, else one value; bias (an int32 buffer, acc when has_bias is 0) per channel.
// One work-item per 16 elements of a row: PoCL runs per-element work-items of this
// kernel as scalar code (their bounds checks diverge), and a per-element index division
// cost more than the rest.
__kernel void requantize(int cols, int rows, int channels, int by_column,
                         __global const int *restrict acc, __global const int *restrict bias,
                         int has_bias, __global const long *restrict multiplier,
                         __global const int *restrict shift, int per_channel, int zero_point,
                         int lo, int hi, __global OUT_T *restrict out)
{
    const int c0 = get_global_id(0) * 16;
    const int r = get_global_id(1);
    if (c0 >= cols || r >= rows)
        return;
    const size_t o = (size_t)r * cols + c0;
    const int ch = by_column ? c0 : r % channels;
    const int m_step = by_column && per_channel;
    acc += o;
    out += o;
    bias += ch;
    multiplier += per_channel ? ch : 0;
    shift += per_channel ? ch : 0;
    const int valid = MIN(16, cols - c0);
    if (valid == 16 && by_column && per_channel)
        requantize16(acc, bias, 1, has_bias, multiplier, shift, 1, zero_point, lo, hi, out, 16);
    else if (valid == 16 && by_column)
        requantize16(acc, bias, 1, has_bias, multiplier, shift, 0, zero_point, lo, hi, out, 16);
    else if (valid == 16)
        requantize16(acc, bias, 0, has_bias, multiplier, shift, 0, zero_point, lo, hi, out, 16);
    else
        requantize16(acc, bias, by_column, has_bias, multiplier, shift, m_step, zero_point,
                     lo, hi, out, valid);
}
