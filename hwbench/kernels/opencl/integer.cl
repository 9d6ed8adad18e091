// Integer and bool kernels, built per element type T (int, long, uchar for bool; float
// for cumsum and argmax/argmin): exact integer arithmetic, wrapping on overflow (done in
// the unsigned type UT, where C defines it), integer division truncating toward zero,
// x / 0 and x % 0 giving 0 (ONNX leaves them undefined), one output element per
// work-item (the loop strides by the grid). meta = [rank, shape[rank], strides of each
// operand[rank]...] (0 along broadcast axes), as binary.cl reads it.

#define FOR_EACH(i, n) for (int i = get_global_id(0); i < (n); i += get_global_size(0))

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

#if !IS_FLOAT
inline T wrap_neg(T x) { return (T)((UT)0 - (UT)x); }

// op: 0 add, 1 sub, 2 mul, 3 div, 4 mod (divisor's sign), 5 fmod (dividend's sign),
// 6 max, 7 min, 8 and, 9 or, 10 xor (8-10 on bool: 0/1 bytes)
__kernel void int_binary(int n, __global const int *restrict meta,
                         __global const T *restrict a, __global const T *restrict b,
                         __global T *restrict out, int op)
{
    FOR_EACH(i, n) {
        int off[2];
        OFFSETS(meta, i, 2, off);
        const T x = a[off[0]], y = b[off[1]];
        T r;
        switch (op) {
        case 0: r = (T)((UT)x + (UT)y); break;
        case 1: r = (T)((UT)x - (UT)y); break;
        case 2: r = (T)((UT)x * (UT)y); break;
        case 3: r = y == 0 ? (T)0 : y == (T)-1 ? wrap_neg(x) : (T)(x / y); break;
        case 4: {
            T m = (y == 0 || y == (T)-1) ? (T)0 : (T)(x % y);
            if (m != 0 && ((m < 0) != (y < 0)))
                m += y;
            r = m;
            break;
        }
        case 5: r = (y == 0 || y == (T)-1) ? (T)0 : (T)(x % y); break;
        case 6: r = x > y ? x : y; break;
        case 7: r = x < y ? x : y; break;
        case 8: r = (T)((x != 0) && (y != 0)); break;
        case 9: r = (T)((x != 0) || (y != 0)); break;
        default: r = (T)((x != 0) != (y != 0)); break;
        }
        out[i] = r;
    }
}

// op: 0 neg, 1 abs (wrapping: abs(INT_MIN) is INT_MIN), 2 not (bool)
__kernel void int_unary(int n, __global const T *restrict x, __global T *restrict out, int op)
{
    FOR_EACH(i, n) {
        const T v = x[i];
        out[i] = op == 0 ? wrap_neg(v) : op == 1 ? (v < 0 ? wrap_neg(v) : v) : (T)(v == 0);
    }
}

// op: 0 equal, 1 less, 2 greater, 3 less_equal, 4 greater_equal; out bool bytes
__kernel void compare_int(int n, __global const int *restrict meta,
                          __global const T *restrict a, __global const T *restrict b,
                          __global uchar *restrict out, int op)
{
    FOR_EACH(i, n) {
        int off[2];
        OFFSETS(meta, i, 2, off);
        const T x = a[off[0]], y = b[off[1]];
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

// condition (bool or uint8 bytes, nonzero true) ? x : y
__kernel void where_int(int n, __global const int *restrict meta,
                        __global const uchar *restrict condition, __global const T *restrict x,
                        __global const T *restrict y, __global T *restrict out)
{
    FOR_EACH(i, n) {
        int off[3];
        OFFSETS(meta, i, 3, off);
        out[i] = condition[off[0]] ? x[off[1]] : y[off[2]];
    }
}
#define ADD(s, v) ((T)((UT)(s) + (UT)(v)))
#define IS_NAN(v) 0
#else
#define ADD(s, v) ((s) + (v))
#define IS_NAN(v) isnan(v)
#endif

// One work-item per line along the axis: x viewed as (outer, len, inner).
__kernel void cumsum(int lines, int len, int inner, __global const T *restrict x,
                     __global T *restrict out, int exclusive, int reverse)
{
    FOR_EACH(l, lines) {
        const int base = (l / inner) * len * inner + l % inner;
        T s = (T)0;
        for (int k = 0; k < len; ++k) {
            const int at = base + (reverse ? len - 1 - k : k) * inner;
            const T v = x[at];
            if (exclusive) {
                out[at] = s;
                s = ADD(s, v);
            } else {
                s = ADD(s, v);
                out[at] = s;
            }
        }
    }
}

// The index of the first (select_last: last) maximum (is_min: minimum) of each line;
// NaN is the extreme, as NumPy's argmax/argmin make it.
__kernel void arg_reduce(int lines, int len, int inner, __global const T *restrict x,
                         __global long *restrict out, int is_min, int select_last)
{
    FOR_EACH(l, lines) {
        const int base = (l / inner) * len * inner + l % inner;
        T best = x[base];
        int at = 0;
        for (int k = 1; k < len; ++k) {
            const T v = x[base + k * inner];
            int take;
            if (IS_NAN(best))
                take = select_last && IS_NAN(v);
            else if (IS_NAN(v))
                take = 1;
            else
                take = is_min ? (select_last ? v <= best : v < best)
                              : (select_last ? v >= best : v > best);
            if (take) {
                best = v;
                at = k;
            }
        }
        out[l] = (long)at;
    }
}
