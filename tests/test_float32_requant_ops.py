"""QLinearAdd and QLinearConcat in the ``cpu:float32-requant`` mode (``_qadd_fused``,
``_qconcat_fused``): one oneDNN binary or reorder per op in float32, the exact codes (the
``cpu`` default's tables) or 1 LSB away, and the exact path wherever they do not apply."""

from __future__ import annotations

import numpy as np
import pytest

from hwbench.backends import get_backend
from hwbench.backends.cpu.layouts import ChannelsLastArray
from hwbench.pytest_plugin import availability

pytestmark = pytest.mark.skipif(not availability("cpu")[0], reason="cpu backend unavailable")


def _held(x: np.ndarray) -> ChannelsLastArray:
    return ChannelsLastArray(np.ascontiguousarray(x.transpose(0, 2, 3, 1)))


def _plain(x) -> np.ndarray:
    return x.nhwc.transpose(0, 3, 1, 2) if isinstance(x, ChannelsLastArray) else np.asarray(x)


def _within_one_lsb(got, want) -> None:
    got, want = _plain(got).astype(np.int64), _plain(want).astype(np.int64)
    assert got.shape == want.shape
    assert np.abs(got - want).max() <= 1
    assert np.count_nonzero(got != want) <= max(2, got.size // 1000)


def _used(be, kind: str) -> int:
    return sum(1 for key in be._primitives if key[0] == kind)


@pytest.mark.parametrize("held", [True, False])
@pytest.mark.parametrize("dtypes", [(np.uint8, np.uint8, np.uint8), (np.int8, np.uint8, np.int8)])
@pytest.mark.parametrize("seed", range(6))
def test_add_is_the_exact_codes_or_one_lsb_away(held, dtypes, seed):
    fast, exact = get_backend("cpu:float32-requant"), get_backend("cpu")
    rng = np.random.default_rng(seed)
    codes = [rng.integers(np.iinfo(t).min, np.iinfo(t).max + 1, (2, 16, 9, 9)).astype(t)
             for t in dtypes[:2]]
    scales = [np.float32(10.0 ** rng.uniform(-3, -1)) for _ in range(3)]
    zeros = [t(rng.integers(np.iinfo(t).min, np.iinfo(t).max + 1)) for t in dtypes]
    a, b = (_held(c) if held else c for c in codes)
    relu = bool(seed % 2)
    args = (a, scales[0], zeros[0], b, scales[1], zeros[1], scales[2], zeros[2], relu)
    got, want = fast.qlinear_binary("add", *args), exact.qlinear_binary("add", *args)
    assert _used(fast, "qadd") == 1 and _used(exact, "qadd") == 0
    assert isinstance(got, ChannelsLastArray) == held
    assert got.dtype == want.dtype == np.dtype(dtypes[2])
    _within_one_lsb(got, want)
    if relu:
        assert _plain(got).min() >= zeros[2]


def test_add_of_other_shapes_or_layouts_runs_the_exact_table():
    fast, exact = get_backend("cpu:float32-requant"), get_backend("cpu")
    a = np.arange(2 * 3 * 4 * 5, dtype=np.uint8).reshape(2, 3, 4, 5)
    params = (np.float32(0.02), np.uint8(3), np.float32(0.03), np.uint8(5), np.float32(0.04),
              np.uint8(7))
    for x, y in [(a, a[:, :, :1]), (_held(a), a)]:
        args = (x, *params[:2], y, *params[2:4], *params[4:])
        np.testing.assert_array_equal(_plain(fast.qlinear_binary("add", *args)),
                                      _plain(exact.qlinear_binary("add", *args)))
    assert _used(fast, "qadd") == 0


@pytest.mark.parametrize("seed", range(6))
def test_concat_on_channels_is_the_exact_codes_or_one_lsb_away(seed):
    fast, exact = get_backend("cpu:float32-requant"), get_backend("cpu")
    rng = np.random.default_rng(seed)
    parts = [_held(rng.integers(0, 256, (2, c, 7, 6)).astype(np.uint8)) for c in (16, 8, 24)]
    y_scale = np.float32(10.0 ** rng.uniform(-3, -1))
    # one input at the output's scale: copied, bit for bit
    params = [(np.float32(10.0 ** rng.uniform(-3, -1)), np.uint8(0)), (y_scale, np.uint8(0)),
              (np.float32(10.0 ** rng.uniform(-3, -1)), np.uint8(0))]
    got = fast.qlinear_concat(parts, params, y_scale, np.uint8(0), 1)
    want = exact.qlinear_concat(parts, params, y_scale, np.uint8(0), 1)
    assert _used(fast, "requant-into") == 3 and _used(exact, "requant-into") == 0
    assert isinstance(got, ChannelsLastArray)
    _within_one_lsb(got, want)
    np.testing.assert_array_equal(got.nhwc[..., 16:24], parts[1].nhwc)
    assert np.count_nonzero(got.nhwc == 255) > 0  # saturated codes too


def test_concat_with_a_zero_point_runs_the_exact_table():
    """This oneDNN's reorder ignores zero points into a strided dst: those stay exact."""
    fast, exact = get_backend("cpu:float32-requant"), get_backend("cpu")
    rng = np.random.default_rng(0)
    parts = [_held(rng.integers(0, 256, (1, 4, 3, 3)).astype(np.uint8)) for _ in range(2)]
    for params, y_zero in [([(np.float32(.02), np.uint8(10)), (np.float32(.03), np.uint8(0))],
                            np.uint8(0)),
                           ([(np.float32(.02), np.uint8(0))] * 2, np.uint8(3))]:
        got = fast.qlinear_concat(parts, params, np.float32(.025), y_zero, 1)
        want = exact.qlinear_concat(parts, params, np.float32(.025), y_zero, 1)
        np.testing.assert_array_equal(got.nhwc, want.nhwc)
    assert _used(fast, "requant-into") == 0


@pytest.mark.parametrize("dtypes", [(np.uint8, np.uint8), (np.int8, np.int8), (np.uint8, np.int8)])
@pytest.mark.parametrize("seed", range(4))
def test_global_average_pool_is_the_exact_codes_or_one_lsb_away(dtypes, seed):
    """One pooling with the requantization as a post-op; ``x_scale/y_scale`` up to 4, so a
    mean rounded to a code before the post-op would land 2 LSB off."""
    fast, exact = get_backend("cpu:float32-requant"), get_backend("cpu")
    rng = np.random.default_rng(seed)
    xi, yi = np.iinfo(dtypes[0]), np.iinfo(dtypes[1])
    x = rng.integers(xi.min, xi.max + 1, (2, 40, 7, 7)).astype(dtypes[0])
    x_scale = np.float32(10.0 ** rng.uniform(-2.5, -1.5))
    y_scale = np.float32(x_scale / rng.uniform(0.3, 4.0))
    zeros = (dtypes[0](rng.integers(xi.min, xi.max + 1)),
             dtypes[1](rng.integers(yi.min // 4, yi.max // 4)))
    args = (_held(x), x_scale, zeros[0], y_scale, zeros[1])
    got = fast.qlinear_global_avg_pool(*args)
    assert exact.qlinear_global_avg_pool(*args) is None  # the exact mode: the op's path
    if dtypes[0] != dtypes[1]:  # no such oneDNN pooling: the op's path
        assert got is None
        return
    assert isinstance(got, ChannelsLastArray) and got.shape == (2, 40, 1, 1)
    ref = get_backend("numpy")
    want = ref.to_numpy(ref.quantize_linear(ref.global_avg_pool2d(
        ref.dequantize_linear(x, x_scale, zeros[0])), y_scale, zeros[1]))
    assert got.dtype == want.dtype
    _within_one_lsb(got, want)


def test_global_average_pool_runs_fused_in_a_session_model(tmp_path):
    """QLinearGlobalAveragePool in a graph: the pooling ran, codes as the exact mode's."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from hwbench.graph.executor import Executor
    from hwbench.graph.onnx_import import load_onnx
    from hwbench.models.session import session_backend

    inits = [numpy_helper.from_array(np.asarray(v), name) for name, v in
             [("sx", np.float32(0.05)), ("zx", np.uint8(3)), ("sy", np.float32(0.02)),
              ("zy", np.uint8(9))]]
    node = helper.make_node("QLinearGlobalAveragePool", ["x", "sx", "zx", "sy", "zy"], ["y"],
                            domain="com.microsoft", channels_last=0)
    graph = helper.make_graph(
        [node], "gap", [helper.make_tensor_value_info("x", TensorProto.UINT8, (1, 8, 5, 5))],
        [helper.make_tensor_value_info("y", TensorProto.UINT8, (1, 8, 1, 1))], inits)
    path = tmp_path / "gap.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                      helper.make_opsetid("com.microsoft", 1)]),
              path)
    x = np.random.default_rng(0).integers(0, 256, (1, 8, 5, 5)).astype(np.uint8)
    fast = session_backend("cpu:float32-requant", threads=1)
    outs = [Executor(load_onnx(str(path)), be).run({"x": x})
            for be in (fast, get_backend("cpu"))]
    got, want = (np.asarray(v["y"] if isinstance(v, dict) else v[0]) for v in outs)
    _within_one_lsb(got, want)
    assert _used(fast, "qgap") == 1


def _run_one_node(tmp_path, node, inputs, output, inits, feeds, backends):
    import onnx
    from onnx import helper, numpy_helper

    from hwbench.graph.executor import Executor
    from hwbench.graph.onnx_import import load_onnx

    graph = helper.make_graph(
        [node], "one", inputs, [output],
        [numpy_helper.from_array(np.asarray(v), k) for k, v in inits.items()])
    path = tmp_path / "one.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                      helper.make_opsetid("com.microsoft", 1)]),
              path)
    outs = [Executor(load_onnx(str(path)), be).run(feeds) for be in backends]
    return [np.asarray(v[output.name] if isinstance(v, dict) else v[0]) for v in outs]


@pytest.mark.parametrize("trans_b", [0, 1])
@pytest.mark.parametrize("with_bias", [True, False])
def test_qgemm_runs_as_one_fused_conv(tmp_path, trans_b, with_bias):
    """QGemm with an 8-bit output: one fused 1x1 conv on A's rows, within 1 LSB."""
    from onnx import TensorProto, helper

    from hwbench.models.session import session_backend

    rng = np.random.default_rng(trans_b + 2 * with_bias)
    m, k, n = 3, 96, 40
    b = rng.integers(-127, 128, (n, k) if trans_b else (k, n)).astype(np.int8)
    inits = {"sa": np.float32(0.03), "za": np.uint8(7), "b": b,
             "sb": rng.uniform(0.002, 0.01, n).astype(np.float32), "zb": np.zeros(n, np.int8),
             "sy": np.float32(0.2), "zy": np.uint8(100)}
    names = ["a", "sa", "za", "b", "sb", "zb", "c", "sy", "zy"]
    if with_bias:
        inits["c"] = rng.integers(-3000, 3000, n).astype(np.int32)
    else:
        names[6] = ""
    node = helper.make_node("QGemm", names, ["y"], domain="com.microsoft", transB=trans_b)
    fast = session_backend("cpu:float32-requant", threads=1)
    results = []
    fused = fast.qgemm_requant
    fast.qgemm_requant = lambda *args: results.append(fused(*args)) or results[-1]
    a = rng.integers(0, 256, (m, k)).astype(np.uint8)
    got, want = _run_one_node(
        tmp_path, node, [helper.make_tensor_value_info("a", TensorProto.UINT8, (m, k))],
        helper.make_tensor_value_info("y", TensorProto.UINT8, (m, n)), inits, {"a": a},
        (fast, get_backend("cpu")))
    assert got.shape == (m, n) and got.dtype == np.uint8
    assert 0 < np.count_nonzero((got > 0) & (got < 255))
    _within_one_lsb(got, want)
    assert [key[1].c for key in fast._primitives if key[0] == "qconv"] == [k]
    assert results and all(r is not None for r in results)


@pytest.mark.parametrize("shape", [(1, 3, 9, 7), (2, 1, 5, 5), (1, 4, 1, 1)])
def test_session_input_quantized_to_channels_last_codes(shape):
    """A session's NCHW float input quantized to NHWC codes (transpose, then one scaling
    reorder): the codes of quantizing NCHW and transposing, ties included."""
    from hwbench.models.session import session_backend

    fast = session_backend("cpu:float32-requant", threads=1)
    scale = np.float32(0.02)
    x = (np.random.default_rng(0).standard_normal(shape) * 3).astype(np.float32)
    ties = min(8, x.size)
    x.reshape(-1)[:ties] = ((np.arange(ties) - 4 + 0.5) * scale).astype(np.float32)
    got = fast.quantize_linear(x, scale, np.uint8(128))
    assert isinstance(got, ChannelsLastArray)
    flat = get_backend("cpu:float32-requant").quantize_linear(x.reshape(-1), scale,
                                                              np.uint8(128))
    np.testing.assert_array_equal(got.nhwc, np.asarray(flat).reshape(shape).transpose(0, 2, 3, 1))
    _within_one_lsb(got, get_backend("numpy").quantize_linear(x, scale, np.uint8(128)))
