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

// The offset in x of element c0 of row ``row`` of a take_rows output: the last axis' run
// starts at its table's first entry (stride 1), the other axes read their tables.
inline long row_offset(int row, int c0, __global const int *restrict meta,
                       __global const int *restrict tables)
{
    const int rank = meta[0];
    int rest = row;
    long offset = tables[meta[3 * rank]] + c0;
    for (int d = rank - 2; d >= 0; --d) {
        const int extent = meta[1 + d];
        offset += (long)tables[meta[1 + 2 * rank + d] + rest % extent] * meta[1 + rank + d];
        rest /= extent;
    }
    return offset;
}

// take when the last axis' table is one contiguous run (Slice and Split along the last
// axis, GPT-2's q/k/v out of one (S, 3 * 768) product, or any slice of leading axes) and
// nothing is filled: the row's offset from the tables once per 16 elements, then a plain
// copy (take's per-element rank loop ran 6 ns an element on PoCL). len = the run's length,
// rows = the product of the other take_shape extents. Work-items: (len / 16 rounded up,
// rows).
__kernel void take_rows(int rows, int len, __global const int *restrict meta,
                        __global const int *restrict tables, __global const T *restrict x,
                        __global T *restrict out)
{
    const int c0 = get_global_id(0) * 16;
    const int row = get_global_id(1);
    if (c0 >= len || row >= rows)
        return;
    __global const T *src = x + row_offset(row, c0, meta, tables);
    __global T *dst = out + (size_t)row * len + c0;
    if (c0 + 16 <= len) {
        for (int t = 0; t < 16; ++t)
            dst[t] = src[t];
    } else {
        for (int t = 0; t < len - c0; ++t)
            dst[t] = src[t];
    }
}

// take_rows for long rows (a channel Gather's whole planes): a work-item per eight
// elements and work-groups along the row, which PoCL vectorizes across (its work-items
// in dimension 0); take_rows' work-groups of 16 rows ran 2.4x slower on 3136-long rows.
// Work-items: (len / 8 rounded up, rows).
__kernel void take_rows8(int rows, int len, __global const int *restrict meta,
                         __global const int *restrict tables, __global const T *restrict x,
                         __global T *restrict out)
{
    const int c0 = get_global_id(0) * 8;
    const int row = get_global_id(1);
    if (c0 >= len || row >= rows)
        return;
    __global const T *src = x + row_offset(row, c0, meta, tables);
    __global T *dst = out + (size_t)row * len + c0;
    const int count = min(8, len - c0);
    for (int t = 0; t < count; ++t)
        dst[t] = src[t];
}
