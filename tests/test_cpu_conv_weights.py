"""A frozen weight packed once per weights layout (``cpu/conv_weights.py``): two
convolutions of the same problem whose primitives want different weight layouts (nChw16c's
``jit_1x1`` and NHWC's ``brgconv_1x1``) each get their own copy, kept; and a session
with ``conv_layout="nhwc"`` runs an SE block's 1x1 conv (one weight, two thread
counts) right."""

from __future__ import annotations

import numpy as np
import pytest

from hwbench.backends import backend_class, get_backend
from hwbench.backends.cpu.onednn import ARG_WEIGHTS
from hwbench.backends.cpu.primitives import Conv
from hwbench.kernels import spec

pytestmark = pytest.mark.skipif(not backend_class("cpu").available()[0],
                                reason="needs the cpu backend (onednn wheel)")


def test_each_weights_layout_gets_its_own_packed_copy(rng):
    be = get_backend("cpu", threads=1)
    p = spec.ConvProblem(1, 24, 8, 8, 40, 1, 1)
    host = rng.standard_normal((40, 24, 1, 1)).astype(np.float32)
    w = be.asarray(host)
    convs = [Conv(be.dnnl, p, layout) for layout in ("blocked", "nhwc")]
    mds = [c.prim.mds[ARG_WEIGHTS] for c in convs]
    assert not mds[0] == mds[1], "the two layouts should want different weights"
    packed = [be._packed(c, w) for c in convs]
    for conv, got in zip(convs, packed, strict=True):
        fresh = be._packed(conv, host.copy())  # not frozen: reordered now, for this conv
        assert got.tobytes() == fresh.tobytes()
        assert be._packed(conv, w) is got  # kept for the frozen array


@pytest.mark.parametrize("layout", ["nhwc", "blocked"])
def test_one_weight_on_one_and_two_threads(rng, monkeypatch, layout):
    """1x1 convs of a 1x1 image (an SE block's) on one thread and then on two, the same
    frozen weight: each call packs for its own primitive."""
    host = rng.standard_normal((48, 1152, 1, 1)).astype(np.float32)
    x = rng.standard_normal((1, 1152, 1, 1)).astype(np.float32)
    want = np.einsum("kc,nc->nk", host[:, :, 0, 0].astype(np.float64),
                     x[:, :, 0, 0].astype(np.float64))[:, :, None, None]
    be = get_backend("cpu", threads=2, conv_layout=layout)
    w = be.asarray(host)
    for threads in (1, 2):
        monkeypatch.setattr(be, "threads_for", lambda problem, n=threads: n)
        got = np.asarray(be.to_numpy(be.conv2d(be.asarray(x), w)))
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
