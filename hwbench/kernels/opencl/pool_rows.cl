// Pooling on CPUs, NCHW float32: one work-item per output row (work-items (1, OH, N * C),
// work-groups (1, 16, 1)), eight outputs at a time as float8 (horizontal stride 1:
// unaligned float8 loads, vec8.cl; 2: two loads and their even lanes); a block at the
// row's edges reads a zero- or -inf-filled copy of its span (pool_segment), so narrow
// rows (14, 7) vectorize too. PoCL ran one output per work-item (pool.cl) several times
// slower. PoCL 3.0 calls select(), fmax() and min() out of line: compares and ?: here.
// Padding taps never win a max and are left out of an average's sum; the average's
// divisor is pool.cl's (taps inside [lo, hi) per axis). NaN is never selected by a max.
// The lane-by-lane window loops: pool_window.cl (prepended by the host).

inline float8 pool_load8(__global const float *p, int sw)
{
    if (sw == 1)
        return LOADU8(p);
    const float8 a = LOADU8(p), b = LOADU8(p + 8);
    return (float8)(a.s0, a.s2, a.s4, a.s6, b.s0, b.s2, b.s4, b.s6);
}

// An edge block's row, copied: seg[t] = row[iw0 + t] for t < n, `fill` outside [0, W)
// (padding: -inf for a max, 0 for a sum), so that the block still runs as float8.
#define POOL_SEG 48
inline void pool_segment(__global const float *row, int iw0, int n, int W, float fill,
                         float *seg)
{
    for (int t = 0; t < n; ++t) {
        const int iw = iw0 + t;
        seg[t] = (iw >= 0 && iw < W) ? row[iw] : fill;
    }
}

inline float8 pool_seg8(const float *p, int sw)
{
    if (sw == 1)
        return (float8)(p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7]);
    return (float8)(p[0], p[2], p[4], p[6], p[8], p[10], p[12], p[14]);
}

// The first `lanes` of v to dst (a row's last, partial block).
inline void pool_store(float8 v, __global float *dst, int lanes)
{
    if (lanes == 8) {
        STOREU8(v, dst);
        return;
    }
    float t[8];
    vstore8(v, 0, t);
    for (int j = 0; j < lanes; ++j)
        dst[j] = t[j];
}

// Blocks read [iw0, iw0 + n) of each window row, n = (8 or 16) + (kw - 1) * dw: in place
// when that lies inside the row, else through pool_segment; horizontal strides past 2
// (or spans past POOL_SEG) lane by lane.
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
    const int n = (sw == 1 ? 8 : 16) + (kw - 1) * dw;
    const int vec = sw <= 2 && n <= POOL_SEG;
    for (int ow = 0; ow < OW; ow += 8) {
        const int iw0 = ow * sw - pl;
        const int lanes = OW - ow < 8 ? OW - ow : 8;
        if (!vec) {
            for (int j = 0; j < lanes; ++j)
                dst[ow + j] = pool_window_max(plane, H, W, ih0, iw0 + j * sw, kh, kw,
                                              dh, dw);
            continue;
        }
        const int inside = iw0 >= 0 && iw0 + n <= W;
        float8 best = (float8)(-INFINITY);
        for (int r = 0; r < kh; ++r) {
            const int ih = ih0 + r * dh;
            if (ih < 0 || ih >= H)
                continue;
            __global const float *row = plane + (size_t)ih * W;
            if (inside) {
                for (int s = 0; s < kw; ++s) {
                    const float8 v = pool_load8(row + iw0 + s * dw, sw);
                    best = v > best ? v : best;
                }
            } else {
                float seg[POOL_SEG];
                pool_segment(row, iw0, n, W, -INFINITY, seg);
                for (int s = 0; s < kw; ++s) {
                    const float8 v = pool_seg8(seg + s * dw, sw);
                    best = v > best ? v : best;
                }
            }
        }
        pool_store(best, dst + ow, lanes);
    }
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
    const int rows = include_pad ? pool_taps_inside(ih0, kh, -pt, H + pb)
                                 : pool_taps_inside(ih0, kh, 0, H);
    const int lo = include_pad ? -pl : 0, hi = include_pad ? W + pr : W;
    const int n = (sw == 1 ? 8 : 16) + kw - 1;
    const int vec = sw <= 2 && n <= POOL_SEG;
    for (int ow = 0; ow < OW; ow += 8) {
        const int iw0 = ow * sw - pl;
        const int lanes = OW - ow < 8 ? OW - ow : 8;
        if (!vec) {
            for (int j = 0; j < lanes; ++j) {
                const int iwj = iw0 + j * sw;
                const float sum = pool_window_sum(plane, H, W, ih0, iwj, kh, kw);
                dst[ow + j] = sum / (float)(rows * pool_taps_inside(iwj, kw, lo, hi));
            }
            continue;
        }
        const int inside = iw0 >= 0 && iw0 + n <= W;
        float8 sum = (float8)(0.0f);
        for (int r = 0; r < kh; ++r) {
            const int ih = ih0 + r;
            if (ih < 0 || ih >= H)
                continue;
            __global const float *row = plane + (size_t)ih * W;
            if (inside) {
                for (int s = 0; s < kw; ++s)
                    sum += pool_load8(row + iw0 + s, sw);
            } else {  // padding adds 0.0f: the same sums as skipping it
                float seg[POOL_SEG];
                pool_segment(row, iw0, n, W, 0.0f, seg);
                for (int s = 0; s < kw; ++s)
                    sum += pool_seg8(seg + s, sw);
            }
        }
        float8 count = (float8)((float)(rows * kw));  // every tap inside the row
        if (!inside) {  // per lane: the taps of [first, first + kw) inside [lo, hi)
            const float8 first = (float8)((float)iw0)
                + (float8)(0.0f, 1.0f, 2.0f, 3.0f, 4.0f, 5.0f, 6.0f, 7.0f) * (float)sw;
            const float8 last = first + (float)kw;
            const float8 a = first > (float8)((float)lo) ? first : (float8)((float)lo);
            const float8 b = last < (float8)((float)hi) ? last : (float8)((float)hi);
            const float8 cols = b > a ? b - a : (float8)(0.0f);
            count = cols * (float)rows;
        }
        pool_store(sum / count, dst + ow, lanes);
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

// Pooling over planes padded first (pad.cl's pad_planes: PAD_FILL -INFINITY for a max, 0 for
// a sum) with columns to spare on the right, so that every block's span lies in its row:
// no edge blocks (pool_segment's copies), which were all the blocks of Inception's 14- and
// 28-wide rows. ih0 and iw0 count in the padded planes; the average's divisor is the one
// above, from the unpadded geometry (H, W, pt, pl, pb, pr). The same sums and maxima as
// max_pool_rows / avg_pool_rows (a padding tap adds 0.0f or loses the max).
__kernel void pool_padded(__global const float *restrict xp, int HP, int WP, int OH, int OW,
                          int kh, int kw, int sh, int sw, int dh, int dw, int avg, int H,
                          int W, int pt, int pl, int pb, int pr, int include_pad, int NC,
                          __global float *restrict y)
{
    const int oh = get_global_id(1);
    const int nc = get_global_id(2);
    if (oh >= OH || nc >= NC)
        return;
    __global const float *plane = xp + ((size_t)nc * HP + oh * sh) * WP;
    __global float *dst = y + ((size_t)nc * OH + oh) * OW;
    const int rows = include_pad ? pool_taps_inside(oh * sh - pt, kh, -pt, H + pb)
                                 : pool_taps_inside(oh * sh - pt, kh, 0, H);
    const int lo = include_pad ? -pl : 0, hi = include_pad ? W + pr : W;
    for (int ow = 0; ow < OW; ow += 8) {
        const int lanes = OW - ow < 8 ? OW - ow : 8;
        __global const float *at = plane + ow * sw;
        float8 acc;
        if (avg) {
            acc = (float8)(0.0f);
            for (int r = 0; r < kh; ++r)
                for (int s = 0; s < kw; ++s)
                    acc += pool_load8(at + (size_t)r * dh * WP + s * dw, sw);
            const float8 first = (float8)((float)(ow * sw - pl))
                + (float8)(0.0f, 1.0f, 2.0f, 3.0f, 4.0f, 5.0f, 6.0f, 7.0f) * (float)sw;
            const float8 last = first + (float)kw;
            const float8 a = first > (float8)((float)lo) ? first : (float8)((float)lo);
            const float8 b = last < (float8)((float)hi) ? last : (float8)((float)hi);
            acc = acc / ((b > a ? b - a : (float8)(0.0f)) * (float)rows);
        } else {
            acc = (float8)(-INFINITY);
            for (int r = 0; r < kh; ++r)
                for (int s = 0; s < kw; ++s) {
                    const float8 v = pool_load8(at + (size_t)r * dh * WP + s * dw, sw);
                    acc = v > acc ? v : acc;
                }
        }
        pool_store(acc, dst + ow, lanes);
    }
}
