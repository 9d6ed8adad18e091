// Elementwise float32 kernels, eight floats at a time through float8 pointers (buffers
// start aligned), then the last n % 8 one by one. The host launches one work-item per
// float8 (n / 8); the loops stride by the grid's size, so any grid is still correct. On
// PoCL a float8 per work-item is 15x faster than a float (exp on float8 is one vector
// call), and 5x faster than a few work-groups per core each looping over the array
// (PoCL vectorizes across a work-group's work-items, not a loop inside one).

#define FOR_EACH8(i, n) for (int i = get_global_id(0); i < (n) / 8; i += get_global_size(0))
#define FOR_TAIL(i, n) \
    for (int i = (n) / 8 * 8 + get_global_id(0); i < (n); i += get_global_size(0))
#define F8(p) ((__global float8 *)(p))
#define CF8(p) ((__global const float8 *)(p))

// sigma(x) = 1 / (1 + exp(-x)): exp(-x) overflows to inf for x < -88.7 and the quotient
// is then exactly 0, and it underflows to 0 for large x giving exactly 1: no NaN.
__kernel void sigmoid(int n, __global const float *restrict x, __global float *restrict y)
{
    FOR_EACH8(i, n)
        F8(y)[i] = 1.0f / (1.0f + exp(-CF8(x)[i]));
    FOR_TAIL(i, n)
        y[i] = 1.0f / (1.0f + exp(-x[i]));
}

__kernel void sigmoid_backward(int n, __global const float *restrict y,
                               __global const float *restrict dy, __global float *restrict dx)
{
    FOR_EACH8(i, n) {
        const float8 v = CF8(y)[i];
        F8(dx)[i] = CF8(dy)[i] * v * (1.0f - v);
    }
    FOR_TAIL(i, n)
        dx[i] = dy[i] * y[i] * (1.0f - y[i]);
}

// fmax(v, 0) as a compare (PoCL 3.0 calls fmax() out of line: a call per float8); NaN -> 0
// either way.
#define RELU(v, T) ((v) > (T)(0.0f) ? (v) : (T)(0.0f))
__kernel void relu(int n, __global const float *restrict x, __global float *restrict y)
{
    FOR_EACH8(i, n)
        F8(y)[i] = RELU(CF8(x)[i], float8);
    FOR_TAIL(i, n)
        y[i] = RELU(x[i], float);
}

// flags[slot] = 1 if any element is NaN or infinite (the NaN screen runs on the device,
// so screening a large input costs one pass and a few bytes read, not a copy to the host).
__kernel void any_nonfinite(int n, __global const float *restrict x, __global int *flags,
                            int slot)
{
    int bad = 0;
    FOR_EACH8(i, n)
        bad |= any(isfinite(CF8(x)[i]) == 0);
    FOR_TAIL(i, n)
        bad |= !isfinite(x[i]);
    if (bad)
        flags[slot] = 1;
}

// Same-shape add (op 0) or multiply (op 1), eight floats at a time: the common case (a
// residual add), 7x faster on PoCL than the general broadcasting kernel's index math.
__kernel void binary_same(int n, __global const float *restrict a,
                          __global const float *restrict b, __global float *restrict out,
                          int op)
{
    if (op == 0) {
        FOR_EACH8(i, n)
            F8(out)[i] = CF8(a)[i] + CF8(b)[i];
        FOR_TAIL(i, n)
            out[i] = a[i] + b[i];
    } else {
        FOR_EACH8(i, n)
            F8(out)[i] = CF8(a)[i] * CF8(b)[i];
        FOR_TAIL(i, n)
            out[i] = a[i] * b[i];
    }
}

#define FOR_EACH(i, n) for (int i = get_global_id(0); i < (n); i += get_global_size(0))

// Broadcasting binary op. meta = [rank, shape[rank], a_strides[rank], b_strides[rank]]
// (strides in elements, 0 along broadcast axes), for the C-order output index i.
__kernel void binary(int n, __global const int *restrict meta, __global const float *restrict a,
                     __global const float *restrict b, __global float *restrict out, int op)
{
    const int rank = meta[0];
    FOR_EACH(i, n) {
        int rest = i, ia = 0, ib = 0;
        for (int d = rank - 1; d >= 0; --d) {
            const int extent = meta[1 + d];
            const int coord = rest % extent;
            rest /= extent;
            ia += coord * meta[1 + rank + d];
            ib += coord * meta[1 + 2 * rank + d];
        }
        out[i] = op == 0 ? a[ia] + b[ib] : a[ia] * b[ib];
    }
}
