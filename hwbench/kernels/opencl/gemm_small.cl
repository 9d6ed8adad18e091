// Small and skinny float32 GEMMs in one launch, no packing: C = op(A) @ op(B) (+ bias),
// C contiguous m x n. Each work-item computes ROWS rows (a -D define) by eight columns as
// float8 accumulators, reading A and B in place through (row, column) strides: B's
// eight columns are one vload8 when its columns are contiguous (b_cs == 1), eight loads
// otherwise (a transposed weight). With ROWS = m (m <= 8) every B element is read once:
// a GEMV-like pass over the weights.
// Work-items: (n / 8 rounded up, m / ROWS rounded up).

#ifndef ROWS
#define ROWS 4
#endif

__kernel void gemm_small(int M, int N, int K, __global const float *restrict A, int a_rs,
                         int a_cs, __global const float *restrict B, int b_rs, int b_cs,
                         __global float *restrict C, __global const float *restrict bias,
                         int has_bias, int bias_rs, int bias_cs)
{
    const int j0 = get_global_id(0) * 8;
    const int i0 = get_global_id(1) * ROWS;
    if (j0 >= N || i0 >= M)
        return;
    const int rows = min(ROWS, M - i0);
    const int cols = min(8, N - j0);
    float8 acc[ROWS];
    for (int r = 0; r < ROWS; ++r)
        acc[r] = (float8)(0.0f);
    __global const float *bj = B + (size_t)j0 * b_cs;
    __global const float *ai = A + (size_t)i0 * a_rs;
    if (cols == 8 && b_cs == 1) {
        for (int k = 0; k < K; ++k) {
            const float8 bv = vload8(0, bj + (size_t)k * b_rs);
            for (int r = 0; r < ROWS; ++r)
                if (r < rows)
                    acc[r] += ai[(size_t)r * a_rs + (size_t)k * a_cs] * bv;
        }
    } else {
        for (int k = 0; k < K; ++k) {
            float bk[8];
            for (int c = 0; c < 8; ++c)
                bk[c] = c < cols ? bj[(size_t)k * b_rs + (size_t)c * b_cs] : 0.0f;
            const float8 bv = vload8(0, bk);
            for (int r = 0; r < ROWS; ++r)
                if (r < rows)
                    acc[r] += ai[(size_t)r * a_rs + (size_t)k * a_cs] * bv;
        }
    }
    for (int r = 0; r < rows; ++r) {
        float out[8];
        vstore8(acc[r], 0, out);
        const int i = i0 + r;
        for (int c = 0; c < cols; ++c) {
            float v = out[c];
            if (has_bias)
                v += bias[(size_t)i * bias_rs + (size_t)(j0 + c) * bias_cs];
            C[(size_t)i * N + j0 + c] = v;
        }
    }
}

// The same product when A's rows and B's columns are both contiguous along k (a_cs = 1,
// b_rs = 1: ONNX Gemm's transB weights): one output column per work-item, ROWS rows,
// each a dot product of eight-float slices, summed across the lanes at the end.
// Work-items: (n, m / ROWS rounded up).
__kernel void gemm_small_dot(int M, int N, int K, __global const float *restrict A, int a_rs,
                             __global const float *restrict B, int b_cs,
                             __global float *restrict C, __global const float *restrict bias,
                             int has_bias, int bias_rs, int bias_cs)
{
    const int j = get_global_id(0);
    const int i0 = get_global_id(1) * ROWS;
    if (j >= N || i0 >= M)
        return;
    const int rows = min(ROWS, M - i0);
    __global const float *bj = B + (size_t)j * b_cs;
    const int k8 = K / 8 * 8;
    for (int r = 0; r < rows; ++r) {
        __global const float *ai = A + (size_t)(i0 + r) * a_rs;
        float8 acc = (float8)(0.0f);
        for (int k = 0; k < k8; k += 8)
            acc += vload8(0, ai + k) * vload8(0, bj + k);
        float4 h = acc.lo + acc.hi;
        float v = (h.x + h.y) + (h.z + h.w);
        for (int k = k8; k < K; ++k)
            v += ai[k] * bj[k];
        const int i = i0 + r;
        if (has_bias)
            v += bias[(size_t)i * bias_rs + (size_t)j * bias_cs];
        C[(size_t)i * N + j] = v;
    }
}
