// ONNX pooling on NCHW float32; one work-item per output element (ow, oh, n * C + c).
// Padding taps are skipped: they never win a max; an average divides by the taps inside
// [lo, hi) per axis: the input, or the input plus explicit padding (count_include_pad);
// ceil mode's overhang past the padding never counts. The window loops: pool_window.cl
// (prepended by the host).

__kernel void max_pool(__global const float *restrict x, int H, int W, int OH, int OW,
                       int kh, int kw, int sh, int sw, int pt, int pl, int dh, int dw, int NC,
                       __global float *restrict y)
{
    const int ow = get_global_id(0);
    const int oh = get_global_id(1);
    const int nc = get_global_id(2);
    if (ow >= OW || oh >= OH || nc >= NC)
        return;
    y[((size_t)nc * OH + oh) * OW + ow] = pool_window_max(
        x + (size_t)nc * H * W, H, W, oh * sh - pt, ow * sw - pl, kh, kw, dh, dw);
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
    const int ih0 = oh * sh - pt, iw0 = ow * sw - pl;
    const float sum = pool_window_sum(x + (size_t)nc * H * W, H, W, ih0, iw0, kh, kw);
    const int count = include_pad
        ? pool_taps_inside(ih0, kh, -pt, H + pb) * pool_taps_inside(iw0, kw, -pl, W + pr)
        : pool_taps_inside(ih0, kh, 0, H) * pool_taps_inside(iw0, kw, 0, W);
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
