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

// The grouped GEMM's (g, K/g, N * OH * OW) result, rows ldc apart and groups ldg apart,
// to NCHW, with the fused epilogue: relu?(acc + bias[k] + residual).
__kernel void col2output(__global const float *restrict acc, int K, int kg, int N, int OHW,
                         int ldc, int ldg, __global const float *restrict bias, int has_bias,
                         __global const float *restrict residual, int has_residual,
                         int relu, __global float *restrict out)
{
    const int p = get_global_id(0);
    const int k = get_global_id(1);
    const int n = get_global_id(2);
    if (p >= OHW || k >= K || n >= N)
        return;
    const int g = k / kg;
    float v = acc[(size_t)g * ldg + (size_t)(k % kg) * ldc + (size_t)n * OHW + p];
    const size_t o = ((size_t)n * K + k) * OHW + p;
    if (has_bias)
        v += bias[k];
    if (has_residual)
        v += residual[o];
    if (relu)
        v = fmax(v, 0.0f);
    out[o] = v;
}

// out[i][j] = acc[i * ldc + j] (+ bias[i * bias_rs + j * bias_cs]): a GEMM's result out of
// its padded scratch, with an ONNX-broadcast bias (strides 0 along broadcast axes).
__kernel void gemm_output(int M, int N, __global const float *restrict acc, int ldc,
                          __global const float *restrict bias, int has_bias, int bias_rs,
                          int bias_cs, __global float *restrict out)
{
    const int j = get_global_id(0);
    const int i = get_global_id(1);
    if (i >= M || j >= N)
        return;
    float v = acc[(size_t)i * ldc + j];
    if (has_bias)
        v += bias[(size_t)i * bias_rs + (size_t)j * bias_cs];
    out[(size_t)i * N + j] = v;
}
