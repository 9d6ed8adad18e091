"""The op registry (``hwbench.graph.ops``): one complete definition per op type, the only
place the graph layer learns about ops, and a graph layer that imports nothing above it."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import numpy as np
import pytest

from hwbench.backends import get_backend
from hwbench.errors import ArgumentError, UnsupportedError
from hwbench.graph import Executor
from hwbench.graph.ir import FUSED_CONV_QUALIFIED, FUSED_DOMAIN, FUSED_GEMM, Graph, Node, ValueInfo
from hwbench.graph.ops import OP_DEFS, OpDef, op_def
from hwbench.graph.ops.shapes import same_shape
from hwbench.graph.statistics import graph_bytes, graph_flops

ROOT = Path(__file__).resolve().parents[1]
GRAPH = ROOT / "hwbench" / "graph"


# -- every entry is complete ---------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(OP_DEFS))
def test_every_op_has_a_shape_rule_and_a_way_to_run(name):
    d = OP_DEFS[name]
    if d.run is not None or d.lowered_by is not None:  # it reaches shape inference
        assert d.shape is not None, f"{name}: no shape rule"
    if d.host is None:  # not a constant-folding-only op: something must execute it
        assert d.run is not None or d.lowered_by is not None, f"{name}: no run definition"
    assert not d.problems()


@pytest.mark.parametrize("broken, problem", [
    (OpDef("ToyNeg", run=lambda be, x, s: x[0], kernels=("mul",)), "no shape rule"),
    (OpDef("ToyNeg", shape=same_shape), "nothing can execute it"),
    (OpDef("ToyNeg", shape=same_shape, host=lambda n, a, o: a, kernels=("mul",)), "no run"),
    (OpDef("Relu", shape=same_shape, run=lambda be, x, s: x[0]), "defined already"),
])
def test_register_refuses_an_incomplete_or_second_definition(broken, problem):
    trial = OP_DEFS.copy()
    with pytest.raises(ArgumentError, match=problem):
        trial.register(broken)
    assert "ToyNeg" not in OP_DEFS


def test_registry_copy_is_independent_of_op_defs():
    trial = OP_DEFS.copy()
    trial.register(OpDef("ToyNeg", shape=same_shape, run=lambda be, x, s: x[0]))
    assert "ToyNeg" in trial and "ToyNeg" not in OP_DEFS and len(trial) == len(OP_DEFS) + 1


def test_op_sets_the_graph_layer_uses_come_from_the_registry():
    assert FUSED_CONV_QUALIFIED in OP_DEFS.executable()
    assert FUSED_CONV_QUALIFIED not in OP_DEFS.supported()  # made by a pass, never read
    assert OP_DEFS.lowered() == {"BatchNormalization", "Dropout"}
    assert {"Shape", "ConstantOfShape"} <= OP_DEFS.supported() - OP_DEFS.executable()
    assert "Gather" in OP_DEFS.executable()  # an embedding lookup runs (tensor_ops)
    assert OP_DEFS.integer() == {"ConvInteger", "QLinearConv", "MatMulInteger",
                                 "QLinearMatMul"} | {
        f"com.microsoft:{op}" for op in ("QLinearAdd", "QLinearMul", "QLinearSigmoid",
                                         "QLinearLeakyRelu", "QLinearGlobalAveragePool",
                                         "QLinearAveragePool", "QLinearConcat", "QGemm",
                                         "QLinearSoftmax")} | {
        f"{FUSED_DOMAIN}:{op}" for op in ("QLinearConvAdd", "QLinearConvRequant",
                                          "QLinearConvDequantAdd", "AffineQuantizeLinear")}
    assert op_def("Reshape").host_inputs == (1,)
    assert op_def("QLinearConv").kernels == ("conv2d_int8",)


# -- the registry is the single source ------------------------------------------------------
def _op_name_literals(path: Path) -> list[tuple[int, list[str]]]:
    """Literal dicts/sets/lists/tuples in ``path`` naming three or more registered ops."""
    names = {n.split(":")[-1] for n in OP_DEFS}
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        items = node.keys if isinstance(node, ast.Dict) else getattr(node, "elts", None)
        if not isinstance(node, (ast.Dict, ast.Set, ast.List, ast.Tuple)) or not items:
            continue
        ops = [i.value for i in items if isinstance(i, ast.Constant) and i.value in names]
        if len(ops) >= 3:
            found.append((node.lineno, ops))
    return found


USERS = [p for p in GRAPH.glob("*.py")] + [ROOT / "hwbench" / "harness" / "suites" /
                                           "model_suite.py"]


@pytest.mark.parametrize("path", USERS, ids=lambda p: p.name)
def test_no_table_of_ops_outside_the_registry(path):
    # executor.OPS, shape_inference.RULES, passes.HOST_OPS and the like lived here once:
    # a second table of op types drifts from the registry
    assert _op_name_literals(path) == []


def test_the_executor_runs_exactly_the_registry_ops():
    x = ValueInfo("x", (1, 4))
    graph = Graph("neg", [x], [ValueInfo("y", (1, 4))], {}, [Node("ToyNeg", ["x"], ["y"])], 13)
    with pytest.raises(UnsupportedError, match=r"ToyNeg \(×1\)") as err:
        Executor(graph, get_backend("numpy"))
    listed = re.search(r"Supported: (.*)$", str(err.value)).group(1).split(", ")
    assert set(listed) == OP_DEFS.executable()


# Ops the executor runs without an ONNX node test of their own, and why.
NO_NODE_TESTS = {
    "Flatten": "lower_flatten makes it a Reshape before the executor sees it",
    "Sum": "lower_sum makes it a chain of Adds",
    "Identity": "remove_identities drops it unless it names a graph output",
    "Relu": "the kernel tests and every zoo model run it",
    "ReduceLogSumExp": "onnx's cases are float64 (the kernels are float32); "
                       "tests/test_reductions_kernels.py checks it against the reference",
    FUSED_CONV_QUALIFIED: "hwbench's own op: tests/test_fusion.py",
    f"{FUSED_DOMAIN}:{FUSED_GEMM}": "hwbench's own op: tests/test_gemm_fusion.py",
    f"{FUSED_DOMAIN}:QLinearConvAdd": "hwbench's own op: tests/test_qconv_add.py",
    f"{FUSED_DOMAIN}:QLinearConvRequant": "hwbench's own op: tests/test_qconv_add.py",
    f"{FUSED_DOMAIN}:QLinearConvDequantAdd": "hwbench's own op: tests/test_qconv_add.py",
    f"{FUSED_DOMAIN}:AffineQuantizeLinear": "hwbench's own op: tests/test_affine_quantize.py",
    f"{FUSED_DOMAIN}:ChannelAffine": "hwbench's own op: tests/test_channel_affine.py",
    **{f"com.microsoft:{op}": "onnxruntime's contrib op, no ONNX node test: "
       "tests/test_qoperator.py checks it against onnxruntime"
       for op in ("QLinearAdd", "QLinearMul", "QLinearSigmoid", "QLinearLeakyRelu",
                  "QLinearGlobalAveragePool", "QLinearAveragePool", "QLinearConcat", "QGemm")},
    "com.microsoft:QLinearSoftmax": "onnxruntime's contrib op, no ONNX node test: "
                                    "tests/test_qoperator_attention.py checks it against "
                                    "onnxruntime",
}


def test_every_runnable_op_has_onnx_node_tests_or_a_reason():
    pytest.importorskip("onnx", reason="the node test lists import onnx")
    from node_test_lists import all_node_tests

    tested = set(all_node_tests())
    assert sorted(OP_DEFS.executable() - tested - set(NO_NODE_TESTS)) == []
    assert sorted(set(NO_NODE_TESTS) - OP_DEFS.executable()) == []


# -- FLOPs and bytes come from the definitions -----------------------------------------------
def test_conv_flops_from_its_definition():
    node = Node("Conv", ["x", "w"], ["y"], {"pads": [1, 1, 1, 1]})
    assert op_def("Conv").flops(node, [(1, 3, 32, 32), (16, 3, 3, 3)]) == \
        2 * 16 * 32 * 32 * 3 * 3 * 3


def test_statistics_follow_output_itemsize_and_flops():
    w = np.ones((3, 2), np.float32)
    graph = Graph("g", [ValueInfo("x", (4, 3))], [ValueInfo("z", (8,))], {"w": w},
                  [Node("MatMul", ["x", "w"], ["y"]), Node("Flatten", ["y"], ["z"], {"axis": 0})],
                  13)
    shapes = {"x": (4, 3), "w": (3, 2), "y": (4, 2), "z": (1, 8)}
    assert graph_flops(graph, shapes) == 2 * 4 * 3 * 2
    # weights once, the input written and read, y written and read; Flatten is a view
    assert graph_bytes(graph, shapes) == w.nbytes + 2 * 4 * 12 + 2 * 4 * 8


# -- layering -------------------------------------------------------------------------------
def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _package(path: Path) -> str:
    name = _module_name(path)
    return name if path.name == "__init__.py" else name.rpartition(".")[0]


def _is_module(name: str) -> bool:
    where = ROOT / Path(*name.split("."))
    return where.with_suffix(".py").exists() or (where / "__init__.py").exists()


def _imports_in(source: str, package: str) -> set[str]:
    """Every hwbench module ``source`` (of ``package``) imports, at any depth (inside
    functions too)."""
    out = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[:len(parts) - node.level + 1] + ([base] if base else []))
            for alias in node.names:  # "from package import module" imports the module
                sub = f"{base}.{alias.name}"
                out.add(sub if _is_module(sub) else base)
    return {m for m in out if m.split(".")[0] == "hwbench"}


def _imports(path: Path) -> set[str]:
    return _imports_in(path.read_text(encoding="utf-8"), _package(path))


GRAPH_MODULES = {_module_name(p): p for p in GRAPH.rglob("*.py")}


def test_graph_imports_nothing_above_it():
    above = ("hwbench.models", "hwbench.harness", "hwbench.cli")
    bad = {name: sorted(m for m in _imports(path) if m.startswith(above))
           for name, path in GRAPH_MODULES.items()}
    assert {k: v for k, v in bad.items() if v} == {}


def test_graph_modules_import_no_cycle():
    edges = {name: {m for m in _imports(path) if m in GRAPH_MODULES}
             for name, path in GRAPH_MODULES.items()}
    done: set[str] = set()

    def visit(name: str, stack: list[str]) -> None:
        if name in stack:
            raise AssertionError(" -> ".join(stack[stack.index(name):] + [name]))
        if name in done:
            return
        for nxt in sorted(edges[name]):
            visit(nxt, stack + [name])
        done.add(name)

    for name in sorted(edges):
        visit(name, [])


def test_import_scan_sees_imports_inside_functions_and_relative_ones():
    # the two tests above would pass vacuously if the scan missed these
    source = ("def f():\n    from hwbench.models.session import session_backend\n"
              "from . import ir\nfrom .ops import OP_DEFS\n")
    assert _imports_in(source, "hwbench.graph") == {
        "hwbench.models.session", "hwbench.graph.ir", "hwbench.graph.ops"}


# -- the docs page's example runs ----------------------------------------------------------
def test_adding_an_op_example_runs_and_leaves_the_registry_alone():
    text = (ROOT / "docs" / "adding-an-op.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert blocks, "docs/adding-an-op.md has no python example"
    before = dict(OP_DEFS)
    for block in blocks:
        exec(compile(block, "docs/adding-an-op.md", "exec"), {})
    assert dict(OP_DEFS) == before
