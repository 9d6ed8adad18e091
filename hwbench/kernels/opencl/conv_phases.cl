// phase_split: a stride-2 convolution's input as its four phases, so that conv_implicit.cl
// (stride 1) computes it without a column matrix. Appended after gemm_packed.cl (MIN, MAX).
//
// Tap (r, s) of output pixel (oh, ow) reads padded input row 2 * oh + r, column 2 * ow + s:
// with r = 2 * r' + ph and s = 2 * s' + pw that is row oh + r', column ow + s' of phase
// (ph, pw), the padded input's rows and columns of that parity. So each phase plane is
// read like a stride-1 conv's input (16 output columns: 16 consecutive floats), and the
// conv's R * S taps per channel stay R * S taps (none zero, unlike a space-to-depth conv
// with a padded 2x2 kernel).
//
// xs[plane][ph][pw][i][j] = x[plane][2 * i + ph - pt][2 * j + pw - pl], zero outside x
// (the padding): HP2 x WP2 planes. One work-item per row (ph, i) and plane, a plain loop
// along it (PoCL runs element-per-work-item forms scalar).
__kernel void phase_split(__global const float *restrict x, int H, int W, int HP2, int WP2,
                          int pt, int pl, int planes, __global float *restrict xs)
{
    const int row = get_global_id(1);  // ph * HP2 + i
    const int plane = get_global_id(2);
    if (row >= 2 * HP2 || plane >= planes)
        return;
    const int ph = row / HP2, i = row - ph * HP2;
    const int h = 2 * i + ph - pt;
    for (int pw = 0; pw < 2; ++pw) {
        __global float *dst = xs + (((size_t)plane * 4 + ph * 2 + pw) * HP2 + i) * WP2;
        if (h < 0 || h >= H) {
            for (int j = 0; j < WP2; ++j)
                dst[j] = 0.0f;
            continue;
        }
        __global const float *src = x + ((size_t)plane * H + h) * W;
        for (int j = 0; j < WP2; ++j) {
            const int w = 2 * j + pw - pl;
            const float v = src[MIN(MAX(w, 0), W - 1)];  // (clamped: in bounds, masked)
            dst[j] = w >= 0 && w < W ? v : 0.0f;
        }
    }
}
