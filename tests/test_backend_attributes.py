"""What callers outside ``backends/`` ask of a backend is a class attribute, looked up by
name without creating one (issue 14), not a branch on the backend's name."""

from __future__ import annotations

import pytest

from hwbench.backends import REGISTRY, backend_class
from hwbench.harness.measure.peak_trust import add_peak_fraction, runs_on_host_cpu
from hwbench.harness.sweep.point import point_resources
from hwbench.harness.sweep.spec import Point
from hwbench.models.session import session_backend


@pytest.mark.parametrize("name, host", [
    ("numpy", True), ("cpu", True), ("cpu:mkl", True), ("torch", True),
    ("onnxruntime", True), ("systolic", False), ("opencl", False), ("opencl:1", False),
    ("cuda", False), ("clblast", False), ("nosuch", False)])
def test_runs_on_host_cpu(name, host):
    assert runs_on_host_cpu(name) is host


def test_the_peak_fraction_follows_the_attribute(monkeypatch):
    row = {"backend": "numpy", "op": "gemm", "case": "g", "status": "ok", "gflops": 5.0}
    add_peak_fraction(row, {"gflops": 10.0})
    assert row["fraction_of_peak"] == 0.5
    monkeypatch.setattr(backend_class("numpy"), "runs_on_host_cpu", False)
    row = {**row}
    del row["fraction_of_peak"]
    add_peak_fraction(row, {"gflops": 10.0})
    assert "fraction_of_peak" not in row


def test_session_options_come_from_the_class(monkeypatch):
    if not backend_class("cpu").available()[0]:
        pytest.skip("cpu backend unavailable")
    assert session_backend("cpu").keep_blocked is True
    assert session_backend("cpu", keep_blocked=False).keep_blocked is False
    monkeypatch.setattr(backend_class("cpu"), "session_options", {})
    assert session_backend("cpu").keep_blocked is False


def test_every_backend_answers_sweep_resources():
    for base in REGISTRY:
        wanted = backend_class(base).sweep_resources(None)
        assert set(wanted) == {"num_gpus", "resources", "host_timed"}
    assert point_resources(Point("run", {"backend": "opencl:CPU"}))["resources"] == {
        "hwbench_opencl_cpu": 1, "hwbench_timing_slot": 1}


def test_a_sweeps_device_type_is_resolved_by_the_backend_class(monkeypatch):
    """``opencl:GPU`` in a sweep becomes the node's first GPU by the opencl backend's own
    discovery; other backends keep the device as named."""
    from hwbench.backends.opencl import runtime
    from hwbench.errors import BackendUnavailableError
    from hwbench.harness.sweep.point import resolve_backend

    class Entry:
        def __init__(self, index, kind):
            self.index, self.kind = index, kind

    monkeypatch.setattr(runtime, "discover", lambda: [Entry(0, "CPU"), Entry(1, "GPU"),
                                                      Entry(2, "GPU")])
    assert resolve_backend("opencl:GPU") == "opencl:1"
    assert resolve_backend("opencl:cpu") == "opencl:0"
    assert resolve_backend("opencl:2") == "opencl:2"
    assert resolve_backend("cpu:mkl") == "cpu:mkl"
    assert resolve_backend("numpy") == "numpy"
    with pytest.raises(BackendUnavailableError, match="no OpenCL ACCELERATOR device"):
        resolve_backend("opencl:ACCELERATOR")
