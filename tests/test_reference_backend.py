"""ReferenceBackend (the float64 reference every model output is compared with) has every
kernel the numpy backend has, each computed in float64 by its family's reference module."""

from __future__ import annotations

import numpy as np
import pytest

from hwbench.backends.base import Backend
from hwbench.backends.numpy_backend import NumpyBackend
from hwbench.backends.reference import ReferenceBackend
from hwbench.graph.executor import lacks_kernel
from hwbench.graph.ops import FAMILIES


def _kernels() -> list[str]:
    return sorted({k for family in FAMILIES for d in family.DEFS for k in d.kernels})


@pytest.mark.parametrize("kernel", _kernels())
def test_reference_has_every_numpy_kernel(kernel):
    if lacks_kernel(NumpyBackend, kernel):
        pytest.skip(f"numpy lacks {kernel} too")
    assert not lacks_kernel(ReferenceBackend, kernel), kernel
    # Backend's public methods check for float32: the reference defines its own, in float64
    assert getattr(ReferenceBackend, kernel) is not getattr(Backend, kernel), kernel


rng = np.random.default_rng(0)
X = rng.standard_normal((3, 5, 7))
Y = rng.standard_normal((5, 1))
W_T = rng.standard_normal((5, 2, 3, 1))
RNN_WEIGHTS = [rng.standard_normal(s) for s in ((2, 12, 7), (2, 12, 4), (2, 24))]

# kernel call on both backends: (name, function of backend, x converter)
CASES = {
    "slice": lambda b, x: b.slice(x, [1, -3], [3, 100], [0, 2], [1, 2]),
    "gather": lambda b, x: b.gather(x, np.array([[0, 2], [-1, 1]]), 1),
    "expand": lambda b, x: b.expand(x, [2, 3, 5, 7]),
    "pad": lambda b, x: b.pad(x, [0, 1, 2, 0, -1, 1], "reflect"),
    "tile": lambda b, x: b.tile(x, [1, 2, 3]),
    "layer_norm": lambda b, x: b.layer_norm(x, b.asarray(np.float32(np.arange(7) + 1.0)),
                                            b.asarray(np.ones(7, np.float32)), -1, 1e-5),
    "reduce": lambda b, x: b.reduce(x, "log_sum_exp", [0, 2], keepdims=False),
    "matmul": lambda b, x: b.matmul(x, b.transpose(x, (0, 2, 1))),
    "unary": lambda b, x: b.unary(x, "gelu"),
    "binary": lambda b, x: b.binary(x, b.asarray(np.float32(Y)), "pow"),
    "compare": lambda b, x: b.compare(x, b.asarray(np.float32(Y)), "less"),
    "where": lambda b, x: b.where(b.compare(x, b.asarray(np.float32(Y)), "greater"), x,
                                  b.asarray(np.float32(Y))),
    # X as NCHW (3, 5, 7, 1): 5 channels in, 2 out, stride 2
    "conv_transpose2d": lambda b, x: b.conv_transpose2d(
        b.reshape(x, (3, 5, 7, 1)), b.asarray(np.float32(W_T)), b.asarray(np.float32(Y[:2, 0])),
        stride=2, padding=(1, 0, 0, 0), output_padding=1),
    "resize": lambda b, x: b.resize(x, scales=np.array([1.0, 2.0, 0.5]), mode="cubic"),
    "rnn": lambda b, x: b.rnn(x, *(b.asarray(np.float32(a)) for a in RNN_WEIGHTS),
                              sequence_lens=np.array([3, 2, 3, 1, 3]), cell="gru",
                              hidden_size=4, direction="bidirectional")[0],
}


@pytest.mark.parametrize("kernel", sorted(CASES))
def test_reference_kernel_matches_numpy_in_float64(kernel):
    ref, num = ReferenceBackend(), NumpyBackend()
    x = np.abs(X) if kernel == "binary" else X
    got = CASES[kernel](ref, ref.asarray(x))
    want = num.to_numpy(CASES[kernel](num, num.asarray(x.astype(np.float32))))
    assert got.shape == want.shape
    if got.dtype.kind == "f":
        assert got.dtype == np.float64
        np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-5)
    else:
        np.testing.assert_array_equal(got, want)


def test_reference_take_keeps_integer_dtype():
    ids = np.arange(12, dtype=np.int32).reshape(3, 4)
    out = ReferenceBackend().slice(ids, [1], [3], [1])
    assert out.dtype == np.int32
    np.testing.assert_array_equal(out, ids[:, 1:3])
