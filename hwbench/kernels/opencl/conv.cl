// Convolution lowered to GEMM (the talk's Op layer).

#define MIN(a, b) ((a) < (b) ? (a) : (b))  // PoCL calls its min() out of line

// im2col of an NCHW input for group g = get_global_id(2): row k = (c, r, s) of the
// (C/g * R * S) x (N * OH * OW) column matrix, column j = (n, oh, ow). Written either
// row-major with leading dimension ld (packed16 == 0) or straight into the 16-column
// panels the packed SGEMM reads (packed16 != 0: [panel][k][16], panels of
// panel_stride floats), which saves packing B.
__kernel void im2col(__global const float *restrict x, int C, int H, int W, int cg, int R,
                     int S, int OH, int OW, int NOHW, int sh, int sw, int pt, int pl, int dh,
                     int dw, __global float *restrict cols, int ld, int group_stride,
                     int packed16, int rows)
{
    const int j = get_global_id(0);
    const int k = get_global_id(1);
    const int g = get_global_id(2);
    if (j >= ld || k >= rows)
        return;
    float v = 0.0f;
    if (j < NOHW && k < cg * R * S) {
        const int s = k % S;
        const int r = (k / S) % R;
        const int c = g * cg + k / (R * S);
        const int ow = j % OW;
        const int oh = (j / OW) % OH;
        const int n = j / (OW * OH);
        const int ih = oh * sh - pt + r * dh;
        const int iw = ow * sw - pl + s * dw;
        if (ih >= 0 && ih < H && iw >= 0 && iw < W)
            v = x[(((size_t)n * C + c) * H + ih) * W + iw];
    }
    size_t index;
    if (packed16)
        index = (size_t)g * group_stride + ((size_t)(j / 16) * rows + k) * 16 + j % 16;
    else
        index = (size_t)g * group_stride + (size_t)k * ld + j;
    cols[index] = v;
}

// im2col straight into the packed SGEMM's 16-column panels (the CPU form: [panel][k][16],
// panels of group_stride floats) over an input already padded with zeros (pad_planes,
// pad.cl: planes of HP x WP holding the conv's padding, or the input itself when it has
// none), so nothing is bounds-checked. One work-item per (output row (n, oh), row k,
// group): the row's OW columns j = (n * OH + oh) * OW + ow are copied in chunks that stay
// within one panel (a contiguous loop at unit stride), the divisions done once per row;
// the host passes a 1x1 unit-stride unpadded conv's contiguous planes as one row each
// (OH = HP = 1). One more work-item row (n * OH) zeroes the columns past NOHW. Measured on
// PoCL (2-core Zen 4, busy) against a work-item per 16 columns (divisions per 16, bounds
// checks): ResNet-50's 3x3 at 64x56x56 1.23 -> 0.50 ms, ZFNet's 7x7/2 2.03 -> 1.00 ms, a
// 3x3/2 at 2x64x112x112 12.5 -> 2.4 ms; the element-wise form before both: 2.4 ms, 4.4 ms.
__kernel void im2col_rows(__global const float *restrict xp, int C, int HP, int WP, int cg,
                          int R, int S, int OH, int OW, int NOHW, int sh, int sw, int dh,
                          int dw, __global float *restrict cols, int panels,
                          int group_stride, int rows)
{
    const int row = get_global_id(0);
    const int k = get_global_id(1);
    const int g = get_global_id(2);
    const int out_rows = NOHW / OW;
    if (row > out_rows || k >= rows)
        return;
    __global float *dst = cols + (size_t)g * group_stride + (size_t)k * 16;
    const size_t panel_stride = (size_t)rows * 16;
    if (row == out_rows) {
        for (int j = NOHW; j < panels * 16; ++j)
            dst[(size_t)(j >> 4) * panel_stride + (j & 15)] = 0.0f;
        return;
    }
    const int n = row / OH, oh = row % OH;
    const int s = k % S, r = (k / S) % R, c = g * cg + k / (R * S);
    __global const float *src = xp + (((size_t)n * C + c) * HP + oh * sh + r * dh) * WP
                                + s * dw;
    int j = row * OW;
    for (int ow = 0; ow < OW;) {
        const int len = MIN(16 - (j & 15), OW - ow);
        __global float *d = dst + (size_t)(j >> 4) * panel_stride + (j & 15);
        if (sw == 1) {
            __global const float *q = src + ow;
            for (int t = 0; t < len; ++t)
                d[t] = q[t];
        } else {
            __global const float *q = src + ow * sw;
            for (int t = 0; t < len; ++t)
                d[t] = q[t * sw];
        }
        ow += len;
        j += len;
    }
}
