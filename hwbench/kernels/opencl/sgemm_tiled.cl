// SGEMM for GPUs: work-group tiles of C staged through local memory.
//
// A work-group of (TSN / WPTN) x (TSM / WPTM) work-items computes a TSM x TSN tile of C;
// each work-item a WPTM x WPTN block of it, in registers, strided by the work-group's
// extent so that neighbouring work-items touch neighbouring addresses. K advances
// TSK at a time: the work-group loads op(A)'s TSM x TSK and op(B)'s TSK x TSN slices
// into local memory (bounds-checked, zero past the edges), then every work-item reads
// them from there. Element (i, k) of op(A) sits at A[i * a_rs + k * a_cs] (a transpose
// swaps the strides), likewise B; group g = get_global_id(2) offsets A, B and C by
// g * a_bs, g * b_bs, g * c_bs. C = op(A) op(B) (+ bias[i * bias_rs + j * bias_cs]).

#ifndef TSM
#define TSM 64
#endif
#ifndef TSN
#define TSN 64
#endif
#ifndef TSK
#define TSK 16
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

__kernel __attribute__((reqd_work_group_size(RTSN, RTSM, 1)))
void sgemm_tiled(int M, int N, int K, __global const float *restrict A, int a_rs, int a_cs,
                 int a_bs, __global const float *restrict B, int b_rs, int b_cs, int b_bs,
                 __global float *restrict C, int ldc, int c_bs,
                 __global const float *restrict bias, int has_bias, int bias_rs, int bias_cs)
{
    __local float As[TSK][TSM];
    __local float Bs[TSK][TSN];
    const int tn = get_local_id(0);
    const int tm = get_local_id(1);
    const int tid = tm * RTSN + tn;
    const int j0 = get_group_id(0) * TSN;
    const int i0 = get_group_id(1) * TSM;
    const int g = get_global_id(2);
    A += (size_t)g * a_bs;
    B += (size_t)g * b_bs;
    C += (size_t)g * c_bs;

    float acc[WPTM][WPTN];
    for (int wm = 0; wm < WPTM; ++wm)
        for (int wn = 0; wn < WPTN; ++wn)
            acc[wm][wn] = 0.0f;

    for (int k0 = 0; k0 < K; k0 += TSK) {
        for (int e = tid; e < TSM * TSK; e += THREADS) {
            const int m = e % TSM, k = e / TSM;
            const int i = i0 + m, kk = k0 + k;
            As[k][m] = (i < M && kk < K) ? A[(size_t)i * a_rs + (size_t)kk * a_cs] : 0.0f;
        }
        for (int e = tid; e < TSN * TSK; e += THREADS) {
            const int n = e % TSN, k = e / TSN;
            const int j = j0 + n, kk = k0 + k;
            Bs[k][n] = (j < N && kk < K) ? B[(size_t)kk * b_rs + (size_t)j * b_cs] : 0.0f;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int k = 0; k < TSK; ++k) {
            float b_reg[WPTN];
            for (int wn = 0; wn < WPTN; ++wn)
                b_reg[wn] = Bs[k][tn + wn * RTSN];
            for (int wm = 0; wm < WPTM; ++wm) {
                const float a = As[k][tm + wm * RTSM];
                for (int wn = 0; wn < WPTN; ++wn)
                    acc[wm][wn] = a * b_reg[wn] + acc[wm][wn];
            }
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    for (int wm = 0; wm < WPTM; ++wm) {
        const int i = i0 + tm + wm * RTSM;
        for (int wn = 0; wn < WPTN; ++wn) {
            const int j = j0 + tn + wn * RTSN;
            if (i < M && j < N) {
                float v = acc[wm][wn];
                if (has_bias)
                    v += bias[(size_t)i * bias_rs + (size_t)j * bias_cs];
                C[(size_t)i * ldc + j] = v;
            }
        }
    }
}
