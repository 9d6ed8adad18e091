// The upsampling family: ConvTranspose as the device GEMM plus col2im, Resize as one
// pass per resized axis over spec's tables.

// ConvTranspose lowered to GEMM + col2im (the host twin: kernels/conv_transpose_lowering.py).
// x (n, c, hw) -> xg (c, n, hw): each group's GEMM operand B, (c/g) x (n·hw), contiguous.
__kernel void pack_channels(int total, int n, int c, int hw, __global const float *restrict x,
                            __global float *restrict xg)
{
    const int i = get_global_id(0);
    if (i >= total)
        return;
    const int q = i % hw, ni = (i / hw) % n, ci = i / (hw * n);
    xg[i] = x[((long)ni * c + ci) * hw + q];
}

// cols[g] (K/g·R·S rows, ld apart; groups gstride apart) = W_gᵀ · xg[g], one column per
// input pixel; each output value gathers the taps that reach it, plus the bias.
// meta = [n, c, h, w, k, r, s, stride_h, stride_w, pad_top, pad_left, dil_h, dil_w,
//         groups, out_h, out_w]
__kernel void col2im_transpose(int total, __global const int *restrict meta,
                               __global const float *restrict cols, int ld, int gstride,
                               __global const float *restrict bias, int has_bias,
                               __global float *restrict out)
{
    const int i = get_global_id(0);
    if (i >= total)
        return;
    const int h = meta[2], wd = meta[3], k = meta[4], r = meta[5], s = meta[6];
    const int sh = meta[7], sw = meta[8], pt = meta[9], pl = meta[10], dh = meta[11],
              dw = meta[12], groups = meta[13], oh = meta[14], ow = meta[15];
    const int ox = i % ow, oy = (i / ow) % oh, ko = (i / (ow * oh)) % k, ni = i / (ow * oh * k);
    const int kg = k / groups, g = ko / kg, kk = ko % kg;
    const int fy = oy + pt, fx = ox + pl;  // the position in the uncropped output
    __global const float *cg = cols + (long)g * gstride + (long)ni * h * wd;
    float acc = 0.0f;
    for (int ky = 0; ky < r; ++ky) {
        const int ty = fy - ky * dh;
        if (ty < 0 || ty % sh)
            continue;
        const int iy = ty / sh;
        if (iy >= h)
            continue;
        for (int kx = 0; kx < s; ++kx) {
            const int tx = fx - kx * dw;
            if (tx < 0 || tx % sw)
                continue;
            const int ix = tx / sw;
            if (ix >= wd)
                continue;
            acc += cg[(long)((kk * r + ky) * s + kx) * ld + iy * wd + ix];
        }
    }
    out[i] = has_bias ? acc + bias[ko] : acc;
}

// out[o, j, q] = sum_t weight[j, t] * x[o, index[j, t], q] over an axis of in_len values
// (inner: the product of the later axes), or ev where outside[j] is set.
__kernel void resize_axis(int total, int out_len, int in_len, int inner, int taps,
                          __global const int *restrict index,
                          __global const float *restrict weight,
                          __global const int *restrict outside, int has_outside, float ev,
                          __global const float *restrict x, __global float *restrict out)
{
    const int i = get_global_id(0);
    if (i >= total)
        return;
    const int q = i % inner, j = (i / inner) % out_len, o = i / (inner * out_len);
    if (has_outside && outside[j]) {
        out[i] = ev;
        return;
    }
    __global const float *xo = x + (long)o * in_len * inner + q;
    float acc = 0.0f;
    for (int t = 0; t < taps; ++t)
        acc += weight[j * taps + t] * xo[(long)index[j * taps + t] * inner];
    out[i] = acc;
}

// resize_axis with one work-item per outer block o (out_len x inner outputs, j then q):
// on CPUs, where a work-item per output spent ~5 ns each in its index arithmetic (PoCL,
// BEGAN's 4x4 -> 8x8 at batch 8: 16384 outputs, 80 us). The same sums in the same order.
__kernel void resize_axis_rows(int outer, int out_len, int in_len, int inner, int taps,
                               __global const int *restrict index,
                               __global const float *restrict weight,
                               __global const int *restrict outside, int has_outside,
                               float ev, __global const float *restrict x,
                               __global float *restrict out)
{
    const int o = get_global_id(0);
    if (o >= outer)
        return;
    __global const float *xo = x + (long)o * in_len * inner;
    __global float *oo = out + (long)o * out_len * inner;
    for (int j = 0; j < out_len; ++j) {
        __global float *row = oo + (long)j * inner;
        if (has_outside && outside[j]) {
            for (int q = 0; q < inner; ++q)
                row[q] = ev;
            continue;
        }
        for (int q = 0; q < inner; ++q) {
            float acc = 0.0f;
            for (int t = 0; t < taps; ++t)
                acc += weight[j * taps + t] * xo[(long)index[j * taps + t] * inner + q];
            row[q] = acc;
        }
    }
}
