"""A small graph's compiled run as a recorded command list (issue 16: ``opencl`` on PoCL).

On PoCL a replayed plan of a tiny graph (mlp, LeNet at batch 1) spends its time in two
things that have nothing to do with its kernels: the Python of each op (output arrays
from the pool, argument packing, ~10 µs a node) and host synchronisations (a blocking
upload of each feed and a blocking read of each output; each one wakes PoCL's worker
threads: ~35 µs on the default ``pthread`` device). Here the plan is run once more with
every command it enqueues recorded (``Program.launch`` reports its kernels, and
``pyopencl.enqueue_copy``/``enqueue_fill_buffer`` are watched while it runs); each
later run is then: the feeds written into the recorded input buffers (not blocking),
the recorded kernels enqueued again (each with its own kernel object, its arguments set
once), and one blocking read per output, the last one the run's only wait.

Taken only where that is the same computation for every feed: no feed stays on the
host (a Gather's token ids), nothing is read back to the host while the plan runs (a
host step between kernels), every output is a contiguous device array, and the buffers
the commands touch (held for the Session's life: none goes back to the pool) take at
most ``RECORD_MAX_BYTES``. And only after it reproduces the plan's results bit for bit,
for the run's feeds and for the same feeds reversed (a feed-dependent command missed by
the recording would show there).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np

from hwbench.backends.opencl.compiler import scalar_arg_dtypes

RECORD_MAX_BYTES = 64 << 20  # buffers a recorded run holds for the Session's life
_LOCK = threading.Lock()  # the pyopencl functions are watched by one recording at a time


class HostStep(Exception):
    """The plan read device data back to the host while it was recorded."""


class Recorder:
    """The commands one plan run enqueued on one queue, as replayable calls."""

    def __init__(self, device: Any) -> None:
        self.device = device
        self.cl = device.cl
        self.calls: list[tuple[Any, tuple[Any, ...], dict[str, Any]]] = []
        self.held: list[Any] = []  # every argument a recorded call uses: kept alive
        self.failed: str | None = None

    def kernel(self, program: Any, name: str, global_size: tuple[int, ...],
               local: tuple[int, ...], args: tuple[Any, ...]) -> None:
        """A launch, with a kernel object of its own (its arguments set once here)."""
        kernel = self.cl.Kernel(program._program, name)
        kernel.set_scalar_arg_dtypes(scalar_arg_dtypes(self.cl, kernel))
        kernel.set_args(*args)
        self.held.append(args)
        self.calls.append((self.cl.enqueue_nd_range_kernel,
                           (self.device.queue, kernel, global_size, local), {}))

    @contextlib.contextmanager
    def watching(self) -> Iterator[None]:
        """``pyopencl.enqueue_copy``/``enqueue_fill_buffer`` recorded (uploads of host
        data copied first: constants, with no feed on the host), a read to the host
        refused (``HostStep``), for the duration."""
        cl = self.cl
        copy, fill = cl.enqueue_copy, cl.enqueue_fill_buffer

        def watched_copy(queue: Any, dest: Any, src: Any, **kwargs: Any) -> Any:
            if not isinstance(dest, cl.MemoryObjectHolder):
                raise HostStep("a read to the host")
            kwargs.pop("wait_for", None)
            replayed = dict(kwargs)
            if not isinstance(src, cl.MemoryObjectHolder):
                src = np.array(src, copy=True)
                replayed["is_blocking"] = False
            self.held.append((dest, src))
            self.calls.append((copy, (queue, dest, src), replayed))
            return copy(queue, dest, src, **kwargs)

        def watched_fill(queue: Any, mem: Any, pattern: Any, offset: int, size: int,
                         **kwargs: Any) -> Any:
            kwargs.pop("wait_for", None)
            self.held.append((mem, pattern))
            self.calls.append((fill, (queue, mem, pattern, offset, size), kwargs))
            return fill(queue, mem, pattern, offset, size, **kwargs)

        with _LOCK:
            cl.enqueue_copy, cl.enqueue_fill_buffer = watched_copy, watched_fill
            self.device.recorder = self
            try:
                yield
            finally:
                cl.enqueue_copy, cl.enqueue_fill_buffer = copy, fill
                self.device.recorder = None

    def held_bytes(self) -> int:
        """Bytes of the distinct device buffers the recorded calls use."""
        seen: dict[int, int] = {}
        for group in self.held:
            for item in group:
                if isinstance(item, self.cl.MemoryObjectHolder):
                    seen[item.int_ptr] = int(item.size)
        return sum(seen.values())


def recorded_body(backend: Any, executor: Any, feeds: dict[str, np.ndarray]
                  ) -> tuple[list[str], dict[str, Any]] | None:
    """``Executor._compile_entry``'s body for ``executor``'s plan as a recorded command
    list on ``backend`` (an ``OpenclBackend``), or None where it does not apply."""
    plan, graph = executor.plan, executor.graph
    specs = executor._feed_specs
    if plan is None or any(spec[4] for spec in specs) or not specs:
        return None
    hosts = [np.ascontiguousarray(feeds[spec[0]]) for spec in specs]
    inputs = [backend.asarray_feed(x) for x in hosts]
    in_bufs = [x.data for x in inputs]
    in_bytes = sum(int(x.nbytes) for x in inputs)
    recorder = Recorder(backend.dev)
    try:
        with recorder.watching():
            values = plan._fn(list(inputs))  # (the plan empties the list it is given)
    except HostStep:
        return None
    if len(values) != len(graph.output_names) or not all(
            backend._is_device_array(v) and v.flags.c_contiguous for v in values):
        return None
    if recorder.held_bytes() + in_bytes > RECORD_MAX_BYTES:
        return None
    calls = recorder.calls
    cl, queue = backend.dev.cl, backend.dev.queue
    copy = cl.enqueue_copy
    outs = [(v.data, v.offset, tuple(v.shape), np.dtype(v.dtype)) for v in values]
    # the values are dropped: their buffers stay in ``outs``; an output that is an input
    # or another output is read from the same buffer again

    def write(*xs: np.ndarray) -> None:
        for buf, x in zip(in_bufs, xs, strict=True):
            if not x.flags.c_contiguous:
                x = np.ascontiguousarray(x)
            copy(queue, buf, x, is_blocking=False)

    def run() -> None:
        for fn, args, kwargs in calls:
            fn(*args, **kwargs)

    if not outs or outs[-1][3].itemsize * int(np.prod(outs[-1][2])) == 0:
        return None  # the last read must be the one wait: an empty output has none
    last = len(outs) - 1

    def read() -> list[np.ndarray]:
        results = []
        for i, (buf, offset, shape, dtype) in enumerate(outs):
            host = np.empty(shape, dtype)
            if host.nbytes:
                copy(queue, host, buf, src_offset=offset, is_blocking=i == last)
            results.append(host)
        return results

    names = ", ".join(f"x{i}" for i in range(len(specs)))
    lines = ["    t0 = _pc()", f"    _W({names})", "    t1 = _pc()", "    _R()",
             "    t2 = _pc()", "    results = _O()", "    _ex._record(t0, t1, t2, _pc())",
             "    return results"]
    return lines, {"_W": write, "_R": run, "_O": read, "_recorded": (recorder, inputs)}
