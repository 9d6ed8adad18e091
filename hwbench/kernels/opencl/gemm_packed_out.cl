// sgemm_packed_out: gemm_packed.cl's SGEMM writing straight into the destination with
// the fused epilogue, so no padded C and no second pass (col2output, a copy) are needed.
// The host appends this file to gemm_packed.cl (its MR, KC, MBLK, NBLK, ROW_DECL,
// FOR_ROWS, MIN) after vec8.cl (LOADU8 / STOREU8) and activation.cl (ACTIVATE).
// Element (i, j) of group g goes to out[g * gs + (j / OHW) * img + i * lr + j % OHW]
// (a conv: OHW output pixels per image, img = K * OHW, lr = OHW, gs = kg * OHW; a
// GEMM: OHW = N, lr = ldc). The last slice of K adds bias[g * bgs + i * brs + j * bcs]
// (bcs 0 or 1) and residual (laid out as out), then activates (act: activation.cl's
// codes), in col2output's order, so the results are those of the unfused path. Earlier
// slices keep their partial sums in out itself. A tile's 16 columns within one image run
// as vectors (unaligned: out rows need not be 32-byte aligned); a tile across an image
// edge or past N goes column by column through `off` (each column's offset from the
// first; -1: a column not stored, conv_implicit.cl's).
#define OUT_LOAD(i) if ((i) < valid) { __global const float *q = o + (i) * lr; \
    if (contig) { c##i##0 = LOADU8(q); c##i##1 = LOADU8(q + 8); } \
    else { float t[16]; for (int c = 0; c < 16; ++c) t[c] = c < ncols && off[c] >= 0 ? q[off[c]] : 0.0f; \
           c##i##0 = vload8(0, t); c##i##1 = vload8(1, t); } }
#define OUT_STORE(i) if ((i) < valid) { __global float *q = o + (i) * lr; \
    float8 v0 = c##i##0, v1 = c##i##1; \
    if (contig) { \
        if (final) { \
            if (has_bias && bcs) { v0 += LOADU8(bias + (i) * brs); \
                                   v1 += LOADU8(bias + (i) * brs + 8); } \
            else if (has_bias) { const float b = bias[(i) * brs]; v0 += b; v1 += b; } \
            if (has_res) { v0 += LOADU8(res + (i) * lr); v1 += LOADU8(res + (i) * lr + 8); } \
            ACTIVATE(float8, v0, act); ACTIVATE(float8, v1, act); } \
        STOREU8(v0, q); STOREU8(v1, q + 8); \
    } else { \
        float t[16]; vstore8(v0, 0, t); vstore8(v1, 1, t); \
        for (int c = 0; c < ncols; ++c) { float v = t[c]; if (off[c] < 0) continue; \
            if (final) { if (has_bias) v += bias[(i) * brs + c * bcs]; \
                         if (has_res) v += res[(i) * lr + off[c]]; \
                         ACTIVATE(float, v, act); } \
            q[off[c]] = v; } } }

// One MR x 16 tile of sgemm_packed_out: A read in place (element (i, k) at
// ap[i * sa_row + k * sa_col]: the weights need no packing pass, a launch and a copy of
// every weight per run; its MR scalars per step are broadcasts either way); C rows at
// o + i * lr, columns at off[c] (c < ncols) or contiguous (contig); bias and res already
// point at the tile's first element.
#define A_STEP(i) { float a = ap[a##i]; c##i##0 = a * b0 + c##i##0; \
                    c##i##1 = a * b1 + c##i##1; }
#define A_HALF(i) { c##i##0 = ap[a##i] * b0 + c##i##0; }
// WIDE (x86 CPUs with AVX-512, set by the host): the K loop on one float16 per row,
// compiled for AVX-512 (PoCL 3.0 builds for the host's AVX2 target otherwise, and splits
// float16 into two float8s): one broadcast-FMA per row and step instead of a broadcast and
// two FMAs. The sums are the same (each lane's FMAs in the same order).
#ifndef WIDE
#define WIDE 0
#endif
#if WIDE
#define W_STEP(i) { w##i = ap[a##i] * b + w##i; }
#define W_JOIN(i) float16 w##i = (float16)(c##i##0, c##i##1)
#define W_SPLIT(i) { c##i##0 = w##i.lo; c##i##1 = w##i.hi; }
__attribute__((target("avx512f")))
#else
inline
#endif
void micro_tile_out(int steps, __global const float *restrict ap, int sa_row,
                           int sa_col, __global const float8 *restrict bp,
                           __global float *restrict o, int lr, int contig, const int *off,
                           int ncols, int accumulate, int valid, int final,
                           __global const float *restrict bias, int has_bias, int brs,
                           int bcs, __global const float *restrict res, int has_res, int act)
{
    ROW_DECL(0); ROW_DECL(1); ROW_DECL(2); ROW_DECL(3);
    ROW_DECL(4); ROW_DECL(5); ROW_DECL(6); ROW_DECL(7);
    // Row i of A at ap + a_i: the rows past `valid` read the last valid one (in bounds;
    // their sums are never stored).
    const int a0 = 0, a1 = MIN(1, valid - 1) * sa_row, a2 = MIN(2, valid - 1) * sa_row,
              a3 = MIN(3, valid - 1) * sa_row, a4 = MIN(4, valid - 1) * sa_row,
              a5 = MIN(5, valid - 1) * sa_row, a6 = MIN(6, valid - 1) * sa_row,
              a7 = MIN(7, valid - 1) * sa_row;
    if (accumulate) {
        FOR_ROWS(OUT_LOAD);
    }
    if (ncols <= 8) {
        // A panel's first 8 columns only (the last panel of a 7x7 image's 49 columns):
        // half the FMAs, each lane's in the same order.
        for (int s = 0; s < steps; ++s, ap += sa_col) {
            const float8 b0 = bp[2 * s];
            FOR_ROWS(A_HALF);
        }
    } else {
#if WIDE
        W_JOIN(0); W_JOIN(1); W_JOIN(2); W_JOIN(3);
        W_JOIN(4); W_JOIN(5); W_JOIN(6); W_JOIN(7);
        __global const float16 *bw = (__global const float16 *)bp;
        for (int s = 0; s < steps; ++s, ap += sa_col) {
            const float16 b = bw[s];
            FOR_ROWS(W_STEP);
        }
        W_SPLIT(0); W_SPLIT(1); W_SPLIT(2); W_SPLIT(3);
        W_SPLIT(4); W_SPLIT(5); W_SPLIT(6); W_SPLIT(7);
#else
        for (int s = 0; s < steps; ++s, ap += sa_col) {
            const float8 b0 = bp[2 * s];
            const float8 b1 = bp[2 * s + 1];
            FOR_ROWS(A_STEP);
        }
#endif
    }
    FOR_ROWS(OUT_STORE);
}

__kernel __attribute__((reqd_work_group_size(1, 1, 1)))
void sgemm_packed_out(int M, int N, int KS, __global const float *restrict A, int sa_row,
                      int sa_col, int a_bs,
                      __global const float *restrict Bp, int b_bs, int row_blocks,
                      int col_blocks, __global float *restrict out, int OHW, int img, int lr,
                      int gs, __global const float *restrict bias, int has_bias, int brs,
                      int bcs, int bgs, __global const float *restrict residual, int has_res,
                      int act, int mblk, int nblk)
{
    const int ib = get_global_id(0);
    const int jb = get_global_id(1);
    const int g = get_global_id(2);
    if (ib >= row_blocks || jb >= col_blocks)
        return;
    A += (size_t)g * a_bs;
    Bp += (size_t)g * b_bs;
    out += (size_t)g * gs;
    residual += has_res ? (size_t)g * gs : 0;
    bias += has_bias ? (size_t)g * bgs : 0;
    for (int s0 = 0; s0 < KS; s0 += KC) {
        const int steps = MIN(KC, KS - s0);
        const int accumulate = s0 > 0;
        const int final = s0 + KC >= KS;
        for (int jp = 0; jp < nblk; ++jp) {
            const int panel = jb * nblk + jp;
            const int j0 = panel * 16;
            if (j0 >= N)
                break;
            const int n0 = j0 / OHW, p0 = j0 - n0 * OHW;
            const int ncols = MIN(16, N - j0);
            const int contig = ncols == 16 && p0 + 16 <= OHW;
            int off[16];
            if (!contig) {
                int n = 0, pix = p0;
                for (int c = 0; c < 16; ++c) {
                    off[c] = n * img + pix - p0;
                    if (++pix == OHW) {
                        pix = 0;
                        ++n;
                    }
                }
            }
            const size_t base = (size_t)n0 * img + p0;
            __global const float8 *bp =
                (__global const float8 *)(Bp + ((size_t)panel * KS + s0) * 16);
            for (int ip = 0; ip < mblk; ++ip) {
                const int rows = ib * mblk + ip;
                const int valid = MIN(MR, M - rows * MR);
                if (valid <= 0)
                    break;
                const size_t r0 = (size_t)rows * MR;
                micro_tile_out(steps, A + r0 * sa_row + (size_t)s0 * sa_col, sa_row,
                               sa_col, bp,
                               out + base + r0 * lr, lr, contig, off, ncols, accumulate,
                               valid, final, bias + (has_bias ? r0 * brs + (size_t)j0 * bcs : 0),
                               has_bias, brs, bcs, residual + (has_res ? base + r0 * lr : 0),
                               has_res, act);
            }
        }
    }
}
