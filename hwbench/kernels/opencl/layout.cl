// Layout kernels over any element type T (float, char, uchar, int): gathers and copies.

#ifndef T
#define T float
#endif

// out[i] = x[offset(i)]: meta = [rank, out_shape[rank], x_strides[rank]] with the input's
// strides permuted into the output's axis order (a transpose).
__kernel void gather(int n, __global const int *restrict meta, __global const T *restrict x,
                     __global T *restrict out)
{
    const int i = get_global_id(0);
    if (i >= n)
        return;
    const int rank = meta[0];
    int rest = i, offset = 0;
    for (int d = rank - 1; d >= 0; --d) {
        const int extent = meta[1 + d];
        offset += (rest % extent) * meta[1 + rank + d];
        rest /= extent;
    }
    out[i] = x[offset];
}

// dst[r * dst_ld + dst_off + c] = src[r * src_ld + src_off + c] for r < rows, c < cols:
// one concat input into its slot, or a padded GEMM result out of its scratch.
__kernel void copy2d(int rows, int cols, __global const T *restrict src, int src_ld,
                     int src_off, __global T *restrict dst, int dst_ld, int dst_off)
{
    const int c = get_global_id(0);
    const int r = get_global_id(1);
    if (c < cols && r < rows)
        dst[(size_t)r * dst_ld + dst_off + c] = src[(size_t)r * src_ld + src_off + c];
}

// out[i] = x[z * s0 + y * s1 + c * s2] for the C-order index i of out's (d0, d1, d2): a
// transpose collapsed to at most three axes (hwbench/backends/opencl/permute.py), every
// size passed by value, one element per work-item.
__kernel void strided3(int n, int d1, int d2, int s0, int s1, int s2,
                       __global const T *restrict x, __global T *restrict out)
{
    const int i = get_global_id(0);
    if (i >= n)
        return;
    const int c = i % d2;
    const int rest = i / d2;
    out[i] = x[(rest / d1) * s0 + (rest % d1) * s1 + c * s2];
}

// strided3 when its last axis is contiguous (s2 = 1, ShuffleNet's channel shuffle:
// (C/g, g, H*W) rows of H*W): a work-item per 16 elements of one output row, no index
// division per element, constant-bound copies that vectorize. Work-items: (d2 / 16
// rounded up, d0 * d1).
__kernel void strided3_rows(int rows, int d1, int d2, int s0, int s1,
                            __global const T *restrict x, __global T *restrict out)
{
    const int c0 = get_global_id(0) * 16;
    const int row = get_global_id(1);
    if (c0 >= d2 || row >= rows)
        return;
    __global const T *src = x + (size_t)(row / d1) * s0 + (size_t)(row % d1) * s1 + c0;
    __global T *dst = out + (size_t)row * d2 + c0;
    if (c0 + 16 <= d2) {
        for (int t = 0; t < 16; ++t)
            dst[t] = src[t];
    } else {
        for (int t = 0; t < d2 - c0; ++t)
            dst[t] = src[t];
    }
}

// strided3 as a 2-D transpose per d0 block: the input contiguous along d1 (s1 = 1), d2
// strided (ConvNeXt's NCHW <-> NHWC: (HW, C) from (C, HW) and back): a 16 x 16 tile per
// work-item, both sides within L1, no index division per element. Work-items: (d2 / 16
// rounded up, d1 / 16 rounded up, d0).
__kernel void strided3_tiles(int d1, int d2, int s0, int s2, __global const T *restrict x,
                             __global T *restrict out)
{
    const int x0 = get_global_id(0) * 16;
    const int y0 = get_global_id(1) * 16;
    const int z = get_global_id(2);
    if (x0 >= d2 || y0 >= d1)
        return;
    const int nx = min(16, d2 - x0), ny = min(16, d1 - y0);
    __global const T *src = x + (size_t)z * s0 + y0 + (size_t)x0 * s2;
    __global T *dst = out + ((size_t)z * d1 + y0) * d2 + x0;
    for (int i = 0; i < ny; ++i)
        for (int j = 0; j < nx; ++j)
            dst[(size_t)i * d2 + j] = src[(size_t)j * s2 + i];
}
