"""Run each backend in its own worker process, all of them side by side, case by case.

Why a process per backend: a crash or hang in native code must cost one row, not the
run; and libraries' idle threads interfere across backends — measured here, oneDNN calls
stalled for ~8 ms at random while OpenBLAS's worker threads (from NumPy) were alive in
the same process. A worker therefore also runs NumPy's BLAS single-threaded unless NumPy
*is* the backend under test.

Why side by side: a shared or thermally limited machine drifts by several per cent over
minutes. The parent keeps one worker per backend alive and has them take turns on each
case, so every backend's figure for a case is measured within seconds of the others'.

Protocol (JSON lines): the parent writes the job, then ``{"run": i}`` per case and
``{"quit": true}``; the worker answers ``{"type": "info"}`` (or ``"fatal"``) once, then
``{"type": "row", "index": i, "row": {...}}`` per case. A worker that dies or is silent
past the timeout costs the case it was on (an error row); a new worker takes the next.
A worker found dead between cases (killed while idle) is replaced too, and said so: a
``{"type": "warning"}`` message and a note on the backend's next row. Workers die with
the parent (``lifeline``): killed or terminated, it leaves none running.
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from hwbench.backends import REGISTRY, backend_class
from hwbench.harness.running import omp_wait
from hwbench.harness.running.lifeline import child_env
from hwbench.harness.running.row_status import ERROR


def _uses_numpy_blas(backend: str) -> bool:
    base = backend.split(":")[0]
    try:
        return base in REGISTRY and backend_class(base).uses_numpy_blas
    except ImportError:
        return False


def worker_env(backend: str, threads: int | None,
               wait: dict[str, Any] | None = None) -> dict[str, str]:
    """A worker's environment: NumPy's BLAS gets the run's threads where the backend
    computes with it (numpy, systolic) and one thread elsewhere, where it only serves
    odds and ends beside the backend's own threads. OpenMP's idle threads wait as ``wait``
    (``omp_wait.resolve``'s) says, set before the worker loads libgomp; without one they
    sleep (``cpu.onednn.OPENMP_WAIT_ENV``) unless the user set a policy."""
    env = dict(os.environ)
    omp_wait.apply(env, wait)
    if _uses_numpy_blas(backend):
        if threads:
            env["OPENBLAS_NUM_THREADS"] = str(threads)
    else:
        env["OPENBLAS_NUM_THREADS"] = "1"
    return env


class _LineReader:
    """Complete lines from a pipe's raw file descriptor, waiting at most ``timeout``.

    Raw reads (not Python's buffered reader) so that select() never misses lines that
    arrived in the same write as an earlier one.
    """

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.buffer = b""
        self.selector = selectors.DefaultSelector()
        self.selector.register(fd, selectors.EVENT_READ)

    def readline(self, timeout: float) -> str | None:
        """The next line ('' at end of stream), or None if nothing came within ``timeout``."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self.selector.select(timeout=remaining):
                return None
            chunk = os.read(self.fd, 1 << 16)
            if not chunk:
                rest, self.buffer = self.buffer, b""
                return rest.decode(errors="replace")
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line.decode(errors="replace") + "\n"

    def close(self) -> None:
        self.selector.close()


def _drain(stream, tail: list[str]) -> None:
    """Read a worker's stderr as it comes (a full pipe would block the worker)."""
    for line in stream:
        tail.append(line.rstrip())
        del tail[:-20]


class Worker:
    """One backend's worker process, driven one case at a time."""

    def __init__(self, job: dict[str, Any], timeout: float) -> None:
        self.job, self.timeout = job, timeout
        self.info: dict[str, Any] | None = None
        self.failure: str | None = None
        # ``status`` and ``refused`` of the failure (``row_status``): a crash or a hang's,
        # unless the worker reported the exception it stopped on.
        self.failure_kind: dict[str, Any] = {"status": ERROR, "refused": False}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "hwbench.harness.running.worker"], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=child_env(worker_env(job["backend"], job.get("options", {}).get("threads"),
                                     job.get("omp_wait"))))
        assert self.proc.stdin and self.proc.stdout and self.proc.stderr
        self.stderr_tail: list[str] = []
        self.drainer = threading.Thread(target=_drain, args=(self.proc.stderr, self.stderr_tail),
                                        daemon=True)
        self.drainer.start()
        self.reader = _LineReader(self.proc.stdout.fileno())
        if self._send(job):
            message = self._receive(lambda m: m["type"] in ("info", "fatal"))
            if message is not None and message["type"] == "info":
                self.info = message["info"]
            elif message is not None:
                self._fatal(message)
        if self.info is None:
            self.close()

    @property
    def alive(self) -> bool:
        return self.info is not None and self.failure is None and self.proc.poll() is None

    def idle_death(self) -> str | None:
        """If the worker died between cases (no case's error row records it), why;
        else None. Closes it either way."""
        died_idle = self.failure is None and self.info is not None and (
            self.proc.poll() is not None)
        if not died_idle:
            return None
        reason = self._exit_reason()
        self.close()
        return (f"{self.job['backend']}'s worker died while idle, between cases ({reason}); "
                "a new worker was started for the next case")

    def run(self, index: int, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        """Case ``index``'s row; an error row if the worker dies or hangs on it.

        ``extra`` travels with the command (e.g. where the case's reference outputs are).
        """
        if self._send({"run": index, **(extra or {})}):
            message = self._receive(lambda m: m["type"] == "row" and m.get("index") == index)
            if message is not None and message["type"] == "row":
                return message["row"]
            if message is not None:  # the worker reported a fatal error and exits
                self._fatal(message)
        self.close()
        return {"backend": self.job["backend"], **self.failure_kind, "reason": self.failure}

    def _fatal(self, message: dict[str, Any]) -> None:
        """The worker's own report of the exception it stops on."""
        self.failure = message["reason"]
        self.failure_kind = {"status": message.get("status", ERROR),
                             "refused": bool(message.get("refused"))}

    def _send(self, message: dict[str, Any]) -> bool:
        try:
            assert self.proc.stdin
            self.proc.stdin.write(json.dumps(message) + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            self.failure = self._exit_reason()
            return False
        return True

    def _receive(self, wanted) -> dict[str, Any] | None:
        """The next message ``wanted`` accepts (non-JSON lines skipped), else None."""
        while True:
            line = self.reader.readline(self.timeout)
            if line is None:
                self.failure = f"no progress for {self.timeout:.0f} s (hang?): worker killed"
                return None
            if not line:
                self.failure = self._exit_reason()
                return None
            try:
                message = json.loads(line)
            except json.JSONDecodeError:
                continue  # a native library's own logging on stdout
            if isinstance(message, dict) and "type" in message:
                if message["type"] == "fatal" or wanted(message):
                    return message

    def _exit_reason(self) -> str:
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.drainer.join(timeout=5)
        last = f": {self.stderr_tail[-1]}" if self.stderr_tail else ""
        code = self.proc.returncode
        if code is not None and code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            return f"worker killed by {name} (status {code}){last}"
        return f"worker exited with status {code}{last}"

    def close(self, grace: float = 10.0) -> None:
        """Ask the worker to quit; kill it if it does not within ``grace`` seconds (or is
        hung)."""
        if self.proc.poll() is None and self.failure is None:
            self._send({"quit": True})
            try:
                self.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                pass
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.reader.close()
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                if stream:
                    stream.close()
            except OSError:
                pass


def run_side_by_side(jobs: list[dict[str, Any]], total: int, timeout: float,
                     prepare: Callable[[int], dict[str, Any]] | None = None,
                     ) -> Iterator[dict[str, Any]]:
    """Cases 0..total-1, each run by every job's worker in turn.

    ``prepare(index)``, if given, runs in this process before a case's turns (while every
    worker is idle) and returns fields sent along with each worker's command.

    Yields ``{"type": "info"|"fatal"|"start"|"row", "backend": name, ...}``: one row
    per (backend, case) for every backend that started, errors included.
    """
    workers: dict[str, Worker | None] = {}
    finished = False
    try:
        for job in jobs:
            workers[job["backend"]] = yield from _start(job, timeout)
        for index in range(total):
            extra = prepare(index) if prepare is not None else None
            for job in jobs:
                name = job["backend"]
                worker = workers[name]
                if worker is None:
                    continue
                note = None
                if not worker.alive:  # the previous case killed it: a new one goes on
                    note = worker.idle_death()
                    if note:  # nothing recorded it yet: say so, and on the next row
                        yield {"type": "warning", "backend": name, "message": note}
                    worker = workers[name] = yield from _start(job, timeout)
                    if worker is None:
                        continue
                yield {"type": "start", "backend": name, "index": index}
                row = worker.run(index, extra)
                if note:
                    row = {**row, "notes": [*row.get("notes", []), note]}
                yield {"type": "row", "backend": name, "index": index, "row": row}
        finished = True
    finally:  # interrupted (Ctrl-C, SIGTERM): a worker busy with a case cannot read "quit"
        for worker in workers.values():
            if worker is not None:
                worker.close(grace=10.0 if finished else 0.5)


def _start(job: dict[str, Any], timeout: float):
    worker = Worker(job, timeout)
    if worker.info is None:
        yield {"type": "fatal", "backend": job["backend"], "reason": worker.failure}
        return None
    yield {"type": "info", "backend": job["backend"], "info": worker.info}
    return worker
