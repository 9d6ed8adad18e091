// Register-blocked GEMM for CPU devices (PoCL): BLIS-style packed panels. INT8 picks the
// accumulator: 0 (default), SGEMM in float8 (kernel sgemm_packed, float panels); 1, the
// exact int8 GEMM in int8 vectors (kernel gemm_int8_packed, int16 panels).
//
// A is packed into row panels Ap[M_pad / MR][K][MR] and B into column panels
// Bp[N_pad / 16][K][16] (pack_a / pack_b, zero padded), so the micro-kernel reads both
// operands as unit-stride streams. One work-item (work-group size 1: PoCL then runs no
// work-item loop around it) computes an (MR * MBLK) x (16 * NBLK) block of C, walking K in
// KC-long slices: a 16-wide B micro-panel stays in L1 while MBLK A micro-panels stream
// from L2. C has M rows (no padding), leading dimension ldc (a multiple of 16). Group
// g = get_global_id(2) offsets Ap, Bp and C by g * a_bs, g * b_bs, g * c_bs (grouped convs).
//
// SGEMM: C is M x N_pad (N_pad: whole column blocks); the micro-panels are KC * 64 bytes;
// beta != 0 adds into C. Learned on PoCL 3.0 /
// LLVM 14 (znver3): the accumulators must be *named* float8 variables updated with plain
// `a * b + c` (contracted to FMA); built-in fma(), vload8 and arrays of vectors compile to
// calls or spills and run 10x slower.
//
// int8: the zero points are subtracted while packing: a - za and b - zb lie in [-255, 255],
// so the operands are packed as int16 and every partial sum of products fits an int32 (the
// host checks K * max|a - za| * max|b - zb| <= INT32_MAX), with no correction terms.
// K is walked in pairs (one step: a k-pair; K2 = K / 2 rounded up): A goes into row panels
// Ap[M_pad / MR][K2][MR] of *pairs* (one int = A[i][2q] in the low half, A[i][2q + 1] in
// the high half), B into column panels Bp[N_pad / 16][K2][16][2] (per k-pair, column j's
// two values side by side). One step of the micro-kernel then broadcasts a row's pair to
// all 8 lanes of a short16 and multiplies it into 8 columns' pairs: c[j] += a0 * b0[j] +
// a1 * b1[j], which is x86's vpmaddwd (16 multiply-adds per instruction; fp32 FMA does 8).
// LLVM 14 does not form vpmaddwd from the portable expression (a broadcast turns it into
// vpmulld, 5x slower), so with AVX2 the compiler's own builtin is called, guarded so that
// other compilers and targets take the portable expression (MADD_PORTABLE=1 forces it, for
// tests). C has ceil(N / 16) panels; the B micro-panels are KC * 32 bytes.

#ifndef INT8
#define INT8 0
#endif
#if INT8
#ifndef A_T
#define A_T uchar
#endif
#ifndef B_T
#define B_T char
#endif
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
#if INT8
#define KC 512
#else
#define KC 256
#endif
#endif
#ifndef MADD_PORTABLE
#define MADD_PORTABLE 0
#endif

#if MR < 1 || MR > 8
#error "MR must be in 1..8"
#endif

// PoCL 3.0 calls its min() built-in out of line, and leaves helpers of this size out of
// line too: either stops a loop from vectorizing (the int8 micro-kernel is forced inline;
// the float one vectorized as it is).
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))
#define INLINE inline __attribute__((always_inline))

#if INT8
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
#define GEMM_PACKED gemm_int8_packed
#define MICRO_TILE_INLINE INLINE
#define PANEL_T int        // one A panel element: a k-pair of int16
#define BPANEL_T short     // B panel element
#define B_VEC short16      // 8 columns' pairs
#define C_VEC int8         // 8 accumulators
#define ZERO_C ((int8)(0))
#define SLICE (KC / 2)     // steps (k-pairs) per slice of K
#define B_STEP 32          // B panel elements per step
#define ROW_STEP(i) { const short16 a = as_short16((int8)(ap[s * MR + (i)])); \
                      c##i##0 += MADD(a, b0); c##i##1 += MADD(a, b1); }
#else
#define GEMM_PACKED sgemm_packed
#define MICRO_TILE_INLINE inline
#define PANEL_T float
#define BPANEL_T float
#define B_VEC float8
#define C_VEC float8
#define ZERO_C ((float8)(0.0f))
#define SLICE KC
#define B_STEP 16
#define ROW_STEP(i) { float a = ap[s * MR + (i)]; c##i##0 = a * b0 + c##i##0; \
                      c##i##1 = a * b1 + c##i##1; }
#endif

#define ROW_DECL(i) C_VEC c##i##0 = ZERO_C, c##i##1 = ZERO_C
#define ROW_LOAD(i) if ((i) < valid) { c##i##0 = cp[(i) * ldc8]; c##i##1 = cp[(i) * ldc8 + 1]; }
#define ROW_STORE(i) if ((i) < valid) { cp[(i) * ldc8] = c##i##0; cp[(i) * ldc8 + 1] = c##i##1; }

#define FOR_ROWS(X) X(0); \
    if (MR > 1) X(1); if (MR > 2) X(2); if (MR > 3) X(3); \
    if (MR > 4) X(4); if (MR > 5) X(5); if (MR > 6) X(6); if (MR > 7) X(7)

// One MR x 16 tile of C over `steps` steps of K; only its first `valid` rows exist in C.
MICRO_TILE_INLINE void micro_tile(int steps, __global const PANEL_T *restrict ap,
                                  __global const B_VEC *restrict bp,
                                  __global C_VEC *restrict cp, int ldc8, int accumulate,
                                  int valid)
{
    ROW_DECL(0); ROW_DECL(1); ROW_DECL(2); ROW_DECL(3);
    ROW_DECL(4); ROW_DECL(5); ROW_DECL(6); ROW_DECL(7);
    if (accumulate) {
        FOR_ROWS(ROW_LOAD);
    }
    for (int s = 0; s < steps; ++s) {
        const B_VEC b0 = bp[2 * s];
        const B_VEC b1 = bp[2 * s + 1];
        FOR_ROWS(ROW_STEP);
    }
    FOR_ROWS(ROW_STORE);
}

// KS: the steps of K (SGEMM: K; int8: K2, the k-pairs of both panels).
__kernel __attribute__((reqd_work_group_size(1, 1, 1)))
#if INT8
void GEMM_PACKED(int M, int KS, __global const PANEL_T *restrict Ap, int a_bs,
                 __global const BPANEL_T *restrict Bp, int b_bs, __global int *restrict C,
                 int ldc, int c_bs, int row_blocks, int col_blocks, int panels)
#else
void GEMM_PACKED(int M, int KS, __global const PANEL_T *restrict Ap, int a_bs,
                 __global const BPANEL_T *restrict Bp, int b_bs, __global float *restrict C,
                 int ldc, int c_bs, int beta, int row_blocks, int col_blocks)
#endif
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
    for (int s0 = 0; s0 < KS; s0 += SLICE) {
        const int steps = MIN(SLICE, KS - s0);
#if INT8
        const int accumulate = s0 > 0;
#else
        const int accumulate = beta || s0 > 0;
#endif
        for (int jp = 0; jp < NBLK; ++jp) {
            const int panel = jb * NBLK + jp;
#if INT8
            if (panel >= panels)  // C has ceil(N / 16) panels: no padding to NBLK of them
                break;
#endif
            __global const B_VEC *bp =
                (__global const B_VEC *)(Bp + ((size_t)panel * KS + s0) * B_STEP);
            for (int ip = 0; ip < MBLK; ++ip) {
                const int rows = ib * MBLK + ip;
                const int valid = MIN(MR, M - rows * MR);  // C has M rows: no padding
                if (valid <= 0)
                    break;
                __global const PANEL_T *ap = Ap + ((size_t)rows * KS + s0) * MR;
                __global C_VEC *cp = (__global C_VEC *)(C + (size_t)rows * MR * ldc + panel * 16);
                micro_tile(steps, ap, bp, cp, ldc8, accumulate, valid);
            }
        }
    }
}

#if INT8
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

#else  // SGEMM

// pack_b's unaligned float8 moves: vec8.cl's, which the host puts first (plain vector
// moves on CPUs); the built-ins where this file is built alone.
#ifndef VEC8_CL
#define LOADU8(p) vload8(0, (p))
#define STOREU8(v, p) vstore8((v), 0, (p))
#endif

// Ap[p][k][r] = op(A)[p * MR + r][k], zero past M. op(A) is M x K; element (i, k) sits at
// A[i * sa_row + k * sa_col] (trans_a swaps the strides). Group g = get_global_id(2) reads
// A + g * a_bs and writes Ap + g * ap_bs.
__kernel void pack_a(int M, int K, __global const float *restrict A, int sa_row, int sa_col,
                     int a_bs, __global float *restrict Ap, int panels, int ap_bs)
{
    const int k = get_global_id(0);
    const int p = get_global_id(1);
    const int g = get_global_id(2);
    if (k >= K || p >= panels)
        return;
    A += (size_t)g * a_bs;
    __global float *dst = Ap + (size_t)g * ap_bs + ((size_t)p * K + k) * MR;
    for (int r = 0; r < MR; ++r) {
        const int i = p * MR + r;
        dst[r] = i < M ? A[(size_t)i * sa_row + (size_t)k * sa_col] : 0.0f;
    }
}

// Bp[p][k][c] = op(B)[k][p * 16 + c], zero past N; op(B) is K x N, element (k, j) at
// B[k * sb_row + j * sb_col]; groups as in pack_a. One work-item per panel and 16 rows of
// K (PACK_K): a work-item per row spent more on itself than on its 64 bytes (GPT-2's
// weights, packed every call: 1.4 ms a launch). A whole panel of a row-major B (sb_col 1,
// the MatMul weights' case) moves as two float8s per row: the element loop with a runtime
// stride compiled to 16 scalar loads, 2-4x slower.
#define PACK_K 16
__kernel void pack_b(int N, int K, __global const float *restrict B, int sb_row, int sb_col,
                     int b_bs, __global float *restrict Bp, int panels, int bp_bs)
{
    const int k0 = get_global_id(0) * PACK_K;
    const int p = get_global_id(1);
    const int g = get_global_id(2);
    if (k0 >= K || p >= panels)
        return;
    const int k1 = MIN(K, k0 + PACK_K);
    B += (size_t)g * b_bs;
    __global float *dst = Bp + (size_t)g * bp_bs + ((size_t)p * K + k0) * 16;
    if (sb_col == 1 && p * 16 + 16 <= N) {
        __global const float *src = B + (size_t)k0 * sb_row + p * 16;
        for (int k = k0; k < k1; ++k, src += sb_row, dst += 16) {
            STOREU8(LOADU8(src), dst);
            STOREU8(LOADU8(src + 8), dst + 8);
        }
        return;
    }
    for (int k = k0; k < k1; ++k, dst += 16) {
        for (int c = 0; c < 16; ++c) {
            const int j = p * 16 + c;
            dst[c] = j < N ? B[(size_t)k * sb_row + (size_t)j * sb_col] : 0.0f;
        }
    }
}
#endif  // INT8
