"""The cpu backend's prepared kernel calls (``Backend._prepared_kernel``, replayed by
``hwbench.graph.plan``): the thread count a problem runs with is chosen once, when the
plan is built, and libgomp is told only when it changes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def prepared_call(backend: Any, problem: Any, kernel: Callable) -> Callable:
    """``kernel(problem, ...)`` as ``_begin_kernel`` would start it, less the checks the
    traced run made: ``_threads_now`` set (the primitive cache's key) and libgomp's
    count set where it differs."""
    threads = backend.threads_for(problem)
    set_threads = backend.dnnl.set_num_threads

    def call(*args: Any, **kwargs: Any) -> Any:
        backend._threads_now = threads
        set_threads(threads)
        return kernel(problem, *args, **kwargs)
    return call
