// LayerNormalization, ReduceX and batched MatMul on float32.

#define LN_LOCAL 64

// NumPy's float32 sums, bit for bit, so LayerNormalization gives the numpy backend's bits:
// numpy's pairwise summation (loops_utils.h.src) -- fewer than 8 values in order from
// -0.0; up to 128 in 8 interleaved partial sums, combined ((0+1)+(2+3))+((4+5)+(6+7)),
// then the tail in order; more split at half rounded down to a multiple of 8 -- added to
// the reduction's initial 0. The recursion runs on a stack (depth < 32 for any int n). No
// contraction into fma in the LayerNormalization code (NumPy rounds every product and
// sum); the default (ON) again after it.
#pragma OPENCL FP_CONTRACT OFF

// Value i of the row: x[i], or (x[i] - mean)^2 when sq.
inline float ln_value(__global const float *restrict a, int i, float mean, int sq)
{
    if (!sq)
        return a[i];
    const float d = a[i] - mean;
    return d * d;
}

inline float ln_leaf(__global const float *restrict a, int off, int n, float mean, int sq)
{
    if (n < 8) {
        float r = -0.0f;
        for (int i = 0; i < n; i++)
            r += ln_value(a, off + i, mean, sq);
        return r;
    }
    float r[8];
    for (int j = 0; j < 8; j++)
        r[j] = ln_value(a, off + j, mean, sq);
    int i = 8;
    for (; i < n - n % 8; i += 8)
        for (int j = 0; j < 8; j++)
            r[j] += ln_value(a, off + i + j, mean, sq);
    float res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
    for (; i < n; i++)
        res += ln_value(a, off + i, mean, sq);
    return res;
}

float ln_pairwise_sum(__global const float *restrict a, int n, float mean, int sq)
{
    int offs[32], ns[32];
    float left[32];
    char waiting[32];  // 1: the frame waits for its left half, 2: for its right half
    int top = 0;
    offs[0] = 0;
    ns[0] = n;
    for (;;) {
        const int m = ns[top];
        if (m > 128) {
            const int h = m / 2 - (m / 2) % 8;
            waiting[top] = 1;
            offs[top + 1] = offs[top];
            ns[top + 1] = h;
            top++;
            continue;
        }
        float r = ln_leaf(a, offs[top], m, mean, sq);
        for (;;) {
            if (top == 0)
                return 0.0f + r;
            top--;
            if (waiting[top] == 1) {
                const int h = ns[top] / 2 - (ns[top] / 2) % 8;
                left[top] = r;
                waiting[top] = 2;
                offs[top + 1] = offs[top] + h;
                ns[top + 1] = ns[top] - h;
                top++;
                break;
            }
            r = left[top] + r;
        }
    }
}

// LayerNormalization of a (rows, cols) tensor: one work-group of LN_LOCAL work-items per
// row. Work-item 0 sums the row as NumPy does (ln_pairwise_sum: the mean, then the mean of
// squared deviations); all of them then normalize the row's elements, each rounded as
// NumPy rounds ((x - mean) * inv) * scale + bias. has_bias 0: bias is ignored; stats 1:
// the row's mean and 1/sqrt(var + eps) are written to mean_out / inv_out.
__kernel void layer_norm(__global const float *restrict x, __global const float *restrict scale,
                         __global const float *restrict bias, int has_bias, int cols, int rows,
                         float eps, int stats, __global float *restrict y,
                         __global float *restrict mean_out, __global float *restrict inv_out)
{
    __local float part[2];
    const int row = get_group_id(0);
    const int lid = get_local_id(0);
    if (row >= rows)
        return;  // the whole work-group: row is uniform across it
    __global const float *xr = x + (size_t)row * cols;
    if (lid == 0) {
        const float m = ln_pairwise_sum(xr, cols, 0.0f, 0) / (float)cols;
        part[0] = m;
        part[1] = ln_pairwise_sum(xr, cols, m, 1) / (float)cols;
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    const float mean = part[0];
    const float inv = 1.0f / sqrt(part[1] + eps);
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
#pragma OPENCL FP_CONTRACT ON

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
