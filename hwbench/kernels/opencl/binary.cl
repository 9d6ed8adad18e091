// Broadcasting binary arithmetic, comparisons and Where (select), float32, one output
// element per work-item (the loop strides by the grid, so any grid is correct).
// meta = [rank, shape[rank], strides of each operand[rank]...] (strides in elements, 0
// along broadcast axes) for the C-order output index i.

#define FOR_EACH(i, n) for (int i = get_global_id(0); i < (n); i += get_global_size(0))

// The offsets of output element i in `count` operands (at most 3).
#define OFFSETS(meta, i, count, off)                                    \
    do {                                                                \
        const int rank_ = (meta)[0];                                    \
        int rest_ = (i);                                                \
        for (int k_ = 0; k_ < (count); ++k_)                            \
            (off)[k_] = 0;                                              \
        for (int d_ = rank_ - 1; d_ >= 0; --d_) {                       \
            const int extent_ = (meta)[1 + d_];                         \
            const int coord_ = rest_ % extent_;                         \
            rest_ /= extent_;                                           \
            for (int k_ = 0; k_ < (count); ++k_)                        \
                (off)[k_] += coord_ * (meta)[1 + (k_ + 1) * rank_ + d_]; \
        }                                                               \
    } while (0)

// ONNX Max/Min propagate NaN (fmax/fmin would drop it).
inline float nan_max(float a, float b) { return isnan(a) || isnan(b) ? a + b : fmax(a, b); }
inline float nan_min(float a, float b) { return isnan(a) || isnan(b) ? a + b : fmin(a, b); }

// op: 0 sub, 1 div, 2 pow, 3 max, 4 min, 5 fmod (C's fmod: the sign of a)
__kernel void binary_op(int n, __global const int *restrict meta,
                        __global const float *restrict a, __global const float *restrict b,
                        __global float *restrict out, int op)
{
    FOR_EACH(i, n) {
        int off[2];
        OFFSETS(meta, i, 2, off);
        const float x = a[off[0]], y = b[off[1]];
        float r;
        switch (op) {
        case 0: r = x - y; break;
        case 1: r = x / y; break;
        case 2: r = pow(x, y); break;
        case 3: r = nan_max(x, y); break;
        case 4: r = nan_min(x, y); break;
        default: r = fmod(x, y); break;
        }
        out[i] = r;
    }
}

// op: 0 equal, 1 less, 2 greater, 3 less_equal, 4 greater_equal; out is bool (0/1 bytes)
__kernel void compare(int n, __global const int *restrict meta,
                      __global const float *restrict a, __global const float *restrict b,
                      __global uchar *restrict out, int op)
{
    FOR_EACH(i, n) {
        int off[2];
        OFFSETS(meta, i, 2, off);
        const float x = a[off[0]], y = b[off[1]];
        int r;
        switch (op) {
        case 0: r = x == y; break;
        case 1: r = x < y; break;
        case 2: r = x > y; break;
        case 3: r = x <= y; break;
        default: r = x >= y; break;
        }
        out[i] = (uchar)r;
    }
}

// condition (bool or uint8 bytes, nonzero true) ? x : y, exact for every value
__kernel void where(int n, __global const int *restrict meta,
                    __global const uchar *restrict condition, __global const float *restrict x,
                    __global const float *restrict y, __global float *restrict out)
{
    FOR_EACH(i, n) {
        int off[3];
        OFFSETS(meta, i, 3, off);
        out[i] = condition[off[0]] ? x[off[1]] : y[off[2]];
    }
}
