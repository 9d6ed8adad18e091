"""A 0-d initializer stays 0-d when hwbench writes a graph back to ONNX (np.ascontiguousarray
makes it 1-d: onnxruntime then refused BERT's and ViT's Gather of the first token)."""

from __future__ import annotations

import numpy as np
import pytest

from hwbench.graph.ir import Graph, Node, ValueInfo
from hwbench.graph.onnx_import import load_onnx, save_onnx, to_onnx

onnx = pytest.importorskip("onnx", reason="ONNX export needs the onnx package")


def _graph() -> Graph:
    return Graph("g", [ValueInfo("x", (2, 3, 4))], [ValueInfo("y", (2, 4))],
                 {"first": np.array(0, np.int64)},
                 [Node("Gather", ["x", "first"], ["y"], {"axis": 1})], 17)


def test_to_onnx_and_save_onnx_keep_a_scalar_initializer_scalar(tmp_path):
    proto = to_onnx(_graph())
    assert [list(t.dims) for t in proto.graph.initializer] == [[]]
    path = save_onnx(_graph(), tmp_path / "g.onnx", external_min_bytes=0)
    assert load_onnx(path).initializers["first"].shape == ()


def test_onnxruntime_runs_the_exported_scalar_gather():
    ort = pytest.importorskip("onnxruntime", reason="a peer (pip install 'hwbench[peers]')")
    x = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    session = ort.InferenceSession(to_onnx(_graph()).SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    (y,) = session.run(None, {"x": x})
    np.testing.assert_array_equal(y, x[:, 0])
