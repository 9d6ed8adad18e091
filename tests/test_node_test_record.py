"""The node-test record (``--node-test-record``, node_test_record.py) and its docs table."""

from __future__ import annotations

import importlib
import json
import textwrap
from pathlib import Path

import pytest
from node_test_lists import all_node_tests
from node_test_record import op_of

from hwbench.harness.results import doc_tables
from hwbench.harness.results.result_files import new_result, read_result

pytest_plugins = ("pytester",)
ROOT = Path(__file__).resolve().parent.parent

CONFTEST = """
    import pytest

    pytest_plugins = ["node_test_record"]

    @pytest.fixture(params=["numpy", "absent"])
    def backend(request):
        if request.param == "absent":
            pytest.skip("backend absent unavailable: planted")
        return request.param
"""
PLANTED = """
    import pytest

    NODE_TESTS = {"Add": ["test_add", "test_add_bcast"], "Relu": ["test_relu"]}

    @pytest.mark.parametrize("name", [n for names in NODE_TESTS.values() for n in names])
    def test_onnx_node(backend, name):
        assert name != "test_add_bcast", "planted mismatch"

    @pytest.mark.node_test(level="graph")
    @pytest.mark.parametrize("name", ["test_add", "test_relu"])
    def test_through_the_graph(backend, name, broken):
        if name == "test_relu":
            pytest.skip("planted skip")

    @pytest.fixture
    def broken(request):
        if request.node.callspec.params["name"] == "test_add":
            raise RuntimeError("planted setup error")

    def test_not_a_node_test():
        pass
"""


def _run(pytester, *args: str):
    pytester.makeconftest(textwrap.dedent(CONFTEST))
    pytester.makepyfile(test_onnx_node_planted=textwrap.dedent(PLANTED))
    return pytester.runpytest_inprocess("-p", "no:cacheprovider", *args)


def test_the_record_holds_every_outcome_with_its_op_backend_and_level(pytester):
    record = pytester.path / "out" / "record.json"
    result = _run(pytester, "--node-test-record", str(record), "--node-test-note", "shared")
    result.assert_outcomes(passed=3, failed=1, skipped=6, errors=1)
    payload = read_result(record)  # an hwbench result file, by the one reader
    assert payload["schema"] == "hwbench.node-tests"
    assert payload["environment"]["hwbench"] and payload["environment"]["cpu"]
    assert payload["notes"] == ["shared"] and payload["pytest"]["exitstatus"] == 1
    got = {(r["op"], r["case"], r["backend"], r["level"]): (r["status"], r.get("reason"))
           for r in payload["rows"]}
    assert len(got) == len(payload["rows"]) == 10  # test_not_a_node_test is not recorded
    assert got[("Add", "test_add", "numpy", "kernel")] == ("passed", None)
    status, reason = got[("Add", "test_add_bcast", "numpy", "kernel")]
    assert status == "failed" and "planted mismatch" in reason
    assert got[("Relu", "test_relu", "numpy", "kernel")] == ("passed", None)
    for case in ("test_add", "test_add_bcast", "test_relu"):
        assert got[(case == "test_relu" and "Relu" or "Add", case, "absent", "kernel")] == \
            ("skipped", "backend absent unavailable: planted")
    assert got[("Relu", "test_relu", "numpy", "graph")] == ("skipped", "planted skip")
    status, reason = got[("Add", "test_add", "numpy", "graph")]
    assert status == "failed" and reason.startswith("error in setup: ")
    assert "planted setup error" in reason
    assert payload["summary"]["kernel"]["numpy"] == {"passed": 2, "failed": 1}
    assert payload["backends"]["absent"]["unavailable"]  # no such backend: says why


def test_without_the_option_nothing_is_written(pytester):
    _run(pytester).assert_outcomes(passed=3, failed=1, skipped=6, errors=1)
    assert list(pytester.path.rglob("*.json")) == []


def test_a_node_test_of_unknown_level_is_refused_while_recording(pytester):
    pytester.makepyfile(test_onnx_node_unmarked=textwrap.dedent("""
        import pytest

        NODE_TESTS = {"Add": ["test_add"]}

        @pytest.mark.parametrize("name", ["test_add"])
        def test_something_else(backend, name):
            pass
    """))
    result = _run(pytester, "--node-test-record", str(pytester.path / "r.json"))
    assert result.ret != 0
    result.stderr.fnmatch_lines(["*test_something_else*node test of unknown level*"])


def test_ops_come_from_the_node_test_lists():
    pytest.importorskip("onnx", reason="the node test modules import onnx")
    graph = importlib.import_module("test_onnx_node_graph")  # no NODE_TESTS of its own
    assert op_of(graph, "test_add_bcast") == "Add"
    assert op_of(graph, "test_softmax_axis_0") == "Softmax"
    with pytest.raises(pytest.UsageError, match="no op"):
        op_of(graph, "test_not_a_node_test")


# -- the table ------------------------------------------------------------------------------

def _row(op, case, backend, level, status="passed", reason=None):
    row = {"op": op, "case": case, "backend": backend, "level": level, "status": status}
    return row if reason is None else {**row, "reason": reason}


def _write(root: Path, name: str, rows, **fields) -> None:
    env = {"hwbench": "9.9", "cpu": "AMD EPYC", "cores_available": 2, "python": "3.11.7"}
    payload = new_result("node-tests", env, notes=["planted note"], backends={},
                         no_node_tests={"Relu": "planted reason"}, **fields)
    payload["rows"] = rows
    path = root / "results" / doc_tables.MACHINE / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload), encoding="utf-8")


def test_the_table_counts_passes_per_backend_and_level_from_the_newest_record(tmp_path):
    skip = "backend cuda unavailable: planted"
    rows = [_row("Add", "test_add", "numpy", "kernel"),
            _row("Add", "test_add_bcast", "numpy", "kernel", "failed", "planted mismatch"),
            _row("Add", "test_add", "numpy", "graph"),
            _row("Add", "test_add", "cpu", "kernel"),
            _row("Add", "test_add_bcast", "cpu", "kernel", "skipped", "planted skip"),
            _row("Mul", "test_mul", "numpy", "kernel"),
            _row("Mul", "test_mul", "cpu", "kernel", "skipped", "planted skip"),
            _row("Add", "test_add", "cuda", "kernel", "skipped", skip),
            _row("Add", "test_add_bcast", "cuda", "kernel", "skipped", skip)]
    _write(tmp_path, "node-tests-vm-20260101-000000.json", [])  # older: not the one shown
    _write(tmp_path, "node-tests-vm-20260102-000000.json", [_row("Add", "x", "numpy", "kernel")])
    _write(tmp_path, "node-tests-vm-20260102-000000-2.json", rows,
           pytest={"seconds": 12.3, "exitstatus": 1})
    table = doc_tables.render("node-tests", tmp_path)
    assert "from `results/amd-epyc-zen4-2core/node-tests-vm-20260102-000000-2.json`" in table
    assert "| op | node tests | numpy | cpu |\n" in table  # cuda ran nothing: a note
    add = next(line for line in table.splitlines() if line.startswith("| `Add` |"))
    assert "<summary>2</summary>`test_add`, `test_add_bcast`</details>" in add
    assert add.endswith("| 1/2 ✗ · 1/1 | 1/2 ✗ · — |")
    assert "| `Mul` | <details><summary>1</summary>`test_mul`</details> | 1/1 · — | skipped · — |" \
        in table
    assert "| `Relu` | none: planted reason | — | — |" in table
    assert "| `Dropout` | none: never reaches a backend; removed by " in table
    assert "- `cuda`: every node test skipped (backend cuda unavailable: planted)." in table
    assert "- `cpu`: 2 node tests skipped: planted skip" in table
    assert ("- failed: `test_add_bcast` (Add) on `numpy`, kernel level: planted mismatch"
            in table)
    assert "| **all** | **3** | **2/3** · **1/1** | **1/3** · **0/0** |" in table
    assert "9 node-test items in 12 s, pytest exit status 1" in table
    assert "> **Note:** planted note" in table


def test_no_record_is_an_error_naming_the_script(tmp_path):
    from hwbench.errors import ResultsError

    with pytest.raises(ResultsError, match="scripts/node-tests.sh"):
        doc_tables.render("node-tests", tmp_path)


def test_the_committed_record_covers_every_listed_node_test():
    # a new family's NODE_TESTS without a fresh record (scripts/node-tests.sh) fails here
    pytest.importorskip("onnx", reason="the node test lists import onnx")
    graph = importlib.import_module("test_onnx_node_graph")
    newest = doc_tables.render("node-tests", ROOT).split("from `", 1)[1].split("`", 1)[0]
    rows = read_result(ROOT / newest)["rows"]
    listed = {(op, name) for op, names in all_node_tests().items() for name in names}
    ran = {r["backend"] for r in rows if r["status"] != "skipped"}
    assert {"numpy", "cpu", "opencl", "systolic"} <= ran
    for backend in sorted(ran):
        kernel = {(r["op"], r["case"]) for r in rows
                  if r["backend"] == backend and r["level"] == "kernel"}
        assert sorted(listed - kernel) == [], backend
        through_graph = {r["case"] for r in rows
                         if r["backend"] == backend and r["level"] == "graph"}
        assert sorted(set(graph.NAMES) - through_graph) == [], backend
