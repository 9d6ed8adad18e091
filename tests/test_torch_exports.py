"""Models exported by ``torch.onnx.export`` agree with onnxruntime on every backend.

The first: RegNet-Y-400MF, whose stride-2 projection convs with a residual returned values
near 1e36 on ``cpu`` (issue 13, defect 1) while ``numpy`` and ``opencl`` were right. Needs
PyTorch and torchvision (``pip install '.[peers]' torchvision``); skipped with the reason
elsewhere. torchvision's compiled part may not load beside a CPU build of PyTorch, but its
model definitions are plain Python: its fake-op registrations are skipped.
"""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest

from hwbench.pytest_plugin import availability

torch = pytest.importorskip("torch", reason="needs PyTorch (pip install '.[peers]')")
ort = pytest.importorskip("onnxruntime", reason="needs onnxruntime (pip install '.[test]')")


def _torchvision_models():
    sys.modules.setdefault("torchvision._meta_registrations",
                           types.ModuleType("torchvision._meta_registrations"))
    try:
        from torchvision import models
    except Exception as exc:  # not installed, or its compiled part refused to load
        pytest.skip(f"needs torchvision's model definitions (pip install torchvision): {exc}")
    return models


@pytest.fixture(scope="module")
def regnet_file(tmp_path_factory) -> str:
    models = _torchvision_models()
    torch.manual_seed(0)
    model = models.regnet_y_400mf(weights=None).eval()
    path = str(tmp_path_factory.mktemp("exports") / "regnet_y_400mf.onnx")
    torch.onnx.export(model, torch.randn(1, 3, 224, 224), path, opset_version=17,
                      dynamo=False, input_names=["input"], output_names=["logits"])
    return path


@pytest.mark.parametrize("backend", ["numpy", "cpu", "cpu:mkl", "opencl"])
def test_regnet_y_400mf_export_agrees_with_onnxruntime(regnet_file, backend):
    ok, why = availability(backend)
    if not ok:
        pytest.skip(f"backend {backend} unavailable: {why}")
    import hwbench

    x = np.random.default_rng(0).standard_normal((1, 3, 224, 224)).astype(np.float32)
    expected = ort.InferenceSession(regnet_file).run(None, {"input": x})[0]
    model = hwbench.load_model(regnet_file, batch=1)
    (got,) = hwbench.Session(model, backend=backend).run({model.inputs[0]: x})
    assert np.abs(got - expected).max() <= 1e-4 * np.abs(expected).max()
    assert got.argmax() == expected.argmax()
