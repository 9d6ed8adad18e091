"""Models of PyTorch's classification zoo (torchvision, ``weights=None``, seeded), exported
by ``torch.onnx.export`` with both exporters (TorchScript at opset 17, dynamo at its
default opset), load in hwbench, run on every backend and agree with onnxruntime on the
same file (``torch_exports_common.check_against_onnxruntime``). Small images keep the
module quick; each model is exported once per exporter (module-scoped fixtures).

Also RegNet-Y-400MF at 224x224, whose stride-2 projection convs with a residual returned
values near 1e36 on ``cpu`` (issue 13, defect 1) while ``numpy`` and ``opencl`` were right.
Needs PyTorch and torchvision (``pip install '.[peers]' torchvision``); skipped with the
reason elsewhere. torchvision's compiled part may not load beside a CPU build of PyTorch,
but its model definitions are plain Python: its fake-op registrations are skipped.
"""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest
from torch_exports_common import BACKENDS, EXPORTERS, check_against_onnxruntime, export

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


def _vit_b_16(models):
    # the smallest image its definition accepts is one 16x16 patch; 32x32 gives 4 + class
    model = models.vit_b_16(weights=None, image_size=32)
    torch.nn.init.normal_(model.heads.head.weight, std=0.02)  # zero-initialized: all-0 logits
    return model


# name -> (builder(models), image side): the smallest side each keeps meaningful
ZOO = {
    "resnet18": (lambda m: m.resnet18(weights=None), 64),
    "regnet_y_400mf": (lambda m: m.regnet_y_400mf(weights=None), 64),
    "mobilenet_v2": (lambda m: m.mobilenet_v2(weights=None), 64),
    "mobilenet_v3_large": (lambda m: m.mobilenet_v3_large(weights=None), 64),
    "mnasnet0_5": (lambda m: m.mnasnet0_5(weights=None), 64),
    "efficientnet_b0": (lambda m: m.efficientnet_b0(weights=None), 64),
    "shufflenet_v2_x0_5": (lambda m: m.shufflenet_v2_x0_5(weights=None), 64),
    "convnext_tiny": (lambda m: m.convnext_tiny(weights=None), 64),
    "vit_b_16": (_vit_b_16, 32),
    "swin_t": (lambda m: m.swin_t(weights=None), 64),  # windows pad 64/4=16 -> 2x7x7
}
# (model, exporter) -> why it stays skipped: an op another branch adds
SKIPS: dict[tuple[str, str], str] = {}


@pytest.fixture(scope="module", params=[(n, e) for n in ZOO for e in EXPORTERS],
                ids=lambda p: f"{p[0]}-{p[1]}")
def exported(request, tmp_path_factory) -> tuple[str, np.ndarray]:
    name, exporter = request.param
    if (name, exporter) in SKIPS:
        pytest.skip(SKIPS[name, exporter])
    models = _torchvision_models()
    build, side = ZOO[name]
    torch.manual_seed(0)
    model = build(models).eval()
    x = np.random.default_rng(0).standard_normal((1, 3, side, side)).astype(np.float32)
    path = str(tmp_path_factory.mktemp("exports") / f"{name}_{exporter}.onnx")
    return export(torch, model, (torch.from_numpy(x),), path, exporter, ["input"]), x


@pytest.mark.parametrize("backend", BACKENDS)
def test_zoo_export_agrees_with_onnxruntime(exported, backend):
    path, x = exported
    check_against_onnxruntime(path, {"input": x}, backend)


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
