// Run-time data movement over any element type T (float, char, uchar, int): Slice,
// Gather, Expand, Pad and Tile as one axis-wise take.

#ifndef T
#define T float
#endif

// out[i] = x[sum over axes d of tables[toff_d + c_d] * x_strides_d] for the output's
// multi-index c, or fill where any of those table entries is -1 (Pad's constant border).
// meta = [rank, out_shape[rank], x_strides[rank], toff[rank]]
__kernel void take(int n, __global const int *restrict meta, __global const int *restrict tables,
                   __global const T *restrict x, __global T *restrict out, T fill)
{
    const int i = get_global_id(0);
    if (i >= n)
        return;
    const int rank = meta[0];
    int rest = i, border = 0;
    long offset = 0;
    for (int d = rank - 1; d >= 0; --d) {
        const int extent = meta[1 + d];
        const int src = tables[meta[1 + 2 * rank + d] + rest % extent];
        border |= src < 0;
        offset += (long)src * meta[1 + rank + d];
        rest /= extent;
    }
    out[i] = border ? fill : x[offset];
}
