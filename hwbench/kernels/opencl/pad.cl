// Zero padding of NCHW planes, once per conv, so that the kernels reading the result
// (depthwise.cl, conv.cl's im2col_padded) need no bounds checks. Appended to both
// programs' sources.

#ifndef PAD_ROWS
#define PAD_ROWS 0
#endif
#ifndef PAD_FILL  // what the border holds (pool_rows.cl's max pooling: -INFINITY)
#define PAD_FILL 0.0f
#endif

// xp[plane][ih][iw] = x[plane][ih - pt][iw - pl] inside, PAD_FILL in the border. PAD_ROWS
// (CPUs): one work-item per row (dimension 0 of size 1), three plain loops that LLVM
// vectorizes; PoCL ran the element-per-work-item form scalar, a branch per element
// (measured on the 2-core Zen 4: MobileNet v2's 14 pads 8.9 -> ... ms). Otherwise (GPUs)
// one element each.
__kernel void pad_planes(__global const float *restrict x, int H, int W, int HP, int WP,
                         int pt, int pl, int planes, __global float *restrict xp)
{
#if PAD_ROWS
    const int ih = get_global_id(1);
    const int plane = get_global_id(2);
    if (ih >= HP || plane >= planes)
        return;
    __global float *dst = xp + ((size_t)plane * HP + ih) * WP;
    const int h = ih - pt;
    if (h < 0 || h >= H) {
        for (int i = 0; i < WP; ++i)
            dst[i] = PAD_FILL;
        return;
    }
    __global const float *src = x + ((size_t)plane * H + h) * W;
    for (int i = 0; i < pl; ++i)
        dst[i] = PAD_FILL;
    for (int i = 0; i < W; ++i)
        dst[pl + i] = src[i];
    for (int i = pl + W; i < WP; ++i)
        dst[i] = PAD_FILL;
#else
    const int iw = get_global_id(0);
    const int ih = get_global_id(1);
    const int plane = get_global_id(2);
    if (iw >= WP || ih >= HP || plane >= planes)
        return;
    const int h = ih - pt, w = iw - pl;
    xp[((size_t)plane * HP + ih) * WP + iw] =
        (h >= 0 && h < H && w >= 0 && w < W) ? x[((size_t)plane * H + h) * W + w] : PAD_FILL;
#endif
}
