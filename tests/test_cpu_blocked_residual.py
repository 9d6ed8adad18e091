"""cpu's fused conv + residual in a Session's mode, whatever layout the shortcut is in.

Defect 1 of issue 13: with ``keep_blocked=True`` a 1x1 stride-2 conv from 104 to 208
channels, whose ``residual=`` was another conv's ``BlockedArray``, returned NaN or ~1e36:
the conv's own layouts were oneDNN's choice ("any": 104 channels do not block by 16), so
the shortcut went down the "plain" path, which handed the ``BlockedArray`` object itself
to NumPy and its address to oneDNN. A ``BlockedArray`` now carries its memory descriptor,
and a kernel reads it in place only where its own descriptor is equal.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from hwbench.backends import get_backend
from hwbench.kernels import reference as ref
from hwbench.pytest_plugin import availability

F32 = np.float32


@pytest.fixture(scope="module")
def session_cpu() -> Any:
    ok, why = availability("cpu")
    if not ok:
        pytest.skip(f"backend cpu unavailable: {why}")
    return get_backend("cpu", keep_blocked=True, check_finite=False)


def _assert_close(got: np.ndarray, want: np.ndarray, k: int) -> None:
    assert np.isfinite(got).all(), "non-finite values"
    err = float(np.abs(got.astype(np.float64) - want).max()) / max(float(np.abs(want).max()),
                                                                    1e-30)
    assert err <= 2e-6 * max(1.0, np.sqrt(k)), f"relative error {err:.2e}"


def test_issue_snippet_stride2_projection_with_blocked_residual(session_cpu):
    be, rng = session_cpu, np.random.default_rng(0)
    x = rng.standard_normal((1, 104, 28, 28)).astype(F32)
    w = (0.1 * rng.standard_normal((208, 104, 1, 1))).astype(F32)
    xr = rng.standard_normal((1, 208, 14, 14)).astype(F32)
    wr = (0.1 * rng.standard_normal((208, 208, 1, 1))).astype(F32)
    rd = be.conv2d(be.asarray(xr), be.asarray(wr))
    y = be.to_numpy(be.conv2d(be.asarray(x), be.asarray(w), stride=2, residual=rd))
    want = ref.conv2d(x, w, stride=2, residual=ref.conv2d(xr, wr))
    _assert_close(y, want, 208)


def _shortcut(be: Any, how: str, shape: tuple[int, ...], rng: np.random.Generator):
    """A (device value, host float64 value) pair of ``shape`` produced by ``how``."""
    n, k, oh, ow = shape
    if how == "host":
        r = rng.standard_normal(shape).astype(F32)
        return r, r.astype(np.float64)
    if how == "conv":  # a 3x3 conv's output, blocked where k allows
        src = rng.standard_normal((n, k, oh, ow)).astype(F32)
        w = (0.1 * rng.standard_normal((k, k, 3, 3))).astype(F32)
        return (be.conv2d(be.asarray(src), be.asarray(w), padding=1),
                ref.conv2d(src, w, padding=1))
    if how == "pool":  # a max pool of a blocked conv output
        src = rng.standard_normal((n, k, 2 * oh, 2 * ow)).astype(F32)
        w = (0.1 * rng.standard_normal((k, k, 1, 1))).astype(F32)
        conv = be.conv2d(be.asarray(src), be.asarray(w))
        return (be.max_pool2d(conv, 2, 2),
                ref.max_pool2d(ref.conv2d(src, w), 2, 2))
    if how == "add":  # an add of two conv outputs
        a, a64 = _shortcut(be, "conv", shape, rng)
        b, b64 = _shortcut(be, "conv", shape, rng)
        return be.add(a, b), a64 + b64
    if how == "concat":  # a channel concat of two blocked conv outputs
        half = (n, k // 2, oh, ow)
        a, a64 = _shortcut(be, "conv", half, rng)
        b, b64 = _shortcut(be, "conv", half, rng)
        return be.concat([a, b], 1), np.concatenate([a64, b64], 1)
    raise AssertionError(how)


# (c, k, h, w, kernel, stride, padding): channels on and off multiples of 8 and 16,
# odd sizes, pointwise and 3x3, strides 1 and 2.
SHAPES = [
    (104, 208, 28, 28, 1, 2, 0),
    (96, 192, 14, 14, 1, 2, 0),
    (24, 32, 9, 9, 3, 1, 1),
    (20, 48, 11, 7, 3, 2, 1),
    (32, 64, 15, 15, 1, 1, 0),
    (13, 32, 7, 9, 3, 2, 0),
    (64, 32, 13, 13, 3, 1, 1),
    (16, 96, 5, 5, 1, 1, 0),
    (40, 80, 17, 17, 1, 2, 0),
]


@pytest.mark.parametrize("activation", [None, "relu"])
@pytest.mark.parametrize("how", ["host", "conv", "pool", "add", "concat"])
@pytest.mark.parametrize("shape", SHAPES, ids=[f"{s[0]}to{s[1]}-{s[2]}x{s[3]}-k{s[4]}s{s[5]}"
                                                for s in SHAPES])
def test_fused_residual_matches_float64_whatever_produced_it(session_cpu, shape, how,
                                                            activation):
    be, rng = session_cpu, np.random.default_rng(1)
    c, k, h, w_, r, stride, pad = shape
    x = rng.standard_normal((1, c, h, w_)).astype(F32)
    w = (0.1 * rng.standard_normal((k, c, r, r))).astype(F32)
    want = ref.conv2d(x, w, stride=stride, padding=pad)
    residual, residual64 = _shortcut(be, how, want.shape, rng)
    y = be.conv2d(be.asarray(x), be.asarray(w), stride=stride, padding=pad,
                  residual=residual, activation=activation)
    want = ref.conv2d(x, w, stride=stride, padding=pad, residual=residual64,
                      activation=activation)
    _assert_close(be.to_numpy(y), want, c * r * r)


@pytest.mark.parametrize("bad", ["objects", "short", "strided"])
def test_onednn_refuses_buffers_that_cannot_hold_the_descriptor(session_cpu, bad):
    """The guard under defect 1: the BlockedArray object itself went to oneDNN as an
    array of Python objects. A primitive now refuses any buffer that is not a contiguous
    array of at least its descriptor's bytes, instead of reading past it."""
    from hwbench.backends.cpu import onednn
    from hwbench.backends.cpu.primitives import build_eltwise

    prim = build_eltwise(onednn.load(), "eltwise_relu", 64)
    src = {"objects": np.array([object()] * 64), "short": np.zeros(63, F32),
           "strided": np.zeros(128, F32)[::2]}[bad]
    with pytest.raises(AssertionError, match="cannot hold"):
        prim.execute({onednn.ARG_SRC: src, onednn.ARG_DST: np.zeros(64, F32)})
    out = np.zeros(64, F32)
    prim.execute({onednn.ARG_SRC: np.full(64, -1.0, F32), onednn.ARG_DST: out})
    assert (out == 0).all()
