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
// GELU (erf form). PoCL 3.0's float8 erf runs eight scalar erf calls (~7 ns an element:
// ConvNeXt-T's GELUs were a fifth of its kernel time). Here, on float8 with one vector
// exp: erfc(z) = t * exp(-z^2 + P(t)), z = |v| / sqrt(2), t = 1 / (1 + z / 2), P the
// degree-9 fit of scripts/gelu_erfc_fit.py (relative error of erfc in float32 ~4e-6 at
// z ~ 5, from exp(-z^2); ~5e-8 from the fit), and gelu = v (1 - erfc(z)/2) (v >= 0) or
// v/2 erfc(z) (v < 0): no 1 + erf(v) cancelling to a few bits for v < -3, as before.
inline float8 __attribute__((overloadable)) gelu(float8 v)
{
    const float8 neg = v < (float8)(0.0f) ? -v : v;
    const float8 z = neg * 0.70710678118654752f;
    const float8 t = (float8)(1.0f) / ((float8)(1.0f) + 0.5f * z);
    const float8 p = -1.2654269933700562f + t * (0.99820476770401f + t * (0.390318363904953f
        + t * (0.017027441412210464f + t * (0.052898507565259933f + t * (-0.17731082439422607f
        + t * (-0.5791908502578735f + t * (1.0690160989761353f + t * (-0.6436657905578613f
        + t * 0.138129323720932f))))))));
    const float8 half_erfc = 0.5f * t * exp(p - z * z);
    return v >= (float8)(0.0f) ? v * (1.0f - half_erfc) : v * half_erfc;  // +inf: +inf
}
inline float __attribute__((overloadable)) gelu(float v)
{
    return 0.5f * v * (1.0f + erf(v * 0.70710678118654752f));
}

UNARY(gelu, gelu(v))
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
