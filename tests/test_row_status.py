"""A row's status comes from the exception's type where the row is made, never from its
reason text (issue 14): a reason that happens to start with "UnsupportedError" is just text."""

from __future__ import annotations

import json

from hwbench.backends import get_backend
from hwbench.errors import ArgumentError, HwbenchError, UnsupportedError
from hwbench.harness.results import compare
from hwbench.harness.results.result_files import new_result, read_result
from hwbench.harness.results.tables import kernels_table
from hwbench.harness.running.row_status import failure_fields
from hwbench.harness.suites import kernel_suite
from hwbench.harness.sweep.point import FAILED, REFUSED, row_outcome


class UnsupportedErrorLookalike(HwbenchError):
    """Not an ``UnsupportedError``; its name (so a row's reason) starts like one."""


def test_status_follows_the_exception_type_not_its_name():
    lookalike = failure_fields(UnsupportedErrorLookalike("boom"))
    assert lookalike["reason"].startswith("UnsupportedError")
    assert lookalike["status"] == "error" and lookalike["refused"] is False
    assert failure_fields(UnsupportedError("no int8"))["status"] == "unsupported"
    refused = failure_fields(ArgumentError("bad"))
    assert refused["status"] == "error" and refused["refused"] is True
    masked = failure_fields(RuntimeError("UnsupportedError: not really"))
    assert masked["status"] == "error" and masked["refused"] is False


def test_a_kernel_row_from_a_lookalike_is_an_error(monkeypatch):
    be = get_backend("numpy")
    spec = kernel_suite.plan(("sigmoid",), "small", 1)[0]
    case = kernel_suite.make_case(spec, 0, 0)

    def fail(*args, **kwargs):
        raise UnsupportedErrorLookalike("looks unsupported, is not")

    monkeypatch.setattr(type(case), "bind", fail)
    row = kernel_suite.run_case(be, case, repeats=1, min_time=0, max_time=0.01)
    assert row["status"] == "error" and row["reason"].startswith("UnsupportedError")
    monkeypatch.setattr(type(case), "bind", lambda *a, **k: (_ for _ in ()).throw(
        UnsupportedError("really unsupported")))
    assert kernel_suite.run_case(be, case, repeats=1, min_time=0,
                                 max_time=0.01)["status"] == "unsupported"


def _file(tmp_path, rows, name):
    payload = new_result("kernels", {}, backends={})
    payload["rows"] = rows
    path = tmp_path / name
    path.write_text(json.dumps(payload))
    return path


LOOKALIKE_ROW = {"backend": "numpy", "op": "sigmoid", "case": "r", "status": "error",
                 "reason": "UnsupportedErrorLookalike: boom", "refused": False}
OK_ROW = {"backend": "numpy", "op": "sigmoid", "case": "r", "status": "ok", "seconds": 1e-3,
          "timing": {"samples": [1e-3] * 5, "median": 1e-3}, "rel_error": 0.0}


def test_readers_do_not_call_a_lookalike_unsupported(tmp_path):
    path = _file(tmp_path, [LOOKALIKE_ROW], "new.json")
    assert read_result(path)["rows"][0]["status"] == "error"
    run = compare.load_run(path)
    assert any(entry.status.startswith("error") for entry in run.entries.values())
    from rich.console import Console

    console = Console(width=200, record=True)
    console.print(kernels_table([LOOKALIKE_ROW], None, ["numpy"]))
    assert "unsupported" not in console.export_text()
    assert row_outcome(LOOKALIKE_ROW) == (FAILED, LOOKALIKE_ROW["reason"])
    assert row_outcome({**LOOKALIKE_ROW, "refused": True})[0] == REFUSED
    assert row_outcome({"status": "unsupported", "reason": "x"})[0] == REFUSED


def test_rows_written_before_rows_carried_refused_are_upgraded_once(tmp_path):
    old = [{"backend": "numpy", "op": "sigmoid", "case": "a", "status": "error",
            "reason": "UnsupportedError: no relu"},
           {"backend": "numpy", "op": "sigmoid", "case": "b", "status": "error",
            "reason": "ArgumentError: bad"},
           {"backend": "numpy", "op": "sigmoid", "case": "c", "status": "error",
            "reason": "RuntimeError: UnsupportedError: inside"}]
    rows = read_result(_file(tmp_path, old, "old.json"))["rows"]
    assert [(r["status"], r["refused"]) for r in rows] == [
        ("unsupported", True), ("error", True), ("error", False)]


def test_an_unsupported_row_is_left_out_of_compare(tmp_path):
    unsupported = {**LOOKALIKE_ROW, "status": "unsupported", "refused": True,
                   "reason": "UnsupportedError: no"}
    run = compare.load_run(_file(tmp_path, [unsupported, OK_ROW], "u.json"))
    assert run.entries == {} or all(not e.status.startswith("error")
                                    for e in run.entries.values())
    lookalike = compare.load_run(_file(tmp_path, [LOOKALIKE_ROW], "l.json"))
    assert [e.status for e in lookalike.entries.values()] == [
        "error: UnsupportedErrorLookalike: boom"]
