// ONNX Cast, one element per work-item (the loop strides by the grid). Built per pair of
// types: S and D are the source and destination element types (bool is uchar 0/1, half
// is read and written through vload_half/vstore_half, core OpenCL without cl_khr_fp16).
// C's conversion truncates float -> integer toward zero, as ONNX Cast does.

#if FP64
#pragma OPENCL EXTENSION cl_khr_fp64 : enable
#endif

#define FOR_EACH(i, n) for (int i = get_global_id(0); i < (n); i += get_global_size(0))

#if S_HALF
#define LOAD(i) vload_half((i), x)
#else
#define LOAD(i) x[i]
#endif

#if D_HALF
#define STORE(i, v) vstore_half((HALF_VIA)(v), (i), y)
#elif D_BOOL
#define STORE(i, v) y[i] = (uchar)((v) != 0)
#else
#define STORE(i, v) y[i] = (D)(v)
#endif

__kernel void cast(int n, __global const S *restrict x, __global D *restrict y) {
    FOR_EACH(i, n) { STORE(i, LOAD(i)); }
}
