// The unary family (spec.UNARY_OPS): one kernel per op, unary_<op>(n, alpha, beta, x, y),
// made by one macro from the op's expression in v (a float8, then a float for the last
// n % 8 values), alpha and beta. As elementwise.cl: the host launches one work-item per
// float8 and the loops stride by the grid's size, so any grid is correct.

#define FOR_EACH8(i, n) for (int i = get_global_id(0); i < (n) / 8; i += get_global_size(0))
#define FOR_TAIL(i, n) \
    for (int i = (n) / 8 * 8 + get_global_id(0); i < (n); i += get_global_size(0))

// T: the type of v (float8, then float) for the expressions that need it.
#define UNARY(op, EXPR) \
__kernel void unary_##op(int n, float alpha, float beta, __global const float *restrict x, \
                         __global float *restrict y) \
{ \
    FOR_EACH8(i, n) { \
        typedef float8 T; \
        const float8 v = ((__global const float8 *)x)[i]; \
        ((__global float8 *)y)[i] = (EXPR); \
    } \
    FOR_TAIL(i, n) { \
        typedef float T; \
        const float v = x[i]; \
        y[i] = (EXPR); \
    } \
}

// clamp(h, 0, 1) as compares (PoCL 3.0 calls clamp() and select() out of line; NaN -> 0
// either way), the same expression as activation.cl's fused hard_swish / hard_sigmoid.
#define UNIT_CLAMP_U(h) ((h) > (T)(0.0f) ? ((h) < (T)(1.0f) ? (h) : (T)(1.0f)) : (T)(0.0f))

UNARY(erf, erf(v))
UNARY(sqrt, sqrt(v))
// ONNX: a min above max sets every value to max (the host lowers alpha to beta then)
UNARY(clip, fmin(fmax(v, alpha), beta))
UNARY(hard_sigmoid, UNIT_CLAMP_U(alpha * v + beta))
UNARY(hard_swish, v * UNIT_CLAMP_U(alpha * v + beta))
UNARY(tanh, tanh(v))
UNARY(gelu, 0.5f * v * (1.0f + erf(v * 0.70710678118654752f)))
UNARY(gelu_tanh, 0.5f * v * (1.0f + tanh(0.79788456080286536f * (v + 0.044715f * v * v * v))))
UNARY(leaky_relu, v >= (T)(0.0f) ? v : alpha * v)
UNARY(exp, exp(v))
UNARY(log, log(v))
UNARY(abs, fabs(v))
UNARY(neg, -v)
UNARY(reciprocal, 1.0f / v)
// log(1 + e^v) without overflow for large v
UNARY(softplus, fmax(v, 0.0f) + log1p(exp(-fabs(v))))
UNARY(elu, select(alpha * expm1(fmin(v, 0.0f)), v, v > 0.0f))
UNARY(sin, sin(v))
UNARY(cos, cos(v))
UNARY(floor, floor(v))
UNARY(ceil, ceil(v))
