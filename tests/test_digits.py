"""The digits models: gradients, reproducible training, shipped weights, ONNX export."""

from __future__ import annotations

import numpy as np
import pytest
from gradient_check import check_pair_gradients

from hwbench.cli import main
from hwbench.datasets import digits
from hwbench.errors import ArgumentError, ResultsError
from hwbench.models import digits as D

pytest.importorskip("sklearn", reason="the digits data ships in scikit-learn")


@pytest.fixture(scope="module")
def numpy_be():
    from hwbench.backends import get_backend

    return get_backend("numpy")


def test_split_is_fixed_and_disjoint():
    x_train, y_train = digits("train")
    x_test, y_test = digits("test")
    assert x_train.shape == (1437, 1, 8, 8) and x_test.shape == (360, 1, 8, 8)
    assert x_train.dtype == np.float32 and 0.0 <= x_test.min() and x_test.max() <= 1.0
    assert set(np.unique(y_test)) == set(range(10))
    # The same split every call; no test image is a train image.
    np.testing.assert_array_equal(digits("test")[0], x_test)
    train_rows = {row.tobytes() for row in x_train.reshape(len(x_train), -1)}
    overlap = sum(row.tobytes() in train_rows for row in x_test.reshape(len(x_test), -1))
    assert overlap <= 2  # the data set itself has a couple of duplicate images
    with pytest.raises(ArgumentError, match="'split'"):
        digits("validation")


@pytest.mark.parametrize("name", sorted(D.ARCHITECTURES))
def test_backward_matches_finite_differences(numpy_be, name):
    """Directional derivative of the loss vs <gradient, direction>, layer by layer."""
    arch = D.architecture(name)
    rng = np.random.default_rng(3)
    params = D.init_params(arch, seed=5)
    params = [(w, rng.uniform(-0.1, 0.1, b.shape).astype(np.float32)) for w, b in params]
    x, y = digits("train")
    x, y = x[:6].astype(np.float32), y[:6]

    def loss(p):
        out = D.forward(numpy_be, arch, p, x)
        return D.loss_and_gradient(arch, out, x, y)[0]

    trace = D._Trace()
    out = D.forward(numpy_be, arch, params, x, trace)
    grads = D.backward(numpy_be, arch, params, trace, D.loss_and_gradient(arch, out, x, y)[1])
    # eps: small enough that few ReLU kinks are crossed, large enough for float32
    check_pair_gradients(loss, params, grads, rng, eps=1e-3, rel=0.05, abs=5e-4)


def test_training_is_reproducible_from_the_seed(numpy_be):
    a, _ = D.train(numpy_be, "mlp", seed=7, epochs=2)
    b, _ = D.train(numpy_be, "mlp", seed=7, epochs=2)
    c, _ = D.train(numpy_be, "mlp", seed=8, epochs=2)
    for (wa, ba), (wb, bb) in zip(a, b, strict=True):
        np.testing.assert_array_equal(wa, wb)
        np.testing.assert_array_equal(ba, bb)
    assert not np.array_equal(a[0][0], c[0][0])


def test_hwbench_train_reproduces_the_shipped_mlp(tmp_path):
    out = tmp_path / "mlp.npz"
    assert main(["train", "--model", "mlp", "--backend", "numpy", "--output", str(out)]) == 0
    trained, shipped = D.load_params("mlp", out), D.load_params("mlp")
    for (wt, bt), (ws, bs) in zip(trained, shipped, strict=True):
        np.testing.assert_allclose(wt, ws, rtol=0, atol=1e-5)
        np.testing.assert_allclose(bt, bs, rtol=0, atol=1e-5)


def test_shipped_weights_on_every_backend(backend):
    lenet = D.evaluate(backend, "lenet", D.load_params("lenet"))
    mlp = D.evaluate(backend, "mlp", D.load_params("mlp"))
    ae = D.evaluate(backend, "autoencoder", D.load_params("autoencoder"))
    assert lenet[0] == "top1" and lenet[1] >= 0.97
    assert mlp[1] >= 0.95
    x_test = digits("test")[0].reshape(360, -1)
    baseline = float(np.mean((x_test - digits("train")[0].reshape(-1, 64).mean(0)) ** 2))
    assert ae[0] == "mse" and ae[1] < 0.5 * baseline


def test_onnx_export_runs_the_same_weights(numpy_be):
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime (pip install onnxruntime)")
    x = digits("test")[0][:16]
    for name in D.ARCHITECTURES:
        params = D.load_params(name)
        proto = D.to_onnx(name, params)
        session = ort.InferenceSession(proto.SerializeToString(),
                                       providers=["CPUExecutionProvider"])
        theirs = session.run(None, {"input": x})[0]
        ours = D.forward(numpy_be, D.architecture(name), params, x)
        if D.architecture(name).task == "classify":
            e = np.exp(ours - ours.max(axis=1, keepdims=True))
            ours = e / e.sum(axis=1, keepdims=True)
        np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-5)


def test_weights_files_are_checked(tmp_path):
    with pytest.raises(ResultsError, match="mlp"):
        D.load_params("mlp", tmp_path / "absent.npz")
    lenet_file = D.WEIGHTS_DIR / "lenet.npz"
    with pytest.raises(ResultsError, match="'lenet'"):
        D.load_params("mlp", lenet_file)
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a zip file")
    with pytest.raises(ResultsError):
        D.load_params("mlp", garbage)
    with pytest.raises(ArgumentError, match="'model'"):
        D.architecture("resnet9000")
