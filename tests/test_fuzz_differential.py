"""Differential fuzzer: random short chains of kernels on every backend mode vs float64.

Hypothesis draws a chain of ops — convolutions with and without bias, a residual (a host
array, an earlier result, or a fresh convolution's output on the same backend) and relu;
strides 1-2; channel counts on and off multiples of 8 and 16; odd spatial sizes; max and
average pooling; add; channel concat; gemm; and the int8 ops (quantize, qconv2d,
conv2d_int8, dequantize, qgemm, gemm_int8) — and runs it on each backend in each mode a
``Session`` uses (``backend_modes``: cpu keeps blocked layouts and channels-last int8,
``cpu:float32-requant``, ``cpu:mkl``, opencl, systolic), plus cpu called directly.

Results stay on the backend from op to op (``BlockedArray``, ``ChannelsLastArray``,
device buffers), as in a Session: that is where the layout bugs live (issue 13's defect
1). Every op is checked on its own: its output against the float64 reference
(``hwbench.kernels.reference``, and the shared ``quantize``/``dequantize``) of host copies
of the very inputs the backend was given, so float error does not compound along the
chain and int8 results can be compared exactly (within 1 LSB for ``float32-requant``). The
systolic simulator serves float gemm/conv in int8 (activations per tensor, weights per
output channel): its results are held to the worst case of that rounding, elementwise
(``quantization_bound``), which a sum with cancellation can take past any fixed relative
tolerance.

Budget: ``HWBENCH_FUZZ_EXAMPLES`` chains per mode and chain kind (default 100: about 45 s
in all on 2 cores with PoCL's kernels cached, a minute or so without). The draw is
derandomized (the same chains every run) unless ``HWBENCH_FUZZ_SEED`` names a seed. A
mismatch prints the shrunk chain (its ops, the failing step, the errors) and hypothesis's
``@reproduce_failure`` blob.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from backend_modes import backend_for, float32_requant, quantizes_float_math
from hypothesis import HealthCheck, example, given, note, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st
from tolerances import FP32_TOL

from hwbench.backends.systolic.functional import activation_params, weight_scales
from hwbench.errors import ArgumentError
from hwbench.kernels import reference as ref
from hwbench.kernels import spec
from hwbench.kernels.quantization import dequantize, quantize

F32 = np.float32
EXAMPLES = int(os.environ.get("HWBENCH_FUZZ_EXAMPLES", "100"))
SEED = os.environ.get("HWBENCH_FUZZ_SEED")
# Channel counts in three classes drawn alike: below 16 (RGB-like first layers), multiples
# of 16 (what the cpu backend keeps in its blocked layout) and the rest (multiples of 8
# or of nothing): the boundaries between layouts are where the bugs were.
CHANNELS = st.one_of(st.sampled_from((1, 3, 5, 8, 12, 13)), st.sampled_from((16, 32, 48)),
                     st.sampled_from((20, 24, 40, 17)))
SIDE = st.integers(1, 17)
# Every mode a Session runs a backend in, and cpu called directly (``hwbench kernels``).
FUZZ_MODES = ["numpy/session", "cpu/session", "cpu/direct", "cpu:mkl/session",
              "cpu:float32-requant/session", "opencl/session", "systolic/session",
              "cuda/session"]


def _settings(test):
    test = settings(max_examples=EXAMPLES, deadline=None, derandomize=SEED is None,
                    database=None, print_blob=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.function_scoped_fixture])(test)
    return hypothesis_seed(int(SEED))(test) if SEED is not None else test


# -- drawing chains ---------------------------------------------------------------------------
def _conv_shape(x_shape, k, r, stride, pad, groups=1):
    """The output shape of a conv, or None where the spec refuses it."""
    n, c, h, w = x_shape
    try:
        p = spec.check_conv2d(np.empty(x_shape, F32), np.empty((k, c // groups, r, r), F32),
                              None, stride, pad, 1, groups)
    except ArgumentError:
        return None
    return p.output_shape


def _pool_shape(x_shape, kind, kernel, stride, pad, ceil, include_pad):
    x = np.empty(x_shape, F32)
    try:
        if kind == "max":
            p = spec.check_max_pool2d(x, kernel, stride, pad, 1, ceil)
        else:
            p = spec.check_avg_pool2d(x, kernel, stride, pad, ceil, include_pad)
    except ArgumentError:
        return None
    return p.output_shape


@st.composite
def _operand(draw, shape, shapes, allow_conv=True):
    """Where a second operand of ``shape`` comes from: a host array, an earlier result of
    that shape, or a fresh conv's output on the backend (``c`` input channels)."""
    choices = ["host"]
    earlier = [i for i, s in enumerate(shapes) if s == shape]
    if earlier:
        choices.append("earlier")
    if allow_conv and len(shape) == 4:
        choices += ["conv", "conv"]
    how = draw(st.sampled_from(choices))
    if how == "earlier":
        return {"from": "earlier", "index": draw(st.sampled_from(earlier))}
    if how == "conv":
        r = draw(st.sampled_from((1, 3)))
        return {"from": "conv", "c": draw(CHANNELS), "r": r}
    return {"from": "host"}


@st.composite
def float_chains(draw) -> dict[str, Any]:
    shape = (draw(st.integers(1, 2)), draw(CHANNELS), draw(SIDE), draw(SIDE))
    shapes: list[tuple[int, ...]] = [shape]
    ops: list[dict[str, Any]] = []
    for _ in range(draw(st.integers(1, 4))):
        cur = shapes[-1]
        # Convolutions most often; gemm (which ends the 4-D part) least.
        kinds = ["gemm", "relu", "add"] if len(cur) == 2 else \
            ["conv"] * 5 + ["max_pool", "avg_pool", "add", "concat", "relu",
                            "global_avg_pool", "gemm"]
        kind = draw(st.sampled_from(kinds))
        op: dict[str, Any] = {"op": kind}
        if kind == "conv":
            r = draw(st.sampled_from((1, 3)))
            op.update(k=draw(CHANNELS), r=r, stride=draw(st.sampled_from((1, 2))),
                      pad=draw(st.sampled_from((0, 1))) if r == 3 else 0,
                      bias=draw(st.booleans()), activation=draw(st.sampled_from((None, "relu"))))
            out = _conv_shape(cur, op["k"], r, op["stride"], op["pad"])
            if out is None:
                continue
            if draw(st.sampled_from((False, True, True))):
                op["residual"] = draw(_operand(out, shapes))
        elif kind in ("max_pool", "avg_pool"):
            kernel = draw(st.sampled_from((1, 2, 3)))
            op.update(kernel=kernel, stride=draw(st.sampled_from((1, 2))),
                      pad=draw(st.integers(0, kernel // 2)), ceil=draw(st.booleans()),
                      include_pad=draw(st.booleans()))
            out = _pool_shape(cur, kind[:3], kernel, op["stride"], op["pad"], op["ceil"],
                              op["include_pad"])
            if out is None:
                continue
        elif kind == "add":
            out = cur
            broadcast = len(cur) == 4 and draw(st.booleans())
            op["other"] = {"from": "host", "shape": (1, cur[1], 1, 1)} if broadcast \
                else draw(_operand(cur, shapes))
        elif kind == "concat":
            c2 = draw(CHANNELS)
            op.update(c2=c2, other=draw(_operand((cur[0], c2) + cur[2:], shapes)),
                      first=draw(st.booleans()))
            out = (cur[0], cur[1] + c2, cur[2], cur[3])
        elif kind == "relu":
            out = cur
        elif kind == "global_avg_pool":
            out = cur[:2] + (1, 1)
        else:  # gemm on the flattened features
            features = int(np.prod(cur[1:]))
            op.update(m=draw(st.integers(1, 40)), bias=draw(st.booleans()),
                      trans_b=draw(st.booleans()))
            out = (cur[0], op["m"])
            if features > 4096:
                continue
        ops.append(op)
        shapes.append(out)
    return {"input": shape, "ops": ops, "seed": draw(st.integers(0, 2**31 - 1))}


@st.composite
def int8_chains(draw) -> dict[str, Any]:
    shape = (draw(st.integers(1, 2)), draw(CHANNELS), draw(SIDE), draw(SIDE))
    x_dtype = draw(st.sampled_from(("uint8", "int8")))
    ops: list[dict[str, Any]] = [{"op": "quantize", "dtype": x_dtype}]
    state, cur = "q", shape  # q: 8-bit, f: float32, i: int32 accumulators
    for _ in range(draw(st.integers(1, 5))):
        if state == "q" and len(cur) == 4:
            kind = draw(st.sampled_from(("qconv2d", "qconv2d", "conv2d_int8", "dequantize")))
        elif state == "q":
            kind = draw(st.sampled_from(("qgemm", "gemm_int8", "dequantize")))
        elif state == "i":
            kind = "dequantize"
        elif len(cur) == 4:
            kind = draw(st.sampled_from(("quantize", "relu", "max_pool", "add", "to_2d")))
        else:
            kind = draw(st.sampled_from(("quantize", "relu")))
        op: dict[str, Any] = {"op": kind}
        if kind in ("qconv2d", "conv2d_int8"):
            r = draw(st.sampled_from((1, 3)))
            op.update(k=draw(CHANNELS), r=r, stride=draw(st.sampled_from((1, 2))),
                      pad=draw(st.sampled_from((0, 1))) if r == 3 else 0,
                      w_dtype=draw(st.sampled_from(("int8", "int8", "uint8"))),
                      per_channel=draw(st.booleans()), bias=draw(st.booleans()),
                      y_dtype=draw(st.sampled_from(("uint8", "int8"))))
            out = _conv_shape(cur, op["k"], r, op["stride"], op["pad"])
            if out is None:
                continue
            cur, state = out, ("q" if kind == "qconv2d" else "i")
        elif kind in ("qgemm", "gemm_int8"):
            op.update(m=draw(st.integers(1, 40)), per_column=draw(st.booleans()),
                      y_dtype=draw(st.sampled_from(("uint8", "int8"))))
            cur, state = (cur[0], op["m"]), ("q" if kind == "qgemm" else "i")
        elif kind == "dequantize":
            state = "f"
        elif kind == "quantize":
            op["dtype"] = draw(st.sampled_from(("uint8", "int8")))
            state = "q"
        elif kind == "max_pool":
            op.update(kernel=draw(st.sampled_from((2, 3))), stride=draw(st.sampled_from((1, 2))))
            out = _pool_shape(cur, "max", op["kernel"], op["stride"], 0, False, False)
            if out is None:
                continue
            cur = out
        elif kind == "add":
            op["other"] = draw(st.sampled_from(("self", "host")))
        elif kind == "to_2d":  # global average pool, then flatten: a classifier's head
            cur = (cur[0], cur[1])
        ops.append(op)
    return {"input": shape, "ops": ops, "seed": draw(st.integers(0, 2**31 - 1))}


# -- the simulator's quantization error ---------------------------------------------------
def quantization_bound(x: np.ndarray, w: np.ndarray, conv: dict[str, Any] | None = None,
                       ) -> np.ndarray:
    """Elementwise worst case of |float result - int8-served result| on the systolic
    simulator: x rounded per tensor (off by at most one step ``sx``, saturation included),
    w per output channel (off by at most half a step ``sw``), so each product is off by at
    most ``|x|·sw/2 + sx·(|w| + sw/2)``, summed over the reduction. ``conv``: the conv's
    stride and padding (w is OIHW, scales per filter); None: a gemm (w is (K, N), scales
    per column). The padding is exact zeros and adds nothing."""
    x64, w64 = np.abs(np.asarray(x, np.float64)), np.abs(np.asarray(w, np.float64))
    sx = float(activation_params(np.asarray(x, F32))[0])
    if conv is None:
        sw = weight_scales(np.asarray(w, F32), axis=1).astype(np.float64)
        return x64 @ np.broadcast_to(sw / 2, w64.shape) + sx * (np.ones_like(x64) @ (w64 + sw / 2))
    sw = weight_scales(np.asarray(w, F32), axis=0).astype(np.float64).reshape(-1, 1, 1, 1)
    ones_w = np.broadcast_to(sw / 2, w64.shape)
    return (ref.conv2d(x64, ones_w, **conv)
            + sx * ref.conv2d(np.ones_like(x64), w64 + sw / 2, **conv))


# -- running a chain and checking every step ------------------------------------------------
class Mismatch(AssertionError):
    """A backend's result differs from the reference beyond the op's tolerance."""


@dataclass
class Checker:
    """Runs ops on one backend, each checked against the reference on its own inputs."""

    be: Any
    rng: np.random.Generator
    steps: list[str] = field(default_factory=list)

    def host(self, x: Any) -> np.ndarray:
        return np.array(self.be.to_numpy(x))

    def check(self, what: str, got: Any, want: np.ndarray, kind: str = "float",
              k: int = 1, quantized: Any = None) -> None:
        """``kind``: "float" (relative to max|want|, FP32_TOL·√k), "exact", or "lsb"
        (exact, or within 1 for float32 requantization). ``quantized``: a callable giving
        ``quantization_bound`` for this op, used where the backend serves it in int8."""
        self.steps.append(what)
        bound = quantized() if quantized is not None and quantizes_float_math(self.be) \
            else None
        problem = self._problem(self.host(got), want, kind, k, bound)
        if problem:  # raised from one place: hypothesis tells failures apart by location
            raise Mismatch(f"{what}: {problem}")

    def _problem(self, got: np.ndarray, want: np.ndarray, kind: str, k: int,
                 bound: np.ndarray | None) -> str:
        if got.shape != want.shape:
            return f"shape {got.shape}, want {want.shape}"
        if kind == "float":
            if not np.isfinite(got).all():
                return f"{int((~np.isfinite(got)).sum())} non-finite values"
            scale = max(float(np.abs(want).max(initial=0.0)), 1e-30)
            tol = 2 * FP32_TOL * max(1.0, np.sqrt(k))
            diff = np.abs(got.astype(np.float64) - want)
            if bound is not None:  # int8-served: the rounding's worst case, elementwise
                over = diff - (bound + tol * scale)
                return (f"{int((over > 0).sum())} values past the int8 rounding bound, by up "
                        f"to {over.max():.2e}" if (over > 0).any() else "")
            err = float(diff.max(initial=0.0)) / scale
            return f"relative error {err:.2e} > {tol:.1e}" if err > tol else ""
        diff = np.abs(got.astype(np.int64) - np.asarray(want).astype(np.int64))
        allowed = 1 if kind == "lsb" and float32_requant(self.be) else 0
        if diff.max(initial=0) > allowed:
            return f"off by up to {diff.max()} ({int((diff > allowed).sum())} of {diff.size})"
        return ""

    def floats(self, shape, scale: float = 1.0) -> np.ndarray:
        return (scale * self.rng.standard_normal(shape)).astype(F32)

    def conv(self, x: Any, k: int, r: int, stride: int, pad: int, bias: bool = False,
             residual: Any = None, activation: str | None = None, what: str = "conv") -> Any:
        xh = self.host(x)
        c = xh.shape[1]
        w = self.floats((k, c, r, r), 1.0 / np.sqrt(c * r * r))
        b = self.floats((k,)) if bias else None
        rh = None if residual is None else self.host(residual)
        y = self.be.conv2d(x, self.be.asarray(w), None if b is None else self.be.asarray(b),
                           stride=stride, padding=pad, residual=residual,
                           activation=activation)
        want = ref.conv2d(xh, w, b, stride=stride, padding=pad, residual=rh,
                          activation=activation)
        self.check(f"{what} {c}->{k} {r}x{r} s{stride} p{pad} bias={bias} "
                   f"residual={residual is not None} {activation}", y, want, k=c * r * r,
                   quantized=lambda: quantization_bound(xh, w, {"stride": stride,
                                                                "padding": pad}))
        return y

    def operand(self, spec_: dict[str, Any], shape: tuple[int, ...], results: list) -> Any:
        how = spec_["from"]
        if how == "earlier":
            return results[spec_["index"]]
        if how == "conv":  # a fresh input, through a conv on the backend (stride 1, same size)
            n, k, h, w = shape
            src = self.be.asarray(self.floats((n, spec_["c"], h, w)))
            r = spec_["r"]
            return self.conv(src, k, r, 1, r // 2, what="side conv")
        return self.be.asarray(self.floats(spec_.get("shape", shape)))


def run_float_chain(be: Any, chain: dict[str, Any]) -> None:
    ck = Checker(be, np.random.default_rng(chain["seed"]))
    cur = be.asarray(ck.floats(chain["input"]))
    results = [cur]
    for op in chain["ops"]:
        kind, xh = op["op"], ck.host(cur)
        if kind == "conv":
            out_shape = _conv_shape(xh.shape, op["k"], op["r"], op["stride"], op["pad"])
            residual = None
            if "residual" in op:
                residual = ck.operand(op["residual"], out_shape, results)
            cur = ck.conv(cur, op["k"], op["r"], op["stride"], op["pad"], op["bias"], residual,
                          op["activation"])
        elif kind in ("max_pool", "avg_pool"):
            args = (op["kernel"], op["stride"], op["pad"])
            if kind == "max_pool":
                cur = be.max_pool2d(cur, *args, ceil_mode=op["ceil"])
                want = ref.max_pool2d(xh, *args, ceil_mode=op["ceil"])
            else:
                cur = be.avg_pool2d(cur, *args, ceil_mode=op["ceil"],
                                    count_include_pad=op["include_pad"])
                want = ref.avg_pool2d(xh, *args, ceil_mode=op["ceil"],
                                      count_include_pad=op["include_pad"])
            ck.check(f"{kind} {op}", cur, want, k=op["kernel"] ** 2)
        elif kind == "add":
            other = ck.operand(op["other"], xh.shape, results)
            oh = ck.host(other)
            cur = be.add(cur, other)
            ck.check(f"add {xh.shape} + {oh.shape} ({op['other']['from']})", cur,
                     ref.add(xh, oh))
        elif kind == "concat":
            shape = (xh.shape[0], op["c2"]) + xh.shape[2:]
            other = ck.operand(op["other"], shape, results)
            parts = [cur, other] if op["first"] else [other, cur]
            hosts = [ck.host(p) for p in parts]
            cur = be.concat(parts, 1)
            ck.check(f"concat {[h.shape for h in hosts]}", cur, ref.concat(hosts, 1))
        elif kind == "relu":
            cur = be.relu(cur)
            ck.check("relu", cur, ref.relu(xh))
        elif kind == "global_avg_pool":
            cur = be.global_avg_pool2d(cur)
            ck.check("global_avg_pool", cur, ref.global_avg_pool2d(xh), k=xh.shape[2] * xh.shape[3])
        else:  # gemm
            flat = be.reshape(cur, (xh.shape[0], -1)) if xh.ndim == 4 else cur
            a = xh.reshape(xh.shape[0], -1)
            kk = a.shape[1]
            b = ck.floats((op["m"], kk) if op["trans_b"] else (kk, op["m"]), 1 / np.sqrt(kk))
            bias = ck.floats((op["m"],)) if op["bias"] else None
            cur = be.gemm(flat, be.asarray(b), None if bias is None else be.asarray(bias),
                          trans_b=op["trans_b"])
            ck.check(f"gemm {a.shape} x {b.shape} trans_b={op['trans_b']}", cur,
                     ref.gemm(a, b, bias, trans_b=op["trans_b"]), k=kk,
                     quantized=functools.partial(quantization_bound, a,
                                                 b.T if op["trans_b"] else b))
        results.append(cur)


def _scale_for(values: np.ndarray, codes: float = 20.0) -> np.float32:
    """A quantization scale that spreads ``values`` over about ±``codes`` levels."""
    return F32(max(float(np.std(values)), 1e-3) / codes)


def _zero_point(dtype: str) -> Any:
    return np.uint8(128) if dtype == "uint8" else np.int8(0)


def run_int8_chain(be: Any, chain: dict[str, Any]) -> None:
    ck = Checker(be, np.random.default_rng(chain["seed"]))
    cur = be.asarray(ck.floats(chain["input"]))
    scale, zp = F32(1.0), None  # of the current 8-bit or int32 tensor
    for op in chain["ops"]:
        kind, xh = op["op"], ck.host(cur)
        if kind == "quantize":
            scale, zp = _scale_for(xh), _zero_point(op["dtype"])
            cur = be.quantize_linear(cur, scale, zp)
            ck.check(f"quantize_linear {xh.shape} -> {op['dtype']}", cur,
                     quantize(xh, scale, zp, zp.dtype), "lsb")
        elif kind == "dequantize":
            cur = be.dequantize_linear(cur, scale, zp)
            ck.check(f"dequantize_linear {xh.dtype}", cur, dequantize(xh, scale, zp), k=1)
        elif kind in ("qconv2d", "conv2d_int8"):
            c, r = xh.shape[1], op["r"]
            w_dtype = np.dtype(op["w_dtype"])
            info = np.iinfo(w_dtype)
            w = ck.rng.integers(info.min + (w_dtype == np.int8), info.max, (op["k"], c, r, r),
                                endpoint=True).astype(w_dtype)
            zw = _zero_point(op["w_dtype"])
            args = dict(stride=op["stride"], padding=op["pad"])
            spread = float(np.std(xh.astype(np.float64) - float(zp))) or 1.0
            if kind == "conv2d_int8":
                cur = be.conv2d_int8(cur, be.asarray(w), zp, zw, **args)
                ck.check(f"conv2d_int8 {c}->{op['k']} {r}x{r} {op}", cur,
                         ref.conv2d_int8(xh, w, zp, zw, **args), "exact")
                scale, zp = F32(scale * 0.01), np.int32(0)  # the int32 tensor's scale
                continue
            w_scale = (F32(0.01) * (1 + ck.rng.random(op["k"])).astype(F32)
                       if op["per_channel"] else F32(0.01))
            acc = spread * 60.0 * np.sqrt(c * r * r)  # typical |accumulator|
            y_scale = F32(float(scale) * 0.01 * acc / 30.0)
            y_zp = _zero_point(op["y_dtype"])
            bias = ck.rng.integers(-2000, 2000, op["k"]).astype(np.int32) if op["bias"] \
                else None
            cur = be.qconv2d(cur, scale, zp, be.asarray(w), w_scale, zw, y_scale, y_zp,
                             None if bias is None else be.asarray(bias), **args)
            ck.check(f"qconv2d {c}->{op['k']} {r}x{r} {op}", cur,
                     ref.qconv2d(xh, scale, zp, w, w_scale, zw, y_scale, y_zp, bias, **args),
                     "lsb")
            scale, zp = y_scale, y_zp
        elif kind in ("qgemm", "gemm_int8"):
            kk = xh.shape[1]
            b = ck.rng.integers(-127, 127, (kk, op["m"]), endpoint=True).astype(np.int8)
            zb = np.int8(0)
            if kind == "gemm_int8":
                cur = be.gemm_int8(cur, be.asarray(b), zp, zb)
                ck.check(f"gemm_int8 {xh.shape} x {b.shape}", cur, ref.gemm_int8(xh, b, zp, zb),
                         "exact")
                scale, zp = F32(scale * 0.01), np.int32(0)
                continue
            b_scale = (F32(0.01) * (1 + ck.rng.random(op["m"])).astype(F32)
                       if op["per_column"] else F32(0.01))
            spread = float(np.std(xh.astype(np.float64) - float(zp))) or 1.0
            y_scale = F32(float(scale) * 0.01 * spread * 60.0 * np.sqrt(kk) / 30.0)
            y_zp = _zero_point(op["y_dtype"])
            cur = be.qgemm(cur, scale, zp, be.asarray(b), b_scale, zb, y_scale, y_zp)
            ck.check(f"qgemm {xh.shape} x {b.shape} {op}", cur,
                     ref.qgemm(xh, scale, zp, b, b_scale, zb, y_scale, y_zp), "lsb")
            scale, zp = y_scale, y_zp
        elif kind == "relu":
            cur = be.relu(cur)
            ck.check("relu (int8 chain)", cur, ref.relu(xh))
        elif kind == "max_pool":
            cur = be.max_pool2d(cur, op["kernel"], op["stride"])
            ck.check(f"max_pool (int8 chain) {op}", cur,
                     ref.max_pool2d(xh, op["kernel"], op["stride"]))
        elif kind == "add":
            other = cur if op["other"] == "self" else be.asarray(ck.floats(xh.shape))
            oh = ck.host(other)
            cur = be.add(cur, other)
            ck.check(f"add (int8 chain, {op['other']})", cur, ref.add(xh, oh))
        else:  # to_2d: global average pool and flatten
            pooled = be.global_avg_pool2d(cur)
            ck.check("global_avg_pool (int8 chain)", pooled, ref.global_avg_pool2d(xh),
                     k=xh.shape[2] * xh.shape[3])
            cur = be.reshape(pooled, (xh.shape[0], xh.shape[1]))


def _describe(chain: dict[str, Any]) -> str:
    ops = "\n  ".join(str(op) for op in chain["ops"])
    return f"input {chain['input']} seed {chain['seed']}\n  {ops}"


@pytest.fixture(params=FUZZ_MODES)
def fuzz_backend(request) -> Any:
    return backend_for(request.param)


# Issue 13's defect 1, always run: a stride-2 projection 104 -> 208 whose residual is
# another conv's output on the same backend (blocked on cpu, the projection not).
ISSUE_13_PROJECTION = {"input": (1, 104, 28, 28), "seed": 13, "ops": [
    {"op": "conv", "k": 208, "r": 1, "stride": 2, "pad": 0, "bias": False, "activation": None,
     "residual": {"from": "conv", "c": 208, "r": 1}}]}


@_settings
@given(chain=float_chains())
@example(chain=ISSUE_13_PROJECTION)
def test_float_chains_match_float64_reference(fuzz_backend, chain):
    note(f"{fuzz_backend.full_name} {fuzz_backend.info().get('keep_blocked', '')}: "
         f"{_describe(chain)}")
    run_float_chain(fuzz_backend, chain)


@_settings
@given(chain=int8_chains())
def test_int8_chains_match_exact_reference(fuzz_backend, chain):
    note(f"{fuzz_backend.full_name}: {_describe(chain)}")
    run_int8_chain(fuzz_backend, chain)
