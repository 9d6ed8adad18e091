// Unaligned float8 loads and stores. PoCL 3.0 (LLVM 14) calls vload8/vstore8 out of line
// (measured: depthwise.cl ran 1.5-2x slower with them), so on CPUs (VLOAD_CAST=1, from the
// host) they go through a float8 type whose alignment is lowered to a float's: plain
// unaligned vector moves. Elsewhere (GPUs) the built-ins, which are always correct.
// Prepended to the programs that use it; guarded, so it may be included twice.
#ifndef VEC8_CL
#define VEC8_CL
#ifndef VLOAD_CAST
#define VLOAD_CAST 0
#endif
#if VLOAD_CAST
typedef float8 __attribute__((aligned(4))) float8_u;
#define LOADU8(p) (*(__global const float8_u *)(p))
#define STOREU8(v, p) (*(__global float8_u *)(p) = (v))
#else
#define LOADU8(p) vload8(0, (p))
#define STOREU8(v, p) vstore8((v), 0, (p))
#endif
#endif
