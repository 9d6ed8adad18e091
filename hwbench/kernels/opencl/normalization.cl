// Softmax and LRN on float32.

// Softmax along an axis of length L of an (outer, L, inner) tensor: one work-item per
// (inner, outer) line, max subtracted first so exp never overflows.
__kernel void softmax(__global const float *restrict x, int L, int inner, int outer,
                      __global float *restrict y)
{
    const int in = get_global_id(0);
    const int out = get_global_id(1);
    if (in >= inner || out >= outer)
        return;
    const size_t base = (size_t)out * L * inner + in;
    float m = -INFINITY;
    for (int i = 0; i < L; ++i)
        m = fmax(m, x[base + (size_t)i * inner]);
    float sum = 0.0f;
    for (int i = 0; i < L; ++i) {
        const float e = exp(x[base + (size_t)i * inner] - m);
        y[base + (size_t)i * inner] = e;
        sum += e;
    }
    const float inv = 1.0f / sum;
    for (int i = 0; i < L; ++i)
        y[base + (size_t)i * inner] *= inv;
}

// ONNX LRN across channels: y = x / (bias + alpha / size * sum of x^2)^beta over channels
// [c - floor((size-1)/2), c + ceil((size-1)/2)] clipped to [0, C). One work-item per
// eight neighbouring pixels of one channel, as float8: (HW / 8 rounded up, c, n).
// base^beta as exp2(beta * log2(base)): PoCL's pow() with its special cases cost 300x
// NumPy on Inception's LRNs; the same for base > 0, base = 0 -> 0 and base < 0 -> NaN as
// pow() gives for a non-integer beta.
__kernel void lrn(__global const float *restrict x, int C, int HW, int N, int size,
                  float alpha_over_size, float beta, float bias, __global float *restrict y)
{
    const int p = get_global_id(0) * 8;
    const int c = get_global_id(1);
    const int n = get_global_id(2);
    if (p >= HW || c >= C || n >= N)
        return;
    const int before = (size - 1) / 2;
    const int lo = max(0, c - before), hi = min(C - 1, c + size - 1 - before);
    __global const float *image = x + (size_t)n * C * HW + p;
    __global float *dst = y + ((size_t)n * C + c) * HW + p;
    if (p + 8 <= HW) {
        float8 sum = (float8)(0.0f);
        for (int i = lo; i <= hi; ++i) {
            const float8 v = vload8(0, image + (size_t)i * HW);
            sum += v * v;
        }
        const float8 base = bias + alpha_over_size * sum;
        vstore8(vload8(0, image + (size_t)c * HW) / exp2(beta * log2(base)), 0, dst);
        return;
    }
    for (int j = 0; j < HW - p; ++j) {
        float sum = 0.0f;
        for (int i = lo; i <= hi; ++i) {
            const float v = image[(size_t)i * HW + j];
            sum += v * v;
        }
        const float base = bias + alpha_over_size * sum;
        dst[j] = image[(size_t)c * HW + j] / exp2(beta * log2(base));
    }
}
