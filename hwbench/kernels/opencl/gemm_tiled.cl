// GEMM for GPUs: work-group tiles of C staged through local memory. INT8 picks the
// accumulator: 0 (default), SGEMM summing in float (kernel sgemm_tiled); 1, the exact
// int8 GEMM summing 4-wide dot products in 32-bit unsigned ints (kernel gemm_int8_tiled).
//
// A work-group of (TSN / WPTN) x (TSM / WPTM) work-items computes a TSM x TSN tile of C;
// each work-item a WPTM x WPTN block of it, in registers, strided by the work-group's
// extent so that neighbouring work-items touch neighbouring addresses. K advances
// TSK at a time: the work-group loads op(A)'s TSM x TSK and op(B)'s TSK x TSN slices
// into local memory (bounds-checked, zero past the edges), then every work-item reads
// them from there. Element (i, k) of op(A) sits at A[i * a_rs + k * a_cs] (a transpose
// swaps the strides), likewise B; group g = get_global_id(2) offsets A, B and C by
// g * a_bs, g * b_bs, g * c_bs.
//
// SGEMM: C = op(A) op(B) (+ bias[i * bias_rs + j * bias_cs]).
//
// int8: the operands are read raw (A_T, B_T: char or uchar); the tiles hold 4 consecutive
// k per element, so one step is a 4-wide dot product: cl_khr_integer_dot_product's dot()
// where the host found the extension (USE_DOT 1; 2: cl_arm_integer_dot_product_int8's
// arm_dot, which takes operands of one signedness), the portable 4-term sum otherwise.
// The raw products are summed in 32-bit *unsigned* arithmetic (it wraps; signed overflow
// would be undefined), then the zero points enter:
//     sum (a - za)(b - zb) = sum ab - zb * sum a - za * sum b + K * za * zb   (mod 2^32)
// with sum a per row and sum b per column from row_sums / col_sums. The true value fits
// an int32 (the host checks the bound), so the wrapped result is it. Not run on a GPU
// here: tested by forcing it on PoCL (CPU), where it is correct but slow (PoCL serializes
// work-items around barriers); the USE_DOT branches were never compiled on hardware with
// the extensions.

#ifndef INT8
#define INT8 0
#endif
#ifndef TSM
#define TSM 64
#endif
#ifndef TSN
#define TSN 64
#endif
#ifndef TSK
#if INT8
#define TSK 32
#else
#define TSK 16
#endif
#endif
#ifndef WPTM
#define WPTM 4
#endif
#ifndef WPTN
#define WPTN 4
#endif
#define RTSM (TSM / WPTM)
#define RTSN (TSN / WPTN)
#define THREADS (RTSM * RTSN)

#if INT8
#ifndef A_T
#define A_T uchar
#endif
#ifndef B_T
#define B_T char
#endif
#ifndef USE_DOT
#define USE_DOT 0
#endif
#if TSK % 4
#error "TSK must be a multiple of 4"
#endif
#define KV 4  // consecutive k per local-memory element
#define VEC4_(t) t##4
#define VEC4(t) VEC4_(t)
#define A_TILE VEC4(A_T)
#define B_TILE VEC4(B_T)
#define SUM_T uint
#define GEMM_TILED gemm_int8_tiled

#if USE_DOT == 1 && defined(__opencl_c_integer_dot_product_input_4x8bit)
#pragma OPENCL EXTENSION cl_khr_integer_dot_product : enable
#define DOT4(a, b) ((uint)dot(a, b))
#elif USE_DOT == 2 && defined(cl_arm_integer_dot_product_int8)
#pragma OPENCL EXTENSION cl_arm_integer_dot_product_int8 : enable
#define DOT4(a, b) ((uint)arm_dot(a, b))
#else
#define DOT4(a, b) ((uint)(((int)(a).x * (int)(b).x + (int)(a).y * (int)(b).y) + \
                           ((int)(a).z * (int)(b).z + (int)(a).w * (int)(b).w)))
#endif
#define MAC(acc, a, b) acc += DOT4(a, b)

#else  // SGEMM
#define A_T float
#define B_T float
#define KV 1
#define A_TILE float
#define B_TILE float
#define SUM_T float
#define GEMM_TILED sgemm_tiled
#define MAC(acc, a, b) acc = a * b + acc
#endif
#define TSKV (TSK / KV)

// The local-memory element of op(A) at row i, k..k + KV - 1 (zero past M and K).
inline A_TILE load_a(__global const A_T *restrict A, int M, int K, int i, int k, int a_rs,
                     int a_cs)
{
#if INT8
    A_T v[4];
    for (int t = 0; t < 4; ++t)
        v[t] = (i < M && k + t < K) ? A[(size_t)i * a_rs + (size_t)(k + t) * a_cs] : (A_T)0;
    return (A_TILE)(v[0], v[1], v[2], v[3]);
#else
    return (i < M && k < K) ? A[(size_t)i * a_rs + (size_t)k * a_cs] : 0.0f;
#endif
}

// The local-memory element of op(B) at k..k + KV - 1, column j (zero past N and K).
inline B_TILE load_b(__global const B_T *restrict B, int N, int K, int j, int k, int b_rs,
                     int b_cs)
{
#if INT8
    B_T v[4];
    for (int t = 0; t < 4; ++t)
        v[t] = (j < N && k + t < K) ? B[(size_t)(k + t) * b_rs + (size_t)j * b_cs] : (B_T)0;
    return (B_TILE)(v[0], v[1], v[2], v[3]);
#else
    return (j < N && k < K) ? B[(size_t)k * b_rs + (size_t)j * b_cs] : 0.0f;
#endif
}

__kernel __attribute__((reqd_work_group_size(RTSN, RTSM, 1)))
void GEMM_TILED(int M, int N, int K, __global const A_T *restrict A, int a_rs, int a_cs,
                int a_bs, __global const B_T *restrict B, int b_rs, int b_cs, int b_bs,
#if INT8
                __global const int *restrict sum_a, int sa_bs,
                __global const int *restrict sum_b, int sb_bs,
                __global const int *restrict za, int za_step, int za_bs,
                __global const int *restrict zb, int zb_step, int zb_bs,
                __global int *restrict C, int ldc, int c_bs)
#else
                __global float *restrict C, int ldc, int c_bs,
                __global const float *restrict bias, int has_bias, int bias_rs, int bias_cs)
#endif
{
    __local A_TILE As[TSKV][TSM];
    __local B_TILE Bs[TSKV][TSN];
    const int tn = get_local_id(0);
    const int tm = get_local_id(1);
    const int tid = tm * RTSN + tn;
    const int j0 = get_group_id(0) * TSN;
    const int i0 = get_group_id(1) * TSM;
    const int g = get_global_id(2);
    A += (size_t)g * a_bs;
    B += (size_t)g * b_bs;
    C += (size_t)g * c_bs;

    SUM_T acc[WPTM][WPTN];
    for (int wm = 0; wm < WPTM; ++wm)
        for (int wn = 0; wn < WPTN; ++wn)
            acc[wm][wn] = 0;

    for (int k0 = 0; k0 < K; k0 += TSK) {
        for (int e = tid; e < TSM * TSKV; e += THREADS) {
            const int m = e % TSM, q = e / TSM;
            As[q][m] = load_a(A, M, K, i0 + m, k0 + KV * q, a_rs, a_cs);
        }
        for (int e = tid; e < TSN * TSKV; e += THREADS) {
            const int n = e % TSN, q = e / TSN;
            Bs[q][n] = load_b(B, N, K, j0 + n, k0 + KV * q, b_rs, b_cs);
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int q = 0; q < TSKV; ++q) {
            B_TILE b_reg[WPTN];
            for (int wn = 0; wn < WPTN; ++wn)
                b_reg[wn] = Bs[q][tn + wn * RTSN];
            for (int wm = 0; wm < WPTM; ++wm) {
                const A_TILE a = As[q][tm + wm * RTSM];
                for (int wn = 0; wn < WPTN; ++wn)
                    MAC(acc[wm][wn], a, b_reg[wn]);
            }
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
#if INT8
    sum_a += g * sa_bs;
    sum_b += g * sb_bs;
    za += g * za_bs;
    zb += g * zb_bs;
#endif
    for (int wm = 0; wm < WPTM; ++wm) {
        const int i = i0 + tm + wm * RTSM;
        if (i >= M)
            continue;
#if INT8
        const uint zai = (uint)za[i * za_step];
        const uint sai = (uint)sum_a[i];
#endif
        for (int wn = 0; wn < WPTN; ++wn) {
            const int j = j0 + tn + wn * RTSN;
            if (j < N) {
#if INT8
                const uint zbj = (uint)zb[j * zb_step];
                const uint v = acc[wm][wn] - zbj * sai - zai * (uint)sum_b[j] +
                               (uint)K * zai * zbj;
                C[(size_t)i * ldc + j] = as_int(v);
#else
                float v = acc[wm][wn];
                if (has_bias)
                    v += bias[(size_t)i * bias_rs + (size_t)j * bias_cs];
                C[(size_t)i * ldc + j] = v;
#endif
            }
        }
    }
}

#if INT8
// sums[g * s_bs + i] = sum over k < K of A[g * a_bs + i * a_rs + k * a_cs] (raw values:
// at most K * 255, far inside an int for the K the host allows).
__kernel void row_sums(int M, int K, __global const A_T *restrict A, int a_rs, int a_cs,
                       int a_bs, __global int *restrict sums, int s_bs)
{
    const int i = get_global_id(0);
    const int g = get_global_id(1);
    if (i >= M)
        return;
    A += (size_t)g * a_bs + (size_t)i * a_rs;
    int s = 0;
    for (int k = 0; k < K; ++k)
        s += A[(size_t)k * a_cs];
    sums[g * s_bs + i] = s;
}

// sums[g * s_bs + j] = sum over k < K of B[g * b_bs + k * b_rs + j * b_cs].
__kernel void col_sums(int N, int K, __global const B_T *restrict B, int b_rs, int b_cs,
                       int b_bs, __global int *restrict sums, int s_bs)
{
    const int j = get_global_id(0);
    const int g = get_global_id(1);
    if (j >= N)
        return;
    B += (size_t)g * b_bs + (size_t)j * b_cs;
    int s = 0;
    for (int k = 0; k < K; ++k)
        s += B[(size_t)k * b_rs];
    sums[g * s_bs + j] = s;
}

// The int8 convolution's B operand for group g = get_global_id(2): the raw
// (C/g * R * S) x (N * OH * OW) column matrix, row k = (c, r, s), column j = (n, oh, ow),
// leading dimension ld, groups group_stride apart; a tap in the padding holds pad (the
// input's zero point: a real 0 once the zero points are applied).
__kernel void im2col(__global const B_T *restrict x, int C, int H, int W, int cg, int R,
                     int S, int OH, int OW, int NOHW, int sh, int sw, int pt, int pl, int dh,
                     int dw, int pad, __global B_T *restrict cols, int ld, int group_stride)
{
    const int j = get_global_id(0);
    const int k = get_global_id(1);
    const int g = get_global_id(2);
    if (j >= NOHW || k >= cg * R * S)
        return;
    const int s = k % S;
    const int r = (k / S) % R;
    const int c = g * cg + k / (R * S);
    const int ow = j % OW;
    const int oh = (j / OW) % OH;
    const int n = j / (OW * OH);
    const int ih = oh * sh - pt + r * dh;
    const int iw = ow * sw - pl + s * dw;
    cols[(size_t)g * group_stride + (size_t)k * ld + j] =
        (ih >= 0 && ih < H && iw >= 0 && iw < W) ? x[(((size_t)n * C + c) * H + ih) * W + iw]
                                                : (B_T)pad;
}
#endif  // INT8
