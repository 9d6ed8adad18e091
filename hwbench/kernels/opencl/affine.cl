// ChannelAffine (hwbench/graph/ops/channel_affine.py) on NCHW float32: y = x * scale[c] +
// shift[c], then max(y, 0) if relu, in one pass: DenseNet's folded BatchNormalization and
// Relu were three. One work-item per plane (n, c) walks it in float8 blocks (vec8.cl),
// work-groups (1, 16). The multiply and the add are rounded separately, as the Mul and
// Add kernels round them (no contraction into an FMA): the same values bit for bit.
#pragma OPENCL FP_CONTRACT OFF

__kernel void channel_affine(__global const float *restrict x, int C, int HW, int planes,
                             __global const float *restrict scale,
                             __global const float *restrict shift, int has_shift, int relu,
                             __global float *restrict y)
{
    const int plane = get_global_id(1);
    if (plane >= planes)
        return;
    const int c = plane % C;
    const float a = scale[c], b = has_shift ? shift[c] : 0.0f;
    __global const float *src = x + (size_t)plane * HW;
    __global float *dst = y + (size_t)plane * HW;
    int i = 0;
    for (; i + 8 <= HW; i += 8) {
        float8 v = LOADU8(src + i) * a;
        if (has_shift)
            v = v + b;
        if (relu)
            v = v > (float8)(0.0f) ? v : (float8)(0.0f);
        STOREU8(v, dst + i);
    }
    for (; i < HW; ++i) {
        float v = src[i] * a;
        if (has_shift)
            v = v + b;
        if (relu)
            v = v > 0.0f ? v : 0.0f;
        dst[i] = v;
    }
}
