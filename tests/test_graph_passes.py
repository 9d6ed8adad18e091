"""Graph import, passes, shape inference and the executor, on small hand-built graphs.

Every numeric check runs the graph through the ``numpy`` backend and compares with a
float64 reference computed here; the structural checks look at the graph itself.
"""

from __future__ import annotations

import os
import weakref

import numpy as np
import pytest

from hwbench.backends import get_backend
from hwbench.backends.base import Backend
from hwbench.backends.numpy_backend import NumpyBackend
from hwbench.errors import ArgumentError, UnsupportedError
from hwbench.graph import Executor, fold_constants, load_onnx, optimize, rewrite_batch
from hwbench.graph.onnx_import import save_onnx
from hwbench.graph.passes import fold_batchnorm, lower_sum, remove_dropout
from hwbench.kernels import reference

onnx = pytest.importorskip("onnx", reason="the onnx wheel (pip install 'hwbench[test]')")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

F32 = TensorProto.FLOAT


def make_model(nodes, inputs, outputs, inits=(), opset=11):
    """inputs/outputs: (name, shape) pairs; inits: (name, array) pairs. An output shape of
    None becomes one symbolic dimension (the checker wants a shape; hwbench infers its own)."""
    graph = helper.make_graph(
        nodes, "test",
        [helper.make_tensor_value_info(n, F32, s) for n, s in inputs],
        [helper.make_tensor_value_info(n, F32, ["?"] if s is None else s) for n, s in outputs],
        [numpy_helper.from_array(np.asarray(a), n) for n, a in inits])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                             ir_version=7)


def run(graph, feeds, backend=None):
    return Executor(optimize(graph), backend or get_backend("numpy")).run(feeds)


def bn64(x, gamma, beta, mean, var, eps):
    shape = (1, -1) + (1,) * (x.ndim - 2)
    s = gamma.astype(np.float64) / np.sqrt(var.astype(np.float64) + eps)
    return (x - mean.reshape(shape)) * s.reshape(shape) + beta.reshape(shape)


def bn_params(rng, c):
    return [rng.uniform(0.5, 1.5, c).astype(np.float32), rng.normal(0, 0.3, c).astype(np.float32),
            rng.normal(0, 0.3, c).astype(np.float32), rng.uniform(0.2, 2, c).astype(np.float32)]


def rel_err(got, want):
    return float(np.abs(got - want).max() / np.abs(want).max())


# -- BatchNormalization ----------------------------------------------------------------------
def test_batchnorm_folded_into_conv_matches_float64_reference(rng):
    x = rng.standard_normal((2, 3, 9, 9)).astype(np.float32)
    w = rng.standard_normal((8, 3, 3, 3)).astype(np.float32)
    b = rng.standard_normal(8).astype(np.float32)
    gamma, beta, mean, var = bn_params(rng, 8)
    model = make_model(
        [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
         helper.make_node("BatchNormalization", ["c", "g", "be", "m", "v"], ["y"],
                          epsilon=1e-3)],
        [("x", x.shape)], [("y", None)],
        [("w", w), ("b", b), ("g", gamma), ("be", beta), ("m", mean), ("v", var)])
    graph = load_onnx(model)
    opt = optimize(graph)
    assert [n.op_type for n in opt.nodes] == ["Conv"]
    # the folded weights are the float64 formula, rounded once to float32
    s = gamma.astype(np.float64) / np.sqrt(var.astype(np.float64) + 1e-3)
    conv = opt.nodes[0]
    np.testing.assert_array_equal(opt.initializers[conv.inputs[1]],
                                  (w.astype(np.float64) * s[:, None, None, None])
                                  .astype(np.float32))
    np.testing.assert_array_equal(opt.initializers[conv.inputs[2]],
                                  ((b - mean.astype(np.float64)) * s + beta).astype(np.float32))
    want = bn64(reference.conv2d(x, w, b, padding=1), gamma, beta, mean, var, 1e-3)
    (got,) = Executor(opt, get_backend("numpy")).run({"x": x})
    assert rel_err(got, want) < 1e-5


def test_batchnorm_after_concat_becomes_mul_add(rng):
    a = rng.standard_normal((1, 2, 4, 4)).astype(np.float32)
    b = rng.standard_normal((1, 3, 4, 4)).astype(np.float32)
    params = bn_params(rng, 5)
    model = make_model(
        [helper.make_node("Concat", ["a", "b"], ["c"], axis=1),
         helper.make_node("BatchNormalization", ["c", "g", "be", "m", "v"], ["y"])],
        [("a", a.shape), ("b", b.shape)], [("y", None)],
        list(zip(["g", "be", "m", "v"], params, strict=True)))
    opt = optimize(load_onnx(model))
    assert [n.op_type for n in opt.nodes] == ["Concat", "Mul", "Add"]
    assert opt.initializers[opt.nodes[1].inputs[1]].shape == (5, 1, 1)
    (got,) = Executor(opt, get_backend("numpy")).run({"a": a, "b": b})
    want = bn64(np.concatenate([a, b], axis=1).astype(np.float64), *params, 1e-5)
    assert rel_err(got, want) < 1e-6


def test_batchnorm_not_folded_into_conv_with_another_reader(rng):
    x = rng.standard_normal((1, 2, 5, 5)).astype(np.float32)
    w = rng.standard_normal((4, 2, 1, 1)).astype(np.float32)
    params = bn_params(rng, 4)
    model = make_model(
        [helper.make_node("Conv", ["x", "w"], ["c"]),
         helper.make_node("BatchNormalization", ["c", "g", "be", "m", "v"], ["n"]),
         helper.make_node("Add", ["n", "c"], ["y"])],
        [("x", x.shape)], [("y", None)],
        [("w", w)] + list(zip(["g", "be", "m", "v"], params, strict=True)))
    graph = fold_batchnorm(load_onnx(model))
    assert [n.op_type for n in graph.nodes] == ["Conv", "Mul", "Add", "Add"]
    (got,) = run(load_onnx(model), {"x": x})
    c = reference.conv2d(x, w)
    assert rel_err(got, bn64(c, *params, 1e-5) + c) < 1e-5


def test_scale_layer_after_conv_folds_into_conv(rng):
    """Conv -> Mul by (C,1,1) -> Add by (C,1,1), as Caffe2 exports a "scale" layer."""
    x = rng.standard_normal((1, 3, 6, 6)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    m = rng.uniform(0.5, 1.5, (4, 1, 1)).astype(np.float32)
    a = rng.normal(0, 1, (4, 1, 1)).astype(np.float32)
    model = make_model(
        [helper.make_node("Conv", ["x", "w"], ["c"]),
         helper.make_node("Mul", ["c", "m"], ["d"]),
         helper.make_node("Add", ["d", "a"], ["y"])],
        [("x", x.shape)], [("y", None)], [("w", w), ("m", m), ("a", a)])
    opt = optimize(load_onnx(model))
    assert [n.op_type for n in opt.nodes] == ["Conv"]
    (got,) = Executor(opt, get_backend("numpy")).run({"x": x})
    assert rel_err(got, reference.conv2d(x, w) * m + a) < 1e-5


def test_mul_add_chain_collapses_to_one_mul_and_one_add(rng):
    x = rng.standard_normal((1, 3, 4, 4)).astype(np.float32)
    consts = [rng.uniform(0.5, 1.5, (3, 1, 1)).astype(np.float32) for _ in range(4)]
    model = make_model(
        [helper.make_node("Relu", ["x"], ["r"]),
         helper.make_node("Mul", ["r", "c0"], ["t0"]),
         helper.make_node("Add", ["t0", "c1"], ["t1"]),
         helper.make_node("Mul", ["t1", "c2"], ["t2"]),
         helper.make_node("Add", ["t2", "c3"], ["y"])],
        [("x", x.shape)], [("y", None)], [(f"c{i}", c) for i, c in enumerate(consts)])
    opt = optimize(load_onnx(model))
    assert sorted(n.op_type for n in opt.nodes) == ["Add", "Mul", "Relu"]
    (got,) = Executor(opt, get_backend("numpy")).run({"x": x})
    r = np.maximum(x.astype(np.float64), 0)
    assert rel_err(got, (r * consts[0] + consts[1]) * consts[2] + consts[3]) < 1e-6


# -- constant folding, Dropout, Sum, Gemm scalars -------------------------------------------------
def test_constant_folding_removes_constant_of_shape(rng):
    shape = np.array([4, 3, 1, 1], np.int64)
    model = make_model(
        [helper.make_node("ConstantOfShape", ["wshape"], ["w"],
                          value=numpy_helper.from_array(np.array([0.02], np.float32))),
         helper.make_node("Conv", ["x", "w"], ["y"])],
        [("x", (1, 3, 2, 2))], [("y", None)], [("wshape", shape)], opset=9)
    graph = load_onnx(model)
    assert graph.op_counts()["ConstantOfShape"] == 1
    folded = fold_constants(graph)
    assert "ConstantOfShape" not in folded.op_counts()
    np.testing.assert_array_equal(folded.initializers["w"], np.full((4, 3, 1, 1), 0.02,
                                                                    np.float32))
    assert "wshape" not in folded.initializers  # nothing reads it any more


@pytest.mark.parametrize("opset", [9, 13])
def test_unsqueeze_axes_as_attribute_and_as_input_fold(opset):
    v = np.arange(3, dtype=np.float32)
    if opset < 13:
        node = helper.make_node("Unsqueeze", ["v"], ["u"], axes=[1, 2])
        inits = [("v", v)]
    else:
        node = helper.make_node("Unsqueeze", ["v", "axes"], ["u"])
        inits = [("v", v), ("axes", np.array([1, 2], np.int64))]
    model = make_model([node, helper.make_node("Mul", ["x", "u"], ["y"])],
                       [("x", (1, 3, 2, 2))], [("y", None)], inits, opset=opset)
    folded = fold_constants(load_onnx(model))
    assert [n.op_type for n in folded.nodes] == ["Mul"]
    assert folded.initializers["u"].shape == (3, 1, 1)


def test_huge_constant_of_shape_is_refused():
    model = make_model([helper.make_node("ConstantOfShape", ["s"], ["w"]),
                        helper.make_node("Add", ["x", "w"], ["y"])],
                       [("x", (1,))], [("y", None)], [("s", np.array([1 << 40], np.int64))])
    with pytest.raises(ArgumentError, match="refusing"):
        fold_constants(load_onnx(model))


def test_constant_broadcast_blowup_is_refused():
    n = 1 << 20  # (n, 1) + (1, n) would be 4 TiB of float32
    model = make_model([helper.make_node("Add", ["a", "b"], ["c"]),
                        helper.make_node("Add", ["x", "c"], ["y"])],
                       [("x", (1,))], [("y", None)],
                       [("a", np.zeros((n, 1), np.float32)), ("b", np.zeros((1, n), np.float32))])
    with pytest.raises(ArgumentError, match="refusing"):
        fold_constants(load_onnx(model))


def test_dropout_removed_and_output_unchanged(rng):
    x = rng.standard_normal((2, 5)).astype(np.float32)
    model = make_model([helper.make_node("Dropout", ["x"], ["d", "mask"], ratio=0.5),
                        helper.make_node("Relu", ["d"], ["y"])],
                       [("x", x.shape)], [("y", None)], opset=9)
    graph = remove_dropout(load_onnx(model))
    assert [n.op_type for n in graph.nodes] == ["Relu"]
    np.testing.assert_array_equal(run(load_onnx(model), {"x": x})[0], np.maximum(x, 0))


def test_dropout_whose_mask_is_used_is_refused():
    model = make_model([helper.make_node("Dropout", ["x"], ["d", "mask"]),
                        helper.make_node("Cast", ["mask"], ["m"], to=F32),
                        helper.make_node("Add", ["d", "m"], ["y"])],
                       [("x", (2,))], [("y", None)], opset=9)
    with pytest.raises(UnsupportedError, match="mask"):
        remove_dropout(load_onnx(model))


def test_sum_becomes_a_chain_of_adds(rng):
    xs = [rng.standard_normal((2, 3)).astype(np.float32) for _ in range(4)]
    names = ["a", "b", "c", "d"]
    model = make_model([helper.make_node("Sum", names, ["y"])],
                       [(n, (2, 3)) for n in names], [("y", None)])
    graph = lower_sum(load_onnx(model))
    assert [n.op_type for n in graph.nodes] == ["Add"] * 3
    (got,) = run(load_onnx(model), dict(zip(names, xs, strict=True)))
    assert rel_err(got, sum(x.astype(np.float64) for x in xs)) < 1e-6


@pytest.mark.parametrize("constant_b", [True, False])
def test_gemm_alpha_beta_folded_or_scaled(rng, constant_b):
    a = rng.standard_normal((3, 4)).astype(np.float32)
    b = rng.standard_normal((5, 4)).astype(np.float32)
    c = rng.standard_normal((5,)).astype(np.float32)
    node = helper.make_node("Gemm", ["a", "b", "c"], ["y"], alpha=0.5, beta=2.0, transB=1)
    if constant_b:
        model = make_model([node], [("a", a.shape)], [("y", None)], [("b", b), ("c", c)])
        feeds = {"a": a}
    else:
        model = make_model([node], [("a", a.shape), ("b", b.shape), ("c", c.shape)],
                           [("y", None)])
        feeds = {"a": a, "b": b, "c": c}
    opt = optimize(load_onnx(model))
    assert all(n.attrs.get("alpha", 1.0) == 1.0 and n.attrs.get("beta", 1.0) == 1.0
               for n in opt.nodes)
    if constant_b:
        assert [n.op_type for n in opt.nodes] == ["Gemm"]
    else:
        assert "Mul" in opt.op_counts()
    (got,) = Executor(opt, get_backend("numpy")).run(feeds)
    want = 0.5 * a.astype(np.float64) @ b.T.astype(np.float64) + 2.0 * c
    assert rel_err(got, want) < 1e-6


# -- Reshape, Flatten, Softmax ------------------------------------------------------------------
def test_reshape_zero_copies_and_minus_one_infers(rng):
    x = rng.standard_normal((2, 3, 4)).astype(np.float32)
    model = make_model([helper.make_node("Reshape", ["x", "s"], ["y"])],
                       [("x", x.shape)], [("y", None)], [("s", np.array([0, -1], np.int64))])
    (got,) = run(load_onnx(model), {"x": x})
    np.testing.assert_array_equal(got, x.reshape(2, 12))


def test_flatten_becomes_reshape(rng):
    x = rng.standard_normal((2, 3, 2, 2)).astype(np.float32)
    model = make_model([helper.make_node("Flatten", ["x"], ["y"], axis=2)],
                       [("x", x.shape)], [("y", None)])
    opt = optimize(load_onnx(model))
    assert [n.op_type for n in opt.nodes] == ["Reshape"]
    np.testing.assert_array_equal(Executor(opt, get_backend("numpy")).run({"x": x})[0],
                                  x.reshape(6, 4))


@pytest.mark.parametrize("opset", [11, 13])
def test_softmax_axis_semantics_follow_the_opset(rng, opset):
    """Before opset 13 Softmax normalizes over everything from `axis` on (a 2-D view);
    from 13 on, over `axis` alone."""
    x = rng.standard_normal((2, 3, 4)).astype(np.float32)
    model = make_model([helper.make_node("Softmax", ["x"], ["y"], axis=1)],
                       [("x", x.shape)], [("y", None)], opset=opset)
    (got,) = run(load_onnx(model), {"x": x})
    x64 = x.astype(np.float64)
    if opset < 13:
        flat = x64.reshape(2, 12)
        want = (np.exp(flat) / np.exp(flat).sum(axis=1, keepdims=True)).reshape(x.shape)
    else:
        want = np.exp(x64) / np.exp(x64).sum(axis=1, keepdims=True)
    assert rel_err(got, want) < 1e-6


# -- batch rewriting -------------------------------------------------------------------------
def test_rewrite_batch_rewrites_alexnet_reshape():
    from hwbench.models import zoo

    graph = fold_constants(load_onnx(zoo.model_path("alexnet")))
    reshape = next(n for n in graph.nodes if n.op_type == "Reshape")
    assert list(graph.initializers[reshape.inputs[1]]) == [1, 9216]
    g4 = rewrite_batch(graph, 4)
    reshape4 = next(n for n in g4.nodes if n.op_type == "Reshape")
    assert list(g4.initializers[reshape4.inputs[1]]) == [4, 9216]
    assert g4.inputs[0].shape == (4, 3, 224, 224)
    assert g4.outputs[0].shape == (4, 1000)
    assert graph.inputs[0].shape == (1, 3, 224, 224)  # the original is untouched


def test_rewrite_batch_refuses_a_reshape_that_mixes_samples():
    model = make_model([helper.make_node("Reshape", ["x", "s"], ["r"], name="mixer"),
                        helper.make_node("Relu", ["r"], ["y"])],
                       [("x", (1, 8, 2, 2))], [("y", None)],
                       [("s", np.array([4, 8], np.int64))])
    with pytest.raises(UnsupportedError, match="mixer"):
        rewrite_batch(load_onnx(model), 2)


@pytest.mark.parametrize("target", [[0, -1], [-1, 32], [1, 32]])
def test_rewrite_batch_keeps_safe_reshapes(rng, target):
    model = make_model([helper.make_node("Reshape", ["x", "s"], ["y"])],
                       [("x", (1, 8, 2, 2))], [("y", None)],
                       [("s", np.array(target, np.int64))])
    g3 = rewrite_batch(load_onnx(model), 3)
    x = rng.standard_normal((3, 8, 2, 2)).astype(np.float32)
    np.testing.assert_array_equal(run(g3, {"x": x})[0], x.reshape(3, 32))


# -- refusing what cannot run ------------------------------------------------------------------
def test_unsupported_ops_are_all_named_with_counts():
    nodes = [helper.make_node("Shrink", ["x"], ["a"]), helper.make_node("Shrink", ["a"], ["b"]),
             helper.make_node("Selu", ["b"], ["c"]), helper.make_node("Relu", ["c"], ["d"]),
             helper.make_node("Frob", ["d"], ["y"], domain="com.example")]
    model = make_model(nodes, [("x", (2,))], [("y", None)])
    model.opset_import.append(helper.make_opsetid("com.example", 1))
    with pytest.raises(UnsupportedError) as info:
        load_onnx(model)
    message = str(info.value)
    assert "3 unsupported op type(s): Selu (×1), Shrink (×2), com.example:Frob (×1)" in message
    assert "Relu (" not in message.split("Supported")[0]


def test_host_only_ops_on_runtime_tensors_are_all_named():
    """Trilu folds on constants; on a run-time tensor it cannot run, and every such node is
    counted (Shape of one folds: its shape is static; Gather and Floor run). (Cast was the
    example until it got a run-time kernel.)"""
    model = make_model([helper.make_node("Shape", ["x"], ["s"]),
                        helper.make_node("Trilu", ["x"], ["f"]),
                        helper.make_node("Gather", ["f", "i"], ["g"]),
                        helper.make_node("Floor", ["g"], ["g2"]),
                        helper.make_node("Trilu", ["g2"], ["h"]),
                        helper.make_node("Add", ["x", "h"], ["y0"]),
                        helper.make_node("Reshape", ["y0", "s"], ["y"])],
                       [("x", (2, 3))], [("y", None)], [("i", np.array([1], np.int64))],
                       opset=14)
    graph = load_onnx(model)  # every op is known...
    with pytest.raises(UnsupportedError, match=r"1 unsupported op type\(s\): Trilu \(×2\)\."):
        optimize(graph)  # ...but these only fold on constants


def test_backend_without_a_kernel_is_refused_before_running(rng):
    class NoPool(NumpyBackend):
        _max_pool2d = Backend._max_pool2d  # the base class's "not implemented" stub

    model = make_model([helper.make_node("MaxPool", ["x"], ["p"], kernel_shape=[2, 2]),
                        helper.make_node("Softmax", ["p"], ["y"])],
                       [("x", (1, 1, 4, 4))], [("y", None)])
    with pytest.raises(UnsupportedError, match=r"max_pool2d \(for MaxPool\)"):
        Executor(optimize(load_onnx(model)), NoPool())


def _external_model(tmp_path, location: str):
    """A model whose weight lives in external data at ``location``."""
    model = make_model([helper.make_node("Add", ["x", "w"], ["y"])],
                       [("x", (4,))], [("y", None)], [("w", np.ones(4, np.float32))])
    tensor = model.graph.initializer[0]
    tensor.ClearField("float_data")
    tensor.ClearField("raw_data")
    tensor.data_location = TensorProto.EXTERNAL
    entry = tensor.external_data.add()
    entry.key, entry.value = "location", location
    folder = tmp_path / "model"
    folder.mkdir(exist_ok=True)
    path = folder / "model.onnx"
    path.write_bytes(model.SerializeToString())
    return path


@pytest.mark.parametrize("how", ["dotdot", "absolute", "symlink"])
def test_external_data_outside_the_model_folder_is_refused(tmp_path, how):
    secret = tmp_path / "secret.bin"
    secret.write_bytes(np.arange(4, dtype=np.float32).tobytes())
    if how == "dotdot":
        location = "../secret.bin"
    elif how == "absolute":
        location = str(secret)
    else:
        (tmp_path / "model").mkdir()
        os.symlink(secret, tmp_path / "model" / "link.bin")
        location = "link.bin"
    path = _external_model(tmp_path, location)
    with pytest.raises(ArgumentError, match="outside the model's folder"):
        load_onnx(path)


def test_external_data_inside_the_folder_is_read(tmp_path):
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "w.bin").write_bytes(np.arange(4, dtype=np.float32).tobytes())
    graph = load_onnx(_external_model(tmp_path, "w.bin"))
    np.testing.assert_array_equal(graph.initializers["w"], np.arange(4, dtype=np.float32))


def test_external_data_past_the_end_of_its_file_is_refused(tmp_path):
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "w.bin").write_bytes(b"\0" * 8)  # 2 floats, 4 wanted
    path = _external_model(tmp_path, "w.bin")
    model = onnx.load_model(str(path), load_external_data=False)
    entry = model.graph.initializer[0].external_data.add()
    entry.key, entry.value = "length", "16"
    path.write_bytes(model.SerializeToString())
    with pytest.raises(ArgumentError, match="which has 8 bytes"):
        load_onnx(path)


def test_save_onnx_round_trips_through_external_data(tmp_path, rng):
    w = rng.standard_normal((64, 64)).astype(np.float32)
    model = make_model([helper.make_node("MatMul", ["x", "w"], ["y"])],
                       [("x", (2, 64))], [("y", None)], [("w", w)])
    path = save_onnx(load_onnx(model), tmp_path / "m.onnx")
    assert (tmp_path / "m.onnx.data").stat().st_size >= w.nbytes
    graph = load_onnx(path)
    np.testing.assert_array_equal(graph.initializers["w"], w)


@pytest.mark.parametrize("content", ["garbage", "truncated", "empty"])
def test_unreadable_model_file_gives_argument_error(tmp_path, content):
    from hwbench.models import zoo

    with open(zoo.model_path("squeezenet"), "rb") as f:
        real = f.read()
    data = {"garbage": np.random.default_rng(0).integers(0, 256, 5000, np.uint8).tobytes(),
            "truncated": real[: len(real) // 2], "empty": b""}[content]
    path = tmp_path / "bad.onnx"
    path.write_bytes(data)
    with pytest.raises(ArgumentError, match="bad.onnx"):
        load_onnx(path)


def test_missing_model_file_gives_argument_error(tmp_path):
    with pytest.raises(ArgumentError, match="no such model file"):
        load_onnx(tmp_path / "nope.onnx")


def test_model_failing_the_onnx_checker_gives_argument_error():
    model = make_model([helper.make_node("Relu", ["x"], ["y"])], [("x", (2,))], [("y", None)])
    model.graph.node[0].input[0] = "undefined"
    with pytest.raises(ArgumentError, match="not a valid ONNX model"):
        load_onnx(model)


def test_old_opset_is_refused():
    model = make_model([helper.make_node("Relu", ["x"], ["y"])], [("x", (2,))], [("y", None)],
                       opset=8)
    with pytest.raises(UnsupportedError, match="opset 8"):
        load_onnx(model)


# -- the executor ------------------------------------------------------------------------------
class CountingBackend(NumpyBackend):
    """Counts uploads and how many relu results are alive at once."""

    def __init__(self):
        super().__init__()
        self.uploads = 0
        self.live = 0
        self.peak = 0

    def asarray(self, x):
        self.uploads += 1
        return super().asarray(x)

    def _relu(self, p, x):
        out = super()._relu(p, x)
        self.live += 1
        self.peak = max(self.peak, self.live)
        weakref.finalize(out, self._died)
        return out

    def _died(self):
        self.live -= 1


def test_weights_upload_once_and_intermediates_are_freed(rng):
    depth = 8
    nodes = [helper.make_node("Relu", [f"t{i}"], [f"t{i + 1}"]) for i in range(depth)]
    nodes.append(helper.make_node("Add", [f"t{depth}", "w"], ["y"]))
    model = make_model(nodes, [("t0", (64, 64))], [("y", None)],
                       [("w", np.ones((64, 64), np.float32))])
    be = CountingBackend()
    ex = Executor(optimize(load_onnx(model)), be)
    assert be.uploads == 1 and ex.weight_count == 1
    x = rng.standard_normal((64, 64)).astype(np.float32)
    for _ in range(3):
        (y,) = ex.run({"t0": x})
    assert be.uploads == 1 + 3  # the weight once, the input once per run
    assert be.peak <= 2, f"{be.peak} relu results alive at once: intermediates not freed"
    np.testing.assert_array_equal(y, np.maximum(x, 0) + 1)
    assert set(ex.last_timings) == {"transfer_in_s", "compute_s", "transfer_out_s"}
    assert all(v >= 0 for v in ex.last_timings.values())
    assert ex.totals["runs"] == 3


def test_outputs_are_writable_copies_not_backend_state(rng):
    model = make_model([helper.make_node("Identity", ["x"], ["y"])],
                       [("x", (3,))], [("y", None)])
    x = rng.standard_normal(3).astype(np.float32)
    (y,) = run(load_onnx(model), {"x": x})
    y[0] = 42.0
    assert x[0] != 42.0
