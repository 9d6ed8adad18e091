// conv_implicit: a stride-1 convolution as gemm_packed_out.cl's GEMM with B read straight
// from the (padded) input: no column matrix. Appended after vec8.cl, activation.cl,
// gemm_packed.cl (MR, MBLK, NBLK, KC, ROW_DECL, FOR_ROWS, MIN) and gemm_packed_out.cl
// (A_STEP, W_STEP/W_JOIN/W_SPLIT, OUT_LOAD, OUT_STORE), whose micro-tile it mirrors.
//
// With stride 1, row k = (c, r, s) of image n's column matrix is the input itself read
// from offset koff[k] = c * HP * WP + r * DH * WP + s * DW of its HP x WP planes, if the
// columns are the output pixels laid out WP wide: column j = oh * WP + ow (NP = OH * WP
// columns; those with ow >= OW are computed and dropped: off[c] = -1). So 16 columns of a
// row of B are 16 consecutive floats at xp + koff[k] + j0, one unaligned load. Where the
// im2col + GEMM path wrote and read back the column matrix (R * S times the input, e.g.
// DenseNet's 3x3 at 128x56x56: 14 MB), this reads the input from cache.
// Image n = get_global_id(2) reads xp + n * x_img and writes out + n * img. Only the last
// image's last panel could read past the buffer's end (x_len floats): it is shifted back.

#if WIDE
typedef float16 __attribute__((aligned(4))) float16_u;
#define LOADU16(p) (*(__global const float16_u *)(p))
__attribute__((target("avx512f")))
#else
inline
#endif
void micro_tile_implicit(int steps, __global const float *restrict ap, int sa_row,
                         __global const float *restrict xb,
                         __global const int *restrict koff, int safe, int nread,
                         __global float *restrict o, int lr, int contig, const int *off,
                         int ncols, int accumulate, int valid, int final,
                         __global const float *restrict bias, int has_bias, int brs, int bcs,
                         __global const float *restrict res, int has_res, int act)
{
    ROW_DECL(0); ROW_DECL(1); ROW_DECL(2); ROW_DECL(3);
    ROW_DECL(4); ROW_DECL(5); ROW_DECL(6); ROW_DECL(7);
    const int a0 = 0, a1 = MIN(1, valid - 1) * sa_row, a2 = MIN(2, valid - 1) * sa_row,
              a3 = MIN(3, valid - 1) * sa_row, a4 = MIN(4, valid - 1) * sa_row,
              a5 = MIN(5, valid - 1) * sa_row, a6 = MIN(6, valid - 1) * sa_row,
              a7 = MIN(7, valid - 1) * sa_row;
    if (accumulate) {
        FOR_ROWS(OUT_LOAD);
    }
    if (!safe) {
        for (int s = 0; s < steps; ++s, ++ap) {
            __global const float *q = xb + koff[s];
            float t[16];
            for (int c = 0; c < 16; ++c)
                t[c] = c < nread ? q[c] : 0.0f;
            const float8 b0 = vload8(0, t), b1 = vload8(1, t);
            FOR_ROWS(A_STEP);
        }
    } else {
#if WIDE
        W_JOIN(0); W_JOIN(1); W_JOIN(2); W_JOIN(3);
        W_JOIN(4); W_JOIN(5); W_JOIN(6); W_JOIN(7);
        for (int s = 0; s < steps; ++s, ++ap) {
            const float16 b = LOADU16(xb + koff[s]);
            FOR_ROWS(W_STEP);
        }
        W_SPLIT(0); W_SPLIT(1); W_SPLIT(2); W_SPLIT(3);
        W_SPLIT(4); W_SPLIT(5); W_SPLIT(6); W_SPLIT(7);
#else
        for (int s = 0; s < steps; ++s, ++ap) {
            __global const float *q = xb + koff[s];
            const float8 b0 = LOADU8(q), b1 = LOADU8(q + 8);
            FOR_ROWS(A_STEP);
        }
#endif
    }
    FOR_ROWS(OUT_STORE);
}

// out[n][i][p] = act(sum_k A[i][k] * B_n[k][p] + bias[i] + residual[n][i][p]) for the M
// output channels i, KS = C * R * S taps k (A: the weights, row-major), OH * OW pixels p.
__kernel __attribute__((reqd_work_group_size(1, 1, 1)))
void conv_implicit(int M, int NP, int KS, __global const float *restrict A,
                   __global const float *restrict xp, int x_img, int x_len,
                   __global const int *restrict koff, int koff_max, int WP, int OW,
                   int row_blocks, int col_blocks, __global float *restrict out, int img,
                   int lr, __global const float *restrict bias, int has_bias,
                   __global const float *restrict residual, int has_res, int act,
                   int mblk, int nblk)
{
    const int ib = get_global_id(0);
    const int jb = get_global_id(1);
    const int n = get_global_id(2);
    if (ib >= row_blocks || jb >= col_blocks)
        return;
    xp += (size_t)n * x_img;
    out += (size_t)n * img;
    residual += has_res ? (size_t)n * img : 0;
    // Columns j0.. of every row of B lie in the buffer while j0 + 16 <= x_left.
    const int x_left = x_len - n * x_img - koff_max;
    for (int s0 = 0; s0 < KS; s0 += KC) {
        const int steps = MIN(KC, KS - s0);
        const int accumulate = s0 > 0;
        const int final = s0 + KC >= KS;
        for (int jp = 0; jp < nblk; ++jp) {
            const int j0 = (jb * nblk + jp) * 16;
            if (j0 >= NP)
                break;
            // A panel that would read past the buffer reads the 16 columns ending there
            // instead (shift back), storing only its own (the others are its
            // neighbour's: off -1); with fewer than 16 columns in all, element-wise.
            const int shift = j0 + 16 > x_left && x_left >= 16 ? j0 + 16 - x_left : 0;
            const int jr = j0 - shift;  // the first column read
            const int ncols = MIN(16, NP - jr);
            const int oh0 = jr / WP, ow0 = jr - oh0 * WP;
            const int base = oh0 * OW + MIN(ow0, OW);  // (offsets from it are >= 0)
            // (WP == OW: no dropped columns, so an image's columns are its pixels in order)
            const int contig = ncols == 16 && !shift && (WP == OW || ow0 + 16 <= OW);
            int off[16];
            if (!contig) {
                int oh = oh0, ow = ow0;
                for (int c = 0; c < 16; ++c) {
                    off[c] = c >= shift && c < ncols && ow < OW ? oh * OW + ow - base : -1;
                    if (++ow == WP) {
                        ow = 0;
                        ++oh;
                    }
                }
            }
            const int safe = jr + 16 <= x_left;
            for (int ip = 0; ip < mblk; ++ip) {
                const int rows = ib * mblk + ip;
                const int valid = MIN(MR, M - rows * MR);
                if (valid <= 0)
                    break;
                const size_t r0 = (size_t)rows * MR;
                micro_tile_implicit(steps, A + r0 * KS + s0, KS, xp + jr, koff + s0, safe,
                                    x_left - jr, out + base + r0 * lr, lr, contig, off,
                                    ncols, accumulate, valid, final,
                                    bias + (has_bias ? r0 : 0), has_bias, 1, 0,
                                    residual + (has_res ? base + r0 * lr : 0), has_res, act);
            }
        }
    }
}
