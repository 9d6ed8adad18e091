// ONNX pooling on NCHW float32; one work-item per output element (ow, oh, n * C + c).
// Padding taps are skipped: they never win a max; an average divides by the taps inside
// [lo, hi) per axis: the input, or the input plus explicit padding (count_include_pad);
// ceil mode's overhang past the padding never counts.

__kernel void max_pool(__global const float *restrict x, int H, int W, int OH, int OW,
                       int kh, int kw, int sh, int sw, int pt, int pl, int dh, int dw, int NC,
                       __global float *restrict y)
{
    const int ow = get_global_id(0);
    const int oh = get_global_id(1);
    const int nc = get_global_id(2);
    if (ow >= OW || oh >= OH || nc >= NC)
        return;
    __global const float *plane = x + (size_t)nc * H * W;
    float best = -INFINITY;
    for (int r = 0; r < kh; ++r) {
        const int ih = oh * sh - pt + r * dh;
        if (ih < 0 || ih >= H)
            continue;
        for (int s = 0; s < kw; ++s) {
            const int iw = ow * sw - pl + s * dw;
            if (iw >= 0 && iw < W)
                best = fmax(best, plane[ih * W + iw]);
        }
    }
    y[((size_t)nc * OH + oh) * OW + ow] = best;
}

inline int taps_inside(int first, int k, int lo, int hi)
{
    int count = 0;
    for (int t = 0; t < k; ++t)
        count += (first + t >= lo && first + t < hi);
    return count;
}

__kernel void avg_pool(__global const float *restrict x, int H, int W, int OH, int OW, int kh,
                       int kw, int sh, int sw, int pt, int pl, int pb, int pr,
                       int include_pad, int NC, __global float *restrict y)
{
    const int ow = get_global_id(0);
    const int oh = get_global_id(1);
    const int nc = get_global_id(2);
    if (ow >= OW || oh >= OH || nc >= NC)
        return;
    __global const float *plane = x + (size_t)nc * H * W;
    const int ih0 = oh * sh - pt, iw0 = ow * sw - pl;
    float sum = 0.0f;
    for (int r = 0; r < kh; ++r) {
        const int ih = ih0 + r;
        if (ih < 0 || ih >= H)
            continue;
        for (int s = 0; s < kw; ++s) {
            const int iw = iw0 + s;
            if (iw >= 0 && iw < W)
                sum += plane[ih * W + iw];
        }
    }
    const int count = include_pad
        ? taps_inside(ih0, kh, -pt, H + pb) * taps_inside(iw0, kw, -pl, W + pr)
        : taps_inside(ih0, kh, 0, H) * taps_inside(iw0, kw, 0, W);
    y[((size_t)nc * OH + oh) * OW + ow] = sum / (float)count;
}

__kernel void global_avg_pool(__global const float *restrict x, int HW, int NC,
                              __global float *restrict y)
{
    const int nc = get_global_id(0);
    if (nc >= NC)
        return;
    __global const float *plane = x + (size_t)nc * HW;
    float sum = 0.0f;
    for (int i = 0; i < HW; ++i)
        sum += plane[i];
    y[nc] = sum / (float)HW;
}
