"""The integer/bool kernels (``int_binary``, ``int_unary``, ``cumsum``, ``arg_reduce``, and
``compare``/``where`` on integers) on every backend against ``integer_reference`` and
plain NumPy, at odd sizes and with broadcasting; int64 values above 2**24 (and 2**53)
stay exact; bad input raises the named hwbench error; a model whose kernels cannot take
its element types is refused at load, naming every node."""

from __future__ import annotations

import numpy as np
import pytest

from hwbench.errors import ArgumentError, DTypeError, UnsupportedError
from hwbench.graph.element_types import infer_element_types, type_problems
from hwbench.graph.executor import Executor
from hwbench.graph.ir import Graph, Node, ValueInfo
from hwbench.kernels import integer_reference as ref

SHAPES = [((7,), (7,)), ((3, 5), (5,)), ((2, 1, 3), (4, 1)), ((1,), (2, 3))]
BIG = 2**40 + 3  # beyond float32's (2**24) and near float64's exact range


def _ints(rng, shape, dtype, lo=-BIG, hi=BIG):
    info = np.iinfo(dtype)
    return rng.integers(max(lo, info.min), min(hi, info.max), shape).astype(dtype)


def _run(be, fn, *arrays, **kw):
    return be.to_numpy(fn(*[be.asarray(a) for a in arrays], **kw))


def _python(a, b, op):
    """Each element with Python's exact integers: the truth the kernels must match."""
    def one(x, y):
        x, y = int(x), int(y)
        if op == "div":
            return 0 if y == 0 else abs(x) // abs(y) * (1 if (x < 0) == (y < 0) else -1)
        if op == "mod":
            return 0 if y == 0 else x % y
        if op == "fmod":
            return 0 if y == 0 else abs(x) % abs(y) * (1 if x >= 0 else -1)
        return {"add": x + y, "sub": x - y, "mul": x * y, "max": max(x, y),
                "min": min(x, y)}[op]
    a, b = np.broadcast_arrays(a, b)
    return np.array([one(x, y) for x, y in zip(a.ravel(), b.ravel(), strict=True)],
                    dtype=object).reshape(a.shape)


@pytest.mark.parametrize("dtype", [np.int32, np.int64])
@pytest.mark.parametrize("op", ["add", "sub", "mul", "div", "mod", "fmod", "max", "min"])
@pytest.mark.parametrize("shapes", SHAPES, ids=str)
def test_int_binary_exact(backend, rng, dtype, op, shapes):
    a = _ints(rng, shapes[0], dtype)
    b = _ints(rng, shapes[1], dtype, -9, 10)  # small divisors (0 included), big values
    got = _run(backend, backend.int_binary, a, b, op=op)
    assert got.dtype == dtype
    want = _python(a, b, op)
    if op == "mul":  # wraps: compare modulo 2**bits
        bits = np.iinfo(dtype).bits
        want = np.array([int(v) % 2**bits for v in want.ravel()], dtype=object)
        want = np.array([v - 2**bits if v >= 2**(bits - 1) else v for v in want],
                        dtype=dtype).reshape(got.shape)
    np.testing.assert_array_equal(got, want.astype(dtype))


def test_int64_above_2_24_stays_exact(backend):
    a = np.array([2**24 + 1, 2**53 + 1, -(2**40) - 7], np.int64)
    b = np.array([1, 1, 3], np.int64)
    np.testing.assert_array_equal(_run(backend, backend.int_binary, a, b, op="add"),
                                  [2**24 + 2, 2**53 + 2, -(2**40) - 4])
    np.testing.assert_array_equal(_run(backend, backend.int_binary, a, b, op="div"),
                                  [2**24 + 1, 2**53 + 1, -((2**40 + 7) // 3)])
    np.testing.assert_array_equal(
        _run(backend, backend.compare, a, a + np.array([0, 1, 0], np.int64), op="equal"),
        [True, False, True])
    got = _run(backend, backend.cumsum, np.array([2**53, 1, 1], np.int64), axis=0)
    np.testing.assert_array_equal(got, [2**53, 2**53 + 1, 2**53 + 2])


def test_division_edges(backend):
    info = np.iinfo(np.int32)
    a = np.array([info.min, 7, -7, 7, -7, 5], np.int32)
    b = np.array([-1, 0, 2, -2, -2, 0], np.int32)
    np.testing.assert_array_equal(_run(backend, backend.int_binary, a, b, op="div"),
                                  [info.min, 0, -3, -3, 3, 0])
    np.testing.assert_array_equal(_run(backend, backend.int_binary, a, b, op="mod"),
                                  [0, 0, 1, -1, -1, 0])
    np.testing.assert_array_equal(_run(backend, backend.int_binary, a, b, op="fmod"),
                                  [0, 0, -1, 1, -1, 0])


@pytest.mark.parametrize("op", ["and", "or", "xor"])
@pytest.mark.parametrize("shapes", SHAPES, ids=str)
def test_logical(backend, rng, op, shapes):
    a, b = rng.random(shapes[0]) < 0.5, rng.random(shapes[1]) < 0.5
    got = _run(backend, backend.int_binary, a, b, op=op)
    assert got.dtype == np.bool_
    np.testing.assert_array_equal(got, getattr(np, f"logical_{op}")(a, b))


@pytest.mark.parametrize("dtype", [np.int32, np.int64])
def test_int_unary(backend, rng, dtype):
    x = _ints(rng, (3, 7), dtype)
    x[0, 0] = np.iinfo(dtype).min  # neg and abs wrap there
    for op, fn in (("neg", np.negative), ("abs", np.abs)):
        got = _run(backend, backend.int_unary, x, op=op)
        assert got.dtype == dtype
        with np.errstate(over="ignore"):
            np.testing.assert_array_equal(got, fn(x))
    m = rng.random((5, 3)) < 0.5
    np.testing.assert_array_equal(_run(backend, backend.int_unary, m, op="not"), ~m)


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.bool_])
@pytest.mark.parametrize("op", ["equal", "less", "greater", "less_equal", "greater_equal"])
def test_compare_integers(backend, rng, dtype, op):
    if dtype == np.bool_:
        if op != "equal":
            pytest.skip("bool compares with equal only")
        a, b = rng.random((3, 5)) < 0.5, rng.random((5,)) < 0.5
    else:
        a, b = _ints(rng, (3, 5), dtype, -3, 3), _ints(rng, (5,), dtype, -3, 3)
    got = _run(backend, backend.compare, a, b, op=op)
    np.testing.assert_array_equal(got, ref.COMPARE[op](a, b))


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.bool_])
def test_where_integer_branches(backend, rng, dtype):
    c = rng.random((2, 1, 5)) < 0.5
    x = (rng.random((3, 5)) < 0.5) if dtype == np.bool_ else _ints(rng, (3, 5), dtype)
    y = (rng.random((5,)) < 0.5) if dtype == np.bool_ else _ints(rng, (5,), dtype)
    got = _run(backend, backend.where, c, x, y)
    assert got.dtype == dtype
    np.testing.assert_array_equal(got, np.where(c, x, y))


@pytest.mark.parametrize("dtype", [np.float32, np.int32, np.int64])
@pytest.mark.parametrize("shape,axis", [((13,), 0), ((3, 7), 1), ((2, 5, 3), 1),
                                        ((4, 3), 0)])
@pytest.mark.parametrize("exclusive", [False, True])
@pytest.mark.parametrize("reverse", [False, True])
def test_cumsum(backend, rng, dtype, shape, axis, exclusive, reverse):
    x = (rng.standard_normal(shape).astype(dtype) if dtype == np.float32
         else _ints(rng, shape, dtype, -2**20, 2**20))
    got = _run(backend, backend.cumsum, x, axis=axis, exclusive=exclusive, reverse=reverse)
    assert got.dtype == dtype and got.shape == shape
    # the truth by hand: a loop over positions along the axis, in float64 / Python ints
    v = np.moveaxis(x, axis, -1).astype(np.float64 if dtype == np.float32 else object)
    order = range(shape[axis] - 1, -1, -1) if reverse else range(shape[axis])
    want, run = np.zeros_like(v), np.zeros(v.shape[:-1], v.dtype)
    for k in order:
        if exclusive:
            want[..., k], run = run, run + v[..., k]
        else:
            run = run + v[..., k]
            want[..., k] = run
    want = np.moveaxis(want, -1, axis)
    if dtype == np.float32:
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    else:
        np.testing.assert_array_equal(got, want.astype(dtype))


@pytest.mark.parametrize("dtype", [np.float32, np.int32, np.int64])
@pytest.mark.parametrize("op", ["argmax", "argmin"])
@pytest.mark.parametrize("select_last", [False, True])
@pytest.mark.parametrize("keepdims", [False, True])
def test_arg_reduce(backend, rng, dtype, op, select_last, keepdims):
    x = rng.integers(0, 3, (3, 7, 5)).astype(dtype)  # ties, so first/last differ
    x[0, 0, 0] = 2**40 if dtype == np.int64 else x[0, 0, 0]
    for axis in (0, 1, 2):
        got = _run(backend, backend.arg_reduce, x, axis=axis, keepdims=keepdims,
                   select_last=select_last, op=op)
        assert got.dtype == np.int64
        ext = (np.max if op == "argmax" else np.min)(x, axis=axis, keepdims=True)
        hits = np.moveaxis(x == ext, axis, -1)
        idx = [np.flatnonzero(h)[-1 if select_last else 0] for h in hits.reshape(
            -1, x.shape[axis])]
        want = np.array(idx, np.int64).reshape(hits.shape[:-1])
        want = np.expand_dims(want, axis) if keepdims else want
        np.testing.assert_array_equal(got, want)


def test_bad_input(backend):
    i64, i32 = np.ones((2, 3), np.int64), np.ones((2, 3), np.int32)
    f32, b = np.ones((2, 3), np.float32), np.ones((2, 3), bool)
    with pytest.raises(DTypeError, match="'a' and 'b' must have the same dtype"):
        backend.int_binary(i64, i32, "add")
    with pytest.raises(DTypeError, match="argument 'a'"):
        backend.int_binary(f32, f32, "add")
    with pytest.raises(DTypeError, match="argument 'a'"):
        backend.int_binary(i64, i64, "and")
    with pytest.raises(ArgumentError, match="argument 'op'"):
        backend.int_binary(i64, i64, "pow")
    with pytest.raises(ArgumentError, match="do not broadcast"):
        backend.int_binary(i64, np.ones((4,), np.int64), "add")
    with pytest.raises(DTypeError, match="argument 'x'"):
        backend.int_unary(i64, "not")
    with pytest.raises(DTypeError, match="only equal compares bools"):
        backend.compare(b, b, "less")
    with pytest.raises(DTypeError, match="same dtype"):
        backend.compare(i64, f32, "equal")
    with pytest.raises(DTypeError, match="'x' and 'y'"):
        backend.where(b, i64, f32)
    with pytest.raises(ArgumentError, match="argument 'axis'"):
        backend.cumsum(i64, 2)
    with pytest.raises(DTypeError, match="argument 'x'"):
        backend.cumsum(b, 0)
    with pytest.raises(ArgumentError, match="argument 'exclusive'"):
        backend.cumsum(i64, 0, exclusive=2)
    with pytest.raises(ArgumentError, match="argument 'axis'"):
        backend.arg_reduce(f32, -3)
    with pytest.raises(ArgumentError, match="argument 'op'"):
        backend.arg_reduce(f32, 0, op="argsort")


# -- element types at load -----------------------------------------------------------------
def _graph(nodes, inputs, outputs, inits=None):
    return Graph("types", inputs, outputs, dict(inits or {}), nodes, 17)


def test_element_types_follow_the_ops():
    ids = ValueInfo("ids", (1, 4), np.dtype(np.int64))
    g = _graph([Node("Equal", ["ids", "zero"], ["m"], {}, "eq"),
                Node("Not", ["m"], ["keep"], {}, "not"),
                Node("Cast", ["keep"], ["f"], {"to": 1}, "cast"),
                Node("ArgMax", ["f"], ["top"], {"axis": 1}, "arg"),
                Node("CumSum", ["ids", "ax"], ["pos"], {}, "cs")],
               [ids], [ValueInfo("top", (1, 1)), ValueInfo("pos", (1, 4))],
               {"zero": np.zeros((1,), np.int64), "ax": np.array(1, np.int64)})
    t = infer_element_types(g)
    assert (t["m"], t["keep"], t["f"], t["top"], t["pos"]) == (
        np.bool_, np.bool_, np.float32, np.int64, np.int64)
    assert type_problems(g) == []


def test_a_model_whose_kernels_cannot_take_its_types_is_refused_at_load_naming_each():
    from hwbench.backends import get_backend

    ids = ValueInfo("ids", (1, 4), np.dtype(np.int64))
    g = _graph([Node("Sqrt", ["ids"], ["s"], {}, "root"),  # float32 only
                Node("Pow", ["ids", "two"], ["p"], {}, "square"),  # float32 only
                Node("Add", ["ids", "half"], ["a"], {}, "mixed")],  # int64 + float32
               [ids], [ValueInfo(n, (1, 4)) for n in ("s", "p", "a")],
               {"two": np.array([2], np.int64), "half": np.array([0.5], np.float32)})
    with pytest.raises(UnsupportedError) as err:
        Executor(g, get_backend("numpy"))
    msg = str(err.value)
    assert "4 node input(s)" in msg  # both of Pow's inputs are int64
    assert "node 'root' (Sqrt) input 0 'ids' is int64 (its kernels take float32)" in msg
    assert "node 'square' (Pow) input 0 'ids' is int64" in msg
    assert "node 'square' (Pow) input 1 'two' is int64" in msg
    assert "node 'mixed' (Add) input 1 'half' is float32 where its other inputs are int64" \
        in msg
