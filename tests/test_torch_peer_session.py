"""A kernel peer as a Session's backend (what scripts/cuda_bench.py does with PyTorch on
the GPU): every op of a zoo model reads the peer's own tensors, dtype included."""

from __future__ import annotations

import numpy as np
import pytest

import hwbench


@pytest.mark.parametrize("model_name", ["alexnet", "resnet50"])
def test_a_session_on_the_torch_peer_matches_numpy(model_name):
    pytest.importorskip("torch", reason="torch is a peer (pip install 'hwbench[peers]')")
    from hwbench.harness.suites.peers import TorchPeer

    model = hwbench.load_model(model_name, batch=1).randomized()
    assert "MaxPool" in model.graph.op_counts()
    x = np.random.default_rng(0).standard_normal(model.input_shapes[model.inputs[0]],
                                                 np.float32)
    feeds = {model.inputs[0]: x}
    want = hwbench.Session(model, backend="numpy").run(feeds)[0]
    got = hwbench.Session(model, backend=TorchPeer(threads=1)).run(feeds)[0]
    got = got.numpy() if hasattr(got, "numpy") else np.asarray(got)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * float(np.abs(want).max()))
