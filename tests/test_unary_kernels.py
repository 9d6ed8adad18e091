"""The unary family's kernel (``Backend.unary``) on every backend against the float64
reference, its argument checks, and the graph layer's use of it (Clip's bounds as
attributes, constants and run-time inputs; constant folding; FLOPs)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hwbench.backends import get_backend
from hwbench.errors import ArgumentError, DTypeError, UnsupportedError
from hwbench.graph.executor import Executor
from hwbench.graph.ir import Graph, Node, ValueInfo
from hwbench.graph.ops import op_def
from hwbench.graph.passes import fold_constants
from hwbench.kernels import spec
from hwbench.kernels.unary_reference import unary as reference

OPS = list(spec.UNARY_OPS)
POSITIVE = {"sqrt", "log", "reciprocal"}  # inputs kept inside the real domain, off 0
# non-default parameters, so that a backend ignoring them fails
PARAMS = {"clip": dict(alpha=-1.25, beta=0.75), "hard_sigmoid": dict(alpha=0.3, beta=0.4),
          "hard_swish": dict(alpha=0.25, beta=0.6), "leaky_relu": dict(alpha=0.2),
          "elu": dict(alpha=0.6)}
SHAPES = [(), (1,), (7,), (3, 5, 11), (2, 3, 4, 9), (1037,)]  # odd sizes: float8 tails


def _input(rng, op: str, shape) -> np.ndarray:
    x = rng.uniform(-4.0, 4.0, shape).astype(np.float32)
    if op in POSITIVE:
        x = (np.abs(x) + 0.1).astype(np.float32)
    if op in ("floor", "ceil") and x.size > 4:
        x.flat[:4] = [-2.0, -0.5, 0.0, 3.0]  # exact integers and a half stay exact
    return x


def _check(got, x, op, params) -> None:
    p = spec.check_unary_op(x, op, **params)
    want = reference(x, op, p.alpha, p.beta)
    got = np.asarray(got)
    assert got.dtype == np.float32 and got.shape == x.shape
    # float32 transcendental functions: a few ulp; oneDNN's log ~3e-6 absolute near 1
    np.testing.assert_allclose(got.astype(np.float64), want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_unary_matches_the_float64_reference(backend, rng, op, shape):
    x = _input(rng, op, shape)
    params = PARAMS.get(op, {})
    _check(backend.to_numpy(backend.unary(backend.asarray(x), op, **params)), x, op, params)


@pytest.mark.parametrize("op", [op for op in OPS if spec.UNARY_OPS[op].params])
def test_defaults_are_the_tables(backend, rng, op):
    x = _input(rng, op, (5, 9))
    got = backend.to_numpy(backend.unary(backend.asarray(x), op))
    _check(got, x, op, {})
    defaults = dict(zip(("alpha", "beta"), spec.UNARY_OPS[op].defaults, strict=False))
    if op != "clip":  # clip's default bounds are infinite: nothing changes
        assert not np.allclose(got, reference(x, op, **{k: v + 0.3 for k, v in
                                                         defaults.items()}))


@pytest.mark.parametrize("bounds, want", [
    (dict(alpha=1.0, beta=-1.0), [-1.0] * 5),   # min > max: every value is max (ONNX)
    (dict(alpha=0.0), [0.0, 0.0, 0.0, 0.5, 3.0]),
    (dict(beta=0.0), [-3.0, -0.5, 0.0, 0.0, 0.0]),
    (dict(alpha=-math.inf, beta=math.inf), [-3.0, -0.5, 0.0, 0.5, 3.0]),
])
def test_clip_bounds(backend, bounds, want):
    x = np.array([-3.0, -0.5, 0.0, 0.5, 3.0], np.float32)
    got = backend.to_numpy(backend.unary(backend.asarray(x), "clip", **bounds))
    np.testing.assert_array_equal(got, np.array(want, np.float32))


def test_large_inputs_stay_finite_where_the_function_is(backend):
    x = np.array([-100.0, -30.0, 30.0, 100.0], np.float32)
    for op in ("softplus", "tanh", "gelu", "gelu_tanh", "elu", "erf", "hard_swish"):
        got = backend.to_numpy(backend.unary(backend.asarray(x), op))
        _check(got, x, op, {})
        assert np.isfinite(got).all(), op


@pytest.mark.parametrize("args, error, match", [
    (dict(op="nope"), ArgumentError, "argument 'op' must be one of"),
    (dict(op=None), ArgumentError, "argument 'op'"),
    (dict(op="sqrt", alpha=1.0), ArgumentError, "argument 'alpha' given, but sqrt takes no"),
    (dict(op="elu", beta=1.0), ArgumentError, "argument 'beta' given, but elu takes only"),
    (dict(op="elu", alpha="1"), ArgumentError, "argument 'alpha' must be a number"),
    (dict(op="elu", alpha=True), ArgumentError, "argument 'alpha' must be a number"),
    (dict(op="leaky_relu", alpha=math.nan), ArgumentError, "argument 'alpha' must be finite"),
    (dict(op="hard_sigmoid", beta=math.inf), ArgumentError, "argument 'beta' must be finite"),
    (dict(op="clip", alpha=math.nan), ArgumentError, "argument 'alpha' must be a number, not"),
])
def test_bad_op_or_parameter_is_named(backend, args, error, match):
    x = backend.asarray(np.ones((2, 3), np.float32))
    args = dict(args)  # (the parameter sets are shared by every backend's run)
    op = args.pop("op")
    with pytest.raises(error, match=match):
        backend.unary(x, op, **args)


@pytest.mark.parametrize("x, error, match", [
    (np.ones((2, 3), np.float64), DTypeError, "argument 'x'"),
    (np.ones((2, 3), np.int32), DTypeError, "argument 'x'"),
    (np.ones((2, 0), np.float32), ArgumentError, "argument 'x' has a zero-size dimension"),
    ([1.0, 2.0], ArgumentError, "argument 'x' must be an array"),
    (np.array([1.0, np.nan], np.float32), ArgumentError, "argument 'x' contains NaN"),
])
def test_bad_input_is_named(backend, x, error, match):
    arg = backend.asarray(x) if isinstance(x, np.ndarray) and x.dtype == np.float32 \
        and x.size else x
    with pytest.raises(error, match=match):
        backend.unary(arg, "tanh")


def test_problem_counts():
    p = spec.check_unary_op(np.ones((4, 5), np.float32), "gelu")
    assert (p.size, p.flops, p.bytes, p.output_bytes) == (20, 100, 160, 80)


def test_systolic_counts_the_vector_unit_work():
    be = get_backend("systolic")
    be.reset_counters()
    be.unary(np.ones((8, 16), np.float32), "hard_swish")
    rows = be.simulated_counters()["layers"]
    assert [r["op"] for r in rows] == ["hard_swish"]
    assert be.simulated_counters()["vector_cycles"] >= 1


def test_cpu_keeps_channels_last_arrays_channels_last():
    be = get_backend("cpu")
    from hwbench.backends.cpu.layouts import ChannelsLastArray

    nhwc = np.random.default_rng(0).standard_normal((2, 3, 4, 5)).astype(np.float32)
    x = ChannelsLastArray(nhwc)
    for op in ("tanh", "erf"):  # an eltwise primitive, and a NumPy fallback
        out = be.unary(x, op)
        assert isinstance(out, ChannelsLastArray)
        _check(be.to_numpy(out), nhwc.transpose(0, 3, 1, 2), op, {})


# -- the graph layer ---------------------------------------------------------------------------
def _graph(node: Node, inits=None, opset=13, extra_inputs=()) -> Graph:
    return Graph("g", [ValueInfo("x", (2, 5)), *extra_inputs], [ValueInfo("y", (2, 5))],
                 dict(inits or {}), [node], opset)


X = np.array([[-3.0, -1.0, -0.25, 0.0, 0.5], [1.0, 2.0, 3.0, 4.0, -4.0]], np.float32)


@pytest.mark.parametrize("inputs, inits, attrs, opset, lo, hi", [
    (["x", "lo", "hi"], {"lo": np.float32(-1), "hi": np.float32(2)}, {}, 13, -1, 2),
    (["x", "", "hi"], {"hi": np.float32(0.5)}, {}, 13, None, 0.5),
    (["x"], {}, {"min": -0.5, "max": 1.0}, 9, -0.5, 1.0),   # attributes before opset 11
    (["x"], {}, {}, 13, None, None),
])
def test_clip_in_a_graph(backend, inputs, inits, attrs, opset, lo, hi):
    graph = _graph(Node("Clip", inputs, ["y"], attrs), inits, opset)
    got = Executor(graph, backend).run({"x": X})[0]
    want = np.clip(X, -np.inf if lo is None else lo, np.inf if hi is None else hi)
    np.testing.assert_array_equal(got, want)


def test_clip_bound_fed_at_run_time_must_be_one_value():
    graph = _graph(Node("Clip", ["x", "lo"], ["y"]), extra_inputs=[ValueInfo("lo", (2,))])
    with pytest.raises(ArgumentError, match="Clip node 'y': input 'min' must be one value"):
        Executor(graph, get_backend("numpy")).run({"x": X, "lo": np.zeros(2, np.float32)})


@pytest.mark.parametrize("op_type, attrs, op, params", [
    ("Gelu", {"approximate": "tanh"}, "gelu_tanh", {}),
    ("Gelu", {}, "gelu", {}),
    ("LeakyRelu", {"alpha": 0.3}, "leaky_relu", {"alpha": 0.3}),
    ("HardSigmoid", {"beta": 0.25}, "hard_sigmoid", {"beta": 0.25}),
    ("Elu", {}, "elu", {}),
    ("Neg", {}, "neg", {}),
])
def test_graph_ops_map_attributes_onto_the_kernel(op_type, attrs, op, params):
    graph = _graph(Node(op_type, ["x"], ["y"], attrs), opset=20)
    got = Executor(graph, get_backend("numpy")).run({"x": X})[0]
    _check(got, X, op, params)
    assert op_def(op_type).flops(Node(op_type, ["x"], ["y"], attrs), [(2, 5)]) == \
        10 * spec.UNARY_OPS[op].flops_per_element


def test_gelu_with_an_unknown_approximation_is_refused():
    graph = _graph(Node("Gelu", ["x"], ["y"], {"approximate": "fast"}), opset=20)
    with pytest.raises(UnsupportedError, match="Gelu node 'y': approximate='fast'"):
        Executor(graph, get_backend("numpy")).run({"x": X})


def test_constant_unary_ops_fold_on_the_host():
    c = np.array([[0.25, 4.0]], np.float32)
    nodes = [Node("Sqrt", ["c"], ["s"]), Node("Clip", ["s", "", "hi"], ["t"]),
             Node("Add", ["x", "t"], ["y"])]
    graph = Graph("g", [ValueInfo("x", (1, 2))], [ValueInfo("y", (1, 2))],
                  {"c": c, "hi": np.float32(1.5)}, nodes, 13)
    folded = fold_constants(graph)
    assert [n.op_type for n in folded.nodes] == ["Add"]
    got = Executor(folded, get_backend("numpy")).run({"x": np.zeros((1, 2), np.float32)})[0]
    np.testing.assert_array_equal(got, np.array([[0.5, 1.5]], np.float32))


def test_integer_constants_fold_for_the_ops_that_keep_integers():
    graph = Graph("g", [], [ValueInfo("y", (3,))], {"c": np.array([-2, 0, 3], np.int64)},
                  [Node("Abs", ["c"], ["a"]), Node("Neg", ["a"], ["y"])], 13)
    folded = fold_constants(graph)
    assert folded.nodes == []
    out = folded.initializers["y"]
    assert out.dtype == np.int64
    np.testing.assert_array_equal(out, np.array([-2, 0, -3], np.int64))


def test_integer_constants_of_float_only_ops_are_refused():
    graph = Graph("g", [], [ValueInfo("y", (2,))], {"c": np.array([1, 4], np.int64)},
                  [Node("Sqrt", ["c"], ["y"])], 13)
    with pytest.raises(UnsupportedError, match="Sqrt node 'y': Sqrt of a int64 constant"):
        fold_constants(graph)


# -- the cuda backend's side, without a GPU (tests/test_cuda_unit.py's approach) --------------
def test_cuda_unary_builds_one_elementwise_kernel_per_op_from_its_table():
    from hwbench.backends.cuda import kernels
    from hwbench.backends.cuda import unary as cuda_unary

    assert set(cuda_unary.BODIES) == set(spec.UNARY_OPS)
    built = []

    class FakeCupy:
        def ElementwiseKernel(self, inputs, outputs, body, name):  # noqa: N802 - CuPy's name
            built.append((inputs, outputs, body, name))
            return lambda x, alpha, beta: (name, x, alpha, beta)

    class Fake(cuda_unary.UnaryKernels):
        def __init__(self):
            self.kernels = kernels.Kernels(FakeCupy())

        def _dev(self, x):
            return x

    be, x = Fake(), np.ones(3, np.float32)
    p = spec.check_unary_op(x, "clip", alpha=-1.0, beta=2.0)
    for _ in range(2):
        name, got, alpha, beta = be._unary_op(p, x)
    assert len(built) == 1 and built[0][:2] == ("float32 x, float32 alpha, float32 beta",
                                                "float32 y")
    assert name == "hwb_unary_clip" and got is x
    assert (alpha, beta) == (-1.0, 2.0) and type(alpha) is np.float32
    for op in spec.UNARY_OPS:  # every body assigns y from x
        assert cuda_unary.BODIES[op].startswith("y = ") and "x" in cuda_unary.BODIES[op]
