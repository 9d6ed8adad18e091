"""docs/ops.md's table comes from the op registry and the backend classes (graph/catalog.py):
an op is marked for a backend exactly when the executor would accept it there."""

from __future__ import annotations

from hwbench.backends import backend_class
from hwbench.backends.base import Backend
from hwbench.graph import catalog
from hwbench.graph.executor import lacks_kernel
from hwbench.graph.ops import OP_DEFS


def _entry(name: str) -> catalog.OpEntry:
    return next(e for e in catalog.entries() if e.name == name)


def test_every_registered_op_is_listed_once():
    names = [e.name for e in catalog.entries()]
    assert sorted(names) == sorted(OP_DEFS)


def test_a_backend_without_the_kernel_is_not_marked(monkeypatch):
    numpy_cls = backend_class("numpy")
    assert "numpy" in _entry("Relu").backends
    monkeypatch.setattr(numpy_cls, "_relu", Backend._relu)  # back to the "unsupported" stub
    assert lacks_kernel(numpy_cls, "relu")
    assert "numpy" not in _entry("Relu").backends
    assert "cpu" in _entry("Relu").backends
    row = next(line for line in catalog.markdown() if line.startswith("| `Relu` |"))
    assert row.split("|")[4].strip() == "—"  # the numpy column


def test_ops_that_never_reach_a_backend_are_marked_as_such():
    folded = [e for e in catalog.entries() if e.on_host]
    assert folded, "the registry has host-only ops (constant folding) and lowered ones"
    for e in folded:
        assert e.backends == ()
        assert OP_DEFS[e.name].run is None


def test_marks_agree_with_the_executor_check_on_instances_and_classes():
    for e in catalog.entries():
        d = OP_DEFS[e.name]
        for name in catalog.BACKENDS:
            runs = not e.on_host and not any(lacks_kernel(backend_class(name), k)
                                             for k in d.kernels)
            assert (name in e.backends) is runs, (e.name, name)
