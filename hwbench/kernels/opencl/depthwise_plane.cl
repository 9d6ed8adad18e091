// A depthwise conv's whole plane per work-item, its input padded in private memory (no
// pad_planes pass over global memory): for small planes (EfficientNet's and MobileNet's
// 14x14 and 7x7 stages). Appended after depthwise.cl (finish8, LOAD8's forms); the plane's
// sizes are -D defines: IN_H x IN_W read, PAD_T / PAD_L zeros above / left, padded to
// PLANE_HP x PLANE_WP (wide enough for whole blocks of eight), OUT_H x OUT_W written.

#if VLOAD_CAST
#define PLOADU8(p) (*(const float8_u *)(p))
#else
#define PLOADU8(p) vload8(0, (p))
#endif
#if SW == 1
#define PLOAD8(p) PLOADU8(p)
#elif SW == 2
inline float8 pload8_even(const float *p)
{
    const float8 a = PLOADU8(p), b = PLOADU8(p + 8);
    return (float8)(a.s0, a.s2, a.s4, a.s6, b.s0, b.s2, b.s4, b.s6);
}
#define PLOAD8(p) pload8_even(p)
#else
#define PLOAD8(p) (float8)((p)[0], (p)[SW], (p)[2 * SW], (p)[3 * SW], (p)[4 * SW], \
                           (p)[5 * SW], (p)[6 * SW], (p)[7 * SW])
#endif

// Work-items (1, 1, n * K), work-groups (1, 1, 16) on CPUs. Every block is stored whole: a
// row's last block spills into the next row's first outputs, which this work-item writes
// after (program order); only the plane's last row keeps finish8's partial store.
__kernel void depthwise_plane(__global const float *restrict x,
                              __global const float *restrict w, int K, int planes,
                              __global const float *restrict bias, int has_bias,
                              __global const float *restrict residual, int has_residual,
                              int act, __global float *restrict out)
{
    const int plane = get_global_id(2);
    if (plane >= planes)
        return;
    const int k = plane % K;
    float xs[PLANE_HP * PLANE_WP];
    for (int i = 0; i < PLANE_HP * PLANE_WP; ++i)
        xs[i] = 0.0f;
    __global const float *src = x + (size_t)plane * IN_H * IN_W;
    for (int h = 0; h < IN_H; ++h) {
#pragma unroll
        for (int i = 0; i < IN_W; ++i)
            xs[(h + PAD_T) * PLANE_WP + PAD_L + i] = src[h * IN_W + i];
    }
    float wk[R * S];
#pragma unroll
    for (int i = 0; i < R * S; ++i)
        wk[i] = w[(size_t)k * R * S + i];
    const float b = has_bias ? bias[k] : 0.0f;
    const size_t o0 = (size_t)plane * OUT_H * OUT_W;
    for (int oh = 0; oh < OUT_H; ++oh) {
        const float *line = xs + oh * SH * PLANE_WP;
        // (not unrolled: one PoCL thread, device time, b8, in-process A/B: 144x56x56 3x3
        // 4.1 -> 2.4 ms, 240x28x28 5x5 3.7 -> 2.9, 576x14x14 3x3 1.2 -> 0.9; 672x14x14
        // 5x5 2.7 -> 3.2 the one loss)
#pragma unroll 1
        for (int ow = 0; ow < OUT_W; ow += 8) {
            const float *at = line + ow * SW;
            float8 acc = (float8)(0.0f);
#pragma unroll
            for (int r = 0; r < R; ++r) {
#pragma unroll
                for (int s = 0; s < S; ++s)
                    acc += PLOAD8(at + r * DH * PLANE_WP + s * DW) * wk[r * S + s];
            }
            if (has_bias)  // after the taps, as depthwise.cl's kernels: the same sums
                acc += b;
            finish8(acc, o0 + oh * OUT_W + ow, oh + 1 < OUT_H ? 8 : OUT_W - ow, residual,
                    has_residual, act, out);
        }
    }
}
