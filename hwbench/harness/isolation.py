"""Run one backend's share of a benchmark in its own worker process.

Why a process per backend: a crash or hang in native code must cost one row, not the
run; and libraries' idle threads interfere across backends — measured here, oneDNN calls
stalled for ~8 ms at random while OpenBLAS's worker threads (from NumPy) were alive in
the same process. A worker therefore also runs NumPy's BLAS single-threaded unless NumPy
*is* the backend under test.

Protocol: the parent writes one JSON job to the worker's stdin; the worker writes JSON
lines to stdout: ``{"type": "info"}`` once, ``{"type": "start", "index": i}`` before each
case and ``{"type": "row", "index": i, "row": {...}}`` after it. If the worker dies or is
silent past the timeout, the parent records the case it was on as failed and starts a
new worker from the next case.
"""

from __future__ import annotations

import json
import os
import selectors
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

BLAS_THREAD_VARS = ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS")


def worker_env(backend: str, threads: int | None) -> dict[str, str]:
    env = dict(os.environ)
    if backend.split(":")[0] == "numpy":
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


def run_job(job: dict[str, Any], total: int, timeout: float) -> Iterator[dict[str, Any]]:
    """Yield the worker's messages for cases ``job['start']..total-1``, surviving crashes.

    A failed case is yielded as ``{"type": "row", "index": i, "row": {"status": "error",
    ...}}`` so the caller sees exactly one row per case. Lines that are not JSON (a
    library's own logging on stdout) are skipped.
    """
    start = job.get("start", 0)
    while start < total:
        current: int | None = None
        proc = subprocess.Popen(
            [sys.executable, "-m", "hwbench.harness.worker"], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=worker_env(job["backend"], job.get("options", {}).get("threads")))
        stderr_tail: list[str] = []
        assert proc.stdin and proc.stdout and proc.stderr
        drainer = threading.Thread(target=_drain, args=(proc.stderr, stderr_tail), daemon=True)
        drainer.start()
        reader = _LineReader(proc.stdout.fileno())
        try:
            proc.stdin.write(json.dumps({**job, "start": start}))
            proc.stdin.close()
            failure = None
            while True:
                line = reader.readline(timeout)
                if line is None:
                    failure = f"no progress for {timeout:.0f} s (hang?): worker killed"
                    break
                if not line:
                    proc.wait(timeout=30)
                    drainer.join(timeout=5)
                    failure = (f"worker exited with status {proc.returncode}"
                               + (f": {stderr_tail[-1]}" if stderr_tail else ""))
                    break
                try:
                    message = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if not isinstance(message, dict) or "type" not in message:
                    continue
                if message["type"] == "start":
                    current = message["index"]
                elif message["type"] == "row":
                    current = None
                    start = message["index"] + 1
                yield message
                if message["type"] in ("done", "fatal"):
                    return
            if current is None:  # died between cases or before its first one
                yield {"type": "fatal", "reason": failure}
                return
            yield {"type": "row", "index": current,
                   "row": {"backend": job["backend"], "status": "error", "reason": failure}}
            start = current + 1
        finally:
            reader.close()
            if proc.poll() is None:
                proc.kill()
                proc.wait()
