"""A tiny graph's compiled run as its kernels back to back, through buffers it owns
(issue 16: mlp, autoencoder, LeNet at batch 1 are a handful of ~1 µs oneDNN calls, and
each prepared call's Python, ~1 µs, doubled them).

Where every step of a one-input, one-output float32 graph is a prepared call whose fast
path carries a ``link`` (``backends/cpu/chain_links.py``: the call as a write from one
address into another; an int8 graph's table lookups are host steps carrying one), an
Identity, or a view, and the links' layouts meet end to end,
``chain_body`` gives the body of ``Executor._entry`` after the feed screen: the feed read
in place (copied first only when it is not C-contiguous and aligned), each link writing
into a buffer the chain owns (its address bound once), the last one into the result: the
previous run's array again where nothing but the chain holds it (``sys.getrefcount``, the
rule of ``out_factory``), else a fresh one. No output check, factory or address look-up
per step; intermediates are never handed out, and no array the caller holds is written
by a later run. The chain is taken only after it reproduces, bit for bit, the plan's result of the
run it was built in (``Executor``), and only while its buffers take at most
``CHAIN_MAX_BYTES``: a bigger graph's steps cost far more than their Python.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

CHAIN_MAX_BYTES = 1 << 20
_F32 = np.dtype(np.float32)


def chain_body(executor: Any) -> tuple[list[str], dict[str, Any]] | None:
    """Source lines (reading the screened feed ``x0``, returning the outputs) and their
    names, or None where the graph is not such a chain."""
    plan, graph = executor.plan, executor.graph
    if plan is None or len(graph.inputs) != 1 or len(graph.output_names) != 1:
        return None
    feed = graph.inputs[0]
    if np.dtype(feed.dtype) != _F32 or feed.name in executor._host_feeds:
        return None
    # value -> (memory, kind); memory: -1 the feed, else an index into ``sizes``
    where: dict[str, tuple[int, Any]] = {feed.name: (-1, ("plain", tuple(feed.shape)))}
    sizes: list[int] = []
    calls: list[tuple[Any, Any, int, int]] = []  # (prepared call, link, src, dst memory)
    for step in plan.chain_steps:
        if step is None or step[0] not in ("call", "alias") or step[-2] not in where:
            return None
        if step[0] == "alias":
            where[step[2]] = where[step[1]]
            continue
        fn, src, dst = step[1:]
        impl = getattr(fn, "impl", None)  # a prepared call's, else a host step itself
        link = getattr(impl[0] if impl else fn, "link", None)
        memory, kind = where[src]
        if link is None or not link.same_kind(kind, link.src):
            return None
        if link.into is None:  # a view: the same memory as another shape
            where[dst] = (memory, link.dst)
            continue
        sizes.append(link.nbytes)
        where[dst] = (len(sizes) - 1, link.dst)
        calls.append((fn, link, memory, len(sizes) - 1))
    name = graph.output_names[0]
    out_shape = tuple(executor.shapes[name])
    memory, kind = where.get(name, (-1, None))
    if calls and kind is not None:  # channels-last float32 of one channel: plain bytes
        kind = calls[0][1].as_plain(kind)
    if memory < 0 or kind != ("plain", out_shape) or not calls or min(sizes) <= 0 \
            or sizes[memory] != 4 * int(np.prod(out_shape)) \
            or sum(sizes) - sizes[memory] > CHAIN_MAX_BYTES:
        return None
    return _source(executor, calls, sizes, memory, out_shape)


def _source(executor: Any, calls: list[tuple[Any, Any, int, int]], sizes: list[int],
            out: int, out_shape: tuple[int, ...]) -> tuple[list[str], dict[str, Any]]:
    be = executor.backend
    address = calls[0][1].address
    buffers = [None if i == out else be.empty((n,), np.uint8) for i, n in enumerate(sizes)]
    ns: dict[str, Any] = {"_addr": address, "_empty": np.empty, "_f32": _F32,
                          "_up": be.asarray_feed, "OS": out_shape, "_kept": buffers,
                          "_rc": sys.getrefcount, "O": [None], "AO": [0]}

    def where(memory: int) -> str:
        if memory < 0:
            return "a0"
        if memory == out:
            return "ao"
        ns[f"B{memory}"] = address(buffers[memory])
        return f"B{memory}"

    lines = ["    t0 = _pc()", "    fl = x0.flags",
             "    if not (fl.c_contiguous and fl.aligned):", "        x0 = _up(x0)",
             "    a0 = _addr(x0)",
             # the last result again where nothing but ``O`` holds it (refcount: ``O``
             # and the argument, as ``out_factory`` tests), else a new one
             "    if _rc(O[0]) != 2:", "        O[0] = _empty(OS, _f32)",
             "        AO[0] = _addr(O[0])", "    o, ao = O[0], AO[0]", "    t1 = _pc()"]
    entered = None
    for i, (fn, link, src, dst) in enumerate(calls):
        key = getattr(fn, "enter_key", None)  # None: a host step's link sets no threads
        if key is not None and key != entered:
            ns[f"E{i}"], entered = fn.enter, key
            lines.append(f"    E{i}()")
        bind = getattr(link, "bind", None)
        if bind is not None and src >= 0 and dst >= 0 and out not in (src, dst):
            for j, raw in enumerate(bind(buffers[src], buffers[dst])):
                ns[f"X{i}_{j}"] = raw  # every argument bound: no address passed
                if getattr(raw, "check", None) is None:  # no status to test (a lookup)
                    lines.append(f"    X{i}_{j}()")
                    continue
                lines += [f"    _s = X{i}_{j}()",
                          f"    if _s: X{i}_{j}.check(_s, 'primitive_execute')"]
            continue
        ns[f"L{i}"] = link.into
        lines.append(f"    L{i}({where(src)}, {where(dst)})")
    lines += ["    t2 = _pc()", "    _ex._record(t0, t1, t2, t2)", "    return [o]"]
    return lines, ns


def same_results(got: list[np.ndarray] | None, want: list[np.ndarray]) -> bool:
    """Bit for bit: the shapes, dtypes and bytes of every output."""
    return got is not None and len(got) == len(want) and all(
        g.shape == w.shape and g.dtype == w.dtype and g.tobytes() == w.tobytes()
        for g, w in zip(got, want, strict=True))
