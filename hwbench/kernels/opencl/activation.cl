// The float conv epilogues' activation, by the host's code (backend.ACTIVATION_CODES):
// 0 none, 1 relu, 2 relu6, 3 sigmoid, 4 silu, 5 hardswish, 6 hardsigmoid, 7 tanh; v is a
// float or a float8 of type T. Each is computed as its own kernel computes it after an
// unfused conv (relu's clamp at 0, Clip's min(max(v, 0), 6), elementwise.cl's sigmoid and
// the Mul by it, unary.cl's hard_swish / hard_sigmoid with alpha 1/6, beta 1/2, and tanh).
// Prepended to the programs that use it; guarded, so it may be included twice.
#ifndef ACTIVATION_CL
#define ACTIVATION_CL
// clamp(v, 0, 1) as two compares: PoCL 3.0 calls clamp(), fmax() and select() out of
// line (a call per float8 in the epilogue loop); NaN gives 0 either way.
#define UNIT_CLAMP(T, v) ((v) > (T)(0.0f) ? ((v) < (T)(1.0f) ? (v) : (T)(1.0f)) : (T)(0.0f))
#define ACTIVATE(T, v, code) do { \
    if ((code) == 1 || (code) == 2) v = v > (T)(0.0f) ? v : (T)(0.0f); \
    if ((code) == 2) v = v < (T)(6.0f) ? v : (T)(6.0f); \
    else if ((code) == 3) v = (T)(1.0f) / ((T)(1.0f) + exp(-v)); \
    else if ((code) == 4) v = v * ((T)(1.0f) / ((T)(1.0f) + exp(-v))); \
    else if ((code) == 5) { const T h_ = (1.0f / 6.0f) * v + 0.5f; v = v * UNIT_CLAMP(T, h_); } \
    else if ((code) == 6) { const T h_ = (1.0f / 6.0f) * v + 0.5f; v = UNIT_CLAMP(T, h_); } \
    else if ((code) == 7) v = tanh(v); \
} while (0)
#endif
