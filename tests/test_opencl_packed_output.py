"""The packed SGEMM writing straight into its destination (``sgemm_packed_out``) against
the float64 reference: its fused conv epilogue (bias, residual, relu or relu6), tiles across
image edges and past N, grouped convs, and K longer than one slice (partial sums kept in
the output itself)."""

from __future__ import annotations

import numpy as np
import pytest
from backend_marks import needs_backend
from tolerances import assert_close

from hwbench.backends import get_backend
from hwbench.kernels import reference
from hwbench.kernels.spec.activations import ACTIVATIONS

pytestmark = needs_backend("opencl")

# K = 20 * 9 takes two slices; the float8 K loop (the default: float16 where AVX-512 is)
SMALL_KC = {"MR": 4, "MBLK": 4, "NBLK": 2, "KC": 128, "WIDE": 0}


@pytest.fixture(scope="module", params=[None, SMALL_KC], ids=["default", "kc128"])
def be(request):
    return get_backend("opencl", gemm_kernel="sgemm_packed", gemm_params=request.param)


@pytest.mark.parametrize("n, c, hw, k, groups, stride", [
    (3, 20, (7, 9), 12, 1, 1),    # 63 pixels: tiles cross images and end past N
    (2, 20, (8, 8), 10, 2, 1),    # 64 pixels: whole tiles in one image; grouped
    (1, 20, (14, 14), 30, 1, 2),  # 49 pixels, strided
    (2, 8, (16, 4), 6, 1, 1),     # one 16-pixel row block per image
])
@pytest.mark.parametrize("epilogue", ["none", "bias", "relu", "relu6"])
def test_packed_conv_writes_the_output_with_its_epilogue(be, rng, n, c, hw, k, groups,
                                                         stride, epilogue):
    x = rng.standard_normal((n, c, *hw)).astype(np.float32)
    w = rng.standard_normal((k, c // groups, 3, 3)).astype(np.float32)
    bias = rng.standard_normal(k).astype(np.float32) if epilogue != "none" else None
    kw = dict(stride=stride, padding=1, dilation=1, groups=groups)
    expected = reference.conv2d(x, w, bias, **kw)
    args = {}
    if epilogue in ("relu", "relu6"):
        residual = rng.standard_normal(expected.shape).astype(np.float32)
        expected = np.clip(expected + residual, 0, 6 if epilogue == "relu6" else None)
        args = dict(residual=be.asarray(residual), activation=epilogue)
    out = be.to_numpy(be.conv2d(be.asarray(x), be.asarray(w),
                                None if bias is None else be.asarray(bias), **kw, **args))
    assert_close(out, expected, 9 * c // groups)


@pytest.mark.parametrize("m, n, k", [(70, 45, 300), (13, 64, 400), (50, 200, 40)])
@pytest.mark.parametrize("bias_shape", [None, "n", "m1", "mn"])
def test_packed_gemm_writes_the_output_with_its_bias(be, rng, m, n, k, bias_shape):
    a = rng.standard_normal((m, k)).astype(np.float32)
    b = rng.standard_normal((k, n)).astype(np.float32)
    shapes = {None: None, "n": (n,), "m1": (m, 1), "mn": (m, n)}
    bias = None if bias_shape is None else rng.standard_normal(shapes[bias_shape]).astype(
        np.float32)
    out = be.to_numpy(be.gemm(be.asarray(a), be.asarray(b),
                              None if bias is None else be.asarray(bias)))
    assert_close(out, reference.gemm(a, b, bias, False, False), k)


@pytest.mark.parametrize("trans_a, trans_b", [(False, True), (True, False), (True, True)])
def test_packed_gemm_packs_transposed_operands(be, rng, trans_a, trans_b):
    """pack_b moves whole panels of a row-major B as vectors; a transposed B (and the
    partial last panel, n = 45) goes element by element: both against the reference."""
    m, n, k = 70, 45, 300
    a = rng.standard_normal((k, m) if trans_a else (m, k)).astype(np.float32)
    b = rng.standard_normal((n, k) if trans_b else (k, n)).astype(np.float32)
    out = be.to_numpy(be.gemm(be.asarray(a), be.asarray(b), None, trans_a=trans_a,
                              trans_b=trans_b))
    assert_close(out, reference.gemm(a, b, None, trans_a, trans_b), k)


def test_wide_k_loop_only_where_pocl_has_avx512(monkeypatch):
    """WIDE asks for the AVX-512 K loop; a device without it builds the float8 one (a
    program of its own), and only PoCL's x86-64 CPU device on an AVX-512 host has it."""
    from hwbench.backends.opencl import runtime

    be = get_backend("opencl", gemm_kernel="sgemm_packed",
                     gemm_params={**SMALL_KC, "WIDE": 1})
    monkeypatch.setattr(be.dev, "avx512", True)
    wide = be.gemm_engine.sgemm_program().key
    monkeypatch.setattr(be.dev, "avx512", False)
    assert be.gemm_engine.sgemm_program().key != wide
    narrow = get_backend("opencl", gemm_kernel="sgemm_packed", gemm_params=SMALL_KC)
    assert narrow.gemm_engine.sgemm_program().key == be.gemm_engine.sgemm_program().key
    pocl = "OpenCL 3.0 PoCL HSTR: pthread-x86_64-unknown-linux-gnu-znver3"
    monkeypatch.setattr(runtime, "host_cpu_flags", lambda: frozenset({"avx2", "avx512f"}))
    assert runtime.pocl_avx512(True, pocl)
    assert not runtime.pocl_avx512(False, pocl)
    assert not runtime.pocl_avx512(True, "OpenCL 3.0 (Build 0)")  # Intel's CPU runtime
    monkeypatch.setattr(runtime, "host_cpu_flags", lambda: frozenset({"avx2"}))
    assert not runtime.pocl_avx512(True, pocl)


@pytest.mark.parametrize("activation", list(ACTIVATIONS))
@pytest.mark.parametrize("kernel, groups, k, stride", [
    ("sgemm_packed", 6, 6, 1),   # depthwise.cl
    ("sgemm_packed", 6, 6, 2),   # depthwise.cl, two vload8's even lanes
    ("sgemm_packed", 1, 2, 1),   # conv_direct
    ("sgemm_packed", 2, 8, 1),   # sgemm_packed_out
    ("sgemm_tiled", 2, 8, 1),    # the GPU form: col2output
])
def test_every_conv_kernel_fuses_every_activation(rng, activation, kernel, groups, k, stride):
    """Each conv kernel's epilogue (activation.cl's codes) against the float64 reference,
    with a residual."""
    be = get_backend("opencl", gemm_kernel=kernel)
    x = rng.standard_normal((2, 6, 11, 13)).astype(np.float32) * 4
    w = rng.standard_normal((k, 6 // groups, 3, 3)).astype(np.float32)
    bias = rng.standard_normal(k).astype(np.float32)
    kw = dict(stride=stride, padding=1, dilation=1, groups=groups)
    shape = reference.conv2d(x, w, bias, **kw).shape
    residual = rng.standard_normal(shape).astype(np.float32)
    expected = reference.conv2d(x, w, bias, residual=residual, activation=activation, **kw)
    out = be.to_numpy(be.conv2d(be.asarray(x), be.asarray(w), be.asarray(bias), **kw,
                                residual=be.asarray(residual), activation=activation))
    assert_close(out, expected, 9 * 6 // groups)
