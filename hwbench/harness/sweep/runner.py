"""``hwbench sweep``: every point of a grid as one task, on Ray or in local processes.

The spec (``sweep_spec``) expands to points with stable ids; each point runs where its
hardware is (``sweep_point.execute_point``): on Ray when it is installed (``sweep_ray``:
a local instance by default, a cluster at ``--address``/``RAY_ADDRESS``), else in a pool
of local processes, one per core. Either way a point that fails is retried once, then
recorded as failed with its reason.

Results: one results set, ``OUTPUT/sweep-NAME.json`` (``"schema": "hwbench.sweep"``,
rewritten atomically at most every ``SAVE_INTERVAL`` seconds and at the end), with a
journal beside it (``sweep-NAME.jsonl``, one line appended per finished point), so that a
sweep interrupted at any moment keeps every finished point and ``--resume`` skips them by
id. Each row names the node it ran on; ``nodes`` holds each node's hardware and versions.
Summaries (``sweep_report``): CSV, Markdown and, for simulator points, a Pareto plot.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from hwbench.errors import ArgumentError, ResultsError
from hwbench.harness.results.result_files import (
    create_json,
    new_result,
    read_result,
    to_jsonable,
    write_json_atomic,
)
from hwbench.harness.running.environment import environment
from hwbench.harness.running.lifeline import die_with_parent, parent_settings, stop_on_sigterm
from hwbench.harness.sweep import ray as sweep_ray
from hwbench.harness.sweep.point import FAILED, OK, REFUSED, execute_point
from hwbench.harness.sweep.ray import MAX_ATTEMPTS
from hwbench.harness.sweep.spec import Point, SweepSpec

SCHEMA = "hwbench.sweep"
SAVE_INTERVAL = 2.0  # seconds between rewrites of the JSON; the journal has every point
EXECUTORS = ("auto", "ray", "local")
FINISHED = (OK, REFUSED)  # what --resume skips; failed points are tried again

Execute = Callable[[Point, float], dict[str, Any]]


# -- the results set -------------------------------------------------------------------------
class SweepResults:
    """The sweep's JSON results set and its journal; rows keyed by point id."""

    def __init__(self, path: Path, payload: dict[str, Any]) -> None:
        self.path = Path(path)
        self.journal = self.path.with_suffix(".jsonl")
        self.payload = payload
        self.rows: dict[str, dict[str, Any]] = {row["id"]: row for row in payload["rows"]}
        self._saved = 0.0

    @classmethod
    def open(cls, path: Path, header: dict[str, Any], resume: bool) -> SweepResults:
        """A new results set at ``path``; with ``resume``, the one there (JSON and journal)
        carried on. Without ``resume`` an existing set is never overwritten."""
        path = Path(path)
        journal = path.with_suffix(".jsonl")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ResultsError(f"cannot create {path.parent}: {exc}") from exc
        if not resume:
            exists = ResultsError(f"{path} exists: pass --resume to continue that sweep, or "
                                  f"another --output folder or [sweep] name")
            if journal.exists():
                raise exists
            payload = {**header, "rows": []}
            try:  # exclusively: two sweeps of one name started together never share it
                create_json(path, payload, unique=False)
            except ResultsError:
                if path.exists():
                    raise exists from None
                raise
            return cls(path, payload)
        payload = {**header, "rows": []}
        if path.exists():
            old = read_result(path)
            if old.get("schema") != SCHEMA:
                raise ResultsError(f"{path} is a {old.get('schema')!r} file, not a sweep's")
            payload.update(nodes=old.get("nodes", {}), rows=old.get("rows", []),
                           created=old.get("created", header["created"]))
        results = cls(path, payload)
        for row in _journal_rows(journal):  # points finished after the last rewrite
            results.rows[row["id"]] = row
            payload["nodes"].update(row.pop("node_info", {}))
        return results

    def finished(self) -> set[str]:
        return {pid for pid, row in self.rows.items() if row.get("status") in FINISHED}

    def add(self, row: dict[str, Any], node: dict[str, Any] | None) -> None:
        """Record a finished point: in the journal at once, in the JSON soon."""
        self.rows[row["id"]] = row
        node_info = {}
        if node and node.get("key"):
            info = {k: v for k, v in node.items() if k != "key"}
            if self.payload["nodes"].get(node["key"]) != info:
                node_info = {node["key"]: info}
                self.payload["nodes"].update(node_info)
        line = json.dumps({**row, **({"node_info": node_info} if node_info else {})},
                          default=_jsonable)
        try:
            with open(self.journal, "a", encoding="utf-8") as fh:
                fh.write(line + "\n")
        except OSError as exc:
            raise ResultsError(f"cannot append to {self.journal}: {exc}") from exc
        self.save(force=False)

    def save(self, force: bool = True, order: list[str] | None = None) -> None:
        """Rewrite the JSON atomically (``force``: now; else if ``SAVE_INTERVAL`` passed)."""
        now = time.monotonic()
        if not force and now - self._saved < SAVE_INTERVAL:
            return
        rank = {pid: i for i, pid in enumerate(order or [])}
        self.payload["rows"] = sorted(self.rows.values(),
                                      key=lambda r: rank.get(r["id"], len(rank)))
        self.payload["failed"] = sorted(r["id"] for r in self.rows.values()
                                        if r.get("status") == FAILED)
        write_json_atomic(self.path, self.payload)
        self._saved = now

    def close(self, order: list[str]) -> None:
        """Final rewrite; the journal's points are all in the JSON now."""
        self.save(force=True, order=order)
        self.journal.unlink(missing_ok=True)


def _journal_rows(journal: Path) -> list[dict[str, Any]]:
    if not journal.exists():
        return []
    rows = []
    # errors="replace": a damaged line fails json.loads below and is skipped like a torn one
    for line in journal.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue  # the last line of a sweep killed mid-write
        if isinstance(row, dict) and "id" in row:
            rows.append(row)
    return rows


def _jsonable(value: Any) -> Any:
    return to_jsonable(value)


def results_path(output: str | os.PathLike, name: str) -> Path:
    return Path(output) / f"sweep-{name}.json"


# -- local processes -------------------------------------------------------------------------
def _pool_worker_start(parent_pid: int, pdeathsig: bool) -> None:
    """Pool workers leave Ctrl-C to the parent, which stops them and saves, and die with
    the parent when it is killed (``lifeline``: a killed sweep leaves no worker running)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    die_with_parent(parent_pid, pdeathsig)


def run_local(points: list[Point], execute: Execute, timeout: float, workers: int,
              on_done: Callable[[Point, dict[str, Any]], None],
              on_retry: Callable[[Point, str], None]) -> None:
    """Every point in a pool of ``workers`` processes; ``on_done`` once per point.

    A worker that dies breaks the whole pool (``BrokenProcessPool`` for every point in
    flight), so the points that were in flight are run again one at a time in a fresh
    pool; only one that kills its worker while alone is charged the attempt.
    """
    context = multiprocessing.get_context("spawn")  # no inherited threads or locks

    def new_pool() -> ProcessPoolExecutor:
        return ProcessPoolExecutor(max_workers=workers, mp_context=context,
                                   initializer=_pool_worker_start,
                                   initargs=parent_settings())

    queue: deque[Point] = deque(points)
    suspects: deque[Point] = deque()  # in flight when the pool broke: rerun alone
    attempts: dict[str, int] = {}
    in_flight: dict[Future, Point] = {}
    pool = new_pool()

    def submit(point: Point) -> None:
        attempts[point.id] = attempts.get(point.id, 0) + 1
        in_flight[pool.submit(execute, point, timeout)] = point

    def finish(point: Point, outcome: dict[str, Any]) -> None:
        if outcome["status"] == FAILED and attempts[point.id] < MAX_ATTEMPTS:
            on_retry(point, outcome["reason"])
            queue.append(point)
        else:
            on_done(point, {**outcome, "attempts": attempts[point.id]})

    try:
        while queue or suspects or in_flight:
            if suspects:
                if not in_flight:
                    submit(suspects.popleft())
            else:
                while queue and len(in_flight) < 2 * workers:
                    submit(queue.popleft())
            done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
            alone = len(in_flight) == 1
            broken: list[Point] = []
            for future in done:
                point = in_flight.pop(future)
                try:
                    outcome = future.result()
                except BrokenProcessPool:
                    broken.append(point)
                    continue
                except Exception as exc:  # noqa: BLE001 - raised outside execute_point's
                    outcome = {"id": point.id, "status": FAILED,  # own handling
                               "reason": f"{type(exc).__name__}: {exc}"}
                finish(point, outcome)
            if not broken:
                continue
            for future, point in list(in_flight.items()):  # they fail the same way
                in_flight.pop(future)
                broken.append(point)
            pool.shutdown(wait=True, cancel_futures=True)
            pool = new_pool()
            if alone:  # it ran by itself: it killed its worker
                finish(broken[0], {"id": broken[0].id, "status": FAILED,
                                   "reason": "its worker process died (crash or killed)"})
            else:
                for point in broken:
                    attempts[point.id] -= 1  # not charged until it fails alone
                    suspects.append(point)
    finally:
        # concurrent.futures has no public way to stop a running task (3.14 adds
        # terminate_workers()): on Ctrl-C, SIGTERM or an error the workers are terminated
        # here. Their handles are taken first: shutdown() forgets them.
        processes = list((getattr(pool, "_processes", None) or {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            if hasattr(process, "terminate") and process.is_alive():
                process.terminate()


# -- the sweep -------------------------------------------------------------------------------
@dataclass
class SweepRun:
    """What ``run_sweep`` did: the results set and how it went."""

    results: SweepResults
    executor: str
    total: int
    skipped: int                     # finished before (--resume)
    interrupted: bool = False
    failed: list[str] = field(default_factory=list)   # labels of failed points
    retried: int = 0
    completed: int = 0               # points finished by this run
    wall_seconds: float = 0.0
    notes: list[str] = field(default_factory=list)


def choose_executor(executor: str) -> str:
    if executor not in EXECUTORS:
        raise ArgumentError(f"argument '--executor' must be one of {', '.join(EXECUTORS)}, "
                            f"got {executor!r}")
    if executor == "auto":
        return "ray" if sweep_ray.ray_installed() else "local"
    if executor == "ray" and not sweep_ray.ray_installed():
        raise ArgumentError("argument '--executor': Ray is not installed (pip install "
                            "'hwbench[cluster]')")
    return executor


def run_sweep(spec: SweepSpec, output: str | os.PathLike = "results", *, resume: bool = False,
              executor: str = "auto", address: str | None = None, workers: int | None = None,
              timeout: float | None = None, progress: Any = None,
              execute: Execute = execute_point) -> SweepRun:
    """Run every point of ``spec`` not finished yet; save as points finish.

    ``progress``: an object with ``start(total, done)``, ``advance(point, outcome)``,
    ``retry(point, reason)`` (the CLI's rich bar), or None. ``execute``: the task body
    (tests wrap it). KeyboardInterrupt stops the sweep and keeps every finished point.
    """
    chosen = choose_executor(executor)
    if address and chosen != "ray":
        raise ArgumentError("argument '--address' needs Ray (pip install 'hwbench[cluster]')")
    if workers is not None and workers < 1:
        raise ArgumentError(f"argument '--workers' must be a positive integer, got {workers}")
    timeout = spec.timeout if timeout is None else timeout
    if not timeout > 0:
        raise ArgumentError(f"argument '--timeout' must be positive, got {timeout}")
    header = new_result("sweep", environment(), name=spec.name, source=spec.source,
                        spec=spec.table, points=len(spec.points), timeout=timeout, nodes={})
    header["schema"] = SCHEMA
    results = SweepResults.open(results_path(output, spec.name), header, resume)
    done = results.finished()
    todo = [p for p in spec.points if p.id not in done]
    run = SweepRun(results, chosen, len(spec.points), len(spec.points) - len(todo))
    order = [p.id for p in spec.points]
    extra = set(results.rows) - set(order)
    if extra:
        run.notes.append(f"{len(extra)} point(s) in {results.path} are not in this spec; "
                         f"kept")

    def on_done(point: Point, outcome: dict[str, Any]) -> None:
        node = outcome.get("node") or {}
        row = {"id": point.id, "kind": point.kind, "label": point.label,
               "params": point.params, "status": outcome["status"],
               "reason": outcome.get("reason", ""), "attempts": outcome.get("attempts", 1),
               "host": node.get("host"), "node": node.get("key"),
               "seconds": outcome.get("seconds"), "result": outcome.get("result")}
        results.add(row, node)
        run.completed += 1
        if row["status"] == FAILED:
            run.failed.append(point.label)
        if progress is not None:
            progress.advance(point, row)

    def on_retry(point: Point, reason: str) -> None:
        run.retried += 1
        if progress is not None:
            progress.retry(point, reason)

    start = time.perf_counter()
    ray_started, ray = False, None
    sigterm = stop_on_sigterm()
    sigterm.__enter__()
    try:
        if progress is not None:
            progress.start(run.total, run.skipped)
        if chosen == "ray" and todo:
            ray, ray_started, description = sweep_ray.connect(address, workers)
            results.payload["executor"] = {"kind": "ray", **description}
            sweep_ray.run_ray(todo, execute, timeout, on_done, on_retry, ray, description)
        elif todo:
            count = workers or len(os.sched_getaffinity(0))
            results.payload["executor"] = {"kind": "local", "workers": count}
            run.notes.append(f"ran in {count} local process(es); " + (
                "Ray (--executor ray) would" if sweep_ray.ray_installed() else
                "with Ray installed (pip install 'hwbench[cluster]') the same sweep would")
                + " spread its points over every core of a cluster's machines "
                  "(--address ray://HOST:PORT)")
            run_local(todo, execute, timeout, count, on_done, on_retry)
    except KeyboardInterrupt:
        run.interrupted = True
    finally:
        results.payload["interrupted"] = run.interrupted
        run.wall_seconds = time.perf_counter() - start
        results.payload["wall_seconds"] = run.wall_seconds
        if run.interrupted:
            results.save(force=True, order=order)  # the journal stays until a full run
        else:
            results.close(order)
        if ray_started:
            ray.shutdown()
        sigterm.__exit__(None, None, None)
    return run


class RichProgress:
    """``run_sweep``'s progress as a rich bar over points: done, failed (counted, the last
    few named) and retried."""

    def __init__(self, console: Any) -> None:
        self.console = console
        self.failed: list[str] = []
        self.retried = 0
        self._progress: Any = None
        self._task: Any = None

    def start(self, total: int, done: int) -> None:
        self._progress = Progress(TextColumn("{task.description}"), BarColumn(),
                                  MofNCompleteColumn(), TimeElapsedColumn(),
                                  TimeRemainingColumn(), console=self.console)
        self._progress.start()
        self._task = self._progress.add_task(self._text(), total=total, completed=done)

    def _text(self, last: str = "") -> str:
        text = "sweep"
        if self.failed:
            text += f" [red]{len(self.failed)} failed[/] (last: {escape(self.failed[-1])})"
        if self.retried:
            text += f" [yellow]{self.retried} retried[/]"
        return text + (f" {escape(last)}" if last and not self.failed else "")

    def advance(self, point: Point, row: dict[str, Any]) -> None:
        if row["status"] == FAILED:
            self.failed.append(point.label)
            self.console.print(f"[red]failed:[/] {escape(point.label)}: "
                               f"{escape(str(row['reason']))}", highlight=False)
        self._progress.update(self._task, advance=1, description=self._text(point.label))

    def retry(self, point: Point, reason: str) -> None:
        self.retried += 1
        self._progress.update(self._task, description=self._text())

    def stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()
