"""Record which ONNX node tests passed on which backend: ``pytest --node-test-record FILE``.

A pytest plugin (tests/conftest.py loads it). With ``--node-test-record FILE`` (or
``HWBENCH_NODE_TEST_RECORD=FILE``) every node-test item of the session -- a test in a
``tests/test_onnx_node*.py`` module parametrized by the ``backend`` fixture and a node test
``name`` -- is recorded with its op type, node test name, backend, level and outcome, and
FILE is written at the session's end as an hwbench result file (schema
``hwbench.node-tests``: environment, each backend's ``info()``, one row per item). The
supported-ops page's ``results:node-tests`` table is rendered from it
(``hwbench.harness.results.node_test_table``); ``scripts/node-tests.sh`` makes it.

Attribution, read from the item, never guessed from its text:
- backend and node test: the ``backend`` and ``name`` parameters the modules already use;
- level: ``@pytest.mark.node_test(level="graph")`` where a module runs node tests through
  the graph layer; an unmarked ``test_onnx_node`` function of a module with ``NODE_TESTS``
  is the kernel-level adapter every family's module has (docs/adding-an-op.md); any other
  such item is a usage error while recording;
- op type: the module's own ``NODE_TESTS`` (the kernel test asserts the node is that op),
  else the one op ``node_test_lists.all_node_tests()`` lists the name under.
"""

from __future__ import annotations

import importlib
import os
import time
from pathlib import Path
from typing import Any

import pytest

OPTION = "--node-test-record"
ENV = "HWBENCH_NODE_TEST_RECORD"
PROPERTY = "hwbench_node_test"  # the item's user_properties key (travels with its reports)
LEVELS = ("kernel", "graph")
KIND = "node-tests"


def pytest_addoption(parser) -> None:
    group = parser.getgroup("hwbench", "hwbench node-test record")
    group.addoption(OPTION, metavar="FILE", default=os.environ.get(ENV) or None,
                    help="write every ONNX node test's outcome per op, backend and level "
                         f"to FILE as JSON (also ${ENV}); see docs/testing.md")
    group.addoption("--node-test-note", metavar="TEXT", action="append", default=[],
                    help="a line for the record's notes (repeatable)")


def pytest_configure(config) -> None:
    config.addinivalue_line(
        "markers", "node_test(level): an ONNX node test run at LEVEL ('kernel' or 'graph'); "
        "read by --node-test-record")
    path = config.getoption("node_test_record", None)
    if path and not hasattr(config, "workerinput"):  # the controller writes, not workers
        config.pluginmanager.register(Recorder(Path(path), config), "hwbench-node-test-record")


def _node_tests_of(module) -> dict[str, list[str]]:
    own = getattr(module, "NODE_TESTS", None)
    if isinstance(own, dict):
        return own
    from node_test_lists import all_node_tests

    return all_node_tests()


def op_of(module, name: str) -> str:
    """The op type a node test belongs to, from the module's ``NODE_TESTS`` (else every
    module's); exactly one op must list it."""
    ops = [op for op, names in _node_tests_of(module).items() if name in names]
    if len(ops) != 1:
        raise pytest.UsageError(f"node test {name!r} is listed under {ops or 'no op'} in "
                                f"the NODE_TESTS of {module.__name__}: cannot attribute it")
    return ops[0]


def attribution(item) -> dict[str, str] | None:
    """``{"op", "case", "backend", "level"}`` for a node-test item, None for any other."""
    module = getattr(item, "module", None)
    params = getattr(getattr(item, "callspec", None), "params", {})
    if (module is None or not Path(str(item.path)).name.startswith("test_onnx_node")
            or "backend" not in params or "name" not in params):
        return None
    marker = item.get_closest_marker("node_test")
    if marker is not None:
        level = marker.kwargs.get("level", marker.args[0] if marker.args else None)
    elif item.originalname == "test_onnx_node" and hasattr(module, "NODE_TESTS"):
        level = "kernel"
    else:
        raise pytest.UsageError(
            f"{item.nodeid}: a node test of unknown level; mark it "
            "@pytest.mark.node_test(level='kernel') or (level='graph')")
    if level not in LEVELS:
        raise pytest.UsageError(f"{item.nodeid}: node_test level {level!r}, not one of "
                                f"{LEVELS}")
    name, backend = str(params["name"]), str(params["backend"])
    return {"op": op_of(module, name), "case": name, "backend": backend, "level": level}


def _reason(report) -> str:
    """A skip's reason or a failure's one-line message."""
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:  # a skip: (path, line, message)
        text = str(longrepr[2]).removeprefix("Skipped: ")
    else:
        crash = getattr(longrepr, "reprcrash", None)
        text = crash.message if crash is not None else str(longrepr)
    lines = text.strip().splitlines()
    text = lines[0] if lines else ""
    return text if len(text) <= 300 else text[:297] + "..."


class Recorder:
    """Collects the node-test items' outcomes and writes the record at the session's end."""

    def __init__(self, path: Path, config) -> None:
        self.path = path
        self.config = config
        self.items: dict[str, dict[str, str]] = {}  # nodeid -> attribution
        self.outcomes: dict[str, dict[str, str]] = {}  # nodeid -> status (+ reason)
        self.written: Path | None = None
        self.started = time.time()

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, items) -> None:
        for item in items:  # after deselection hooks: only what will run
            found = attribution(item)
            if found is not None:
                item.user_properties.append((PROPERTY, found))
                self.items[item.nodeid] = found

    def pytest_runtest_logreport(self, report) -> None:
        if report.nodeid not in self.items:
            return
        before = self.outcomes.get(report.nodeid)
        if report.passed and report.when == "call":
            status = {"status": "passed"}
            if getattr(report, "wasxfail", None) is not None:
                status["reason"] = "passed though marked xfail"
        elif report.skipped and getattr(report, "wasxfail", None) is not None:
            status = {"status": "failed",
                      "reason": f"xfail: {report.wasxfail or 'expected to fail'}"}
        elif report.skipped:
            status = {"status": "skipped", "reason": _reason(report)}
        elif report.failed:
            where = "" if report.when == "call" else f"error in {report.when}: "
            status = {"status": "failed", "reason": where + _reason(report)}
        else:
            return
        if before is None or before["status"] == "passed":  # the first non-pass stands
            self.outcomes[report.nodeid] = status

    def rows(self) -> list[dict[str, str]]:
        out = []
        for nodeid, found in self.items.items():
            outcome = self.outcomes.get(nodeid) or {
                "status": "not-run", "reason": "collected but not run (the session stopped)"}
            out.append({**found, **outcome})
        return out

    def pytest_sessionfinish(self, session, exitstatus) -> None:
        self.written = write_record(self.path, self.rows(), self.config, int(exitstatus),
                                    time.time() - self.started)

    def pytest_terminal_summary(self, terminalreporter) -> None:
        if self.written is not None:
            terminalreporter.write_line(f"node-test record: {self.written}")


def _backend_info(names: list[str]) -> dict[str, Any]:
    from hwbench.backends import get_backend
    from hwbench.pytest_plugin import availability

    info: dict[str, Any] = {}
    for name in names:
        try:
            ok, why = availability(name)
            info[name] = get_backend(name).info() if ok else {"unavailable": why}
        except Exception as exc:  # the record still says what ran; this says why not
            info[name] = {"unavailable": f"{type(exc).__name__}: {exc}"}
    return info


def _no_node_test_reasons() -> dict[str, str]:
    """Why some executable ops have no node test (tests/test_graph_ops.py's list)."""
    try:
        return dict(importlib.import_module("test_graph_ops").NO_NODE_TESTS)
    except Exception:  # a run outside this repository's tests (the recorder's own test)
        return {}


def summary(rows: list[dict[str, str]]) -> dict[str, dict[str, dict[str, int]]]:
    """level -> backend -> status -> count."""
    out: dict[str, dict[str, dict[str, int]]] = {}
    for row in rows:
        counts = out.setdefault(row["level"], {}).setdefault(row["backend"], {})
        counts[row["status"]] = counts.get(row["status"], 0) + 1
    return out


def write_record(path: Path, rows: list[dict[str, str]], config, exitstatus: int,
                 seconds: float) -> Path:
    from hwbench.harness.results.result_files import new_result, write_json_atomic
    from hwbench.harness.running.environment import environment

    backends = list(dict.fromkeys(row["backend"] for row in rows))
    result = new_result(
        KIND, environment(),
        pytest={"version": pytest.__version__, "args": [str(a) for a in config.args],
                "exitstatus": exitstatus,
                "seconds": round(seconds, 1)},
        notes=list(config.getoption("node_test_note") or []),
        backends=_backend_info(backends), no_node_tests=_no_node_test_reasons(),
        summary=summary(rows))
    result["rows"] = rows
    return write_json_atomic(path, result)
