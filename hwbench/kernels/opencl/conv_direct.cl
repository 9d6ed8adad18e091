// Direct NCHW convolution, for convs whose lowering to GEMM wastes the GEMM's tile: a
// group with one to three output channels (depthwise convs) would be a GEMM with as many
// rows, padded to the tile's height, after a column matrix R*S times the input's size.
// Here each work-item computes one output value from the input in place.
//
// Work-items: (ow, oh, n * K + k); the launch rounds each dimension up to whole work-groups,
// so every index is checked.
__kernel void conv_direct(__global const float *restrict x, __global const float *restrict w,
                          int N, int C, int H, int W, int K, int cg, int kg, int R, int S,
                          int OH, int OW, int sh, int sw, int pt, int pl, int dh, int dw,
                          __global const float *restrict bias, int has_bias,
                          __global const float *restrict residual, int has_residual,
                          int act, __global float *restrict out)
{
    const int ow = get_global_id(0);
    const int oh = get_global_id(1);
    const int nk = get_global_id(2);
    if (ow >= OW || oh >= OH || nk >= N * K)
        return;
    const int k = nk % K;
    const int n = nk / K;
    const int c0 = (k / kg) * cg;
    const int ih0 = oh * sh - pt;
    const int iw0 = ow * sw - pl;
    float acc = 0.0f;
    for (int c = 0; c < cg; ++c) {
        __global const float *xc = x + ((size_t)n * C + c0 + c) * H * W;
        __global const float *wc = w + ((size_t)k * cg + c) * R * S;
        for (int r = 0; r < R; ++r) {
            const int ih = ih0 + r * dh;
            if (ih < 0 || ih >= H)
                continue;
            for (int s = 0; s < S; ++s) {
                const int iw = iw0 + s * dw;
                if (iw >= 0 && iw < W)
                    acc += xc[(size_t)ih * W + iw] * wc[r * S + s];
            }
        }
    }
    const size_t o = ((size_t)n * K + k) * OH * OW + (size_t)oh * OW + ow;
    if (has_bias)
        acc += bias[k];
    if (has_residual)
        acc += residual[o];
    ACTIVATE(float, acc, act);  // activation.cl, prepended by the host
    out[o] = acc;
}
