// The grouped GEMM's (g, K/g, N * OH * OW) result, rows ldc apart and groups ldg apart,
// to NCHW, with the fused epilogue relu?(acc + bias[k] + residual) (relu: 0 none, 1 relu,
// 2 relu6, min(max(v, 0), 6); with activation.cl prepended, any of its codes). Shared by the float32
// conv (ACC_T float, appended to conv.cl) and the int8 convs (ACC_T int, no epilogue,
// appended to the int8 kernels). Each work-item does RUN consecutive pixels: 16 on CPUs
// (PoCL runs per-pixel work-items of this kernel as scalar code, their bounds checks
// diverging), 1 on GPUs (coalesced).

#ifndef ACC_T
#define ACC_T float
#endif
#ifndef RUN
#define RUN 1
#endif

__kernel void col2output(__global const ACC_T *restrict acc, int K, int kg, int N, int OHW,
                         int ldc, int ldg, __global const ACC_T *restrict bias, int has_bias,
                         __global const ACC_T *restrict residual, int has_residual,
                         int relu, __global ACC_T *restrict out)
{
    const int p0 = get_global_id(0) * RUN;
    const int k = get_global_id(1);
    const int n = get_global_id(2);
    if (p0 >= OHW || k >= K || n >= N)
        return;
    __global const ACC_T *src =
        acc + (size_t)(k / kg) * ldg + (size_t)(k % kg) * ldc + (size_t)n * OHW + p0;
    const size_t o = ((size_t)n * K + k) * OHW + p0;
    const ACC_T b = has_bias ? bias[k] : (ACC_T)0;
    const int left = OHW - p0;
    for (int t = 0; t < RUN; ++t) {
        if (t < left) {
            ACC_T v = src[t];
            if (has_bias)
                v += b;
            if (has_residual)
                v += residual[o + t];
#ifdef ACTIVATION_CL  // the float conv: activation.cl's codes
            ACTIVATE(ACC_T, v, relu);
#else
            if (relu)
                v = v > (ACC_T)0 ? v : (ACC_T)0;
            if (relu == 2)
                v = v < (ACC_T)6 ? v : (ACC_T)6;
#endif
            out[o + t] = v;
        }
    }
}
