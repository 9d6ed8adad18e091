// Register-blocked SGEMM for CPU devices (PoCL): BLIS-style packed panels.
//
// A is packed into row panels Ap[M_pad / MR][K][MR] and B into column panels
// Bp[N_pad / 16][K][16] (pack_a / pack_b, zero padded), so the micro-kernel reads both
// operands as unit-stride streams. One work-item (work-group size 1: PoCL then runs no
// work-item loop around it) computes an (MR * MBLK) x (16 * NBLK) block of C, walking K in
// KC-long slices: a 16-wide B micro-panel (KC * 64 bytes) stays in L1 while MBLK A
// micro-panels stream from L2.
//
// Learned on PoCL 3.0 / LLVM 14 (znver3): the accumulators must be *named* float8
// variables updated with plain `a * b + c` (contracted to FMA); built-in fma(), vload8 and
// arrays of vectors compile to calls or spills and run 10x slower.
//
// C is M x N_pad (N_pad: whole column blocks), leading dimension ldc; beta != 0 adds into C. Group
// g = get_global_id(2) offsets Ap, Bp and C by g * a_bs, g * b_bs, g * c_bs (grouped convs).

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
#define KC 256
#endif

#if MR < 1 || MR > 8
#error "MR must be in 1..8"
#endif

#define ROW_DECL(i) float8 c##i##0 = (float8)(0.0f), c##i##1 = (float8)(0.0f)
#define ROW_LOAD(i) if ((i) < valid) { c##i##0 = cp[(i) * ldc8]; c##i##1 = cp[(i) * ldc8 + 1]; }
#define ROW_FMA(i) { float a = ap[k * MR + (i)]; c##i##0 = a * b0 + c##i##0; \
                     c##i##1 = a * b1 + c##i##1; }
#define ROW_STORE(i) if ((i) < valid) { cp[(i) * ldc8] = c##i##0; cp[(i) * ldc8 + 1] = c##i##1; }

#define FOR_ROWS(X) X(0); \
    if (MR > 1) X(1); if (MR > 2) X(2); if (MR > 3) X(3); \
    if (MR > 4) X(4); if (MR > 5) X(5); if (MR > 6) X(6); if (MR > 7) X(7)

// One MR x 16 tile of C over kc steps of K; only its first `valid` rows exist in C.
inline void micro_tile(int kc, __global const float *restrict ap,
                       __global const float8 *restrict bp, __global float8 *restrict cp,
                       int ldc8, int accumulate, int valid)
{
    ROW_DECL(0); ROW_DECL(1); ROW_DECL(2); ROW_DECL(3);
    ROW_DECL(4); ROW_DECL(5); ROW_DECL(6); ROW_DECL(7);
    if (accumulate) {
        FOR_ROWS(ROW_LOAD);
    }
    for (int k = 0; k < kc; ++k) {
        float8 b0 = bp[2 * k];
        float8 b1 = bp[2 * k + 1];
        FOR_ROWS(ROW_FMA);
    }
    FOR_ROWS(ROW_STORE);
}

__kernel __attribute__((reqd_work_group_size(1, 1, 1)))
void sgemm_packed(int M, int K, __global const float *restrict Ap, int a_bs,
                  __global const float *restrict Bp, int b_bs, __global float *restrict C,
                  int ldc, int c_bs, int beta, int row_blocks, int col_blocks)
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
    for (int k0 = 0; k0 < K; k0 += KC) {
        const int kc = min(KC, K - k0);
        const int accumulate = beta || k0 > 0;
        for (int jp = 0; jp < NBLK; ++jp) {
            const int panel = jb * NBLK + jp;
            __global const float8 *bp =
                (__global const float8 *)(Bp + ((size_t)panel * K + k0) * 16);
            for (int ip = 0; ip < MBLK; ++ip) {
                const int rows = ib * MBLK + ip;
                const int valid = min(MR, M - rows * MR);  // C has M rows: no padding
                if (valid <= 0)
                    break;
                __global const float *ap = Ap + ((size_t)rows * K + k0) * MR;
                __global float8 *cp =
                    (__global float8 *)(C + (size_t)rows * MR * ldc + panel * 16);
                micro_tile(kc, ap, bp, cp, ldc8, accumulate, valid);
            }
        }
    }
}

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
// B[k * sb_row + j * sb_col]; groups as in pack_a.
__kernel void pack_b(int N, int K, __global const float *restrict B, int sb_row, int sb_col,
                     int b_bs, __global float *restrict Bp, int panels, int bp_bs)
{
    const int k = get_global_id(0);
    const int p = get_global_id(1);
    const int g = get_global_id(2);
    if (k >= K || p >= panels)
        return;
    B += (size_t)g * b_bs;
    __global float *dst = Bp + (size_t)g * bp_bs + ((size_t)p * K + k) * 16;
    for (int c = 0; c < 16; ++c) {
        const int j = p * 16 + c;
        dst[c] = j < N ? B[(size_t)k * sb_row + (size_t)j * sb_col] : 0.0f;
    }
}
