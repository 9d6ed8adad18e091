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
// panels of group_stride floats), one work-item per (panel, row k, group), over an
// input already padded with zeros (pad_planes, pad.cl: planes of
// HP x WP holding the conv's padding, or the input itself when it has none): no bounds
// checks, no divisions per element. The panel's 16 columns go in runs of one output row,
// each a strided copy (a contiguous one at unit stride, which LLVM vectorizes); one run
// when 16 pixels lie in one row, or in one image of a conv whose rows are contiguous
// (1x1, unit strides, unpadded). Measured on PoCL (2-core Zen 4): ResNet-50's 3x3 conv at
// 64x56x56 2.4 -> ... ms against the former bounds-checked form (per-element
// divisions in its slow path, which took the panels crossing a row or the padding).
__kernel void im2col_padded(__global const float *restrict xp, int C, int HP, int WP, int cg,
                            int R, int S, int OH, int OW, int NOHW, int sh, int sw, int dh,
                            int dw, __global float *restrict cols, int panels,
                            int group_stride, int rows)
{
    const int panel = get_global_id(0);
    const int k = get_global_id(1);
    const int g = get_global_id(2);
    if (panel >= panels || k >= rows)
        return;
    __global float *dst = cols + (size_t)g * group_stride + ((size_t)panel * rows + k) * 16;
    const int j = panel * 16;
    if (k >= cg * R * S || j >= NOHW) {
        for (int i = 0; i < 16; ++i)
            dst[i] = 0.0f;
        return;
    }
    const int s = k % S;
    const int r = (k / S) % R;
    const int c = g * cg + k / (R * S);
    const int pix = j % (OH * OW);
    int n = j / (OH * OW);
    int oh = pix / OW;
    int ow = pix % OW;
    // Start of output row oh's taps: input row oh * sh + r * dh, column s * dw.
    __global const float *src = xp + (((size_t)n * C + c) * HP + oh * sh + r * dh) * WP
                                + s * dw;
    const int contiguous_rows = sw == 1 && sh == 1 && WP == OW;
    if (j + 16 <= NOHW && sw == 1 && (ow + 16 <= OW || (contiguous_rows &&
                                                        pix + 16 <= OH * OW))) {
        for (int i = 0; i < 16; ++i)
            dst[i] = src[ow + i];
        return;
    }
    int i = 0;
    while (i < 16) {
        const int run = MIN(MIN(16 - i, OW - ow), NOHW - (j + i));
        if (run <= 0) {  // past the last column
            for (; i < 16; ++i)
                dst[i] = 0.0f;
            break;
        }
        for (int t = 0; t < run; ++t)
            dst[i + t] = src[(ow + t) * sw];
        i += run;
        ow += run;
        if (ow == OW) {
            ow = 0;
            if (++oh == OH) {
                oh = 0;
                ++n;
                src = xp + (((size_t)n * C + c) * HP + r * dh) * WP + s * dw;
            } else {
                src += (size_t)sh * WP;
            }
        }
    }
}
