// Exact int8 GEMM with int32 results (ONNX MatMulInteger) and requantization (QLinearMatMul).
//
// A_T / B_T are the operand types (char or uchar). Both operands are first packed
// K-contiguous with K padded to a multiple of 4 (zeros): A as rows, B transposed. The
// kernel accumulates the raw sum of a * b and the sums of a (per row) and b (per column)
// in 32-bit *unsigned* arithmetic, which wraps (signed overflow would be undefined), then
// applies the zero points:
//     sum (a - za)(b - zb) = sum ab - zb * sum a - za * sum b + K * za * zb   (mod 2^32)
// The true value fits an int32 (the host checks the bound), so the wrapped result is it.
// With USE_DOT the 4-element products use cl_khr_integer_dot_product's dot().

#ifndef A_T
#define A_T uchar
#endif
#ifndef B_T
#define B_T char
#endif
#ifndef USE_DOT
#define USE_DOT 0
#endif
#ifndef TM
#define TM 4
#endif
#ifndef TN
#define TN 4
#endif

#define VEC4_(t) t##4
#define VEC4(t) VEC4_(t)
#define A4 VEC4(A_T)
#define B4 VEC4(B_T)

#if USE_DOT
#pragma OPENCL EXTENSION cl_khr_integer_dot_product : enable
#define DOT4(a, b) ((uint)dot(a, b))
#else
#define DOT4(a, b) ((uint)(((int)(a).x * (int)(b).x + (int)(a).y * (int)(b).y) + \
                           ((int)(a).z * (int)(b).z + (int)(a).w * (int)(b).w)))
#endif
#define SUM4(v) ((uint)((int)(v).x + (int)(v).y + (int)(v).z + (int)(v).w))

// dst[i * Kp + k] = src[i * s_row + k * s_col], zero past rows or K; group
// g = get_global_id(2) reads src + g * s_bs and writes dst + g * d_bs.
__kernel void pack_a(int rows, int K, __global const A_T *restrict src, int s_row, int s_col,
                     int s_bs, __global A_T *restrict dst, int Kp, int rows_p, int d_bs)
{
    const int k = get_global_id(0);
    const int i = get_global_id(1);
    const int g = get_global_id(2);
    if (k >= Kp || i >= rows_p)
        return;
    src += (size_t)g * s_bs;
    dst[(size_t)g * d_bs + (size_t)i * Kp + k] =
        (i < rows && k < K) ? src[(size_t)i * s_row + (size_t)k * s_col] : (A_T)0;
}

__kernel void pack_b(int rows, int K, __global const B_T *restrict src, int s_row, int s_col,
                     int s_bs, __global B_T *restrict dst, int Kp, int rows_p, int d_bs)
{
    const int k = get_global_id(0);
    const int i = get_global_id(1);
    const int g = get_global_id(2);
    if (k >= Kp || i >= rows_p)
        return;
    src += (size_t)g * s_bs;
    dst[(size_t)g * d_bs + (size_t)i * Kp + k] =
        (i < rows && k < K) ? src[(size_t)i * s_row + (size_t)k * s_col] : (B_T)0;
}

// The int8 convolution's B operand, packed as gemm_int8 reads it: row j = (n, oh, ow) of
// group g = get_global_id(2) holds its C/g * R * S taps (c, r, s) K-contiguous, Kp
// apart; a tap in the padding reads pad (the input's zero point: a real 0), and rows
// past NOHW and taps past crs hold 0 (so they add nothing to any sum).
__kernel void im2row(__global const B_T *restrict x, int C, int H, int W, int cg, int R,
                     int S, int OH, int OW, int NOHW, int sh, int sw, int pt, int pl, int dh,
                     int dw, int pad, __global B_T *restrict rows, int Kp, int rows_p)
{
    const int k = get_global_id(0);
    const int j = get_global_id(1);
    const int g = get_global_id(2);
    if (k >= Kp || j >= rows_p)
        return;
    B_T v = 0;
    if (j < NOHW && k < cg * R * S) {
        const int s = k % S;
        const int r = (k / S) % R;
        const int c = g * cg + k / (R * S);
        const int ow = j % OW;
        const int oh = (j / OW) % OH;
        const int n = j / (OW * OH);
        const int ih = oh * sh - pt + r * dh;
        const int iw = ow * sw - pl + s * dw;
        v = (ih >= 0 && ih < H && iw >= 0 && iw < W)
            ? x[(((size_t)n * C + c) * H + ih) * W + iw] : (B_T)pad;
    }
    rows[((size_t)g * rows_p + j) * Kp + k] = v;
}

// C[M x N] int32 from Ap (M_p x Kp) and Bt (N_p x Kp); za[i * za_step], zb[j * zb_step].
// One work-item computes a TM x TN tile; group g = get_global_id(2) offsets Ap, Bt, C, za
// and zb by g * ap_bs, bt_bs, c_bs, za_bs, zb_bs.
__kernel void gemm_int8(int M, int N, int K, int Kp, __global const A_T *restrict Ap,
                        int ap_bs, __global const B_T *restrict Bt, int bt_bs,
                        __global const int *restrict za, int za_step, int za_bs,
                        __global const int *restrict zb, int zb_step, int zb_bs,
                        __global int *restrict C, int c_bs)
{
    const int j0 = get_global_id(0) * TN;
    const int i0 = get_global_id(1) * TM;
    const int g = get_global_id(2);
    if (i0 >= M || j0 >= N)
        return;
    Ap += (size_t)g * ap_bs;
    Bt += (size_t)g * bt_bs;
    C += (size_t)g * c_bs;
    za += g * za_bs;
    zb += g * zb_bs;
    uint acc[TM][TN];
    uint sum_a[TM];
    uint sum_b[TN];
    for (int i = 0; i < TM; ++i) {
        sum_a[i] = 0;
        for (int j = 0; j < TN; ++j)
            acc[i][j] = 0;
    }
    for (int j = 0; j < TN; ++j)
        sum_b[j] = 0;
    __global const A4 *a4 = (__global const A4 *)(Ap + (size_t)i0 * Kp);
    __global const B4 *b4 = (__global const B4 *)(Bt + (size_t)j0 * Kp);
    const int kq = Kp / 4;
    for (int k = 0; k < kq; ++k) {
        A4 av[TM];
        B4 bv[TN];
        for (int i = 0; i < TM; ++i) {
            av[i] = a4[i * kq + k];
            sum_a[i] += SUM4(av[i]);
        }
        for (int j = 0; j < TN; ++j) {
            bv[j] = b4[j * kq + k];
            sum_b[j] += SUM4(bv[j]);
        }
        for (int i = 0; i < TM; ++i)
            for (int j = 0; j < TN; ++j)
                acc[i][j] += DOT4(av[i], bv[j]);
    }
    for (int i = 0; i < TM; ++i) {
        if (i0 + i >= M)
            break;
        const uint zai = (uint)za[(i0 + i) * za_step];
        for (int j = 0; j < TN; ++j) {
            if (j0 + j >= N)
                break;
            const uint zbj = (uint)zb[(j0 + j) * zb_step];
            const uint v = acc[i][j] - zbj * sum_a[i] - zai * sum_b[j] + (uint)K * zai * zbj;
            C[(size_t)(i0 + i) * N + j0 + j] = as_int(v);
        }
    }
}

// The grouped int32 GEMM's (g, K/g, N * OH * OW) result to NCHW.
__kernel void col2output_int(__global const int *restrict acc, int K, int kg, int N,
                             int OHW, __global int *restrict out)
{
    const int p = get_global_id(0);
    const int k = get_global_id(1);
    const int n = get_global_id(2);
    if (p >= OHW || k >= K || n >= N)
        return;
    const int g = k / kg;
    out[((size_t)n * K + k) * OHW + p] =
        acc[((size_t)g * kg + k % kg) * N * OHW + (size_t)n * OHW + p];
}

#ifndef OUT_T
#define OUT_T uchar
#endif

// gemmlowp requantization, bit-exact with hwbench.kernels.quantization: acc (plus an
// int32 bias, the sum saturated to int32), times the multiplier as an int64 product, a
// rounding right shift (ties to even), plus the zero point, saturated to [lo, hi].
// Element o's channel is (o / inner) % channels (a GEMM's column: inner 1; an NCHW
// tensor's channel: inner H * W); multiplier and shift are per channel when per_channel,
// else one value; multiplier in [2^30, 2^31), shift >= 1.
__kernel void requantize(int total, int inner, int channels, __global const int *restrict acc,
                         __global const int *restrict bias, int has_bias,
                         __global const long *restrict multiplier,
                         __global const int *restrict shift, int per_channel, int zero_point,
                         int lo, int hi, __global OUT_T *restrict out)
{
    const int o = get_global_id(0);
    if (o >= total)
        return;
    const int ch = (o / inner) % channels;
    const int m = per_channel ? ch : 0;
    long v = acc[o];
    if (has_bias)
        v = clamp(v + bias[ch], (long)INT_MIN, (long)INT_MAX);
    const long product = v * multiplier[m];
    const int s = shift[m];
    long q = 0;
    if (s < 63) {  // |product| < 2^62: a larger shift rounds everything to 0
        const long floor_q = product >> s;             // arithmetic: rounds toward -inf
        const long rem = product & ((1L << s) - 1);    // product - floor_q * 2^s, in [0, 2^s)
        const long halfway = 1L << (s - 1);
        q = floor_q + (rem > halfway || (rem == halfway && (floor_q & 1)));
    }
    out[o] = (OUT_T)clamp(q + zero_point, (long)lo, (long)hi);
}
