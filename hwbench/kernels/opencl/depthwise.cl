// Depthwise convolution (one input and one output channel per group), NCHW float32, over
// an input already padded with zeros (pad_planes, pad.cl): no bounds checks in the inner loops,
// and the window (R, S, strides, dilations: -D defines) known at build time, so PoCL
// unrolls the R*S taps and vectorizes across the work-items of an output row.

// Eight outputs of one row at a time, as float8: tap (r, s) of output ow + j reads
// xp[oh*SH + r*DH][(ow + j)*SW + s*DW], one vload8 for SW = 1, two vload8 and their even
// lanes for SW = 2 (vload16(...).even gave wrong lanes on PoCL 3), eight loads otherwise
// (the host sends only SW = 1 or 2 here: eight loads measured slower than conv_direct).
// xp is padded (zeros) far enough right for a whole last block. out[n, k, oh, ow] = act(sum_rs ... * w[k][r][s] + bias[k] +
// residual) (activation.cl's codes);
// work-items (OW / 8 rounded up, oh, n * K + k).
#if SW == 1
#define LOAD8(p) LOADU8(p)
#elif SW == 2
// Two vload8 and the even lanes picked one by one (LLVM: two shuffles).
inline float8 load8_even(__global const float *p)
{
    const float8 a = LOADU8(p), b = LOADU8(p + 8);
    return (float8)(a.s0, a.s2, a.s4, a.s6, b.s0, b.s2, b.s4, b.s6);
}
#define LOAD8(p) load8_even(p)
#else
#define LOAD8(p) (float8)((p)[0], (p)[SW], (p)[2 * SW], (p)[3 * SW], (p)[4 * SW], \
                          (p)[5 * SW], (p)[6 * SW], (p)[7 * SW])
#endif

// Eight outputs at out + o (``lanes`` of them inside the row, at least one): + residual,
// the activation, stored. A row's last, partial block (all of them when OW < 8:
// EfficientNet's 7x7 stages) keeps the residual and activation on the float8, whose exp
// (SiLU) PoCL vectorizes; the scalar exp ran 11x slower per element, and 0.24 -> 0.69 ms
// at 1152x7x7, 5x5.
inline void finish8(float8 acc, size_t o, int lanes, __global const float *restrict residual,
                    int has_residual, int act, __global float *restrict out)
{
    if (lanes >= 8) {
        if (has_residual)
            acc += LOADU8(residual + o);
        ACTIVATE(float8, acc, act);
        STOREU8(acc, out + o);
        return;
    }
    float v[8];
    if (has_residual) {
        for (int j = 0; j < 8; ++j)
            v[j] = j < lanes ? residual[o + j] : 0.0f;
        acc += vload8(0, v);
    }
    ACTIVATE(float8, acc, act);
    vstore8(acc, 0, v);
    for (int j = 0; j < lanes; ++j)
        out[o + j] = v[j];
}

__kernel void depthwise(__global const float *restrict xp, int HP, int WP,
                        __global const float *restrict w, int K, int OH, int OW, int planes,
                        __global const float *restrict bias, int has_bias,
                        __global const float *restrict residual, int has_residual, int act,
                        __global float *restrict out)
{
    const int ow = get_global_id(0) * 8;
    const int oh = get_global_id(1);
    const int plane = get_global_id(2);
    if (ow >= OW || oh >= OH || plane >= planes)
        return;
    const int k = plane % K;
    __global const float *src = xp + ((size_t)plane * HP + oh * SH) * WP + ow * SW;
    __global const float *wk = w + (size_t)k * R * S;
    float8 acc = (float8)(0.0f);
    for (int r = 0; r < R; ++r) {
        __global const float *row = src + r * DH * WP;
#pragma unroll
        for (int s = 0; s < S; ++s)
            acc += LOAD8(row + s * DW) * wk[r * S + s];
    }
    if (has_bias)
        acc += bias[k];
    finish8(acc, ((size_t)plane * OH + oh) * OW + ow, OW - ow, residual, has_residual, act,
            out);
}

// The same window over a whole output row per work-item (work-items (1, oh, n * K + k),
// work-groups (1, 16, 1) on CPUs): the R*S weights loaded once per row, and PoCL's cost
// per work-item paid once per row instead of per eight outputs.
__kernel void depthwise_rows(__global const float *restrict xp, int HP, int WP,
                             __global const float *restrict w, int K, int OH, int OW,
                             int planes, __global const float *restrict bias, int has_bias,
                             __global const float *restrict residual, int has_residual,
                             int act, __global float *restrict out)
{
    const int oh = get_global_id(1);
    const int plane = get_global_id(2);
    if (oh >= OH || plane >= planes)
        return;
    const int k = plane % K;
    __global const float *src = xp + ((size_t)plane * HP + oh * SH) * WP;
    float wk[R * S];
#pragma unroll
    for (int i = 0; i < R * S; ++i)
        wk[i] = w[(size_t)k * R * S + i];
    const float b = has_bias ? bias[k] : 0.0f;
    const size_t o0 = ((size_t)plane * OH + oh) * OW;
    for (int ow = 0; ow < OW; ow += 8) {
        __global const float *at = src + ow * SW;
        float8 acc = (float8)(0.0f);
#pragma unroll
        for (int r = 0; r < R; ++r) {
            __global const float *row = at + r * DH * WP;
#pragma unroll
            for (int s = 0; s < S; ++s)
                acc += LOAD8(row + s * DW) * wk[r * S + s];
        }
        if (has_bias)
            acc += b;
        finish8(acc, o0 + ow, OW - ow, residual, has_residual, act, out);
    }
}
