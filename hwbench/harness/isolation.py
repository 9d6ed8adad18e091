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


def run_job(job: dict[str, Any], total: int, timeout: float) -> Iterator[dict[str, Any]]:
    """Yield the worker's messages for cases ``job['start']..total-1``, surviving crashes.

    A failed case is yielded as ``{"type": "row", "index": i, "row": {"status": "error",
    ...}}`` so the caller sees exactly one row per case.
    """
    start = job.get("start", 0)
    while start < total:
        current: int | None = None
        proc = subprocess.Popen(
            [sys.executable, "-m", "hwbench.harness.worker"], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=worker_env(job["backend"], job.get("options", {}).get("threads")))
        try:
            assert proc.stdin and proc.stdout
            proc.stdin.write(json.dumps({**job, "start": start}))
            proc.stdin.close()
            selector = selectors.DefaultSelector()
            selector.register(proc.stdout, selectors.EVENT_READ)
            failure = None
            while True:
                deadline = time.monotonic() + timeout
                if not selector.select(timeout=max(0.0, deadline - time.monotonic())):
                    failure = f"no progress for {timeout:.0f} s (hang?): worker killed"
                    break
                line = proc.stdout.readline()
                if not line:
                    proc.wait(timeout=30)
                    if current is None and start < total and proc.returncode == 0:
                        return
                    err = (proc.stderr.read() if proc.stderr else "").strip().splitlines()
                    failure = (f"worker exited with status {proc.returncode}"
                               + (f": {err[-1]}" if err else ""))
                    break
                message = json.loads(line)
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
            if proc.poll() is None:
                proc.kill()
                proc.wait()
