// Convolution lowered to GEMM (the talk's Op layer) and the GEMM epilogues.

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

// im2col straight into the packed SGEMM's 16-column panels, the CPU form: one work-item
// per (panel, row k, group) writes its 16 consecutive floats, with (c, r, s) divided out once
// and (n, oh, ow) stepped along the row. The per-element form above spends its time in
// integer divisions on a CPU (measured on PoCL: 10.7 ms of a 13.2 ms ResNet-50 3x3 conv).
__kernel void im2col_panels(__global const float *restrict x, int C, int H, int W, int cg,
                            int R, int S, int OH, int OW, int NOHW, int sh, int sw, int pt,
                            int pl, int dh, int dw, __global float *restrict cols, int panels,
                            int group_stride, int rows)
{
    const int panel = get_global_id(0);
    const int k = get_global_id(1);
    const int g = get_global_id(2);
    if (panel >= panels || k >= rows)
        return;
    __global float *dst = cols + (size_t)g * group_stride + ((size_t)panel * rows + k) * 16;
    int j = panel * 16;
    if (k >= cg * R * S || j >= NOHW) {
        for (int i = 0; i < 16; ++i)
            dst[i] = 0.0f;
        return;
    }
    const int s = k % S;
    const int r = (k / S) % R;
    const int c = g * cg + k / (R * S);
    int ow = j % OW;
    int oh = (j / OW) % OH;
    int n = j / (OW * OH);
    const int dr = r * dh - pt;
    const int ds = s * dw - pl;
    // The common case: 16 consecutive inputs, within one in-bounds row of a stride-1 conv,
    // or within one image of an unpadded stride-1 1x1 conv (whose planes are contiguous).
    const int ih0 = oh * sh + dr;
    const int iw0 = ow * sw + ds;
    const int in_row = sw == 1 && ow + 16 <= OW && ih0 >= 0 && ih0 < H && iw0 >= 0 &&
                       iw0 + 16 <= W;
    const int in_plane = R == 1 && S == 1 && sh == 1 && sw == 1 && pt == 0 && pl == 0 &&
                         OH == H && OW == W && (j % (OH * OW)) + 16 <= OH * OW;
    if (j + 16 <= NOHW && (in_row || in_plane)) {
        __global const float *src = x + (((size_t)n * C + c) * H + ih0) * W + iw0;
        for (int i = 0; i < 16; ++i)
            dst[i] = src[i];
        return;
    }
    for (int i = 0; i < 16; ++i, ++j) {
        const int ih = oh * sh + dr;
        const int iw = ow * sw + ds;
        float v = 0.0f;
        if (j < NOHW && ih >= 0 && ih < H && iw >= 0 && iw < W)
            v = x[(((size_t)n * C + c) * H + ih) * W + iw];
        dst[i] = v;
        if (++ow == OW) {
            ow = 0;
            if (++oh == OH) {
                oh = 0;
                ++n;
            }
        }
    }
}
