"""The cpu backend's unary family (``unary`` -> ``_unary_op``): oneDNN's eltwise primitive
where oneDNN has the op, NumPy/SciPy float32 on the same host arrays where it does not.

oneDNN 3.2's eltwise algorithms, with ``alpha``/``beta`` as oneDNN defines them:
tanh, elu (alpha), abs, sqrt, linear (alpha·x + beta: Neg is alpha=-1), soft_relu
(1/alpha·log(1 + e^(alpha·x)): Softplus is alpha=1), exp, log, gelu_erf, gelu_tanh,
clip_v2 (alpha ≤ y ≤ beta), pow (alpha·x^beta: Reciprocal is alpha=1, beta=-1),
hardsigmoid and hardswish (alpha·x + beta inside), relu (alpha: the negative slope).
Erf, Sin, Cos, Floor and Ceil have no eltwise algorithm: they run as NumPy ufuncs
(``scipy.special.erf``) in float32 on the host, where this backend's arrays live.
"""

from __future__ import annotations

import numpy as np

from hwbench.backends.cpu.layouts import ChannelsLastArray
from hwbench.backends.cpu.onednn import ARG_DST, ARG_SRC, OneDNN, Primitive
from hwbench.kernels import spec, unary_reference

# op -> (oneDNN eltwise algorithm, f(problem) -> (alpha, beta))
ELTWISE: dict[str, tuple[str, object]] = {
    "tanh": ("eltwise_tanh", lambda p: (0.0, 0.0)),
    "elu": ("eltwise_elu", lambda p: (p.alpha, 0.0)),
    "abs": ("eltwise_abs", lambda p: (0.0, 0.0)),
    "sqrt": ("eltwise_sqrt", lambda p: (0.0, 0.0)),
    "neg": ("eltwise_linear", lambda p: (-1.0, 0.0)),
    "softplus": ("eltwise_soft_relu", lambda p: (1.0, 0.0)),
    "exp": ("eltwise_exp", lambda p: (0.0, 0.0)),
    "log": ("eltwise_log", lambda p: (0.0, 0.0)),
    "gelu": ("eltwise_gelu_erf", lambda p: (0.0, 0.0)),
    "gelu_tanh": ("eltwise_gelu_tanh", lambda p: (0.0, 0.0)),
    "clip": ("eltwise_clip_v2", lambda p: (p.alpha, p.beta)),
    "reciprocal": ("eltwise_pow", lambda p: (1.0, -1.0)),
    "hard_sigmoid": ("eltwise_hardsigmoid", lambda p: (p.alpha, p.beta)),
    "hard_swish": ("eltwise_hardswish", lambda p: (p.alpha, p.beta)),
    "leaky_relu": ("eltwise_relu", lambda p: (p.alpha, 0.0)),
}


def build_unary_eltwise(d: OneDNN, alg: str, size: int, alpha: float, beta: float) -> Primitive:
    """A forward-inference eltwise primitive over ``size`` contiguous float32 values."""
    md = d.memory_desc((size,), "f32", tag="a")
    attr = d.attr()
    pd = d.create_pd("dnnl_eltwise_forward_primitive_desc_create", d.engine,
                     d.prop["forward_inference"], d.alg[alg], md.handle, md.handle,
                     float(alpha), float(beta), attr.handle)
    return Primitive(d, pd, {ARG_SRC: md, ARG_DST: md})


class UnaryKernels:
    """``_unary_op`` mixed into ``CpuBackend`` (its oneDNN handle, primitive cache, buffers and
    thread count). Elementwise, so a channels-last array stays channels-last."""

    def _unary_op(self, p: spec.UnaryProblem, x):
        layout = isinstance(x, ChannelsLastArray)
        src = x.nhwc if layout else np.asarray(self._plain(x), order="C")  # 0-d stays 0-d
        if p.op in ELTWISE:
            alg, params = ELTWISE[p.op]
            alpha, beta = params(p)
            self.dnnl.set_num_threads(self._threads_now)
            prim = self._primitive(("unary", alg, p.size, alpha, beta),
                                   lambda: build_unary_eltwise(self.dnnl, alg, p.size, alpha,
                                                               beta))
            out = self._buffers.empty(src.shape, np.float32)
            prim.execute({ARG_SRC: src, ARG_DST: out})
        else:  # no eltwise algorithm: NumPy/SciPy float32 ufuncs on the host arrays
            out = unary_reference.unary(src, p.op, p.alpha, p.beta, np.float32)
        return ChannelsLastArray(out) if layout else out
