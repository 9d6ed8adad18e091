// Zero padding of NCHW planes, once per conv, so that the kernels reading the result
// (depthwise.cl, conv.cl's im2col_padded) need no bounds checks. Appended to both
// programs' sources.

// xp[plane][ih][iw] = x[plane][ih - pt][iw - pl] inside, 0 in the border.
__kernel void pad_planes(__global const float *restrict x, int H, int W, int HP, int WP,
                         int pt, int pl, int planes, __global float *restrict xp)
{
    const int iw = get_global_id(0);
    const int ih = get_global_id(1);
    const int plane = get_global_id(2);
    if (iw >= WP || ih >= HP || plane >= planes)
        return;
    const int h = ih - pt, w = iw - pl;
    xp[((size_t)plane * HP + ih) * WP + iw] =
        (h >= 0 && h < H && w >= 0 && w < W) ? x[((size_t)plane * H + h) * W + w] : 0.0f;
}
