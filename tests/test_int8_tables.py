"""QLinearConcat on cpu by one table lookup or copy per input (``cpu/int8_tables``): the
codes equal the numpy reference's dequantize -> concat -> quantize bit for bit, in the
exact and float32-requant modes, for NCHW and channels-last inputs."""

from __future__ import annotations

import numpy as np
import pytest

from hwbench.backends import get_backend
from hwbench.backends.cpu import int8_tables
from hwbench.backends.cpu.layouts import ChannelsLastArray
from hwbench.pytest_plugin import availability

pytestmark = pytest.mark.skipif(not availability("cpu")[0], reason="cpu backend unavailable")
MODES = ["cpu", "cpu:float32-requant"]


def _reference(parts, params, ys, yz, axis):
    ref = get_backend("numpy")
    floats = [ref.dequantize_linear(p, s, z) for p, (s, z) in zip(parts, params, strict=True)]
    return ref.to_numpy(ref.quantize_linear(ref.concat(floats, axis=axis), ys, yz))


def _case(rng, dtype, shapes, same=False):
    info = np.iinfo(dtype)
    parts = [rng.integers(info.min, info.max + 1, s).astype(dtype) for s in shapes]
    # scales from 1e-4 to 10: outputs both in range and saturated
    scales = [np.float32(10.0 ** rng.uniform(-4, 1)) for _ in range(len(shapes) + 1)]
    zeros = [dtype(rng.integers(info.min, info.max + 1)) for _ in range(len(shapes) + 1)]
    if same:
        scales, zeros = [scales[0]] * len(scales), [zeros[0]] * len(zeros)
    params = list(zip(scales[1:], zeros[1:], strict=True))
    return parts, params, scales[0], zeros[0]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype", [np.uint8, np.int8])
@pytest.mark.parametrize("same", [False, True])
@pytest.mark.parametrize("seed", range(4))
def test_concat_equals_the_reference(mode, dtype, same, seed):
    be = get_backend(mode)
    rng = np.random.default_rng(seed)
    parts, params, ys, yz = _case(rng, dtype, [(2, 3, 4, 5), (2, 7, 4, 5), (2, 1, 4, 5)],
                                  same)
    got = be.qlinear_concat([be.asarray(p) for p in parts], params, ys, yz, 1)
    np.testing.assert_array_equal(got, _reference(parts, params, ys, yz, 1))
    assert got.dtype == np.dtype(dtype)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("axis", [1, 2, 3, 0])
def test_channels_last_parts_stay_channels_last(mode, axis):
    be = get_backend(mode)
    rng = np.random.default_rng(axis)
    shapes = [(2, 3, 4, 5), (2, 3, 4, 5)]
    parts, params, ys, yz = _case(rng, np.uint8, shapes)
    held = [ChannelsLastArray(np.ascontiguousarray(p.transpose(0, 2, 3, 1))) for p in parts]
    got = be.qlinear_concat(held, params, ys, yz, axis)
    assert isinstance(got, ChannelsLastArray)
    np.testing.assert_array_equal(got.nhwc.transpose(0, 3, 1, 2),
                                  _reference(parts, params, ys, yz, axis))


def test_every_code_of_a_table_is_the_references():
    """All 256 codes, with a scale ratio that puts values on rounding ties."""
    codes = np.arange(256, dtype=np.uint8).reshape(1, 256)
    be = get_backend("cpu")
    for xs, ys in [(0.5, 1.0), (1.5, 1.0), (0.1, 0.3), (3e-3, 7e-3)]:
        params = [(np.float32(xs), np.uint8(128))]
        got = be.qlinear_concat([codes], params, np.float32(ys), np.uint8(3), 1)
        np.testing.assert_array_equal(got, _reference([codes], params, np.float32(ys),
                                                      np.uint8(3), 1))


def test_same_parameters_copy_and_per_channel_ones_decline():
    assert int8_tables._table(np.dtype(np.int8).str, int8_tables._key(np.float32(0.02)),
                              int8_tables._key(np.int8(-3)), int8_tables._key(np.float32(0.02)),
                              int8_tables._key(np.int8(-3))) is None
    be = get_backend("cpu")
    part = np.zeros((1, 2, 2, 2), np.uint8)
    per_channel = (np.full(2, 0.1, np.float32), np.zeros(2, np.uint8))
    assert be.qlinear_concat([part], [per_channel], np.float32(0.1), np.uint8(0), 1) is None


def _two_input_file(tmp_path, op_type, order, parts, params, ys, yz, out_shape, **attrs):
    """A one-node com.microsoft file of ``op_type`` on uint8 inputs ``a`` and ``b``, its
    scales and zero points as initializers, inputs named in ``order``; returns its path."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    inits = [numpy_helper.from_array(np.asarray(v), n) for n, v in
             [("ys", ys), ("yz", yz), ("sa", params[0][0]), ("za", params[0][1]),
              ("sb", params[1][0]), ("zb", params[1][1])]]
    node = helper.make_node(op_type, order, ["y"], domain="com.microsoft", **attrs)
    graph = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info(n, TensorProto.UINT8, p.shape)
                      for n, p in zip("ab", parts, strict=True)],
        [helper.make_tensor_value_info("y", TensorProto.UINT8, out_shape)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                    helper.make_opsetid("com.microsoft", 1)])
    path = tmp_path / f"{op_type}.onnx"
    onnx.save(model, path)
    return path


@pytest.mark.parametrize("mode", MODES)
def test_a_qlinear_concat_node_runs_by_table(mode, tmp_path, monkeypatch):
    from hwbench.graph.executor import Executor
    from hwbench.graph.onnx_import import load_onnx

    rng = np.random.default_rng(7)
    parts, params, ys, yz = _case(rng, np.uint8, [(1, 3, 4, 4), (1, 5, 4, 4)])
    path = _two_input_file(tmp_path, "QLinearConcat",
                           ["ys", "yz", "a", "sa", "za", "b", "sb", "zb"], parts, params, ys,
                           yz, (1, 8, 4, 4), axis=1)
    calls = []
    be = get_backend(mode)
    monkeypatch.setattr(type(be), "qlinear_concat", lambda self, *a: calls.append(1) or
                        int8_tables.qlinear_concat(self, *a))
    got = Executor(load_onnx(str(path)), be).run({"a": parts[0], "b": parts[1]})
    got = got["y"] if isinstance(got, dict) else got[0]
    np.testing.assert_array_equal(np.asarray(got), _reference(parts, params, ys, yz, 1))
    assert calls

def _binary_reference(kind, a, sa, za, b, sb, zb, ys, yz):
    ref = get_backend("numpy")
    y = getattr(ref, kind)(ref.dequantize_linear(a, sa, za), ref.dequantize_linear(b, sb, zb))
    return ref.to_numpy(ref.quantize_linear(y, ys, yz))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kind", ["add", "mul"])
@pytest.mark.parametrize("dtypes", [(np.uint8, np.uint8, np.uint8), (np.int8, np.int8, np.int8),
                                    (np.uint8, np.int8, np.int8)])
@pytest.mark.parametrize("shapes", [((2, 3, 4, 5), (2, 3, 4, 5)), ((2, 3, 4, 5), (1, 3, 1, 1)),
                                    ((1, 3, 1, 1), (2, 3, 4, 5)), ((3, 5), ())])
@pytest.mark.parametrize("seed", range(3))
def test_add_and_mul_equal_the_reference(mode, kind, dtypes, shapes, seed):
    be = get_backend(mode)
    rng = np.random.default_rng(seed)
    parts, params, ys, yz = _case(rng, dtypes[0], [shapes[0]])
    b, b_params, _, _ = _case(rng, dtypes[1], [shapes[1]])
    yz = dtypes[2](rng.integers(np.iinfo(dtypes[2]).min, np.iinfo(dtypes[2]).max + 1))
    args = (parts[0], *params[0], b[0], *b_params[0], ys, yz)
    got = be.qlinear_binary(kind, be.asarray(args[0]), *args[1:3], be.asarray(args[3]),
                            *args[4:])
    want = _binary_reference(kind, *args)
    assert got.dtype == want.dtype == np.dtype(dtypes[2])
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("mode", MODES)
def test_every_pair_of_codes_and_channels_last(mode):
    """All 65,536 code pairs, on ties (scales 0.5, 0.25 -> 0.5) and off them; channels-last
    inputs give a channels-last result."""
    be = get_backend(mode)
    a = np.repeat(np.arange(256, dtype=np.uint8), 256).reshape(1, 256, 16, 16)
    b = np.tile(np.arange(256, dtype=np.uint8), 256).reshape(1, 256, 16, 16)
    for sa, sb, ys in [(0.5, 0.25, 0.5), (0.013, 0.021, 0.037)]:
        args = (a, np.float32(sa), np.uint8(128), b, np.float32(sb), np.uint8(7),
                np.float32(ys), np.uint8(120))
        held = [ChannelsLastArray(np.ascontiguousarray(v.transpose(0, 2, 3, 1))) for v in (a, b)]
        got = be.qlinear_binary("add", held[0], *args[1:3], held[1], *args[4:])
        assert isinstance(got, ChannelsLastArray)
        np.testing.assert_array_equal(got.nhwc.transpose(0, 3, 1, 2),
                                      _binary_reference("add", *args))


def test_per_channel_binary_parameters_decline():
    be = get_backend("cpu")
    a = np.zeros((1, 2, 2, 2), np.uint8)
    assert be.qlinear_binary("add", a, np.full(2, .1, np.float32), np.uint8(0), a,
                             np.float32(.1), np.uint8(0), np.float32(.1), np.uint8(0)) is None


@pytest.mark.parametrize("mode", MODES)
def test_a_qlinear_add_node_runs_by_table_as_numpy_does(mode, tmp_path, monkeypatch):
    from hwbench.graph.executor import Executor
    from hwbench.graph.onnx_import import load_onnx

    rng = np.random.default_rng(11)
    parts, params, ys, yz = _case(rng, np.uint8, [(1, 4, 5, 5), (1, 4, 5, 5)])
    path = _two_input_file(tmp_path, "QLinearAdd", ["a", "sa", "za", "b", "sb", "zb", "ys", "yz"],
                           parts, params, ys, yz, (1, 4, 5, 5))
    calls = []
    be = get_backend(mode)
    monkeypatch.setattr(type(be), "qlinear_binary", lambda self, *a: calls.append(1) or
                        int8_tables.qlinear_binary(self, *a))

    def run(backend):
        out = Executor(load_onnx(str(path)), backend).run({"a": parts[0], "b": parts[1]})
        return np.asarray(out["y"] if isinstance(out, dict) else out[0])

    np.testing.assert_array_equal(run(be), run(get_backend("numpy")))
    assert calls


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("op, attrs", [("QLinearSigmoid", {}), ("QLinearLeakyRelu", {"alpha": 0.1}),
                                       ("QLinearLeakyRelu", {"alpha": 0.3})])
@pytest.mark.parametrize("dtype", [np.uint8, np.int8])
def test_elementwise_unary_ops_run_by_table_as_numpy_does(mode, op, attrs, dtype, tmp_path,
                                                          monkeypatch):
    onnx = pytest.importorskip("onnx")
    from onnx import helper, numpy_helper

    from hwbench.graph.executor import Executor
    from hwbench.graph.onnx_import import load_onnx

    rng = np.random.default_rng(len(op) + int(attrs.get("alpha", 0) * 10))
    parts, params, ys, yz = _case(rng, dtype, [(1, 4, 16, 16)])
    codes = np.arange(1024).astype(np.uint8).view(dtype).reshape(1, 4, 16, 16)  # every code
    elem = helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
    inits = [numpy_helper.from_array(np.asarray(v), n) for n, v in
             [("sx", params[0][0]), ("zx", params[0][1]), ("sy", ys), ("zy", yz)]]
    node = helper.make_node(op, ["x", "sx", "zx", "sy", "zy"], ["y"], domain="com.microsoft",
                            **attrs)
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", elem, codes.shape)],
                              [helper.make_tensor_value_info("y", elem, codes.shape)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                    helper.make_opsetid("com.microsoft", 1)])
    path = tmp_path / "unary.onnx"
    onnx.save(model, path)
    calls = []
    be = get_backend(mode)
    monkeypatch.setattr(type(be), "qlinear_unary", lambda self, *a: calls.append(1) or
                        int8_tables.qlinear_unary(self, *a))

    def run(backend):
        out = Executor(load_onnx(str(path)), backend).run({"x": codes})
        return np.asarray(out["y"] if isinstance(out, dict) else out[0])

    np.testing.assert_array_equal(run(be), run(get_backend("numpy")))
    assert calls


def test_a_unary_table_keeps_channels_last():
    be = get_backend("cpu")
    codes = np.arange(256, dtype=np.uint8).reshape(1, 4, 8, 8)
    held = ChannelsLastArray(np.ascontiguousarray(codes.transpose(0, 2, 3, 1)))
    args = (np.float32(0.05), np.uint8(128), np.float32(1 / 256), np.uint8(0))
    got = be.qlinear_unary(lambda ref, f: ref.sigmoid(f), ("test-sigmoid",), held, *args)
    assert isinstance(got, ChannelsLastArray)
    ref = get_backend("numpy")
    want = ref.quantize_linear(ref.sigmoid(ref.dequantize_linear(codes, *args[:2])), *args[2:])
    np.testing.assert_array_equal(got.nhwc.transpose(0, 3, 1, 2), want)


@pytest.mark.parametrize("dtype", [np.uint8, np.int8])
@pytest.mark.parametrize("count", [int8_tables.PAIRED_MIN, int8_tables.PAIRED_MIN + 1, 40000])
def test_code_pairs_look_up_as_single_codes(dtype, count):
    """The pair table (two codes per lookup) gives ``table[codes]``: even and odd counts,
    strided codes, every code pair present."""
    rng = np.random.default_rng(count)
    table = rng.integers(0, 256, 256).astype(np.uint8).view(dtype)
    codes = rng.integers(0, 256, count).astype(np.uint8)
    codes[:2 * 256] = np.repeat(np.arange(256, dtype=np.uint8), 2)[::-1]
    codes = codes.view(dtype)
    for source in (codes, codes[::2]):
        out = np.empty(source.shape, dtype)
        int8_tables.lookup(table, source, out)
        np.testing.assert_array_equal(out, table[source.view(np.uint8)])


@pytest.mark.parametrize("mode", MODES)
def test_large_channels_last_concat_equals_the_reference(mode):
    """Inputs past the pair table's threshold, into channel slices of the output."""
    be = get_backend(mode)
    rng = np.random.default_rng(11)
    parts, params, ys, yz = _case(rng, np.uint8, [(1, 16, 30, 31), (1, 8, 30, 31)])
    held = [ChannelsLastArray(np.ascontiguousarray(p.transpose(0, 2, 3, 1))) for p in parts]
    got = be.qlinear_concat(held, params, ys, yz, 1)
    np.testing.assert_array_equal(got.nhwc.transpose(0, 3, 1, 2),
                                  _reference(parts, params, ys, yz, 1))
