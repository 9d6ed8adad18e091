// The window loops of one output that pool.cl (an output per work-item, GPUs) and
// pool_rows.cl's lane-by-lane fallback (CPUs) share: taps outside the H x W plane are
// skipped. Prepended to both programs' sources; guarded, so it may be included twice.
#ifndef POOL_WINDOW_CL
#define POOL_WINDOW_CL

// How many of the k taps first, first + 1, ... lie inside [lo, hi): an average's divisor
// along one axis (ONNX: the input, or the input plus explicit padding).
inline int pool_taps_inside(int first, int k, int lo, int hi)
{
    int count = 0;
    for (int t = 0; t < k; ++t)
        count += (first + t >= lo && first + t < hi);
    return count;
}

// The sum of the kh x kw window whose first tap is (ih0, iw0).
inline float pool_window_sum(__global const float *plane, int H, int W, int ih0, int iw0,
                             int kh, int kw)
{
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
    return sum;
}

// The maximum of a dilated window (-INFINITY when every tap is padding); a compare, not
// fmax() (PoCL 3.0 calls it out of line): NaN is never selected either way.
inline float pool_window_max(__global const float *plane, int H, int W, int ih0, int iw0,
                             int kh, int kw, int dh, int dw)
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
#endif
