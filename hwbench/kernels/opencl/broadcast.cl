// A broadcasting float32 binary op over shapes collapsed to at most three dimensions
// (hwbench/backends/opencl/broadcast.py): out is C-contiguous (d0, d1, d2), each operand
// read through its own three strides (0 along a broadcast dimension). One output element
// per work-item, its coordinates from two divisions by values passed by value: no index
// table, no loop over the rank. OP (a -D define) picks the operation at build time.

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

__kernel void binary3(int n, int d1, int d2, __global const float *restrict a, int a0, int a1,
                      int a2, __global const float *restrict b, int b0, int b1, int b2,
                      __global float *restrict out)
{
    const int i = get_global_id(0);
    if (i >= n)
        return;
    const int x = i % d2;
    const int rest = i / d2;
    const int y = rest % d1;
    const int z = rest / d1;
    out[i] = apply(a[z * a0 + y * a1 + x * a2], b[z * b0 + y * b1 + x * b2]);
}
