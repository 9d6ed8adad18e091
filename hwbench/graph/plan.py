"""A compiled run of an ``Executor``: the first run traced, every later one replayed.

Shapes are static, so every argument check a backend kernel makes (``spec.check_*``,
``_check_foreign``, the memory reservation) gives the same answer on every run. The
first run goes through the normal path with the backend instrumented (``_Recorder``);
a node whose op function made exactly one kernel call, on exactly the node's inputs
(none of them a run-time value at a host position, whose checks read values: Gather's
indices, run-time scales), is then replayed as a direct call of the backend's private
kernel (and its unfused epilogue kernels) with the problems the checks settled
(``Backend._prepared_kernel`` where a backend has one, e.g. the cpu backend's thread
count). A node whose checks read a run-time value may be replayed by the backend's
``_prepared_step`` (the cpu backend's Gather: ``np.take``'s own bounds check; an RNN
on its traced sequence lengths). Every
other node replays its op function as the normal path does. The whole graph becomes
one generated Python function over local variables: no dict look-ups per value,
values dropped at the same point as the normal path.

What stays per run: the feeds are screened (names, dtypes, shapes, NaN) as in
``Executor.run``; a changed feed shape is refused there, naming the input (shapes are
the graph's, fixed at load), and each feed is copied (``Backend.asarray_feed``).
Kernels still allocate their outputs, so arrays returned to the user are never written
by a later run. With ``check_finite`` on, no kernel call
is prepared (each one's NaN screen stays).
"""

from __future__ import annotations

import functools
import inspect
import re
import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from hwbench.errors import ArgumentError

_ndarray = np.ndarray
# Methods whose instrumented copy would only slow the traced run (never kernels).
_NOT_TRACED = frozenset({"_owns", "_foreign_message", "_unsupported", "memory_budget",
                         "allocation_limit", "require_bytes", "_all_finite",
                         "_prepared_step"})


def _is_problem(x: Any) -> bool:
    """A checked kernel problem (``hwbench.kernels``' ``...Problem`` records)."""
    return type(x).__module__.startswith("hwbench.kernels") and hasattr(x, "output_bytes")


class _Call:
    """One private kernel call seen while tracing: its name, problem and arguments."""

    def __init__(self, op: str, name: str, problem: Any, args: tuple, kwargs: dict) -> None:
        self.op, self.name, self.problem = op, name, problem
        self.args, self.kwargs = args, kwargs
        self.result: Any = None


class _Recorder:
    """Instance-level wrappers around a backend's methods for one traced run: which
    methods each node's op function called directly (depth 0), the kernel each public
    call began (``_begin_kernel(op, problem)``) and the private calls it made with a
    checked problem as their first argument (depth 1: the kernel, and the epilogue
    kernels of a backend that does not fuse them)."""

    def __init__(self, backend: Any) -> None:
        self.backend = backend
        self.depth = 0
        self.active = True
        self.thread = threading.get_ident()  # only the tracing thread's calls count
        self.names: list[str] = []

    def install(self) -> None:
        cls = type(self.backend)
        for name in dir(cls):
            if name.startswith("__") or name in _NOT_TRACED:
                continue
            if not inspect.isfunction(inspect.getattr_static(cls, name, None)):
                continue
            setattr(self.backend, name, self._wrap(name, getattr(self.backend, name)))
            self.names.append(name)

    def remove(self) -> None:
        self.active = False  # a wrapper something kept during the trace: a plain call
        for name in self.names:
            self.backend.__dict__.pop(name, None)
        self.names = []

    def start_step(self) -> None:
        self.top: list[str] = []
        self.begun: list[tuple[str, Any]] = []
        self.calls: list[_Call] = []

    def _wrap(self, name: str, method: Callable) -> Callable:
        def traced(*args: Any, **kwargs: Any) -> Any:
            if not self.active or threading.get_ident() != self.thread:
                return method(*args, **kwargs)  # after the trace, or another thread
            depth = self.depth
            call = None
            if depth == 0:
                self.top.append(name)
            elif depth == 1:
                if name == "_begin_kernel":
                    self.begun.append((args[0], args[1]))
                elif self.begun and args and _is_problem(args[0]):
                    call = _Call(self.begun[-1][0], name, args[0], args[1:], kwargs)
                    self.calls.append(call)
            self.depth = depth + 1
            try:
                result = method(*args, **kwargs)
            finally:
                self.depth = depth
            if call is not None:
                call.result = result
            return result
        return traced


def step_host_inputs(step: Any) -> tuple[int, ...]:
    """The input positions whose values the op's checks may read (``OpDef.host_inputs``)."""
    from hwbench.graph.ops import OP_DEFS

    return OP_DEFS.of(step.node).host_inputs


def _is_array(x: Any) -> bool:
    return hasattr(x, "shape") and hasattr(x, "dtype")


def _default_prepared(backend: Any, op: str, problem: Any, kernel: Callable) -> Callable:
    """The call replayed for a checked kernel on a backend without ``_prepared_kernel``:
    the private kernel with its problem bound; a backend that overrides
    ``_begin_kernel`` (per-call state) gets it called first."""
    from hwbench.backends.base import Backend

    if type(backend)._begin_kernel is Backend._begin_kernel:
        return functools.partial(kernel, problem)
    begin = backend._begin_kernel

    def call(*args: Any, **kwargs: Any) -> Any:
        begin(op, problem)
        return kernel(problem, *args, **kwargs)
    return call


def _step_threads(backend: Any, recipes: list) -> list[int | None]:
    """Per step, the thread count a backend with ``_plan_threads`` chooses for the
    kernel it begins, knowing the plan's order (the cpu backend's
    ``thread_policy.plan_threads``), else None (``_prepared_kernel`` decides alone)."""
    problems = [c[0].problem if isinstance(c, list) and c and c[0] is not None else None
                for c in recipes]
    choose = getattr(backend, "_plan_threads", None)
    return list(choose(problems)) if choose is not None else [None] * len(recipes)


def _dying(parts: list[str], names: dict[str, str], free: list[str]) -> tuple[int, ...]:
    """Positions of a call's arguments (expressions ``parts``) whose values the plan
    drops after the call and passes once: the call may reuse their memory
    (``cpu/binary_in_place.py``, which still checks nothing else holds it)."""
    gone = {names[n] for n in free if names.get(n, "").startswith("v")}
    args = [a for a in parts if "=" not in a.split("[", 1)[0]]
    return tuple(i for i, a in enumerate(args) if a in gone and parts.count(a) == 1)


class Plan:
    """The replay of one executor's graph (build it from a traced run: ``Plan.trace``)."""

    def __init__(self, executor: Any) -> None:
        self.executor = executor
        self.prepared_steps = 0  # nodes replayed as one prepared kernel call
        self._tuples: set[int] = set()  # ``_host_step`` calls returning tuples
        self._fn: Callable | None = None
        self.source = ""
        # Per step, for ``hwbench.graph.chain``: ("call", prepared call, input, output) for
        # one prepared call of one run-time input (its first argument), ("alias", input,
        # output) for an Identity, None for anything else.
        self.chain_steps: list[tuple | None] = []
        # Per step, for ``hwbench.graph.step_chain``: (callee expression, prepared call or
        # None, argument expressions, keyword expressions, output locals by position, None
        # for an unnamed one) of a step replayed as one call, None for anything else.
        self.step_calls: list[tuple | None] = []
        self.output_locals: dict[str, str] = {}  # graph output -> its local in the replay

    # -- the traced run ------------------------------------------------------------------
    def trace(self, env: dict[str, Any]) -> dict[str, Any]:
        """Run every node once on ``env`` (weights, params and uploaded feeds; the normal
        path's loop, values dropped at the same point), record how each can be replayed,
        build the replay function; returns the graph outputs' values."""
        ex = self.executor
        be = ex.backend
        graph = ex.graph
        recipes: list[list[_Call] | None] = []
        recorder = _Recorder(be)
        recorder.install()
        try:
            for step, free in zip(ex._steps, ex._free_after, strict=True):
                args = [env[n] if n in env else None for n in step.node.inputs]
                recorder.start_step()
                out = step.fn(be, args, step)
                recipes.append(self._recipe(recorder, step, args, out)
                               or self._host_step(recorder, step, args, out))
                bind_outputs(env, step.node.outputs, out, free)
        finally:
            recorder.remove()
        self._compile(recipes)
        return {n: env[n] for n in graph.output_names if n in env}

    def _recipe(self, rec: _Recorder, step: Any, args: list[Any],
                out: Any) -> list[_Call] | None:
        """The step's kernel calls, if replaying them alone is exactly the op function:
        one public call whose private calls start with the problem it checked, each
        later one reading only the node's inputs and earlier results, the last one's
        result the node's output, and every run-time input read as it is."""
        be, ex = self.executor.backend, self.executor
        calls = rec.calls
        if be.check_finite or len(rec.top) != 1 or len(rec.begun) != 1 or not calls:
            return None
        if calls[0].problem is not rec.begun[0][1] or calls[-1].result is not out:
            return None
        runtime = [i for i, n in enumerate(step.node.inputs)
                   if n and n not in ex._weights and n not in ex._params]
        if any(i in step_host_inputs(step) for i in runtime):
            return None  # its checks read the values (Gather's indices, run-time scales)
        known = {id(a): ("in", i) for i, a in reversed(list(enumerate(args))) if a is not None}
        seen = set()
        for k, call in enumerate(calls):
            for a in (*call.args, *call.kwargs.values()):
                for item in (a if isinstance(a, (list, tuple)) else (a,)):
                    seen.add(id(item))
                    if k and _is_array(item) and id(item) not in known:
                        return None  # a later kernel reads what no recorded call made
            known[id(call.result)] = ("out", k)
            call.known = dict(known)
        if not all(id(args[i]) in seen for i in runtime):
            return None  # an input reached the kernel changed: the op function is needed
        return calls

    def _host_step(self, rec: _Recorder, step: Any, args: list[Any],
                   out: Any) -> Callable | None:
        """A node ``_recipe`` refused for reading a run-time value at a host position
        (Gather's token ids, an RNN's sequence lengths), replayed by the backend's
        ``_prepared_step(step, args, out, problem)`` where it has one (``problem``: the
        one kernel the op function began, else None): a call of the node's inputs that
        checks those values itself, cheaply, and runs the op function for anything it
        was not built for."""
        be = self.executor.backend
        prepare = getattr(be, "_prepared_step", None)
        if prepare is None or be.check_finite:
            return None
        one = len(rec.top) == 1 and len(rec.begun) == 1
        fast = prepare(step, args, out, rec.begun[0][1] if one else None)
        if fast is not None and isinstance(out, tuple):
            self._tuples.add(id(fast))
        return fast

    # -- the generated function ----------------------------------------------------------
    def _compile(self, recipes: list[list[_Call] | Callable | None]) -> None:
        ex = self.executor
        graph, be = ex.graph, ex.backend
        ns: dict[str, Any] = {"be": be, "_isinstance": isinstance, "_tuple": tuple,
                              "_len": len}
        names: dict[str, str] = {}  # value name -> expression
        for i, name in enumerate(ex._params):
            names[name] = f"P{i}"
            ns[f"P{i}"] = ex._params[name]
        for i, name in enumerate(ex._weights):
            names[name] = f"W{i}"
            ns[f"W{i}"] = ex._weights[name]
        feeds = [f"f{i}" for i in range(len(graph.inputs))]
        for i, v in enumerate(graph.inputs):
            names[v.name] = feeds[i]
        lines = ["def replay(ins):"]
        if feeds:
            lines.append(f"    {', '.join(feeds)}, = ins")
        lines.append("    ins.clear()")
        consts = 0

        def const(value: Any) -> str:
            nonlocal consts
            consts += 1
            ns[f"C{consts}"] = value
            return f"C{consts}"

        local = 0
        entered: Any = None  # the enter_key in force (None: unknown, after an op function)
        counts = _step_threads(be, recipes)
        for k, (step, free, call) in enumerate(zip(ex._steps, ex._free_after, recipes,
                                                   strict=True)):
            inputs = [names.get(n, "None") if n else "None" for n in step.node.inputs]
            self.chain_steps.append(_chain_step(step, call, inputs))
            one: tuple | None = None  # this step's ``step_calls`` entry, less its outputs
            if call is None:
                ns[f"F{k}"], ns[f"S{k}"] = step.fn, step
                lines.append(f"    _t = F{k}(be, [{', '.join(inputs)}], S{k})")
                entered = None
            elif callable(call):  # ``_host_step``: what the traced run gave
                ns[f"H{k}"] = call
                lines.append(f"    _t = H{k}({', '.join(inputs)})")
                one = (f"H{k}", None, inputs, {})
                entered = None
                call = None if id(call) in self._tuples else [None]
            else:
                calls = []
                for j, c in enumerate(call):
                    source, enter, (fn, parts) = self._kernel_call(c, j == 0, inputs, ns,
                                                                   const, counts[k])
                    if len(call) == 1 and enter is not None:
                        one = (source.split("(", 1)[0], fn,
                               [a for a in parts if "=" not in a.split("[", 1)[0]],
                               dict(a.split("=", 1) for a in parts
                                    if "=" in a.split("[", 1)[0]))
                    if len(call) == 1 and self.chain_steps[-1] is not None:
                        self.chain_steps[-1] = _chain_call(step, fn, parts, inputs)
                    if len(call) == 1 and hasattr(fn, "impl"):
                        fn.dying = _dying(parts, names, free)
                    if enter is not None and enter[0] != entered:
                        lines.append(f"    {enter[1]}()")
                        entered = enter[0]
                    calls.append(source)
                for j, source in enumerate(calls[:-1]):
                    lines.append(f"    _r{j} = {source}")
                lines.append(f"    _t = {calls[-1]}")
                if len(calls) > 1:
                    lines.append(f"    del {', '.join(f'_r{j}' for j in range(len(calls) - 1))}")
            outs = step.node.outputs
            single = len([n for n in outs if n]) == 1 and outs[0]
            if single and call is not None and (call[-1] is None
                                                or not isinstance(call[-1].result, tuple)):
                local += 1  # one array, as the traced call returned: no unpacking
                names[outs[0]] = f"v{local}"
                lines[-1 if len(call) == 1 else -2] = lines[-1 if len(call) == 1 else -2] \
                    .replace("    _t = ", f"    v{local} = ", 1)
            elif single:
                local += 1
                names[outs[0]] = f"v{local}"
                lines.append(f"    v{local} = _t[0] if _isinstance(_t, _tuple) else _t")
            else:
                lines.append("    _o = _t if _isinstance(_t, _tuple) else (_t,)")
                for j, name in enumerate(outs):
                    if name:
                        local += 1
                        names[name] = f"v{local}"
                        lines.append(f"    v{local} = _o[{j}] if _len(_o) > {j} else None")
            self.step_calls.append(None if one is None else (
                *one, [names[n] if n else None for n in outs]))
            dropped = [names[n] for n in free if names.get(n, "").startswith(("v", "f"))]
            if dropped:
                lines.append(f"    del {', '.join(dropped)}")
                for n in free:
                    if names.get(n, "").startswith(("v", "f")):
                        names[n] = "None"  # read after its drop: absent, as in the env
        outputs = [names[n] if n in names else const(graph.initializers.get(n))
                   for n in graph.output_names]
        lines.append(f"    return [{', '.join(outputs)}]")
        self.output_locals = {n: names[n] for n in graph.output_names if n in names}
        self.source = "\n".join(lines) + "\n"
        exec(compile(self.source, f"<plan of {graph.name!r}>", "exec"), ns)  # noqa: S102
        self._fn = ns.pop("replay")  # (left in ns, the function and its globals: a cycle)
        self.prepared_steps = sum(c is not None for c in recipes)  # ``_host_step``s too

    def _kernel_call(self, call: _Call, first: bool, inputs: list[str], ns: dict[str, Any],
                     const: Callable[[Any], str], threads: int | None = None
                     ) -> tuple[str, tuple[Any, str] | None, tuple[Callable, list[str]]]:
        """Source of one prepared kernel call, its arguments mapped to the step's input
        expressions and earlier results (``_r<j>``), (key, name) of the ``enter()``
        that must run before it, if any, and (the prepared call, its argument
        expressions). Only the first call of a chain began a kernel
        (thread count, ...); the epilogue calls after it run as they did, in the state it
        left. A prepared call with ``enter``, ``enter_key`` and ``impl`` (the cpu
        backend's) is called as ``impl[0](...)`` after its ``enter()``, which the plan
        emits once for calls of one key in a row. ``threads``: the backend's count for
        this step (``_plan_threads``), passed to its ``_prepared_kernel``."""
        be = self.executor.backend
        kernel = getattr(be, call.name)
        prepare = getattr(be, "_prepared_kernel", None)
        if not first:
            fn = functools.partial(kernel, call.problem)
        elif prepare is not None:
            fn = prepare(call.op, call.problem, kernel, *(() if threads is None else (threads,)))
        else:
            fn = _default_prepared(be, call.op, call.problem, kernel)
        key = f"K{len(ns)}"
        ns[key] = fn
        target, enter = key, None
        if first and hasattr(fn, "enter") and hasattr(fn, "impl"):
            ns[f"E{key}"], ns[f"I{key}"] = fn.enter, fn.impl
            target, enter = f"I{key}[0]", (fn.enter_key, f"E{key}")

        def one(x: Any) -> str | None:
            where = call.known.get(id(x)) if x is not None else None
            if where is None:
                return None
            return inputs[where[1]] if where[0] == "in" else f"_r{where[1]}"

        def expr(a: Any) -> str:
            mapped = one(a)
            if mapped is not None:
                return mapped
            if isinstance(a, (list, tuple)) and a and all(one(x) for x in a):
                items = ", ".join(one(x) for x in a)
                return f"[{items}]" if isinstance(a, list) else f"({items},)"
            return const(a)

        parts = [expr(a) for a in call.args]
        parts += [f"{kw}={expr(a)}" for kw, a in call.kwargs.items()]
        return f"{target}({', '.join(parts)})", enter, (fn, parts)

    def replay(self, inputs: list[Any]) -> list[Any]:
        """The graph outputs' values (graph output order) from the uploaded feeds."""
        if self._fn is None:
            raise ArgumentError("Plan.replay before Plan.trace")
        return self._fn(inputs)


def _chain_step(step: Any, call: Any, inputs: list[str]) -> tuple | None:
    """``Plan.chain_steps``' first guess for a step: an Identity's alias, a host step's
    call where it carries a ``link`` (reading its first input alone), "maybe" for a
    one-output step of one recorded call whose first input is a run-time value
    (``_chain_call`` then decides), None otherwise."""
    node = step.node
    outs = [n for n in node.outputs if n]
    if len(outs) != 1 or len(node.outputs) != 1 or not node.inputs or \
            not inputs[0].startswith(("f", "v")):
        return None
    if call is None and node.op_type == "Identity" and len(node.inputs) == 1:
        return ("alias", node.inputs[0], outs[0])
    if callable(call) and getattr(call, "link", None) is not None \
            and not any(_RUNTIME.search(p) for p in inputs[1:]):
        return ("call", call, node.inputs[0], outs[0])  # a host step with a link
    return ("maybe",) if isinstance(call, list) and len(call) == 1 else None


_RUNTIME = re.compile(r"\b[fv]\d+\b")  # a feed's or a step result's local in the plan


def _chain_call(step: Any, fn: Callable, parts: list[str], inputs: list[str]) -> tuple | None:
    """``Plan.chain_steps``' entry for a step replayed as the one prepared call ``fn``
    with argument expressions ``parts``: ("call", ...) when its first argument is the
    step's first input and no other argument reads a run-time value."""
    if not hasattr(fn, "impl") or not parts or parts[0] != inputs[0] \
            or any(_RUNTIME.search(p) for p in parts[1:]):
        return None
    return ("call", fn, step.node.inputs[0], step.node.outputs[0])


def bind_outputs(env: dict[str, Any], names: list[str], out: Any, free: Any) -> None:
    """A node's results into ``env`` under its output names (an empty name: an output the
    graph drops), then the values whose last reader it was out of it."""
    outs = out if isinstance(out, tuple) else (out,)
    for name, value in zip(names, outs, strict=False):
        if name:
            env[name] = value
    for name in free:
        env.pop(name, None)


def host_outputs(backend: Any, values: list[Any]) -> list[np.ndarray]:
    """Device values as NumPy arrays the caller owns (``Executor.run``'s rule: a view of
    backend state is copied). A host NumPy array of numbers is taken as it is, without
    the call: every backend's ``to_numpy`` gives one back unchanged."""
    results = []
    for value in values:
        if type(value) is _ndarray and value.dtype.kind in "biufc":
            host = value
        else:
            host = backend.to_numpy(value)
        flags = host.flags
        if not flags.writeable or not flags.owndata:
            host = np.array(host, copy=True)
        results.append(host)
    return results
