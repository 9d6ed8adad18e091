// Pooling on CPUs, NCHW float32: one work-item per output row (work-items (1, OH, N * C),
// work-groups (1, 16, 1)), eight outputs at a time as float8 where every tap of the block
// lies inside the input row (horizontal stride 1: unaligned float8 loads, vec8.cl; 2: two
// loads and their even lanes), lane by lane at the edges and at other strides. PoCL runs
// one output per work-item (pool.cl) or eight (maxpool.cl) several times slower: its
// per-work-item and per-work-group cost outweighs a 3x3 window's nine loads.
// Padding taps never win a max and are left out of an average's sum; the average's
// divisor is pool.cl's (taps inside [lo, hi) per axis). NaN is never selected by a max.

inline float8 pool_load8(__global const float *p, int sw)
{
    if (sw == 1)
        return LOADU8(p);
    const float8 a = LOADU8(p), b = LOADU8(p + 8);
    return (float8)(a.s0, a.s2, a.s4, a.s6, b.s0, b.s2, b.s4, b.s6);
}

inline int pool_taps_inside(int first, int k, int step, int lo, int hi)
{
    int count = 0;
    for (int t = 0; t < k; ++t)
        count += (first + t * step >= lo && first + t * step < hi);
    return count;
}

inline float pool_max1(__global const float *plane, int H, int W, int ih0, int iw0, int kh,
                       int kw, int dh, int dw)
{
    float best = -INFINITY;
    for (int r = 0; r < kh; ++r) {
        const int ih = ih0 + r * dh;
        if (ih < 0 || ih >= H)
            continue;
        for (int s = 0; s < kw; ++s) {
            const int iw = iw0 + s * dw;
            if (iw >= 0 && iw < W) {
                const float v = plane[(size_t)ih * W + iw];
                best = v > best ? v : best;
            }
        }
    }
    return best;
}

__kernel void max_pool_rows(__global const float *restrict x, int H, int W, int OH, int OW,
                            int kh, int kw, int sh, int sw, int pt, int pl, int dh, int dw,
                            int NC, __global float *restrict y)
{
    const int oh = get_global_id(1);
    const int nc = get_global_id(2);
    if (oh >= OH || nc >= NC)
        return;
    __global const float *plane = x + (size_t)nc * H * W;
    __global float *dst = y + ((size_t)nc * OH + oh) * OW;
    const int ih0 = oh * sh - pt;
    int ow = 0;
    for (; ow + 8 <= OW && sw <= 2; ow += 8) {
        const int iw0 = ow * sw - pl;
        if (iw0 < 0) {  // the left edge: lane by lane
            for (int j = 0; j < 8; ++j)
                dst[ow + j] = pool_max1(plane, H, W, ih0, iw0 + j * sw, kh, kw, dh, dw);
            continue;
        }
        if (iw0 + (sw == 1 ? 8 : 16) + (kw - 1) * dw > W)
            break;  // the right edge: lane by lane from here
        float8 best = (float8)(-INFINITY);
        for (int r = 0; r < kh; ++r) {
            const int ih = ih0 + r * dh;
            if (ih < 0 || ih >= H)
                continue;
            __global const float *row = plane + (size_t)ih * W + iw0;
            for (int s = 0; s < kw; ++s) {
                const float8 v = pool_load8(row + s * dw, sw);
                best = select(best, v, v > best);
            }
        }
        STOREU8(best, dst + ow);
    }
    for (; ow < OW; ++ow)
        dst[ow] = pool_max1(plane, H, W, ih0, ow * sw - pl, kh, kw, dh, dw);
}

__kernel void avg_pool_rows(__global const float *restrict x, int H, int W, int OH, int OW,
                            int kh, int kw, int sh, int sw, int pt, int pl, int pb, int pr,
                            int include_pad, int NC, __global float *restrict y)
{
    const int oh = get_global_id(1);
    const int nc = get_global_id(2);
    if (oh >= OH || nc >= NC)
        return;
    __global const float *plane = x + (size_t)nc * H * W;
    __global float *dst = y + ((size_t)nc * OH + oh) * OW;
    const int ih0 = oh * sh - pt;
    const int rows = include_pad ? pool_taps_inside(ih0, kh, 1, -pt, H + pb)
                                 : pool_taps_inside(ih0, kh, 1, 0, H);
    int ow = 0;
    for (; ow + 8 <= OW && sw <= 2; ow += 8) {
        const int iw0 = ow * sw - pl;
        if (iw0 < 0) {  // the left edge: lane by lane
            for (int j = 0; j < 8; ++j) {
                const int iwj = iw0 + j * sw;
                float sum = 0.0f;
                for (int r = 0; r < kh; ++r) {
                    const int ih = ih0 + r;
                    if (ih < 0 || ih >= H)
                        continue;
                    for (int s = 0; s < kw; ++s) {
                        const int iw = iwj + s;
                        if (iw >= 0 && iw < W)
                            sum += plane[(size_t)ih * W + iw];
                    }
                }
                const int cols = include_pad ? pool_taps_inside(iwj, kw, 1, -pl, W + pr)
                                             : pool_taps_inside(iwj, kw, 1, 0, W);
                dst[ow + j] = sum / (float)(rows * cols);
            }
            continue;
        }
        if (iw0 + (sw == 1 ? 8 : 16) + kw - 1 > W)
            break;  // the right edge: lane by lane from here
        float8 sum = (float8)(0.0f);
        for (int r = 0; r < kh; ++r) {
            const int ih = ih0 + r;
            if (ih < 0 || ih >= H)
                continue;
            __global const float *row = plane + (size_t)ih * W + iw0;
            for (int s = 0; s < kw; ++s)
                sum += pool_load8(row + s, sw);
        }
        // every tap of the block is inside the row: kw columns each
        STOREU8(sum / (float)(rows * kw), dst + ow);
    }
    for (; ow < OW; ++ow) {
        const int iw0 = ow * sw - pl;
        float sum = 0.0f;
        for (int r = 0; r < kh; ++r) {
            const int ih = ih0 + r;
            if (ih < 0 || ih >= H)
                continue;
            for (int s = 0; s < kw; ++s) {
                const int iw = iw0 + s;
                if (iw >= 0 && iw < W)
                    sum += plane[(size_t)ih * W + iw];
            }
        }
        const int cols = include_pad ? pool_taps_inside(iw0, kw, 1, -pl, W + pr)
                                     : pool_taps_inside(iw0, kw, 1, 0, W);
        dst[ow] = sum / (float)(rows * cols);
    }
}

// One plane per work-item (work-items (1, N * C), work-groups (1, 16)): eight partial
// sums as a float8 over the plane's whole blocks, then the tail.
__kernel void global_avg_pool8(__global const float *restrict x, int HW, int NC,
                               __global float *restrict y)
{
    const int nc = get_global_id(1);
    if (nc >= NC)
        return;
    __global const float *plane = x + (size_t)nc * HW;
    float8 acc = (float8)(0.0f);
    int i = 0;
    for (; i + 8 <= HW; i += 8)
        acc += LOADU8(plane + i);
    float sum = ((acc.s0 + acc.s1) + (acc.s2 + acc.s3)) + ((acc.s4 + acc.s5) + (acc.s6 + acc.s7));
    for (; i < HW; ++i)
        sum += plane[i];
    y[nc] = sum / (float)HW;
}
