"""Slice, Gather, Expand, Pad, Tile on every backend against the float64 references
(odd sizes, negative axes/indices/steps, clamped bounds), their bad-input errors, and the
graph layer's run-time forms (host-constant shape inputs, token ids as a host feed)."""

from __future__ import annotations

import numpy as np
import pytest

from hwbench.backends import get_backend
from hwbench.backends.base import Backend
from hwbench.backends.numpy_backend import NumpyBackend
from hwbench.errors import ArgumentError, DTypeError, UnsupportedError
from hwbench.kernels import tensor_ops_reference as ref

SLICES = [  # (shape, starts, ends, axes, steps)
    ((7, 5), [1], [6], None, None),
    ((7, 5, 3), [-3, 0], [100, -1], [0, 2], [2, 1]),
    ((7, 5, 3), [-1, 4], [-100, 0], [-3, 1], [-2, -1]),
    ((9, 11), [0, 10], [9, -12], [0, -1], [3, -4]),
    ((2, 3, 4, 5), [1, -2], [2, 5], [-1, 1], [1, 1]),
    ((5, 6), [-100, -1], [100, -7], [0, 1], [1, -1]),
    ((2, 5, 60), [1, 20], [5, 57], [1, 2], None),  # runs of 37 along the last axis: rows
    ((3, 4, 48), [16, 1], [32, 4], [2, 0], None),  # one 16-long run per row
    ((3, 40), [1, 39], [3, -100], [0, 1], [1, -1]),  # a reversed last axis: no run
]


@pytest.fixture
def x(rng):
    return lambda shape: rng.standard_normal(shape).astype(np.float32)


@pytest.mark.parametrize("shape,starts,ends,axes,steps", SLICES)
def test_slice_matches_reference(backend, x, shape, starts, ends, axes, steps):
    data = x(shape)
    got = backend.to_numpy(backend.slice(backend.asarray(data), starts, ends, axes, steps))
    full_axes = range(len(starts)) if axes is None else [a % len(shape) for a in axes]
    want = ref.slice_ref(data, starts, ends, list(full_axes), steps)
    assert got.shape == want.shape and got.dtype == np.float32
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("shape,indices,axis", [
    ((13, 5), [[3, 0, 12], [-1, -13, 7]], 0),   # an embedding lookup, ids (2, 3)
    ((13, 20), [[3, 0, 12], [-1, -13, 7]], 0),  # rows of 20: opencl's take_rows
    ((3, 7, 2), [6, -7, 2, 2], 1),
    ((4, 3), [-1], -1),
    ((5,), 2, 0),                                # a scalar index: a 0-d result
])
def test_gather_matches_reference(backend, x, shape, indices, axis):
    data, idx = x(shape), np.asarray(indices, np.int64)
    got = backend.to_numpy(backend.gather(backend.asarray(data), idx, axis))
    want = ref.gather_ref(data, idx, axis)
    assert got.shape == want.shape
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("shape,target", [((3, 1), (2, 3, 5)), ((1, 4, 1), (3, 1, 7)),
                                          ((5,), (1,)), ((2, 1, 3), (2, 4, 3))])
def test_expand_matches_reference(backend, x, shape, target):
    data = x(shape)
    got = backend.to_numpy(backend.expand(backend.asarray(data), target))
    np.testing.assert_array_equal(got, ref.expand_ref(data, target))


@pytest.mark.parametrize("mode", ["constant", "reflect", "edge", "wrap"])
@pytest.mark.parametrize("shape,pads", [((3, 5), (1, 2, 2, 1)), ((2, 3, 7), (0, 1, 3, 1, 0, 2)),
                                        ((4, 6), (-1, 2, 1, -3))])
def test_pad_matches_reference(backend, x, mode, shape, pads):
    data = x(shape)
    got = backend.to_numpy(backend.pad(backend.asarray(data), pads, mode, -2.5))
    want = ref.pad_ref(data, pads, mode, -2.5)
    assert got.shape == want.shape
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("shape,repeats", [((3, 5), (2, 3)), ((1, 2, 3), (3, 1, 2)), ((7,), (1,))])
def test_tile_matches_reference(backend, x, shape, repeats):
    data = x(shape)
    got = backend.to_numpy(backend.tile(backend.asarray(data), repeats))
    np.testing.assert_array_equal(got, ref.tile_ref(data, repeats))


@pytest.mark.parametrize("dtype", [np.int8, np.uint8, np.int32])
def test_integer_data_moves_exactly(backend, rng, dtype):
    data = rng.integers(0, 100, (5, 6)).astype(dtype)
    dev = backend.asarray(data)
    got = backend.to_numpy(backend.pad(dev, (1, 2, 0, 3), "constant", 7))
    assert got.dtype == dtype
    np.testing.assert_array_equal(got, np.pad(data, ((1, 0), (2, 3)), constant_values=7))
    got = backend.to_numpy(backend.slice(dev, [4], [0], [0], [-2]))
    np.testing.assert_array_equal(got, data[4:0:-2])


def test_slice_result_does_not_alias_the_input(backend, x):
    data = x((4, 4))
    dev = backend.asarray(data)
    out = backend.slice(dev, [0], [4], [0])  # the whole array
    host = backend.to_numpy(out)
    np.testing.assert_array_equal(host, data)
    assert out is not dev


BAD = [
    ("slice", dict(starts=[0], ends=[1], steps=[0]), ArgumentError, "'steps'"),
    ("slice", dict(starts=[0, 0], ends=[1]), ArgumentError, "'ends'"),
    ("slice", dict(starts=[0], ends=[1], axes=[2]), ArgumentError, "'axes'"),
    ("slice", dict(starts=[0, 0], ends=[1, 1], axes=[1, -1]), ArgumentError, "'axes'"),
    ("slice", dict(starts=[3], ends=[1]), UnsupportedError, "zero-size"),
    ("slice", dict(starts=[0.5], ends=[1]), ArgumentError, "'starts'"),
    ("gather", dict(indices=np.array([0, 3])), ArgumentError, "'indices' holds 3"),
    ("gather", dict(indices=np.array([-4])), ArgumentError, "'indices' holds -4"),
    ("gather", dict(indices=np.array([0.0])), DTypeError, "'indices'"),
    ("gather", dict(indices=np.array([0]), axis=2), ArgumentError, "'axis'"),
    ("expand", dict(shape=(4, 5)), ArgumentError, "'shape'"),
    ("expand", dict(shape=(0, 4)), ArgumentError, "'shape'"),
    ("pad", dict(pads=(1, 1)), ArgumentError, "'pads'"),
    ("pad", dict(pads=(0, 0, 0, 0), mode="symmetric"), ArgumentError, "'mode'"),
    ("pad", dict(pads=(-3, 0, 0, 0)), ArgumentError, "'pads'"),
    ("pad", dict(pads=(0, 0, 0, 0), value=float("nan")), ArgumentError, "'value'"),
    ("tile", dict(repeats=(2,)), ArgumentError, "'repeats'"),
    ("tile", dict(repeats=(0, 1)), ArgumentError, "'repeats'"),
]


@pytest.mark.parametrize("op,kwargs,error,match", BAD)
def test_bad_input_raises_naming_the_argument(backend, x, op, kwargs, error, match):
    with pytest.raises(error, match=match):
        getattr(backend, op)(backend.asarray(x((3, 4))), **kwargs)


def test_gather_refuses_device_indices(backend, x):
    if backend.name in ("numpy", "systolic", "cpu"):
        pytest.skip("this backend's device arrays are host NumPy arrays")
    dev = backend.asarray(x((3, 4)))
    with pytest.raises(ArgumentError, match="'indices' must be a host NumPy"):
        backend.gather(dev, backend.asarray(np.array([0], np.int32)))


def test_bad_dtype_is_refused(backend):
    with pytest.raises(DTypeError, match="'x'"):
        backend.tile(backend.asarray(np.ones((2, 2), np.float64)), (1, 2))


def test_a_backend_without_take_lacks_every_op():
    from hwbench.graph.executor import lacks_kernel

    class NoTake(NumpyBackend):
        _take = Backend._take  # the interface's stub: no kernel for any of the ops

    be = NoTake()
    assert all(lacks_kernel(be, op) for op in ("slice", "gather", "expand", "pad", "tile"))
    assert not any(lacks_kernel(get_backend("numpy"), op) for op in ("slice", "gather", "tile"))
    with pytest.raises(UnsupportedError, match="numpy: slice is not implemented"):
        be.slice(np.ones((2, 2), np.float32), [0], [1])


def test_cpu_step1_slices_and_constant_pads_run_on_onednn(rng):
    from hwbench.pytest_plugin import availability

    ok, why = availability("cpu")
    if not ok:
        pytest.skip(why)
    be = get_backend("cpu")
    data = rng.standard_normal((6, 7, 9)).astype(np.float32)

    def boxes():
        return sum(1 for key in be._primitives if key[0] == "box_copy")

    before = boxes()
    got = be.slice(data, [1, -4], [5, 100], [0, 2])
    np.testing.assert_array_equal(got, data[1:5, :, 5:])
    got = be.pad(data, (1, 0, 2, -1, 3, 0), "constant", 0.5)
    np.testing.assert_array_equal(got, ref.pad_ref(data, (1, 0, 2, -1, 3, 0), "constant", 0.5))
    assert boxes() == before + 2  # one oneDNN reorder each
    be.slice(data, [5], [0], [0], [-2])  # stepped backwards: NumPy, no primitive
    assert boxes() == before + 2
