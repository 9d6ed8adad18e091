"""QLinearConv then the QLinearAdd reading it as one convolution (``QLinearConvAdd``:
``graph.qconv_add_fusion``, ``backends/cpu/int8_conv_add.py``) in the
``cpu:float32-requant`` mode: the exact conv-then-Add codes or 1 LSB away where the
conv's scale over the output's is below ``RATIO_LIMIT``, fused only there, and the two
ops' own path (bit for bit) everywhere else."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hwbench.backends import get_backend
from hwbench.backends.cpu.layouts import ChannelsLastArray
from hwbench.graph.executor import Executor
from hwbench.graph.ir import FUSED_DOMAIN
from hwbench.graph.onnx_import import load_onnx
from hwbench.graph.ops.qconv_add import RATIO_LIMIT
from hwbench.graph.passes import optimize
from hwbench.graph.qconv_add_fusion import fuse_qconv_add
from hwbench.models.session import Session, session_backend
from hwbench.pytest_plugin import availability

pytestmark = pytest.mark.skipif(not availability("cpu")[0], reason="cpu backend unavailable")


@pytest.fixture(scope="module")
def exact():
    return get_backend("cpu")


@pytest.fixture(scope="module")
def fast():
    return session_backend("cpu:float32-requant", threads=1)  # channels-last, as a Session


def _held(x: np.ndarray) -> ChannelsLastArray:
    return ChannelsLastArray(np.ascontiguousarray(x.transpose(0, 2, 3, 1)))


def _codes(rng, shape, dtype) -> np.ndarray:
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max + 1, shape).astype(dtype)


def _case(rng, n, c, k, hw, r, stride, padding, groups, x_dtype, a_dtype, b_dtype, ratio,
          relu):
    """Arguments of ``qconv_add`` (NCHW codes) with ``a_scale / y_scale == ratio`` and an
    ``a_scale`` that puts typical conv outputs ~40 codes from the zero point."""
    x = _codes(rng, (n, c, hw, hw), x_dtype)
    w = rng.integers(-127, 128, (k, c // groups, r, r)).astype(np.int8)
    sx = np.float32(rng.uniform(0.005, 0.05))
    sw = np.asarray(rng.uniform(0.001, 0.05, k), np.float32)
    sa = np.float32(np.sqrt(c // groups * r * r) * 80 * 70 * sx * sw.mean() / 40)
    sy = np.float32(sa / ratio)
    sb = np.float32(sy * rng.uniform(0.2, 1.5))
    bias = rng.integers(-20_000, 20_000, k).astype(np.int32)
    a_info, b_info = np.iinfo(a_dtype), np.iinfo(b_dtype)
    za = a_dtype(rng.integers(a_info.min // 2 + 64, a_info.max // 2 + 64))
    zb = b_dtype(rng.integers(b_info.min, b_info.max + 1))
    zy = a_dtype(rng.integers(a_info.min // 2 + 64, a_info.max // 2 + 64))
    oh = (hw + padding[0] + padding[2] - r) // stride + 1
    ow = (hw + padding[1] + padding[3] - r) // stride + 1
    b = _codes(rng, (n, k, oh, ow), b_dtype)
    args = (x, sx, _codes(rng, (), x_dtype), w, sw, np.int8(0), sa, za, bias, b, sb, zb, sy,
            zy)
    conv = {"stride": stride, "padding": padding, "dilation": 1, "groups": groups}
    return args, conv, relu


def _two_ops(be, args, conv, relu) -> np.ndarray:
    """The conv, then the Add (its own kernels on ``be``), as NCHW codes."""
    x, sx, zx, w, sw, zw, sa, za, bias, b, sb, zb, sy, zy = args
    a = be.qconv2d(be.asarray(x), sx, zx, be.asarray(w), sw, zw, sa, za, be.asarray(bias),
                   **conv)
    y = be.qlinear_binary("add", a, sa, za, be.asarray(b), sb, zb, sy, zy, relu)
    return be.to_numpy(y)


def _fused(be, args, conv, relu):
    x, sx, zx, w, sw, zw, sa, za, bias, b, sb, zb, sy, zy = args
    y = be.qconv_add(_held(x), sx, zx, be.asarray(w), sw, zw, sa, za, be.asarray(bias),
                     _held(b), sb, zb, sy, zy, relu=relu, **conv)
    return None if y is None else be.to_numpy(y)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_the_fused_conv_and_add_is_within_one_lsb_of_the_exact_two_ops(exact, fast, data):
    """Random convolutions (1x1 and 3x3, strides, padding, groups and depthwise), int8 and
    uint8 codes with random zero points, the Add's Relu or not, ratios up to the limit."""
    groups = data.draw(st.sampled_from([1, 1, 2, 4]), label="groups")
    depthwise = data.draw(st.booleans(), label="depthwise") and groups > 1
    c = groups * (1 if depthwise else data.draw(st.integers(1, 6), label="c/group"))
    k = groups * data.draw(st.integers(1, 5), label="k/group")
    r = data.draw(st.sampled_from([1, 3]), label="kernel")
    stride = data.draw(st.integers(1, 2), label="stride")
    padding = (r // 2,) * 4 if data.draw(st.booleans(), label="same") else (0, 1, 1, 0)
    dtypes = [data.draw(st.sampled_from([np.uint8, np.int8]), label=n) for n in "xab"]
    ratio = data.draw(st.floats(0.05, RATIO_LIMIT * 0.999), label="a_scale / y_scale")
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1), label="seed"))
    args, conv, relu = _case(rng, data.draw(st.integers(1, 2), label="n"), c, k,
                             data.draw(st.integers(r, 9), label="hw"), r, stride, padding,
                             groups, *dtypes, ratio, data.draw(st.booleans(), label="relu"))
    got = _fused(fast, args, conv, relu)
    assert got is not None  # fused: the kernel ran its one convolution
    want = _two_ops(exact, args, conv, relu)
    assert got.shape == want.shape and got.dtype == want.dtype
    diff = np.abs(got.astype(np.int64) - want.astype(np.int64))
    assert diff.max(initial=0) <= 1, f"{int(diff.max())} LSB off"


def test_fused_codes_rarely_differ_from_the_modes_two_ops(exact, fast):
    """On MobileNet-like shapes the fused codes are the float32-requant conv-then-Add's
    but for a rare tie (the two sums round in another order)."""
    rng = np.random.default_rng(7)
    args, conv, relu = _case(rng, 1, 96, 24, 28, 1, 1, (0, 0, 0, 0), 1, np.uint8, np.int8,
                             np.int8, 0.8, False)
    got = _fused(fast, args, conv, relu)
    unfused = get_backend("cpu:float32-requant")
    want = _two_ops(unfused, args, conv, relu)
    assert np.abs(got.astype(np.int64) - want.astype(np.int64)).max() <= 1
    assert np.count_nonzero(got != want) <= got.size // 1000


def test_ratios_at_the_limit_and_other_layouts_are_not_fused(fast):
    rng = np.random.default_rng(3)
    args, conv, relu = _case(rng, 1, 8, 8, 6, 3, 1, (1, 1, 1, 1), 1, np.uint8, np.uint8,
                             np.uint8, RATIO_LIMIT, True)
    assert _fused(fast, args, conv, relu) is None  # a conv code 1 LSB off: a whole step
    args, conv, relu = _case(rng, 1, 8, 8, 6, 3, 1, (1, 1, 1, 1), 1, np.uint8, np.uint8,
                             np.uint8, 0.5, True)
    x, *rest = args
    nchw = fast.qconv_add(x, *rest[:8], _held(rest[8]), *rest[9:], relu=relu, **conv)
    assert nchw is None  # an NCHW input: the op function's two ops
    exact_mode = session_backend("cpu", threads=1)
    assert exact_mode.qconv_add(_held(x), *rest[:8], _held(rest[8]), *rest[9:], relu=relu,
                                **conv) is None


# -- the graph pass and the node -----------------------------------------------------------
onnx = pytest.importorskip("onnx")


def _model(tmp_path, ratio: float, conv_read_twice: bool = False) -> str:
    """x -> QLinearConv (3x3) -> QLinearAdd with the input's codes, in QOperator form."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(1)
    sa = np.float32(0.05)
    params = {"sx": np.float32(0.02), "zx": np.uint8(0),
              "w": rng.integers(-127, 128, (8, 8, 3, 3)).astype(np.int8),
              "sw": np.asarray(rng.uniform(0.001, 0.01, 8), np.float32), "zw": np.int8(0),
              "sa": sa, "za": np.uint8(128),
              "bias": rng.integers(-2000, 2000, 8).astype(np.int32),
              "sy": np.float32(sa / ratio), "zy": np.uint8(120)}
    ms = "com.microsoft"
    nodes = [helper.make_node("QLinearConv", ["x", "sx", "zx", "w", "sw", "zw", "sa", "za",
                                              "bias"], ["a"], pads=[1, 1, 1, 1]),
             helper.make_node("QLinearAdd", ["x", "sx", "zx", "a", "sa", "za", "sy", "zy"],
                              ["y"], domain=ms)]
    shape = [1, 8, 6, 6]
    outputs = [helper.make_tensor_value_info("y", TensorProto.UINT8, shape)]
    if conv_read_twice:
        outputs.append(helper.make_tensor_value_info("a", TensorProto.UINT8, shape))
    graph = helper.make_graph(
        nodes, "conv_add", [helper.make_tensor_value_info("x", TensorProto.UINT8, shape)],
        outputs, [numpy_helper.from_array(np.asarray(v), k) for k, v in params.items()])
    path = tmp_path / "conv_add.onnx"
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                    helper.make_opsetid(ms, 1)])
    onnx.save(model, path)
    return str(path)


def _x(seed: int = 0) -> dict:
    return {"x": np.random.default_rng(seed).integers(0, 256, (1, 8, 6, 6)).astype(np.uint8)}


def test_the_pass_fuses_the_conv_into_the_add_that_alone_reads_it(tmp_path):
    g = fuse_qconv_add(optimize(load_onnx(_model(tmp_path, 0.5))))
    assert [(n.op_type, n.domain) for n in g.nodes] == [("QLinearConvAdd", FUSED_DOMAIN)]
    node = g.nodes[0]
    assert node.inputs[:9] == ["x", "sx", "zx", "w", "sw", "zw", "sa", "za", "bias"]
    assert node.inputs[9:] == ["x", "sx", "zx", "sy", "zy"]  # the Add's other operand
    assert node.attrs["pads"] == [1, 1, 1, 1] and node.attrs["fused_relu"] == 0
    for ratio, twice in ((RATIO_LIMIT, False), (0.5, True)):  # at the limit; a read twice
        kept = fuse_qconv_add(optimize(load_onnx(_model(tmp_path, ratio, twice))))
        assert [n.op_type for n in kept.nodes] == ["QLinearConv", "QLinearAdd"]


@pytest.mark.parametrize("backend", ["numpy", "cpu"])
def test_the_node_elsewhere_runs_the_two_ops_bit_for_bit(tmp_path, backend):
    path = _model(tmp_path, 0.5)
    unfused = optimize(load_onnx(path))
    fused = fuse_qconv_add(optimize(load_onnx(path)))
    for seed in range(2):
        want = Executor(unfused, get_backend(backend)).run(_x(seed))[0]
        got = Executor(fused, get_backend(backend)).run(_x(seed))[0]
        assert got.tobytes() == want.tobytes()


def test_sessions_fuse_only_in_the_float32_requant_mode(tmp_path):
    path = _model(tmp_path, 0.5)
    for backend, fused in (("cpu:float32-requant", True), ("cpu", False), ("numpy", False)):
        sess = Session(path, backend)
        assert ("QLinearConvAdd" in {n.op_type for n in sess.graph.nodes}) == fused
        for seed in range(3):  # traced, then the bound host step (``int8_steps``)
            got = sess.run(_x(seed))[0]
            want = Session(path, "numpy").run(_x(seed))[0]
            diff = np.abs(got.astype(np.int64) - want.astype(np.int64))
            assert diff.max() <= (1 if fused else 0)
        if fused:  # the plan's bound step gives the op function's codes
            plain = Session(path, backend, plan=False)
            assert got.tobytes() == plain.run(_x(2))[0].tobytes()


# -- QLinearConvRequant: the conv, then DequantizeLinear -> Relu/Clip -> QuantizeLinear ----
def _requant_reference(be, args, conv, lo, hi, sy, zy) -> np.ndarray:
    """The mode's own conv codes, then NumPy's float32 DequantizeLinear, Clip and
    QuantizeLinear (what the unfused ops compute)."""
    from hwbench.kernels.quantization import dequantize, quantize

    x, sx, zx, w, sw, zw, sa, za, bias = args[:9]
    a = be.to_numpy(be.qconv2d(_held(x), sx, zx, be.asarray(w), sw, zw, sa, za,
                               be.asarray(bias), **conv))
    f = dequantize(a, sa, za)
    if lo is not None or hi is not None:
        f = np.clip(f, -np.inf if lo is None else np.float32(lo),
                    np.inf if hi is None else np.float32(hi)).astype(np.float32)
    return quantize(f, sy, zy, zy.dtype)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_the_fused_conv_requant_is_the_unfused_ops_codes(fast, data):
    """Random convolutions, code dtypes and zero points, a Relu, a Clip or none, and a
    QuantizeLinear of another scale: the unfused ops' codes (1 LSB allowed, rarely)."""
    groups = data.draw(st.sampled_from([1, 1, 2, 4]), label="groups")
    depthwise = data.draw(st.booleans(), label="depthwise") and groups > 1
    c = groups * (1 if depthwise else data.draw(st.integers(1, 6), label="c/group"))
    k = groups * data.draw(st.integers(1, 5), label="k/group")
    r = data.draw(st.sampled_from([1, 3]), label="kernel")
    dtypes = [data.draw(st.sampled_from([np.uint8, np.int8]), label=n) for n in "xay"]
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1), label="seed"))
    args, conv, _ = _case(rng, data.draw(st.integers(1, 2), label="n"), c, k,
                          data.draw(st.integers(r, 9), label="hw"), r,
                          data.draw(st.integers(1, 2), label="stride"), (r // 2,) * 4, groups,
                          dtypes[0], dtypes[1], np.uint8, 0.5, False)
    sa = float(args[6])
    lo, hi = data.draw(st.sampled_from([(None, None), (0.0, None), (0.0, 6 * sa),
                                        (-20 * sa, 30 * sa)]), label="clip")
    sy = np.float32(sa * data.draw(st.floats(0.2, 5.0), label="y_scale / a_scale"))
    info = np.iinfo(dtypes[2])
    zy = dtypes[2](rng.integers(info.min, info.max + 1))
    x, *rest = args[:9]
    got = fast.qconv_requant(_held(x), *rest[:2], fast.asarray(rest[2]), *rest[3:7],
                             fast.asarray(rest[7]), sy, zy, lo=lo, hi=hi, **conv)
    assert got is not None
    want = _requant_reference(fast, args, conv, lo, hi, sy, zy)
    got = fast.to_numpy(got)
    assert got.dtype == want.dtype and got.shape == want.shape
    diff = np.abs(got.astype(np.int64) - want.astype(np.int64))
    assert diff.max(initial=0) <= 1 and np.count_nonzero(diff) <= max(1, got.size // 1000)


def _xf(seed: int = 0) -> dict:
    return {"x": (np.random.default_rng(seed).standard_normal((1, 8, 6, 6)) * 2)
            .astype(np.float32)}


def _built(sess: Session, kind: str) -> int:
    """How many fused primitives of ``kind`` the session's backend built (not None)."""
    return sum(1 for k, v in sess.backend._primitives.items() if k[0] == kind and v is not None)


def _requant_model(tmp_path, act: str, dq_scale: str = "sa") -> str:
    """x -> QLinearConv (3x3) -> DequantizeLinear -> act -> QuantizeLinear."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(2)
    params = {"sx": np.float32(0.02), "zx": np.uint8(0),
              "w": rng.integers(-127, 128, (8, 8, 3, 3)).astype(np.int8),
              "sw": np.asarray(rng.uniform(0.001, 0.01, 8), np.float32), "zw": np.int8(0),
              "sa": np.float32(0.05), "za": np.uint8(128), "sb": np.float32(0.07),
              "bias": rng.integers(-2000, 2000, 8).astype(np.int32),
              "sy": np.float32(6 / 255), "zy": np.uint8(0),
              "lo": np.float32(0), "hi": np.float32(6)}
    nodes = [helper.make_node("QuantizeLinear", ["x", "sx", "zx"], ["q"]),
             helper.make_node("QLinearConv", ["q", "sx", "zx", "w", "sw", "zw", "sa", "za",
                                              "bias"], ["a"], pads=[1, 1, 1, 1]),
             helper.make_node("DequantizeLinear", ["a", dq_scale, "za"], ["f"])]
    if act == "clip":
        nodes.append(helper.make_node("Clip", ["f", "lo", "hi"], ["g"]))
    elif act == "relu":
        nodes.append(helper.make_node("Relu", ["f"], ["g"]))
    nodes.append(helper.make_node("QuantizeLinear", ["g" if act else "f", "sy", "zy"], ["y"]))
    shape = [1, 8, 6, 6]
    graph = helper.make_graph(
        nodes, "conv_requant", [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("y", TensorProto.UINT8, shape)],
        [numpy_helper.from_array(np.asarray(v), k) for k, v in params.items()])
    path = tmp_path / f"conv_requant_{act}_{dq_scale}.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return str(path)


@pytest.mark.parametrize("act", ["clip", "relu", ""])
def test_conv_requant_sessions_fuse_in_the_mode_and_keep_its_codes(tmp_path, act):
    from hwbench.graph.qconv_requant_fusion import fuse_qconv_requant

    path = _requant_model(tmp_path, act)
    fused_graph = fuse_qconv_requant(optimize(load_onnx(path)))
    assert [n.op_type for n in fused_graph.nodes] == ["QuantizeLinear", "QLinearConvRequant"]
    bounds = {"clip": (0.0, 6.0), "relu": (0.0, None), "": (None, None)}[act]
    attrs = fused_graph.nodes[1].attrs
    assert (attrs.get("clip_min"), attrs.get("clip_max")) == bounds
    sess = Session(path, "cpu:float32-requant")
    assert [n.op_type for n in sess.graph.nodes] == ["QuantizeLinear", "QLinearConvRequant"]
    unfused = Executor(optimize(load_onnx(path)), session_backend("cpu:float32-requant"))
    for seed in range(3):  # traced, then the bound host step
        got, want = sess.run(_xf(seed))[0], unfused.run(_xf(seed))[0]
        # the unfused mode's QuantizeLinear multiplies by 1/y_scale, the fused one divides
        # (as NumPy does): a value near a tie may round the other way
        diff = np.abs(got.astype(np.int64) - want.astype(np.int64))
        assert diff.max() <= 1 and np.count_nonzero(diff) <= got.size // 50
    assert _built(sess, "qconv-requant") == 1  # the fused convolution ran
    for backend in ("numpy", "cpu"):  # elsewhere: the four ops, bit for bit
        want = Executor(optimize(load_onnx(path)), get_backend(backend)).run(_xf(1))[0]
        got = Executor(fused_graph, get_backend(backend)).run(_xf(1))[0]
        assert got.tobytes() == want.tobytes()
    assert "QLinearConvRequant" not in {n.op_type for n in Session(path, "cpu").graph.nodes}


def test_conv_requant_needs_the_convs_own_scale(tmp_path):
    from hwbench.graph.qconv_requant_fusion import fuse_qconv_requant

    path = _requant_model(tmp_path, "relu", dq_scale="sb")  # read with another scale
    kept = fuse_qconv_requant(optimize(load_onnx(path)))
    assert "QLinearConvRequant" not in {n.op_type for n in kept.nodes}


# -- QLinearConvDequantAdd: the conv, DequantizeLinear, an Add of a float residual, Relu --
def _dequant_add_model(tmp_path, relu: bool, residual_first: bool,
                       residual_fed: bool = False) -> str:
    """x quantized -> QLinearConv (3x3) -> DequantizeLinear -> Add(r) [-> Relu]; r the
    dequantized x, or (``residual_fed``) a float graph input: plain NCHW."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(5)
    params = {"sx": np.float32(0.02), "zx": np.uint8(0),
              "w": rng.integers(-127, 128, (8, 8, 3, 3)).astype(np.int8),
              "sw": np.asarray(rng.uniform(0.001, 0.01, 8), np.float32), "zw": np.int8(0),
              "sa": np.float32(0.05), "za": np.uint8(128),
              "bias": rng.integers(-2000, 2000, 8).astype(np.int32),
              "sr": np.float32(0.03), "zr": np.uint8(100)}
    nodes = [helper.make_node("QuantizeLinear", ["x", "sx", "zx"], ["q"]),
             helper.make_node("DequantizeLinear", ["q", "sx", "zx"],
                              ["unused" if residual_fed else "r"]),
             helper.make_node("QLinearConv", ["q", "sx", "zx", "w", "sw", "zw", "sa", "za",
                                              "bias"], ["a"], pads=[1, 1, 1, 1]),
             helper.make_node("DequantizeLinear", ["a", "sa", "za"], ["f"]),
             helper.make_node("Add", ["r", "f"] if residual_first else ["f", "r"], ["s"])]
    if relu:
        nodes.append(helper.make_node("Relu", ["s"], ["y"]))
    shape = [1, 8, 6, 6]
    graph = helper.make_graph(
        nodes, "conv_dequant_add",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, shape)
         for n in (("x", "r") if residual_fed else ("x",))],
        [helper.make_tensor_value_info("y" if relu else "s", TensorProto.FLOAT, shape)]
        + ([helper.make_tensor_value_info("unused", TensorProto.FLOAT, shape)]
           if residual_fed else []),
        [numpy_helper.from_array(np.asarray(v), k) for k, v in params.items()])
    path = tmp_path / f"conv_dequant_add_{relu}_{residual_first}_{residual_fed}.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return str(path)


@pytest.mark.parametrize("relu", [True, False])
@pytest.mark.parametrize("residual_first", [True, False])
def test_conv_dequant_add_is_the_unfused_ops_float32_bit_for_bit(tmp_path, relu,
                                                                 residual_first):
    from hwbench.graph.qconv_requant_fusion import fuse_qconv_dequant_add

    path = _dequant_add_model(tmp_path, relu, residual_first)
    fused = fuse_qconv_dequant_add(optimize(load_onnx(path)))
    assert [n.op_type for n in fused.nodes] == ["QuantizeLinear", "DequantizeLinear",
                                                "QLinearConvDequantAdd"]
    assert fused.nodes[2].attrs["fused_relu"] == int(relu)
    sess = Session(path, "cpu:float32-requant")
    assert "QLinearConvDequantAdd" in {n.op_type for n in sess.graph.nodes}
    unfused = Executor(optimize(load_onnx(path)), session_backend("cpu:float32-requant"))
    exact = Executor(optimize(load_onnx(path)), get_backend("numpy"))
    for seed in range(3):  # traced, then the bound host step
        got, want = sess.run(_xf(seed))[0], unfused.run(_xf(seed))[0]
        assert got.dtype == np.float32
        # the conv's codes, then NumPy's float32 DequantizeLinear, Add and Relu
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
        assert np.abs(got - exact.run(_xf(seed))[0]).max() <= 0.05 + 1e-6  # 1 LSB of sa
    assert _built(sess, "qconv-dequant-add") == 1  # the fused convolution ran
    for backend in ("numpy", "cpu"):  # elsewhere: the ops, bit for bit
        want = Executor(optimize(load_onnx(path)), get_backend(backend)).run(_xf(1))[0]
        got = Executor(fused, get_backend(backend)).run(_xf(1))[0]
        assert got.tobytes() == want.tobytes()


def test_a_residual_held_plain_is_not_fused(tmp_path):
    """A float residual the cpu backend holds plain NCHW (a graph input here; ShuffleNet
    v1's Concat output) stays an Add apart (the fused conv would decline it every run):
    the conv and its DequantizeLinear alone are one convolution."""
    from hwbench.graph.qconv_requant_fusion import fuse_qconv_dequant_add

    path = _dequant_add_model(tmp_path, True, False, residual_fed=True)
    kept = fuse_qconv_dequant_add(optimize(load_onnx(path)))
    fused = [n for n in kept.nodes if n.op_type == "QLinearConvDequantAdd"]
    assert [n.inputs[9] for n in fused] == [""]  # the conv and its dequantization alone
    assert "Add" in {n.op_type for n in kept.nodes}
    sess = Session(path, "cpu:float32-requant")
    feeds = {**_xf(0), "r": np.ones((1, 8, 6, 6), np.float32)}
    unfused = Executor(optimize(load_onnx(path)), session_backend("cpu:float32-requant"))
    for _ in range(3):  # traced, then the bound host step: the unfused values, bit for bit
        for got, want in zip(sess.run(feeds), unfused.run(feeds), strict=True):
            assert got.tobytes() == want.tobytes()
    assert _built(sess, "qconv-dequant-add") == 1
