"""Stride-1 convs read straight from the (padded) input (``conv_implicit.cl``) against the
float64 reference: padding, dilation, the dropped columns of padded rows, the last panel
shifted back from the buffer's end, batches, the fused epilogue and K longer than one
slice; and the cost model choosing it."""

from __future__ import annotations

import numpy as np
import pytest
from backend_marks import needs_backend
from tolerances import assert_close

from hwbench.backends import get_backend
from hwbench.backends.opencl import implicit
from hwbench.kernels import reference, spec

pytestmark = needs_backend("opencl")

# K = 20 * 9 takes two slices; the float8 K loop (the default: float16 where AVX-512 is)
SMALL_KC = {"MR": 4, "MBLK": 4, "NBLK": 2, "KC": 128, "WIDE": 0}


@pytest.fixture(scope="module", params=[None, SMALL_KC], ids=["default", "kc128"])
def be(request):
    return get_backend("opencl", gemm_kernel="sgemm_packed", gemm_params=request.param)


def problem(x, w, **kw):
    return spec.check_conv2d(x, w, None, kw.get("stride", 1), kw.get("padding", 0),
                             kw.get("dilation", 1), kw.get("groups", 1))


@pytest.mark.parametrize("n, c, hw, k, r, padding, dilation", [
    (1, 20, (7, 7), 32, 3, 1, 1),     # 63 columns, 14 dropped; last panel shifted back
    (3, 20, (14, 14), 24, 3, 1, 1),   # per-image panels, the last image's shifted
    (2, 40, (13, 13), 48, 1, 0, 1),   # 1x1 in place: rows of 13, panels across rows
    (1, 24, (56, 56), 16, 1, 0, 1),   # 3136 columns: whole panels only
    (2, 8, (12, 10), 20, 5, 2, 1),    # 5x5, rows of 14 padded
    (1, 12, (11, 9), 8, 3, (2, 0, 1, 3), 1),  # asymmetric padding
    (2, 10, (12, 12), 16, 3, 2, 2),   # dilation 2
])
@pytest.mark.parametrize("epilogue", ["none", "bias", "relu"])
def test_implicit_conv_matches_the_reference(be, rng, n, c, hw, k, r, padding, dilation,
                                             epilogue):
    x = rng.standard_normal((n, c, *hw)).astype(np.float32)
    w = rng.standard_normal((k, c, r, r)).astype(np.float32)
    kw = dict(stride=1, padding=padding, dilation=dilation, groups=1)
    assert implicit.applies(be.gemm_engine, problem(x, w, **kw))
    bias = rng.standard_normal(k).astype(np.float32) if epilogue != "none" else None
    expected = reference.conv2d(x, w, bias, **kw)
    args = {}
    if epilogue == "relu":
        residual = rng.standard_normal(expected.shape).astype(np.float32)
        expected = np.maximum(expected + residual, 0)
        args = dict(residual=be.asarray(residual), activation="relu")
    out = be.to_numpy(be.conv2d(be.asarray(x), be.asarray(w),
                                None if bias is None else be.asarray(bias), **kw, **args))
    assert_close(out, expected, c * r * r)


@pytest.mark.parametrize("n, c, hw, r, padding", [
    (1, 3, (3, 3), 1, 0),    # 9 columns in all: read element by element
    (2, 4, (1, 16), 3, 1),   # 48 columns per image, fewer than 16 left at the last row
    (1, 5, (4, 4), 3, 0),    # 8 columns, 2 of them stored per row
])
def test_implicit_conv_reads_small_inputs_element_by_element(be, rng, n, c, hw, r, padding):
    """Below 16 readable columns (which ``applies`` leaves to im2col) the kernel itself
    is still right: called directly."""
    x = rng.standard_normal((n, c, *hw)).astype(np.float32)
    w = rng.standard_normal((6, c, r, r)).astype(np.float32)
    p = problem(x, w, padding=padding)
    out = be.empty(p.output_shape)
    implicit.conv2d(be.gemm_engine, p, be.asarray(x).data, be.asarray(w).data, out.data,
                    None, None, 0)
    assert_close(be.to_numpy(out), reference.conv2d(x, w, None, 1, padding, 1, 1), c * r * r)


def test_the_cost_model_keeps_im2col_where_packed_panels_pay(be):
    """Stride 3, groups, more than MAX_ROWS output channels and batches of small images
    (whose per-image panels waste columns a shared column matrix would not) stay on
    im2col; DenseNet's 3x3 growth conv takes the implicit path at batch 1 and 8, and a
    stride-2 conv too (``phases``), unless the engine has it off."""
    def applies(n, c, h, k, r, **kw):
        x = np.zeros((n, c, h, h), np.float32)
        return implicit.applies(be.gemm_engine, problem(x, np.zeros((k, c // kw.get(
            "groups", 1), r, r), np.float32), padding=r // 2, **kw))

    assert applies(1, 128, 7, 32, 3) and applies(8, 128, 7, 32, 3)
    assert applies(1, 128, 56, 32, 3) and applies(1, 992, 14, 128, 1)
    assert applies(1, 64, 28, 32, 3, stride=2) and applies(1, 3, 224, 64, 7, stride=2)
    assert not applies(1, 3, 224, 32, 3, stride=2)  # 27 taps: im2col's matrix is small
    assert applies(1, 3, 224, 32, 5, stride=2) and not applies(1, 16, 112, 64, 3, stride=2)
    assert not applies(1, 64, 28, 32, 3, stride=3)
    assert not applies(1, 64, 28, 32, 3, stride=2, dilation=2)
    be.gemm_engine.phase_split = False
    try:
        assert not applies(1, 64, 28, 32, 3, stride=2)
    finally:
        be.gemm_engine.phase_split = True
    assert not applies(1, 64, 28, 32, 3, groups=2)
    assert not applies(1, 64, 28, implicit.MAX_ROWS + 1, 3)
    assert not applies(8, 1024, 7, 128, 1)   # 64 columns per 49 pixels
    assert not applies(1, 64, 3, 32, 1)      # 9 columns
    assert applies(8, 32, 4, 32, 3)  # BEGAN's first conv: im2col's rows of 4 floats
