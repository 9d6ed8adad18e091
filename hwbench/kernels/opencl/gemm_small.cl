// Small and skinny float32 GEMMs in one launch, no packing: C = op(A) @ op(B) (+ bias),
// C contiguous m x n. Each work-item computes ROWS rows (a -D define) by eight columns as
// float8 accumulators, reading A and B in place through (row, column) strides: B's
// eight columns are one vload8 when its columns are contiguous (b_cs == 1), eight loads
// otherwise (a transposed weight). With ROWS = m (m <= 8) every B element is read once:
// a GEMV-like pass over the weights.
// Work-items: (n / 8 rounded up, m / ROWS rounded up). The loads in the K loops are
// vec8.cl's (prepended by the host): PoCL 3.0 calls vload8 out of line.

#ifndef ROWS
#define ROWS 4
#endif
// The stored value's activation (activation.cl's code, prepended by the host; 0 none): a
// squeeze-and-excitation block's 1x1 conv and its SiLU / ReLU / Sigmoid in one launch.
#ifndef ACT
#define ACT 0
#endif
#if ACT
#define ACT_STORE(v) ACTIVATE(float, v, ACT)
#else
#define ACT_STORE(v)
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
            const float8 bv = LOADU8(bj + (size_t)k * b_rs);
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
            ACT_STORE(v);
            C[(size_t)i * N + j0 + c] = v;
        }
    }
}

// The same product when A's rows and B's columns are both contiguous along k (a_cs = 1,
// b_rs = 1: ONNX Gemm's transB weights): DOT_COLS output columns per work-item, ROWS rows,
// each a dot product of eight-float slices, summed across the lanes at the end. The
// columns' K loops run interleaved, DOT_COLS weight rows streamed at once: one at a time
// read AlexNet's 151 MB weight at a fifth of MKL's rate (memory-level parallelism); each
// column's sum keeps its order. Columns past N repeat the last one (in bounds) and are
// not stored. Work-items: (n / DOT_COLS rounded up, m / ROWS rounded up).
#define DOT_COLS 8
#define DOT_FOR(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7)
#define DOT_ROW(c) __global const float *b##c = B + (size_t)min(j0 + (c), N - 1) * b_cs;
#define DOT_ZERO(c) float8 acc##c = (float8)(0.0f);
#define DOT_FMA(c) acc##c += a * LOADU8(b##c + k);
#define DOT_STORE(c) if (j0 + (c) < N) { \
    const float4 h = acc##c.lo + acc##c.hi; \
    float v = (h.x + h.y) + (h.z + h.w); \
    for (int k = k8; k < K; ++k) \
        v += ai[k] * b##c[k]; \
    if (has_bias) \
        v += bias[(size_t)i * bias_rs + (size_t)(j0 + (c)) * bias_cs]; \
    ACT_STORE(v); \
    C[(size_t)i * N + j0 + (c)] = v; }
__kernel void gemm_small_dot(int M, int N, int K, __global const float *restrict A, int a_rs,
                             __global const float *restrict B, int b_cs,
                             __global float *restrict C, __global const float *restrict bias,
                             int has_bias, int bias_rs, int bias_cs)
{
    const int j0 = get_global_id(0) * DOT_COLS;
    const int i0 = get_global_id(1) * ROWS;
    if (j0 >= N || i0 >= M)
        return;
    const int rows = min(ROWS, M - i0);
    DOT_FOR(DOT_ROW)
    const int k8 = K / 8 * 8;
    for (int r = 0; r < rows; ++r) {
        __global const float *ai = A + (size_t)(i0 + r) * a_rs;
        DOT_FOR(DOT_ZERO)
        for (int k = 0; k < k8; k += 8) {
            const float8 a = LOADU8(ai + k);
            DOT_FOR(DOT_FMA)
        }
        const int i = i0 + r;
        DOT_FOR(DOT_STORE)
    }
}
