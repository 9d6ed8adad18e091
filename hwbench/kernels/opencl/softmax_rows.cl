// Softmax along the last axis on CPUs: one work-item per contiguous row (work-items
// (1, rows), work-groups (1, 16)), each pass over the row as float8 (vec8.cl's unaligned
// moves) with the vector exp, then the last L % 8 values one by one. normalization.cl's
// softmax walks a line per work-item with the scalar exp (PoCL 3.0: ~11x slower an
// element than its float8 exp) and an out-of-line fmax per value. Max first, so exp never
// overflows; NaN is skipped by the max and then spreads through the sum, as there; a row
// of only -inf gives NaN (exp(-inf - -inf)), as there.
__kernel void softmax_rows(__global const float *restrict x, int L, int rows,
                           __global float *restrict y)
{
    const int r = get_global_id(1);
    if (r >= rows)
        return;
    __global const float *src = x + (size_t)r * L;
    __global float *dst = y + (size_t)r * L;
    const int whole = L / 8 * 8;
    float8 m8 = (float8)(-INFINITY);
    for (int i = 0; i < whole; i += 8) {
        const float8 v = LOADU8(src + i);
        m8 = v > m8 ? v : m8;
    }
    float4 m4 = m8.lo > m8.hi ? m8.lo : m8.hi;
    float2 m2 = m4.lo > m4.hi ? m4.lo : m4.hi;
    float m = m2.x > m2.y ? m2.x : m2.y;
    for (int i = whole; i < L; ++i)
        m = src[i] > m ? src[i] : m;
    float8 s8 = (float8)(0.0f);
    for (int i = 0; i < whole; i += 8) {
        const float8 e = exp(LOADU8(src + i) - m);
        STOREU8(e, dst + i);
        s8 += e;
    }
    float sum = ((s8.s0 + s8.s1) + (s8.s2 + s8.s3)) + ((s8.s4 + s8.s5) + (s8.s6 + s8.s7));
    for (int i = whole; i < L; ++i) {
        const float e = exp(src[i] - m);
        dst[i] = e;
        sum += e;
    }
    const float inv = 1.0f / sum;
    for (int i = 0; i < whole; i += 8)
        STOREU8(LOADU8(dst + i) * inv, dst + i);
    for (int i = whole; i < L; ++i)
        dst[i] *= inv;
}
