// MaxPool with horizontal stride 1 or 2, NCHW float32: eight neighbouring outputs of one
// row per work-item as float8, each tap one unaligned float8 load (vec8.cl, prepended by
// the host) at stride 1, two and their even lanes at stride 2, where the block's loads all
// lie inside the row (padding never wins a max), lane by lane at the edges. Work-items:
// (OW / 8 rounded up, OH, N * C). NaN is never selected, as fmax drops it.
__kernel void max_pool8(__global const float *restrict x, int H, int W, int OH, int OW,
                        int kh, int kw, int sh, int sw, int pt, int pl, int dh, int dw,
                        int NC, __global float *restrict y)
{
    const int ow = get_global_id(0) * 8;
    const int oh = get_global_id(1);
    const int nc = get_global_id(2);
    if (ow >= OW || oh >= OH || nc >= NC)
        return;
    __global const float *plane = x + (size_t)nc * H * W;
    __global float *dst = y + ((size_t)nc * OH + oh) * OW + ow;
    const int iw0 = ow * sw - pl;
    const int lanes = min(8, OW - ow);
    if (lanes == 8 && iw0 >= 0 && iw0 + 8 * sw - 1 + (kw - 1) * dw < W) {
        float8 best = (float8)(-INFINITY);
        for (int r = 0; r < kh; ++r) {
            const int ih = oh * sh - pt + r * dh;
            if (ih < 0 || ih >= H)
                continue;
            __global const float *row = plane + (size_t)ih * W + iw0;
            for (int s = 0; s < kw; ++s) {
                __global const float *p = row + s * dw;
                float8 v;
                if (sw == 1) {
                    v = LOADU8(p);
                } else {
                    const float8 a = LOADU8(p), b = LOADU8(p + 8);
                    v = (float8)(a.s0, a.s2, a.s4, a.s6, b.s0, b.s2, b.s4, b.s6);
                }
                best = select(best, v, v > best);
            }
        }
        STOREU8(best, dst);
        return;
    }
    for (int j = 0; j < lanes; ++j) {
        float best = -INFINITY;
        for (int r = 0; r < kh; ++r) {
            const int ih = oh * sh - pt + r * dh;
            if (ih < 0 || ih >= H)
                continue;
            for (int s = 0; s < kw; ++s) {
                const int iw = iw0 + j * sw + s * dw;
                if (iw >= 0 && iw < W) {
                    const float v = plane[(size_t)ih * W + iw];
                    best = v > best ? v : best;
                }
            }
        }
        dst[j] = best;
    }
}
