"""Worker processes that die with the process that started them.

A benchmark's workers (``hwbench run``'s per-backend workers, a local sweep's pool) must
never outlive their parent: killed with SIGKILL, or with SIGTERM (which ends a Python
process without running its ``finally`` blocks), a parent once left its sweep workers
computing for minutes, loading a machine that the next benchmark then measured.

One mechanism for every worker, set up by the child as it starts (``die_with_parent``):
  - Linux: ``prctl(PR_SET_PDEATHSIG, SIGKILL)`` through ctypes; the kernel kills the
    child the moment its parent dies, even while it is inside native code. The signal
    follows the parent *thread* that started the child, so the parent asks for it only
    when it starts workers from its main thread (``child_env`` / ``parent_settings``).
  - elsewhere, or from another thread: a daemon thread that polls ``os.getppid()`` and
    ends the process when the parent is gone (at most ``POLL_SECONDS`` later).
Either way a child whose parent died before it got here exits at once.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import threading
import time

PR_SET_PDEATHSIG = 1  # linux/prctl.h
POLL_SECONDS = 0.5
PARENT_ENV = "HWBENCH_PARENT_PID"
PDEATHSIG_ENV = "HWBENCH_PARENT_PDEATHSIG"
EXIT_STATUS = 70  # what a watchdog-ended child exits with (EX_SOFTWARE)


def parent_settings() -> tuple[int, bool]:
    """(this process's pid, whether children it starts now may use PR_SET_PDEATHSIG:
    only from the main thread, which lives as long as the process)."""
    return os.getpid(), threading.current_thread() is threading.main_thread()


def child_env(env: dict[str, str]) -> dict[str, str]:
    """``env`` plus what ``die_with_parent_from_env`` reads in the child."""
    pid, pdeathsig = parent_settings()
    return {**env, PARENT_ENV: str(pid), PDEATHSIG_ENV: "1" if pdeathsig else "0"}


def _set_pdeathsig() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _watch(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(POLL_SECONDS)
    os._exit(EXIT_STATUS)


def die_with_parent(parent_pid: int, pdeathsig: bool = True) -> str:
    """Make this process end when ``parent_pid`` (its parent) does; returns how:
    "pdeathsig" or "watchdog". Call it first thing in a child."""
    how = "pdeathsig" if pdeathsig and _set_pdeathsig() else "watchdog"
    if os.getppid() != parent_pid:  # the parent died before the lifeline was set
        os._exit(EXIT_STATUS)
    if how == "watchdog":
        threading.Thread(target=_watch, args=(parent_pid,), name="hwbench-lifeline",
                         daemon=True).start()
    return how


@contextlib.contextmanager
def stop_on_sigterm():
    """Within: SIGTERM raises ``KeyboardInterrupt``, so a run or sweep stops as on Ctrl-C
    (workers closed, what was measured saved and marked interrupted) instead of ending
    on the spot. Off the main thread, where signals cannot be handled, it does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)


def die_with_parent_from_env() -> str | None:
    """``die_with_parent`` with what ``child_env`` put in the environment (None: this
    process was not started by an hwbench parent that asked for it)."""
    pid = os.environ.get(PARENT_ENV, "")
    if not pid.isdigit():
        return None
    return die_with_parent(int(pid), os.environ.get(PDEATHSIG_ENV) == "1")
