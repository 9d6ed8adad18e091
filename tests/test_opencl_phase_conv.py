"""Stride-2 convs on ``conv_implicit`` through the phase split (``phases``,
``conv_phases.cl``) against the float64 reference: odd and even sizes, asymmetric and no
padding, even kernels, batches, the epilogue; and the per-launch work-item blocks
(``blocking``), which must not change a single bit."""

from __future__ import annotations

import numpy as np
import pytest
from backend_marks import needs_backend
from test_opencl_implicit_conv import SMALL_KC
from tolerances import assert_close

from hwbench.backends import get_backend
from hwbench.backends.opencl import blocking, implicit, phases
from hwbench.kernels import reference, spec

pytestmark = needs_backend("opencl")


@pytest.fixture(scope="module", params=[None, SMALL_KC], ids=["default", "kc128"])
def be(request):
    return get_backend("opencl", gemm_kernel="sgemm_packed", gemm_params=request.param)


@pytest.mark.parametrize("n, c, hw, k, r, padding", [
    (1, 3, (38, 38), 24, 7, 3),          # a first layer: 7x7/2, K = 147 (two slices at 128)
    (2, 3, (33, 31), 32, 3, 1),          # odd sizes, 3x3/2
    (1, 16, (15, 15), 20, 3, 0),         # no padding
    (2, 6, (10, 12), 12, 4, 1),          # an even kernel
    (1, 8, (17, 14), 16, 3, (0, 1, 1, 0)),  # asymmetric padding
    (3, 20, (14, 14), 40, 1, 0),         # 1x1/2
])
@pytest.mark.parametrize("epilogue", ["none", "relu"])
def test_stride2_conv_matches_the_reference(be, rng, n, c, hw, k, r, padding, epilogue):
    x = rng.standard_normal((n, c, *hw)).astype(np.float32)
    w = rng.standard_normal((k, c, r, r)).astype(np.float32)
    kw = dict(stride=2, padding=padding, dilation=1, groups=1)
    p = spec.check_conv2d(x, w, None, 2, padding, 1, 1)
    assert phases.applies(p)
    out = be.empty(p.output_shape)
    bias = rng.standard_normal(k).astype(np.float32)
    expected = reference.conv2d(x, w, bias, **kw)
    residual, act = None, 0
    if epilogue == "relu":
        res = rng.standard_normal(expected.shape).astype(np.float32)
        expected = np.maximum(expected + res, 0)
        residual, act = be.asarray(res).data, 1
    implicit.conv2d(be.gemm_engine, p, be.asarray(x).data, be.asarray(w).data, out.data,
                    be.asarray(bias).data, residual, act)
    assert_close(be.to_numpy(out), expected, c * r * r)


def test_stride2_conv_through_the_backend_is_the_im2col_result(be, rng):
    """The op itself takes the phase path; im2col (phase_split off) gives the same sums to
    rounding."""
    x = rng.standard_normal((2, 3, 40, 40)).astype(np.float32)
    w = rng.standard_normal((32, 3, 3, 3)).astype(np.float32)
    args = (be.asarray(x), be.asarray(w))
    fast = be.to_numpy(be.conv2d(*args, stride=2, padding=1))
    be.gemm_engine.phase_split = False
    try:
        slow = be.to_numpy(be.conv2d(*args, stride=2, padding=1))
    finally:
        be.gemm_engine.phase_split = True
    assert_close(fast, reference.conv2d(x, w, None, 2, 1, 1, 1), 27)
    assert_close(fast, slow.astype(np.float64), 27)


def test_tap_offsets_follow_the_phase_planes():
    koff = phases.tap_offsets(2, 3, 3, 5, 6)
    # tap (c=1, r=2, s=1): phase (0, 1) of channel 1, row 1, column 0
    assert koff[9 + 2 * 3 + 1] == (1 * 4 + 1) * 30 + 1 * 6 + 0
    assert koff[0] == 0 and koff.max() == (1 * 4 + 3) * 30 + 0 * 6 + 0 + 6 + 1 - 6 - 1


@pytest.mark.parametrize("m, n, batch, want, expected", [
    (512, 49, 1, 16, (8, 2)),    # ResNet's 3x3 512 @ 7x7: 11 -> 22 work-items
    (16, 196, 1, 8, (8, 1)),     # one row block: the columns split all the way
    (256, 3136, 1, 8, (8, 4)),   # big enough as it is
    (6, 16, 1, 8, (8, 4)),       # one micro-tile: nothing to split
    (96, 16, 1, 8, (2, 4)),      # one panel: the rows split
])
def test_blocks_split_small_grids_columns_first(m, n, batch, want, expected):
    assert blocking.blocks(m, n, batch, 6, 8, 4, want) == expected


def test_blocks_leave_the_sums_bitwise_alone(be, rng):
    """The tuned blocks (fit 0) and blocks split down to 1 x 1 give identical outputs."""
    x = rng.standard_normal((1, 96, 7, 7)).astype(np.float32)
    w = rng.standard_normal((144, 96, 1, 1)).astype(np.float32)
    args = (be.asarray(x), be.asarray(w))
    engine, outs, chosen = be.gemm_engine, [], []
    try:
        for fit in (0, 64):
            engine.fit_blocks = fit
            chosen.append(engine.out_blocks(144, 49, 1)[:2])
            outs.append(be.to_numpy(be.conv2d(*args)))
    finally:
        engine.fit_blocks = blocking.ITEMS_PER_UNIT
    assert chosen[0] == (engine.params["MBLK"], engine.params["NBLK"]) != chosen[1]
    np.testing.assert_array_equal(outs[0], outs[1])
