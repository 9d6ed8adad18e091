"""Run measuring jobs side by side, saving the result file after every row.

``hwbench kernels`` and ``hwbench run`` both drive their workers through here: an
interrupted run (Ctrl-C, SIGTERM) keeps every row it measured, in a valid file.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from hwbench.harness.results.result_files import write_json_atomic
from hwbench.harness.running import isolation
from hwbench.harness.running.lifeline import stop_on_sigterm

MakeRow = Callable[[int, dict[str, Any]], dict[str, Any]]


class DriveProgress(Protocol):
    """What the caller shows while the jobs run (the CLI: a progress bar)."""

    def start(self, total: int) -> None:
        """``total`` (backend, case) turns are to come."""

    def case(self, backend: str, case: str) -> None:
        """``backend`` starts ``case``."""

    def advance(self, turns: int = 1) -> None:
        """``turns`` more turns are done (a backend that could not start: all of its)."""

    def backend_failed(self, backend: str, reason: str) -> None:
        """``backend``'s worker could not start."""

    def warning(self, message: str) -> None:
        """Something the results record beside the rows (a worker found dead)."""


def drive(jobs: list[dict[str, Any]], names: list[str], result: dict[str, Any],
          path: Path | None, timeout: float, make_row: MakeRow, progress: DriveProgress,
          prepare: Callable[[int], dict[str, Any]] | None = None) -> bool:
    """Run ``jobs`` side by side over ``names`` (one per case), adding each row to
    ``result`` and saving it to ``path`` (when there is one) after every row.

    ``make_row(index, row)`` completes a worker's row; ``prepare`` is
    ``isolation.run_side_by_side``'s. Returns True if interrupted.
    """
    progress.start(len(names) * len(jobs))
    with stop_on_sigterm():
        try:
            for message in isolation.run_side_by_side(jobs, len(names), timeout, prepare):
                _record(message, names, result, path, make_row, progress)
        except KeyboardInterrupt:
            result["interrupted"] = True
            if path:
                write_json_atomic(path, result)
            return True
    return False


def _record(message: dict[str, Any], names: list[str], result: dict[str, Any],
            path: Path | None, make_row: MakeRow, progress: DriveProgress) -> None:
    kind, name = message["type"], message["backend"]
    if kind == "info":
        result["backends"][name] = message["info"]
    elif kind == "fatal":
        progress.backend_failed(name, message["reason"])
        result.setdefault("failed_backends", {})[name] = message["reason"]
        progress.advance(len(names))
    elif kind == "start":
        progress.case(name, names[message["index"]])
    elif kind == "warning":  # e.g. a worker found dead between cases
        progress.warning(message["message"])
        result.setdefault("warnings", []).append(message["message"])
    elif kind == "row":
        row = make_row(message["index"], {"backend": name, **message["row"]})
        result["rows"].append(row)
        if path:  # after every row: an interrupted run keeps what it measured
            write_json_atomic(path, result)
        progress.advance()
