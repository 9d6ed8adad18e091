// LayerNormalization, ReduceX and batched MatMul on float32.

#define LN_LOCAL 64

// LayerNormalization of a (rows, cols) tensor: one work-group of LN_LOCAL work-items per
// row; two passes (mean, then the mean of squared deviations), each a strided partial sum
// per work-item reduced in local memory. has_bias 0: bias is ignored; stats 1: the row's
// mean and 1/sqrt(var + eps) are written to mean_out / inv_out.
__kernel void layer_norm(__global const float *restrict x, __global const float *restrict scale,
                         __global const float *restrict bias, int has_bias, int cols, int rows,
                         float eps, int stats, __global float *restrict y,
                         __global float *restrict mean_out, __global float *restrict inv_out)
{
    __local float part[LN_LOCAL];
    const int row = get_group_id(0);
    const int lid = get_local_id(0);
    if (row >= rows)
        return;  // the whole work-group: row is uniform across it
    __global const float *xr = x + (size_t)row * cols;
    float s = 0.0f;
    for (int i = lid; i < cols; i += LN_LOCAL)
        s += xr[i];
    part[lid] = s;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int w = LN_LOCAL / 2; w > 0; w >>= 1) {
        if (lid < w)
            part[lid] += part[lid + w];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    const float mean = part[0] / (float)cols;
    barrier(CLK_LOCAL_MEM_FENCE);
    float q = 0.0f;
    for (int i = lid; i < cols; i += LN_LOCAL) {
        const float d = xr[i] - mean;
        q += d * d;
    }
    part[lid] = q;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int w = LN_LOCAL / 2; w > 0; w >>= 1) {
        if (lid < w)
            part[lid] += part[lid + w];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    const float inv = 1.0f / sqrt(part[0] / (float)cols + eps);
    __global float *yr = y + (size_t)row * cols;
    for (int i = lid; i < cols; i += LN_LOCAL) {
        float v = (xr[i] - mean) * inv * scale[i];
        if (has_bias)
            v += bias[i];
        yr[i] = v;
    }
    if (stats && lid == 0) {
        mean_out[row] = mean;
        inv_out[row] = inv;
    }
}

// ONNX ReduceX: one work-item per output value. meta holds the kept dimensions and their
// input strides, then the reduced dimensions and theirs (elements); count is the number
// of values each output combines. op: 0 sum, 1 mean, 2 max, 3 min, 4 prod, 5 l1, 6 l2,
// 7 sum_square, 8 log_sum, 9 log_sum_exp (max subtracted first).
__kernel void reduce(__global const float *restrict x, int n_out, int kept_rank, int red_rank,
                     int count, int op, __global const int *restrict meta,
                     __global float *restrict y)
{
    const int o = get_global_id(0);
    if (o >= n_out)
        return;
    size_t base = 0;
    int rem = o;
    for (int d = kept_rank - 1; d >= 0; --d) {
        const int i = rem % meta[d];
        rem /= meta[d];
        base += (size_t)i * meta[kept_rank + d];
    }
    __global const int *rdims = meta + 2 * kept_rank;
    __global const int *rstrides = rdims + red_rank;
    float top = 0.0f;
    if (op == 9) {
        top = -INFINITY;
        for (int r = 0; r < count; ++r) {
            size_t off = base;
            int q = r;
            for (int d = red_rank - 1; d >= 0; --d) {
                off += (size_t)(q % rdims[d]) * rstrides[d];
                q /= rdims[d];
            }
            top = fmax(top, x[off]);
        }
    }
    float acc = op == 2 ? -INFINITY : op == 3 ? INFINITY : op == 4 ? 1.0f : 0.0f;
    for (int r = 0; r < count; ++r) {
        size_t off = base;
        int q = r;
        for (int d = red_rank - 1; d >= 0; --d) {
            off += (size_t)(q % rdims[d]) * rstrides[d];
            q /= rdims[d];
        }
        const float v = x[off];
        switch (op) {
        case 2: acc = fmax(acc, v); break;
        case 3: acc = fmin(acc, v); break;
        case 4: acc *= v; break;
        case 5: acc += fabs(v); break;
        case 6:
        case 7: acc += v * v; break;
        case 9: acc += exp(v - top); break;
        default: acc += v;
        }
    }
    if (op == 1)
        acc /= (float)count;
    else if (op == 6)
        acc = sqrt(acc);
    else if (op == 8)
        acc = log(acc);
    else if (op == 9)
        acc = log(acc) + top;
    y[o] = acc;
}

// Batched MatMul: y[b] = a[b'] @ b[b''] with broadcast batch dimensions. One work-item per
// output value (column, row, batch); meta holds the batch dimensions, then a's and b's
// batch strides in elements (0 where that operand broadcasts).
__kernel void batched_matmul(__global const float *restrict a, __global const float *restrict b,
                             int m, int n, int k, int batches, int rank,
                             __global const int *restrict meta, __global float *restrict y)
{
    const int j = get_global_id(0);
    const int i = get_global_id(1);
    const int t = get_global_id(2);
    if (j >= n || i >= m || t >= batches)
        return;
    size_t a_off = 0, b_off = 0;
    int rem = t;
    for (int d = rank - 1; d >= 0; --d) {
        const int idx = rem % meta[d];
        rem /= meta[d];
        a_off += (size_t)idx * meta[rank + d];
        b_off += (size_t)idx * meta[2 * rank + d];
    }
    __global const float *ar = a + a_off + (size_t)i * k;
    __global const float *bc = b + b_off + j;
    float acc = 0.0f;
    for (int p = 0; p < k; ++p)
        acc += ar[p] * bc[(size_t)p * n];
    y[((size_t)t * m + i) * n + j] = acc;
}
