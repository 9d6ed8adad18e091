// Exact int8 GEMM for CPU devices (PoCL): int16 panels, register-blocked, like sgemm_packed.
//
// The zero points are subtracted while packing: a - za and b - zb lie in [-255, 255], so
// the operands are packed as int16 and every partial sum of products fits an int32 (the
// host checks K * max|a - za| * max|b - zb| <= INT32_MAX), with no correction terms.
// K is walked in pairs: A goes into row panels Ap[M_pad / MR][K2][MR] of *pairs*
// (one int = A[i][2q] in the low half, A[i][2q + 1] in the high half), B into column
// panels Bp[N_pad / 16][K2][16][2] (per k-pair, column j's two values side by side).
// One step of the micro-kernel then broadcasts a row's pair to all 8 lanes of a short16
// and multiplies it into 8 columns' pairs: c[j] += a0 * b0[j] + a1 * b1[j], which is
// x86's vpmaddwd (16 multiply-adds per instruction; fp32 FMA does 8).
//
// Learned on PoCL 3.0 / LLVM 14 (znver3): LLVM 14 does not form vpmaddwd from the
// portable expression (a broadcast turns it into vpmulld, 5x slower), so with AVX2 the
// compiler's own builtin is called, guarded so that other compilers and targets take the
// portable expression (MADD_PORTABLE=1 forces it, for tests). As in sgemm_packed the
// accumulators are named int8 variables, work-groups are of one work-item, and K is cut
// into KC-long slices so that a B micro-panel (KC * 32 bytes) stays in L1.
//
// C is M x (16 * panels) int32, leading dimension ldc (a multiple of 16). Group
// g = get_global_id(2) offsets Ap, Bp and C by g * a_bs, g * b_bs, g * c_bs (grouped convs).

#ifndef A_T
#define A_T uchar
#endif
#ifndef B_T
#define B_T char
#endif
#ifndef MR
#define MR 6
#endif
#ifndef MBLK
#define MBLK 8
#endif
#ifndef NBLK
#define NBLK 4
#endif
#ifndef KC
#define KC 512
#endif
#ifndef MADD_PORTABLE
#define MADD_PORTABLE 0
#endif

// PoCL 3.0 calls its min() built-in out of line, and leaves helpers of this size out of
// line too: either stops a loop from vectorizing.
#define INLINE inline __attribute__((always_inline))
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))

#if MR < 1 || MR > 8
#error "MR must be in 1..8"
#endif
#if KC % 2
#error "KC must be even"
#endif

// 8 lanes of a0 * b0 + a1 * b1 from 8 (a0, a1) and 8 (b0, b1) pairs; exact in int32.
#if !MADD_PORTABLE && defined(__AVX2__) && defined(__has_builtin)
#if __has_builtin(__builtin_ia32_pmaddwd256)
#define MADD(a, b) as_int8(__builtin_ia32_pmaddwd256((a), (b)))
#endif
#endif
#ifndef MADD
#define MADD(a, b) (convert_int8((a).even) * convert_int8((b).even) + \
                    convert_int8((a).odd) * convert_int8((b).odd))
#endif

#define ROW_DECL(i) int8 c##i##0 = (int8)(0), c##i##1 = (int8)(0)
#define ROW_LOAD(i) if ((i) < valid) { c##i##0 = cp[(i) * ldc8]; c##i##1 = cp[(i) * ldc8 + 1]; }
#define ROW_MADD(i) { const short16 a = as_short16((int8)(ap[q * MR + (i)])); \
                      c##i##0 += MADD(a, b0); c##i##1 += MADD(a, b1); }
#define ROW_STORE(i) if ((i) < valid) { cp[(i) * ldc8] = c##i##0; cp[(i) * ldc8 + 1] = c##i##1; }

#define FOR_ROWS(X) X(0); \
    if (MR > 1) X(1); if (MR > 2) X(2); if (MR > 3) X(3); \
    if (MR > 4) X(4); if (MR > 5) X(5); if (MR > 6) X(6); if (MR > 7) X(7)

// One MR x 16 tile of C over kq k-pairs; only its first `valid` rows exist in C.
INLINE void micro_tile(int kq, __global const int *restrict ap,
                       __global const short16 *restrict bp, __global int8 *restrict cp,
                       int ldc8, int accumulate, int valid)
{
    ROW_DECL(0); ROW_DECL(1); ROW_DECL(2); ROW_DECL(3);
    ROW_DECL(4); ROW_DECL(5); ROW_DECL(6); ROW_DECL(7);
    if (accumulate) {
        FOR_ROWS(ROW_LOAD);
    }
    for (int q = 0; q < kq; ++q) {
        const short16 b0 = bp[2 * q];
        const short16 b1 = bp[2 * q + 1];
        FOR_ROWS(ROW_MADD);
    }
    FOR_ROWS(ROW_STORE);
}

// K2 = K / 2 rounded up: the k-pairs of both panels.
__kernel __attribute__((reqd_work_group_size(1, 1, 1)))
void gemm_int8_packed(int M, int K2, __global const int *restrict Ap, int a_bs,
                      __global const short *restrict Bp, int b_bs, __global int *restrict C,
                      int ldc, int c_bs, int row_blocks, int col_blocks, int panels)
{
    const int ib = get_global_id(0);
    const int jb = get_global_id(1);
    const int g = get_global_id(2);
    if (ib >= row_blocks || jb >= col_blocks)
        return;
    Ap += (size_t)g * a_bs;
    Bp += (size_t)g * b_bs;
    C += (size_t)g * c_bs;
    const int ldc8 = ldc / 8;
    for (int q0 = 0; q0 < K2; q0 += KC / 2) {
        const int kq = MIN(KC / 2, K2 - q0);
        for (int jp = 0; jp < NBLK; ++jp) {
            const int panel = jb * NBLK + jp;
            if (panel >= panels)  // C has ceil(N / 16) panels: no padding to NBLK of them
                break;
            __global const short16 *bp =
                (__global const short16 *)(Bp + ((size_t)panel * K2 + q0) * 32);
            for (int ip = 0; ip < MBLK; ++ip) {
                const int rows = ib * MBLK + ip;
                const int valid = MIN(MR, M - rows * MR);  // C has M rows: no padding
                if (valid <= 0)
                    break;
                __global const int *ap = Ap + ((size_t)rows * K2 + q0) * MR;
                __global int8 *cp = (__global int8 *)(C + (size_t)rows * MR * ldc + panel * 16);
                micro_tile(kq, ap, bp, cp, ldc8, q0 > 0, valid);
            }
        }
    }
}

// One packed int: the pair (v0, v1) of int16 values, v0 in the low half.
INLINE int pair(int v0, int v1)
{
    return as_int(((uint)v0 & 0xffffu) | ((uint)v1 << 16));
}

// The packing kernels give each work-item 16 pairs in a loop with constant bounds, which
// LLVM vectorizes: PoCL does not vectorize across these work-items (their bounds checks
// diverge), and one pair per work-item ran scalar, 4x slower.

// dst[t * dst_step] = the pair (src[2t] - z, src[2t + 1] - z) for t < 16, where only the
// first `valid` (<= 32) elements of src exist (zero past them). Called with constant
// valid and step, so that the loop is specialized.
INLINE void pairs16(__global int *restrict dst, int dst_step, __global const A_T *restrict src,
                    int z, int valid)
{
    for (int t = 0; t < 16; ++t) {
        const int k0 = MIN(2 * t, valid - 1), k1 = MIN(2 * t + 1, valid - 1);
        const int v0 = (int)src[k0] - z, v1 = (int)src[k1] - z;
        dst[t * dst_step] = pair(2 * t < valid ? v0 : 0, 2 * t + 1 < valid ? v1 : 0);
    }
}

// Ap[((i / MR) * K2 + q) * MR + i % MR] = the pair (A[i][2q] - za_i, A[i][2q+1] - za_i),
// zero past M and K. A is row-major: element (i, k) at A[i * lda + k], its zero point at
// za[i * za_step]. One work-item per row and 16 k-pairs; group g = get_global_id(2) reads
// A + g * a_bs and za + g * za_bs, and writes Ap + g * ap_bs (ints).
__kernel void pack_a(int M, int K, __global const A_T *restrict A, int lda, int a_bs,
                     __global const int *restrict za, int za_step, int za_bs,
                     __global int *restrict Ap, int K2, int rows_p, int ap_bs)
{
    const int q0 = get_global_id(0) * 16;
    const int i = get_global_id(1);
    const int g = get_global_id(2);
    if (q0 >= K2 || i >= rows_p)
        return;
    __global int *dst = Ap + (size_t)g * ap_bs + ((size_t)(i / MR) * K2 + q0) * MR + i % MR;
    const int pairs = MIN(16, K2 - q0);
    if (i >= M) {
        for (int t = 0; t < pairs; ++t)
            dst[t * MR] = 0;
        return;
    }
    __global const A_T *row = A + (size_t)g * a_bs + (size_t)i * lda + 2 * q0;
    const int z = za[g * za_bs + i * za_step];
    const int valid = K - 2 * q0;
    if (valid >= 32) {
        pairs16(dst, MR, row, z, 32);
    } else {
        for (int t = 0; t < pairs; ++t) {
            const int k1 = MIN(2 * t + 1, valid - 1);
            const int v0 = (int)row[2 * t] - z, v1 = (int)row[k1] - z;
            dst[t * MR] = pair(v0, 2 * t + 1 < valid ? v1 : 0);
        }
    }
}

// 16 columns of one k-pair: dst[c] = (r0[c] - z_c, r1[c] - z_c) with z_c = zb[c * zb_step]
// for c < valid, else 0; r1 counts only when has1 (K odd: the last pair's second row is
// padding). Called with constant steps and valid for the common cases.
INLINE void columns16(__global int *restrict dst, __global const B_T *restrict r0,
                      __global const B_T *restrict r1, int has1,
                      __global const int *restrict zb, int zb_step, int valid)
{
    for (int c = 0; c < 16; ++c) {
        const int cc = MIN(c, valid - 1);
        const int z = zb[cc * zb_step];
        const int v0 = (int)r0[cc] - z, v1 = (int)r1[cc] - z;
        dst[c] = c < valid ? pair(v0, has1 ? v1 : 0) : 0;
    }
}

// Bp[((j / 16) * K2 + q) * 16 + j % 16] = the pair (B[2q][j] - zb_j, B[2q+1][j] - zb_j),
// zero past N and K. B is row-major: element (k, j) at B[k * ldb + j], zb[j * zb_step]
// (zb_step 0 or 1). One work-item per 16-column panel and k-pair; groups as in pack_a.
__kernel void pack_b(int N, int K, __global const B_T *restrict B, int ldb, int b_bs,
                     __global const int *restrict zb, int zb_step, int zb_bs,
                     __global int *restrict Bp, int K2, int panels, int bp_bs)
{
    const int p = get_global_id(0);
    const int q = get_global_id(1);
    const int g = get_global_id(2);
    if (p >= panels || q >= K2)
        return;
    const int j0 = 16 * p;
    __global int *dst = Bp + (size_t)g * bp_bs + ((size_t)p * K2 + q) * 16;
    __global const B_T *r0 = B + (size_t)g * b_bs + (size_t)(2 * q) * ldb + j0;
    __global const B_T *r1 = B + (size_t)g * b_bs + (size_t)MIN(2 * q + 1, K - 1) * ldb + j0;
    const int has1 = 2 * q + 1 < K;
    zb += g * zb_bs + j0 * zb_step;
    const int valid = MIN(16, N - j0);
    if (valid == 16 && zb_step == 0)
        columns16(dst, r0, r1, has1, zb, 0, 16);
    else if (valid == 16)
        columns16(dst, r0, r1, has1, zb, 1, 16);
    else
        columns16(dst, r0, r1, has1, zb, zb_step, valid);
}

// The int8 convolution's B operand straight into pack_b's panels (no column matrix):
// row k = (c, r, s) of group g = get_global_id(2), column j = (n, oh, ow), minus the
// input's zero point zx; a tap in the padding is zx itself, so it packs as 0. One
// work-item per output row (n, oh) and k-pair walks ow, so that nothing divides per
// element (per-element index divisions made this kernel 8x slower than the GEMM); one
// more work-item per k-pair zeroes the panels' columns past N * OH * OW.
__kernel void im2col(__global const B_T *restrict x, int C, int H, int W, int cg, int R,
                     int S, int OH, int OW, int NOHW, int sh, int sw, int pt, int pl, int dh,
                     int dw, int zx, __global int *restrict Bp, int K2, int cols_p,
                     int bp_bs)
{
    const int row = get_global_id(0);
    const int q = get_global_id(1);
    const int g = get_global_id(2);
    if (q >= K2 || OW <= 0)  // (checked first: the crash probe passes all zeros)
        return;
    const int rows = NOHW / OW;
    if (row > rows)
        return;
    __global int *dst = Bp + (size_t)g * bp_bs + (size_t)q * 16;
    if (row == rows) {
        for (int j = NOHW; j < cols_p; ++j)
            dst[(size_t)(j >> 4) * K2 * 16 + (j & 15)] = 0;
        return;
    }
    const int n = row / OH, oh = row % OH;
    const int taps = cg * R * S;
    const int k0 = 2 * q, k1 = MIN(2 * q + 1, taps - 1);
    const int c0 = g * cg + k0 / (R * S), r0 = (k0 / S) % R, s0 = k0 % S;
    const int c1 = g * cg + k1 / (R * S), r1 = (k1 / S) % R, s1 = k1 % S;
    const int ih0 = oh * sh - pt + r0 * dh, ih1 = oh * sh - pt + r1 * dh;
    const int ok0 = ih0 >= 0 && ih0 < H;
    const int ok1 = ih1 >= 0 && ih1 < H && 2 * q + 1 < taps;
    // Rows clamped into the image: every load below is in bounds, masked by ok / the column.
    __global const B_T *x0 = x + (((size_t)n * C + c0) * H + MIN(MAX(ih0, 0), H - 1)) * W;
    __global const B_T *x1 = x + (((size_t)n * C + c1) * H + MIN(MAX(ih1, 0), H - 1)) * W;
    const int iw0 = s0 * dw - pl, iw1 = s1 * dw - pl;
    for (int ow = 0; ow < OW; ++ow) {
        const int w0 = ow * sw + iw0, w1 = ow * sw + iw1;
        const int a0 = (int)x0[MIN(MAX(w0, 0), W - 1)] - zx;
        const int a1 = (int)x1[MIN(MAX(w1, 0), W - 1)] - zx;
        const int v0 = ok0 && w0 >= 0 && w0 < W ? a0 : 0;
        const int v1 = ok1 && w1 >= 0 && w1 < W ? a1 : 0;
        const int j = row * OW + ow;
        dst[(size_t)(j >> 4) * K2 * 16 + (j & 15)] = pair(v0, v1);
    }
}
