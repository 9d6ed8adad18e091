"""LayerNormalization gives the same bits on numpy, cpu and opencl (issue 15: Swin-T's int8
export differed by 0.041 in its logits between cpu and numpy, because oneDNN's layer
normalization -- and the OpenCL kernel's -- summed each row in another order than NumPy's
pairwise summation, a few ulp apart, and a QuantizeLinear after it moved by one code).
cpu now runs the numpy backend's formula; the OpenCL kernel sums as NumPy does."""

from __future__ import annotations

import numpy as np
import pytest

from hwbench.backends import get_backend
from hwbench.pytest_plugin import availability

# Row lengths around NumPy's pairwise-summation thresholds (8, 128 and the splits above).
SHAPES = [((5, 1), -1), ((3, 7), -1), ((4, 8), -1), ((4, 9), -1), ((3, 127), -1),
          ((3, 128), -1), ((3, 129), -1), ((7, 200), -1), ((2, 49, 96), -1),
          ((2, 5, 768), -1), ((4, 1000), -1), ((2, 4100), -1), ((3, 5, 6), 1)]


def _backends():
    out = [get_backend("numpy")]
    for name in ("cpu", "opencl"):
        ok, why = availability(name)
        if ok:
            out.append(get_backend(name))
    if len(out) == 1:
        pytest.skip("neither cpu nor opencl is available here")
    return out


@pytest.mark.parametrize("shape,axis", SHAPES)
@pytest.mark.parametrize("stats", [False, True])
def test_layer_norm_is_bit_identical_to_numpy(shape, axis, stats):
    rng = np.random.default_rng(sum(shape) + axis)
    # An offset mean and a wide scale: the sums' rounding differs between orders.
    x = (rng.standard_normal(shape) * 30 + 3).astype(np.float32)
    scale = rng.standard_normal(shape[axis % len(shape):]).astype(np.float32)
    bias = rng.standard_normal(scale.shape).astype(np.float32)
    numpy_backend, *others = _backends()
    ref = numpy_backend.layer_norm(x, scale, bias, axis=axis, stats=stats)
    ref = ref if stats else (ref,)
    for be in others:
        out = be.layer_norm(be.asarray(x), be.asarray(scale), be.asarray(bias), axis=axis,
                            stats=stats)
        for got, want in zip(out if stats else (out,), ref, strict=True):
            np.testing.assert_array_equal(be.to_numpy(got), np.asarray(want),
                                          err_msg=be.name)


def test_the_check_can_fail_a_sum_in_another_order_differs():
    """The shapes above tell orders apart: a plain left-to-right float32 sum of a row
    gives a different mean than NumPy's pairwise sum on at least one of them."""
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((64, 768)) * 30 + 3).astype(np.float32)
    sequential = np.zeros(64, np.float32)
    for column in x.T:
        sequential += column
    assert not np.array_equal(sequential, np.add.reduce(x, axis=1, dtype=np.float32))
