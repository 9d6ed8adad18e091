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

Taken only where that is the same computation for every feed: nothing is read back to
the host while the plan runs (a host step between kernels), every output is a
contiguous device array, and the buffers the commands touch (held for the Session's
life: none goes back to the pool), the Session's weights aside, take at most
``RECORD_MAX_BYTES``. Feeds that stay on the host (a Gather's token ids) decide what is
enqueued: such a plan is recorded once per value of them (``KeyedRuns``) where they hold
one value (a batch-1 decoder step's token id: a small vocabulary); more values, where
they are only Gather indices, once, each run making the index tables from them
(``host_feeds``: the batch-8 step). And only after it reproduces the plan's results bit
for bit, for the run's feeds and for the device feeds reversed (a feed-dependent command
missed by the recording would show there).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from typing import Any

import numpy as np

from hwbench.backends.opencl.compiler import scalar_arg_dtypes

RECORD_MAX_BYTES = 64 << 20  # buffers a recorded run holds for the Session's life
KEYED_HOST_VALUES = 1  # feeds on the host: recorded per value where they hold this many
KEYED_MAX = 64  # values recorded per plan at most
# host feeds a recording remakes each run (``host_feeds``): op -> the input they are
HOST_FED = {"Gather": 1, "LSTM": 4}
_perf_counter = time.perf_counter
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
        # Gather index tables made from host feeds (``host_feeds``), and host index
        # arrays whose table upload was not found (then no replay is built on them)
        self.derived: list[Any] = []
        self.underived: list[Any] = []

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
            if queue is not self.device.queue:  # another backend's, or another thread's
                return copy(queue, dest, src, **kwargs)
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
            if queue is not self.device.queue:
                return fill(queue, mem, pattern, offset, size, **kwargs)
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

    def held_bytes(self, skip: frozenset[int] = frozenset()) -> int:
        """Bytes of the distinct device buffers the recorded calls use, but those whose
        ``int_ptr`` is in ``skip``."""
        seen: dict[int, int] = {}
        for group in self.held:
            for item in group:
                if isinstance(item, self.cl.MemoryObjectHolder):
                    seen[item.int_ptr] = int(item.size)
        return sum(size for ptr, size in seen.items() if ptr not in skip)


def _record(backend: Any, executor: Any, hosts: list[np.ndarray]) -> tuple | None:
    """(write, run, read, kept) for one run of ``executor``'s plan recorded on ``hosts``
    (the screened feeds in input order; those that stay on the host are given to the plan
    as they are, the rest written by ``write``), or None where it does not apply."""
    plan, graph, specs = executor.plan, executor.graph, executor._feed_specs
    inputs = [x if spec[4] else backend.asarray_feed(x) for x, spec in zip(hosts, specs,
                                                                           strict=True)]
    device = [x for x, spec in zip(inputs, specs, strict=True) if not spec[4]]
    in_bufs = [x.data for x in device]
    recorder = Recorder(backend.dev)
    try:
        with recorder.watching():
            values = plan._fn(list(inputs))  # (the plan empties the list it is given)
    except Exception:  # noqa: BLE001 - a host step (HostStep), or what recording alone
        return None    # met: the plan's replay runs (and raises what is real again)
    if len(values) != len(graph.output_names) or not values or not all(
            backend._is_device_array(v) and v.flags.c_contiguous for v in values):
        return None
    # the Session's weights are held anyway: only what the recording keeps from the pool
    # counts (Inception v1 at batch 1: 67 MB in all, 27 MB of them weights)
    weights = frozenset(w.data.int_ptr for w in executor._weights.values()
                        if backend._is_device_array(w) and w.data is not None)  # (empty)
    if (recorder.held_bytes(weights) + sum(int(x.nbytes) for x in device)
            > RECORD_MAX_BYTES):
        return None
    calls = recorder.calls
    queue, copy = backend.dev.queue, backend.dev.cl.enqueue_copy
    # the values are dropped: their buffers stay in ``outs``; an output that is an input
    # or another output is read from the same buffer again
    outs = [(v.data, v.offset, tuple(v.shape), np.dtype(v.dtype)) for v in values]
    if outs[-1][3].itemsize * int(np.prod(outs[-1][2])) == 0:
        return None  # the last read must be the one wait: an empty output has none
    last = len(outs) - 1

    def write(*xs: np.ndarray) -> None:
        for buf, x in zip(in_bufs, xs, strict=True):
            if not x.flags.c_contiguous:
                x = np.ascontiguousarray(x)
            copy(queue, buf, x, is_blocking=False)  # (the run's last read waits for it)

    def run() -> None:
        for fn, args, kwargs in calls:
            fn(*args, **kwargs)

    def read() -> list[np.ndarray]:
        results = []
        for i, (buf, offset, shape, dtype) in enumerate(outs):
            host = np.empty(shape, dtype)
            if host.nbytes:
                copy(queue, host, buf, src_offset=offset, is_blocking=i == last)
            results.append(host)
        return results

    return write, run, read, (recorder, device, recorder.held_bytes())


def _derived_body(backend: Any, executor: Any, hosts: list[np.ndarray],
                  on_host: list[int]) -> tuple | None:
    """(write, run, read, kept) as ``_record``'s, for a plan whose feeds on the host are
    only Gather indices (``host_feeds``): ``write`` takes every feed, makes each
    Gather's table from its run's indices and returns False where one cannot be (the
    plan runs that one), else writes the device feeds. None where it does not apply."""
    weights = sum(int(w.nbytes) for w in executor.graph.initializers.values())
    if weights > RECORD_MAX_BYTES:  # (BERT's token ids) it could never be held: no try
        return None
    consumers = executor.graph.consumers()
    for i in on_host:  # read as Gather indices or recurrent sequence lengths only
        name = executor._feed_specs[i][0]
        if not all(n.inputs.count(name) == 1 and n.inputs.index(name) == HOST_FED.get(
                n.op_type) for n in consumers.get(name, [])):
            return None
    made = _record(backend, executor, hosts)
    if made is None:
        return None
    write_device, run, read, kept = made
    recorder = kept[0]
    slots = {id(hosts[i]): i for i in on_host}
    derived = [(slots.get(id(d.source)), d) for d in recorder.derived]
    fed = {i for i, _ in derived}
    if recorder.underived or None in fed or fed != set(on_host):
        return None  # a host feed used other than as Gather indices, or not at all

    def write(*xs: np.ndarray) -> bool:
        for i, table in derived:
            if not table.refill(xs[i]):
                return False
        write_device(*(x for i, x in enumerate(xs) if i not in on_host))
        return True

    return write, run, read, kept


class KeyedRuns:
    """Recorded runs of a plan with feeds on the host (a batch-1 decoder step's token id),
    one per value of those feeds: what the plan enqueues depends on them (a Gather's
    indices become its tables), on nothing else. Built on a value's first run, checked
    against the plan bit for bit (those feeds, and the device feeds reversed); at most
    ``KEYED_MAX`` values and ``RECORD_MAX_BYTES`` in all; any other run returns None (the
    plan's replay runs it)."""

    def __init__(self, backend: Any, executor: Any, on_host: list[int]) -> None:
        self.backend, self.executor, self.on_host = backend, executor, on_host
        self.names = [spec[0] for spec in executor._feed_specs]
        self.runs: dict[tuple[bytes, ...], tuple] = {}
        self.refused: set[tuple[bytes, ...]] = set()
        self.kept: list[Any] = []  # each run's recorder and input buffers
        self.held = 0

    def __call__(self, *xs: np.ndarray) -> list[np.ndarray] | None:
        key = tuple(xs[i].tobytes() for i in self.on_host)
        made = self.runs.get(key)
        if made is None:
            made = self._build(list(xs), key)
            if made is None:
                return None
        write, run, read = made
        t0 = _perf_counter()
        write(*(x for i, x in enumerate(xs) if i not in self.on_host))
        t1 = _perf_counter()
        run()
        t2 = _perf_counter()
        results = read()
        self.executor._record(t0, t1, t2, _perf_counter())
        return results

    def _build(self, xs: list[np.ndarray], key: tuple[bytes, ...]) -> tuple | None:
        if key in self.refused or len(self.runs) >= KEYED_MAX:
            return None
        ex = self.executor
        hosts = [np.ascontiguousarray(x) for x in xs]
        made = _record(self.backend, ex, hosts)
        if made is None or self.held + made[3][2] > RECORD_MAX_BYTES:
            if len(self.refused) < KEYED_MAX:
                self.refused.add(key)
            return None
        write, run, read, kept = made
        other = [x if i in self.on_host else
                 np.ascontiguousarray(x.reshape(-1)[::-1]).reshape(x.shape)
                 for i, x in enumerate(hosts)]
        times, sums = ex._times, list(ex._sums)
        ok = True
        for feeds in (hosts, other):
            device = [x for i, x in enumerate(feeds) if i not in self.on_host]
            write(*device)
            run()
            got = read()
            want = ex._plain_entry(dict(zip(self.names, feeds, strict=True)))
            ok = ok and want is not None and len(got) == len(want) and all(
                g.dtype == w.dtype and g.shape == w.shape and g.tobytes() == w.tobytes()
                for g, w in zip(got, want, strict=True))
        ex._times, ex._sums = times, sums
        if not ok:
            self.refused.add(key)
            return None
        self.held += kept[2]
        self.kept.append(kept)
        self.runs[key] = (write, run, read)
        return write, run, read


def recorded_body(backend: Any, executor: Any, feeds: dict[str, np.ndarray]
                  ) -> tuple[list[str], dict[str, Any]] | None:
    """``Executor._compile_entry``'s body for ``executor``'s plan as a recorded command
    list on ``backend`` (an ``OpenclBackend``), or None where it does not apply: feeds
    that stay on the host are recorded per value where they hold ``KEYED_HOST_VALUES``
    values at most (``KeyedRuns``), else once where they are only Gather indices
    (``_derived_body``: each run's index tables made from them)."""
    specs = executor._feed_specs
    if executor.plan is None or not specs:
        return None
    names = ", ".join(f"x{i}" for i in range(len(specs)))
    on_host = [i for i, spec in enumerate(specs) if spec[4]]
    hosts = [np.ascontiguousarray(feeds[s[0]]) for s in specs]
    if on_host and sum(int(np.prod(specs[i][2])) for i in on_host) <= KEYED_HOST_VALUES:
        keyed = KeyedRuns(backend, executor, on_host)  # no host work per run at all
        return [f"    return _D({names})"], {"_D": keyed}
    made = _derived_body(backend, executor, hosts, on_host) if on_host else _record(
        backend, executor, hosts)
    if made is None:
        return None
    write, run, read, kept = made
    call = f"    if not _W({names}):\n        return None" if on_host else f"    _W({names})"
    lines = ["    t0 = _pc()", call, "    t1 = _pc()", "    _R()",
             "    t2 = _pc()", "    results = _O()", "    _ex._record(t0, t1, t2, _pc())",
             "    return results"]
    return lines, {"_W": write, "_R": run, "_O": read, "_recorded": kept}
