// A broadcasting float32 binary op over shapes collapsed to at most three dimensions
// (hwbench/backends/opencl/broadcast.py): out is C-contiguous (d0, d1, d2), each operand
// read through its own three strides (0 along a broadcast dimension), all passed by
// value: no index table, no loop over the rank. OP (a -D define) picks the operation at
// build time.

#ifndef OP
#define OP 0
#endif

// ONNX Max/Min propagate NaN (fmax/fmin would drop it).
inline float nan_max(float a, float b) { return isnan(a) || isnan(b) ? a + b : fmax(a, b); }
inline float nan_min(float a, float b) { return isnan(a) || isnan(b) ? a + b : fmin(a, b); }

inline float apply(float x, float y)
{
#if OP == 0
    return x + y;
#elif OP == 1
    return x * y;
#elif OP == 2
    return x - y;
#elif OP == 3
    return x / y;
#elif OP == 4
    return pow(x, y);
#elif OP == 5
    return nan_max(x, y);
#elif OP == 6
    return nan_min(x, y);
#else
    return fmod(x, y);
#endif
}

// Each operand steps by 1 or 0 along the innermost axis (the output's last axis of
// extent > 1): eight outputs per work-item as float8, no divisions.
// Work-items: (d2 / 8 rounded up, d1, d0).
inline float8 load8(__global const float *p, int step)
{
    return step ? LOADU8(p) : (float8)(p[0]);
}

__kernel void binary3(int d1, int d2, __global const float *restrict a, int a0, int a1,
                          int a2, __global const float *restrict b, int b0, int b1, int b2,
                          __global float *restrict out)
{
    const int x = get_global_id(0) * 8;
    const int y = get_global_id(1);
    const int z = get_global_id(2);
    if (x >= d2 || y >= d1)
        return;
    __global const float *pa = a + z * a0 + y * a1 + x * a2;
    __global const float *pb = b + z * b0 + y * b1 + x * b2;
    __global float *po = out + ((size_t)z * d1 + y) * d2 + x;
    if (x + 8 <= d2) {
        const float8 va = load8(pa, a2), vb = load8(pb, b2);
#if OP == 0
        STOREU8(va + vb, po);
#elif OP == 1
        STOREU8(va * vb, po);
#else
        float ra[8], rb[8], ro[8];
        vstore8(va, 0, ra);
        vstore8(vb, 0, rb);
        for (int j = 0; j < 8; ++j)
            ro[j] = apply(ra[j], rb[j]);
        STOREU8(vload8(0, ro), po);
#endif
        return;
    }
    for (int j = 0; j < d2 - x; ++j)
        po[j] = apply(pa[j * a2], pb[j * b2]);
}

// Where (condition bytes, nonzero true ? x : y) over the same collapsed three dimensions,
// three operands with their own strides (GPT-2's causal mask: (1, 1, S, S) against
// (1, 12, S, S) and a scalar): eight outputs per work-item, no index divisions (the
// general kernel's per-element rank loop ran 9 ms per mask at 12x128x128 on PoCL).
// Work-items: (d2 / 8 rounded up, d1, d0).
__kernel void where3(int d1, int d2, __global const uchar *restrict c, int c0, int c1, int c2,
                     __global const float *restrict a, int a0, int a1, int a2,
                     __global const float *restrict b, int b0, int b1, int b2,
                     __global float *restrict out)
{
    const int x = get_global_id(0) * 8;
    const int y = get_global_id(1);
    const int z = get_global_id(2);
    if (x >= d2 || y >= d1)
        return;
    __global const uchar *pc = c + z * c0 + y * c1 + x * c2;
    __global const float *pa = a + z * a0 + y * a1 + x * a2;
    __global const float *pb = b + z * b0 + y * b1 + x * b2;
    __global float *po = out + ((size_t)z * d1 + y) * d2 + x;
    const int lanes = min(8, d2 - x);
    for (int j = 0; j < lanes; ++j)
        po[j] = pc[j * c2] ? pa[j * a2] : pb[j * b2];
}
