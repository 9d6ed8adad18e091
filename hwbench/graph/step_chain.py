"""A small graph of several inputs and outputs run as its calls back to back over memory
fixed at build time (issue 16: the translator's decoder step, one ``Session.run`` of 17
ops a generated character, ~1 µs of Python around each ~1 µs call).

``chain.chain_body`` serves one-input, one-output graphs. Here, where every step of the
compiled plan is one call (a prepared kernel's or a host step's) whose fast path can be
fixed (``fixed_run``), ``step_body`` gives the body of ``Executor._entry`` after the
feed screen: each feed copied into a buffer of its own (as ``asarray_feed`` copies it),
then each step as a call of no arguments that writes its result where the next step
reads it (NumPy's ufuncs with ``out=``, oneDNN primitives with every argument bound), a
view where a step is one, and a copy of each output, so no array a caller holds is
ever written by a later run and no intermediate is handed out.

A fast call offers its fixed form as ``call.fixed(args, kwargs)`` -> (a call of no
arguments, its result's arrays) reading ``args`` in place, or None (a call with a
``check`` attribute is a raw ``dnnl_primitive_execute`` returning its status); a one-input
``Link`` (``cpu/chain_links.py``) serves as one too. The chain is built on the plan's
first replay, from that run's feeds, and taken only where it gives that run's results
bit for bit (``Executor._chain_next``), and while its buffers take at most
``STEP_CHAIN_MAX_BYTES`` and its outputs ``STEP_CHAIN_MAX_OUTPUT_BYTES``. An error
inside it (an out-of-range token id) hands the run to the plan's checked path, which
raises as the normal path does; so does a step whose fixed form is ``guarded`` and
returns True (an RNN fed other sequence lengths than those it was traced with).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np

from hwbench.graph.plan import _RUNTIME  # a feed's or a step result's local in the plan

STEP_CHAIN_MAX_BYTES = 1 << 20
# Outputs are copied out of the chain's memory each run: only small ones (a decoder
# step's logits and states, the translator's encoder states and keys at batch 8),
# whose copies cost less than the Python the chain saves.
STEP_CHAIN_MAX_OUTPUT_BYTES = 1 << 17
_ndarray = np.ndarray
_F32 = np.dtype(np.float32)


def fixed_run(fn: Any, args: tuple, kwargs: dict,
              empty: Callable[[tuple[int, ...], Any], np.ndarray], constant_rest: bool
              ) -> tuple[Callable[[], Any] | None, Any] | None:
    """(a call of no arguments writing ``fn(*args, **kwargs)``'s result into arrays
    fixed here, that result's arrays) for a fast call ``fn``; the call is None for a
    view. None where ``fn`` has no fixed form for these arguments. A ``Link`` reads the
    first argument only: ``constant_rest`` says the others are the traced constants
    (weights, attributes), as ``plan._chain_call`` requires."""
    fixed = getattr(fn, "fixed", None)
    if fixed is not None:
        got = fixed(args, kwargs)
        if got is not None and hasattr(got[0], "check"):  # a raw primitive execute
            return _checked(got[0]), got[1]
        return got
    link = getattr(fn, "link", None)
    if link is None or not constant_rest or not args:
        return None
    src, dst = link.reads(args[0], link.src), link.array_of(link.dst)
    if src is None or dst is None:  # not the kind it reads; a blocked layout
        return None
    if link.into is None:
        return None, link.value_of(src.reshape(dst[0]), link.dst)
    out = empty(*dst)
    value = link.value_of(out, link.dst)  # an int8 graph's codes channels-last: held
    if link.bind is not None:
        runs = [_checked(raw) for raw in link.bind(src, out)]
        if len(runs) == 1:
            return runs[0], value

        def run_all() -> None:
            for run in runs:
                run()
        return run_all, value
    return functools.partial(link.into, link.address(src), link.address(out)), value


def _checked(raw: Any) -> Callable[[], None]:
    """A bound ``dnnl_primitive_execute`` call (``Link.bind``'s) that raises for a
    non-zero status; one without ``check`` (a table lookup) as it is."""
    check = getattr(raw, "check", None)
    if check is None:
        return raw

    def run() -> None:
        status = raw()
        if status:
            check(status, "primitive_execute")
    run.kept = raw  # type: ignore[attr-defined]
    return run


def _feed_buffers(feeds: list[np.ndarray], empty: Callable
                  ) -> tuple[list[np.ndarray], np.ndarray | None]:
    """A buffer per feed; where every floating feed is float32, theirs are 64-byte
    aligned slices of one zeroed arena (returned too), so that one ``x · x`` screens
    them all for NaN and infinity (not finite: the entry's general path decides)."""
    floats = [x for x in feeds if x.dtype.kind == "f"]
    if not floats or any(x.dtype != _F32 for x in floats):
        return [empty(x.shape, x.dtype) for x in feeds], None
    starts, end = [], 0
    for x in floats:
        starts.append(end)
        end += -(-x.size // 16) * 16  # whole 64-byte lines
    arena = empty((end,), _F32)
    arena[...] = 0.0
    slices = iter(arena[a:a + x.size].reshape(x.shape) for a, x in zip(starts, floats,
                                                                        strict=True))
    return [next(slices) if x.dtype.kind == "f" else empty(x.shape, x.dtype)
            for x in feeds], arena


def step_body(executor: Any, feeds: dict[str, np.ndarray]
              ) -> tuple[list[str], dict[str, Any]] | None:
    """Source lines (after the screen of ``x0``, ``x1``, ...) and their names, or None
    where the graph is not such a chain; ``feeds`` (screened) give the feed buffers'
    shapes and dtypes."""
    plan, graph, be = executor.plan, executor.graph, executor.backend
    if plan is None or len(plan.step_calls) != len(graph.nodes) \
            or any(s is None for s in plan.step_calls):
        return None
    empty = be.empty
    ns = plan._fn.__globals__
    env: dict[str, Any] = {}
    kept: list[Any] = []
    lines = ["    t0 = _pc()", "    try:"]
    names: dict[str, Any] = {"_kept": kept}
    buffers, arena = _feed_buffers([feeds[v.name] for v in graph.inputs], empty)
    total = sum(b.nbytes for b in buffers)
    for i, buf in enumerate(buffers):  # screened: the same dtype and shape (no cast)
        env[f"f{i}"] = names[f"F{i}"] = buf
        lines.append(f"        F{i}[...] = x{i}")  # ~0.2 µs less than np.copyto
    if arena is not None:  # one NaN screen of every float feed, as ``screened_feeds``'
        names["_screens_nan"], names["A"] = True, arena
        lines += ["        if not _isfinite(_vdot(A, A)):", "            return None"]
    lines.append("        t1 = _pc()")  # the feeds in: ``last_timings``' transfer_in_s
    entered = None
    for k, (callee, fn, args, kwargs, outs) in enumerate(plan.step_calls):
        impl = eval(callee, ns)  # noqa: S307 - the plan's own generated expression
        try:
            a = tuple(eval(e, ns, env) for e in args)  # noqa: S307
            kw = {key: eval(e, ns, env) for key, e in kwargs.items()}  # noqa: S307
        except NameError:  # a value the plan had dropped: not ours to chain
            return None
        rest = [*args[1:], *kwargs.values()]
        got = fixed_run(impl, a, kw, empty, not any(_RUNTIME.search(e) for e in rest))
        if got is None:
            return None
        run, result = got
        results = result if isinstance(result, tuple) else (result,)
        if len(results) < len(outs) or any(
                name is not None and type(getattr(value, "nhwc", value)) is not _ndarray
                for name, value in zip(outs, results, strict=False)):
            return None  # arrays, or channels-last ones (an int8 graph's: links read them)
        for name, value in zip(outs, results, strict=False):
            if name is not None:
                env[name] = value
        if run is None:
            continue
        total += sum(getattr(r, "nhwc", r).nbytes for r in results
                     if type(getattr(r, "nhwc", r)) is _ndarray)
        if fn is None:  # a host step (it may begin a kernel of its own): as the plan,
            entered = None  # the next call enters its thread count again
        elif fn.enter_key != entered:
            names[f"E{k}"], entered = fn.enter, fn.enter_key
            lines.append(f"        E{k}()")
        names[f"R{k}"] = run
        kept.append(run)
        if getattr(run, "guarded", False):  # True: not served (other lengths...)
            lines += [f"        if R{k}():", "            return None"]
        else:
            lines.append(f"        R{k}()")
    outputs = []
    for j, name in enumerate(graph.output_names):
        local = plan.output_locals.get(name)
        if local not in env or type(env[local]) is not _ndarray:
            return None
        names[f"O{j}"] = env[local]
        outputs.append(f"O{j}.copy()")
    if total > STEP_CHAIN_MAX_BYTES or sum(
            names[f"O{j}"].nbytes for j in range(len(outputs))) > STEP_CHAIN_MAX_OUTPUT_BYTES:
        return None
    lines += ["    except IndexError:", "        return None", "    t2 = _pc()",
              f"    results = [{', '.join(outputs)}]", "    _ex._record(t0, t1, t2, _pc())",
              "    return results"]
    return lines, names
