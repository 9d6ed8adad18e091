// ONNX LRN on CPUs (normalization.cl's lrn, the same expression per pixel): one work-item
// per (channel c, image n) walks the plane in float8 blocks (vec8.cl's unaligned moves),
// work-groups (1, 16, 1); the plane's last HW % 8 pixels one by one. PoCL ran the float8
// per work-item form with vload8/vstore8 out of line. base^beta: exp2(beta * log2(base)) as
// there, but for beta = 0.75 (Inception's, AlexNet's) sqrt(base) * sqrt(sqrt(base)): PoCL's
// float8 exp2 and log2 took ~90 % of the kernel, its sqrt is one instruction; within a
// few ulp of each other (each sqrt correctly rounded).
#define LRN_POW(base, beta) \
    ((beta) == 0.75f ? sqrt(base) * sqrt(sqrt(base)) : exp2((beta) * log2(base)))
__kernel void lrn_rows(__global const float *restrict x, int C, int HW, int N, int size,
                       float alpha_over_size, float beta, float bias,
                       __global float *restrict y)
{
    const int c = get_global_id(1);
    const int n = get_global_id(2);
    if (c >= C || n >= N)
        return;
    const int before = (size - 1) / 2;
    const int lo = c - before > 0 ? c - before : 0;
    const int hi = c + size - 1 - before < C - 1 ? c + size - 1 - before : C - 1;
    __global const float *image = x + (size_t)n * C * HW;
    __global const float *own = image + (size_t)c * HW;
    __global float *dst = y + ((size_t)n * C + c) * HW;
    int p = 0;
    for (; p + 8 <= HW; p += 8) {
        float8 sum = (float8)(0.0f);
        for (int i = lo; i <= hi; ++i) {
            const float8 v = LOADU8(image + (size_t)i * HW + p);
            sum += v * v;
        }
        const float8 base = bias + alpha_over_size * sum;
        STOREU8(LOADU8(own + p) / LRN_POW(base, beta), dst + p);
    }
    for (; p < HW; ++p) {
        float sum = 0.0f;
        for (int i = lo; i <= hi; ++i) {
            const float v = image[(size_t)i * HW + p];
            sum += v * v;
        }
        const float base = bias + alpha_over_size * sum;
        dst[p] = own[p] / LRN_POW(base, beta);
    }
}
