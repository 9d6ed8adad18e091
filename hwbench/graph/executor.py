"""Run a Graph on one backend with every tensor resident on that backend's device.

- Initializers are uploaded once, when the executor is built (``backend.asarray``): the
  cpu backend caches its reordered convolution weights per uploaded array, so uploading
  again per run would reorder every weight on every run.
- Intermediates stay backend arrays; each is dropped right after its last reader runs
  (reference counts over the node list), so peak memory is the live set, not the graph.
- Only the graph inputs go in (``asarray``) and the outputs come out (``to_numpy``);
  ``last_timings`` separates those transfers from the compute (synchronizing between
  the phases when ``time_transfers=True``); ``profile=True`` also sums seconds per op
  type (``op_seconds``), synchronizing after every node.
- ``replay`` gives ``run``'s results through a compiled plan (``hwbench.graph.plan``):
  the first call traces a normal run, later calls skip the checks it settled.
- Each node runs its op's ``OpDef.run`` (``hwbench.graph.ops``): one small function over
  the backend's kernels. Static attributes (padding from ``auto_pad``, Reshape's 0/-1)
  are resolved from shape inference, so kernels receive concrete values.
"""

from __future__ import annotations

import collections
import math
import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from hwbench.backends import memory
from hwbench.backends.base import Backend
from hwbench.backends.checks import all_finite
from hwbench.errors import ArgumentError, DTypeError, UnsupportedError
from hwbench.graph.chain import chain_body, same_results
from hwbench.graph.element_types import check_element_types
from hwbench.graph.ir import Graph, check_op_types
from hwbench.graph.ops import OP_DEFS, Step
from hwbench.graph.plan import Plan, bind_outputs, host_outputs
from hwbench.graph.shape_inference import infer_shapes
from hwbench.graph.step_chain import step_body

_ndarray, _vdot, _isfinite, _perf_counter = np.ndarray, np.vdot, math.isfinite, time.perf_counter


def lacks_kernel(backend: Any, method: str) -> bool:
    """True when ``backend`` (an instance or a class) has no ``method``, or still inherits
    ``Backend``'s stub for it (the base class implements each model op's ``_method`` as
    "raise UnsupportedError", so that a backend without it keeps working for the rest)."""
    cls = backend if isinstance(backend, type) else type(backend)
    if not callable(getattr(cls, method, None)):
        return True
    stub = getattr(Backend, f"_{method}", None)
    if stub is None or getattr(cls, f"_{method}", None) is not stub:
        return False
    via = getattr(stub, "runs_via", None)  # a default built on another private kernel
    return via is None or getattr(cls, via, None) is getattr(Backend, via, None)


def missing_kernels(graph: Graph, backend: Any) -> dict[str, list[str]]:
    """Backend method -> the op types that need it, for methods ``backend`` lacks."""
    missing: dict[str, list[str]] = collections.defaultdict(list)
    for op in sorted(graph.op_counts()):
        for method in OP_DEFS[op].kernels if op in OP_DEFS else ():
            if lacks_kernel(backend, method):
                missing[method].append(op)
    return dict(missing)


def check_backend(graph: Graph, backend: Any) -> None:
    """Raise one UnsupportedError naming every kernel the graph needs and the backend lacks."""
    missing = missing_kernels(graph, backend)
    if missing:
        listed = ", ".join(f"{m} (for {'/'.join(ops)})" for m, ops in sorted(missing.items()))
        raise UnsupportedError(f"backend {getattr(backend, 'full_name', backend)!r} lacks "
                               f"kernel(s) this model needs: {listed}")


class Executor:
    """A graph bound to one backend: weights uploaded once, ``run(feeds)`` many times.

    ``graph`` is one ``passes.optimize`` has produced (no BatchNormalization, Dropout or
    Gemm alpha/beta left); every op and every backend kernel it needs is checked here,
    before anything runs, and all that are missing are named in one error.
    """

    def __init__(self, graph: Graph, backend: Any, *, time_transfers: bool = False,
                 profile: bool = False) -> None:
        check_op_types(graph, OP_DEFS.executable(), f"graph {graph.name!r} (after passes)")
        check_backend(graph, backend)
        check_element_types(graph)
        self.graph = graph
        self.backend = backend
        self.time_transfers = bool(time_transfers)
        # Per op type: seconds summed over runs, each node synchronized (slows runs down).
        self.profile = bool(profile)
        self.op_seconds: dict[str, float] = collections.defaultdict(float)
        self.shapes = infer_shapes(graph)
        self._steps = [
            Step(node, OP_DEFS.of(node).run, [self.shapes[n] for n in node.inputs if n],
                 [self.shapes[n] for n in node.outputs if n], graph.opset)
            for node in graph.nodes
        ]
        device_consts: list[str] = []
        self._params: dict[str, np.ndarray] = {}  # constants read on the host
        for node in graph.nodes:
            host = OP_DEFS.of(node).host_inputs
            for i, name in enumerate(node.inputs):
                if name not in graph.initializers:
                    continue
                if i in host:
                    self._params[name] = graph.initializers[name]
                elif name not in device_consts:
                    device_consts.append(name)
        # Graph inputs read only at host positions (Gather's token ids) stay on the host.
        host_reads: dict[str, set[bool]] = collections.defaultdict(set)
        for node in graph.nodes:
            host = OP_DEFS.of(node).host_inputs
            for i, name in enumerate(node.inputs):
                host_reads[name].add(i in host)
        self._host_feeds = {v.name for v in graph.inputs if host_reads.get(v.name) == {True}}
        self._free_after = self._lifetimes(set(device_consts))
        self.check_memory(device_consts)
        memory.trim(backend)  # what sessions before this one left in the backend's pools
        # Uploaded once per executor: the backend may cache work per uploaded array.
        self._weights = {name: backend.asarray(graph.initializers[name])
                         for name in device_consts}
        self.plan: Plan | None = None  # built by the first ``replay``
        self._entry: Any = None  # ``replay``'s common call, generated with the plan
        self._plain_entry: Any = None  # the same without a chain or recording
        self.chained = False  # whether ``_entry`` is the chained run (``graph/chain.py``)
        self.step_chained = False  # ... or the multi-input one (``graph/step_chain.py``)
        # ... or a recorded command list (the backend's ``recorded_body``)
        self.recorded = False
        # The last run's four time stamps, and the sums over runs of the three phases and
        # the run count: ``last_timings``/``totals`` build their dicts when asked.
        self._times: tuple[float, float, float, float] | None = None
        self._sums = [0.0, 0.0, 0.0, 0]
        # Per graph input, what ``screened_feeds`` compares: name, dtype, shape, whether
        # it is screened for NaN, whether it stays on the host.
        self._feed_specs = [(v.name, np.dtype(v.dtype), tuple(v.shape),
                             np.dtype(v.dtype).kind == "f", v.name in self._host_feeds)
                            for v in graph.inputs]

    def _lifetimes(self, weights: set[str]) -> list[list[str]]:
        """Per step, the values no later step reads (dropped after that step)."""
        keep = set(self.graph.output_names) | weights
        last: dict[str, int] = {}
        for i, node in enumerate(self.graph.nodes):
            for name in node.inputs + node.outputs:
                if name:
                    last[name] = i
        free: list[list[str]] = [[] for _ in self.graph.nodes]
        for name, i in last.items():
            if name not in keep and name not in self.graph.initializers:
                free[i].append(name)
        return free

    def peak_activation_bytes(self) -> int:
        """The most bytes of inputs and intermediates alive at once during a run, from the
        inferred shapes and the lifetimes ``run`` drops values by (4 bytes per value: the
        float32 activations, and int8 models' int32 accumulators, take that much)."""
        size = {name: 4 * math.prod(shape) for name, shape in self.shapes.items()}
        live = sum(size[v.name] for v in self.graph.inputs)
        peak = live
        for step, free in zip(self._steps, self._free_after, strict=True):
            live += sum(size.get(n, 0) for n in step.node.outputs if n)
            peak = max(peak, live)
            live -= sum(size.get(n, 0) for n in free if n not in self.graph.initializers)
        return peak

    def check_memory(self, device_consts: list[str]) -> None:
        """Refuse (``OutOfMemoryError``, before any weight is uploaded) a graph whose
        weights and peak live activations cannot fit where the backend allocates; say
        which batch size would."""
        weights = sum(self.graph.initializers[n].nbytes for n in device_consts)
        activations = self.peak_activation_bytes()
        batch = self.graph.inputs[0].shape[0] if self.graph.inputs else 1
        per_sample = activations / max(int(batch), 1)

        def fits(free: int) -> str:
            most = int((free - weights) // per_sample) if per_sample else 0
            return (f"batch <= {most} fits" if most >= 1 else
                    "not even batch 1 fits") + f" (about {memory.format_bytes(per_sample)} "\
                f"of activations per sample)"

        what = (f"graph {self.graph.name!r} at batch {batch} on "
                f"{getattr(self.backend, 'full_name', self.backend)!r} "
                f"({memory.format_bytes(activations)} of live activations at the peak + "
                f"{memory.format_bytes(weights)} of weights)")
        require = getattr(self.backend, "require_bytes", None)
        if require is None:  # a stand-in backend (tests): host memory
            memory.require(weights + activations, what, fits=fits)
            return
        require(weights + activations, what, fits, one_allocation=False)
        name, shape = max(self.shapes.items(), key=lambda item: math.prod(item[1]))
        require(4 * math.prod(shape), f"tensor {name!r} of shape {shape} in {what}", fits)

    @property
    def weight_count(self) -> int:
        """How many constant tensors live on the device."""
        return len(self._weights)

    def check_feeds(self, feeds: Mapping[str, Any]) -> None:
        """Names, dtypes and shapes of ``feeds`` against the graph's inputs."""
        if not isinstance(feeds, Mapping):
            raise ArgumentError(f"argument 'feeds' must be a dict of input name -> array, "
                                f"got {type(feeds).__name__}")
        expected = {v.name: v for v in self.graph.inputs}
        missing = [n for n in expected if n not in feeds]
        extra = [n for n in feeds if n not in expected]
        if missing or extra:
            raise ArgumentError(
                f"feeds: missing input(s) {missing}, unknown input(s) {extra}; the model's "
                f"inputs are {list(expected)}")
        for name, v in expected.items():
            x = feeds[name]
            if isinstance(x, np.generic):  # a NumPy scalar is a 0-d array
                x = np.asarray(x)
            if not isinstance(x, np.ndarray):
                raise ArgumentError(f"input {name!r} must be a NumPy array, "
                                    f"got {type(x).__name__}")
            if x.dtype != v.dtype:
                raise DTypeError(f"input {name!r} must have dtype {v.dtype}, got {x.dtype}")
            if tuple(x.shape) != tuple(v.shape):
                raise ArgumentError(f"input {name!r} must have shape {tuple(v.shape)}, "
                                    f"got {tuple(x.shape)}")
            if x.dtype.kind == "f" and not np.isfinite(x).all():
                raise ArgumentError(f"input {name!r} contains NaN or infinity")

    def screened_feeds(self, feeds: Any) -> list[np.ndarray] | None:
        """The feeds in graph input order when each is what ``check_feeds`` accepts, by the
        cheapest tests (a dict of exactly the inputs, NumPy arrays of the exact dtype and
        shape); None where ``check_feeds`` must decide (it raises, or accepts a NumPy
        scalar...). The NaN screen: ``x · x`` is finite only if every element is (NaN and
        inf propagate), one BLAS pass with no temporary; where it is not (NaN, or finite
        squares overflowing) the exact screen decides."""
        if type(feeds) is not dict or len(feeds) != len(self._feed_specs):
            return None
        hosts = []
        for name, dtype, shape, floating, _ in self._feed_specs:
            x = feeds.get(name)
            if type(x) is not _ndarray or x.dtype != dtype or x.shape != shape:
                return None
            if floating and not _isfinite(_vdot(x, x)) and not all_finite(x):
                return None
            hosts.append(x)
        return hosts

    def _output_names(self, output_names: Any) -> list[str]:
        if output_names is not None and (
                not isinstance(output_names, (list, tuple))
                or not all(isinstance(n, str) for n in output_names)):
            raise ArgumentError(f"argument 'output_names' must be a list of output names, "
                                f"got {output_names!r}")
        names = self.graph.output_names if output_names is None else list(output_names)
        unknown = [n for n in names if n not in self.graph.output_names]
        if unknown:
            raise ArgumentError(f"output_names: unknown output(s) {unknown}; the model's "
                                f"outputs are {self.graph.output_names}")
        return names

    def _upload(self, feeds: Mapping[str, Any]) -> list[Any]:
        be = self.backend
        return [np.asarray(feeds[v.name]) if v.name in self._host_feeds
                else be.asarray(feeds[v.name]) for v in self.graph.inputs]

    def _record(self, t0: float, t1: float, t2: float, t3: float) -> None:
        self._times = (t0, t1, t2, t3)
        sums = self._sums
        sums[0] += t1 - t0
        sums[1] += t2 - t1
        sums[2] += t3 - t2
        sums[3] += 1

    @property
    def last_timings(self) -> dict[str, float]:
        """Seconds of the last run: ``transfer_in_s``, ``compute_s``, ``transfer_out_s``
        (empty before the first)."""
        if self._times is None:
            return {}
        t0, t1, t2, t3 = self._times
        return {"transfer_in_s": t1 - t0, "compute_s": t2 - t1, "transfer_out_s": t3 - t2}

    @property
    def totals(self) -> dict[str, float]:
        """The three phases' seconds summed over all runs, and ``runs``."""
        s = self._sums
        return {"transfer_in_s": s[0], "compute_s": s[1], "transfer_out_s": s[2],
                "runs": s[3]}

    def replay(self, feeds: Mapping[str, np.ndarray],
               output_names: list[str] | None = None) -> list[np.ndarray]:
        """``run``'s results through the compiled plan (``hwbench.graph.plan``): the
        first call traces a normal run and builds it, later calls replay it. The feeds
        are screened on every call, as ``run`` does; ``profile=True`` runs ``run``."""
        if self.profile:
            return self.run(feeds, output_names)
        entry = self._entry
        if entry is not None and output_names is None:
            results = entry(feeds)
            if results is not None:
                return results
        plan = self.plan
        hosts = self.screened_feeds(feeds) if plan is not None and output_names is None \
            else None
        if hosts is None:
            return self._replay_checked(feeds, output_names)
        # The common call, its feeds screened above: upload, replay, outputs.
        be, sync = self.backend, self.time_transfers
        t0 = _perf_counter()
        asarray = be.asarray_feed
        inputs = [np.asarray(x) if spec[4] else asarray(x)
                  for x, spec in zip(hosts, self._feed_specs, strict=True)]
        if sync:
            be.synchronize()
        t1 = _perf_counter()
        values = plan._fn(inputs)  # built: what plan.replay calls
        if sync:
            be.synchronize()
        t2 = _perf_counter()
        results = host_outputs(be, values)
        self._record(t0, t1, t2, _perf_counter())
        return results

    def _compile_entry(self, body: tuple[list[str], dict[str, Any]] | None = None) -> Any:
        """``replay``'s common call as one generated function: each feed screened as
        ``screened_feeds`` does (unrolled, the specs bound as constants), uploaded
        (``asarray_feed``), the plan run, the outputs copied back and the times recorded;
        None (the caller takes the general path) wherever a feed is not what the plan's
        inputs are. One loop and two lists less a call: ~1 µs of a 10 µs mlp run.
        ``body``: other lines (and their names) after the screen (``chain.chain_body``,
        ``step_chain.step_body``; where its names hold ``_screens_nan`` it screens its
        copies of the feeds for NaN itself, in one pass)."""
        ns: dict[str, Any] = {"_nd": _ndarray, "_isfinite": _isfinite, "_vdot": _vdot,
                              "_all_finite": all_finite, "_pc": _perf_counter,
                              "_fn": self.plan._fn, "_out": host_outputs, "be": self.backend,
                              "_host": np.asarray, "_ex": self, "_dict": dict, "_len": len}
        if body is not None:
            ns.update(body[1])
        screened = ns.get("_screens_nan", False)  # the body screens the feeds' copies
        specs = self._feed_specs
        lines = ["def entry(feeds):",
                 f"    if type(feeds) is not _dict or _len(feeds) != {len(specs)}:",
                 "        return None"]
        for i, (name, dtype, shape, floating, _) in enumerate(specs):
            ns[f"D{i}"], ns[f"S{i}"] = dtype, shape
            lines += [f"    x{i} = feeds.get({name!r})",
                      f"    if type(x{i}) is not _nd or x{i}.dtype != D{i} or x{i}.shape != S{i}:",
                      "        return None"]
            if floating and not screened:
                lines += [f"    if not _isfinite(_vdot(x{i}, x{i})) and not _all_finite(x{i}):",
                          "        return None"]
        ups = ", ".join(f"_host(x{i})" if spec[4] else f"up(x{i})"
                        for i, spec in enumerate(specs))
        lines += body[0] if body is not None else [
            "    t0 = _pc()", "    up = be.asarray_feed", f"    ins = [{ups}]",
            "    t1 = _pc()", "    values = _fn(ins)", "    t2 = _pc()",
            "    results = _out(be, values)", "    _ex._record(t0, t1, t2, _pc())",
            "    return results"]
        exec(compile("\n".join(lines) + "\n", f"<entry of {self.graph.name!r}>", "exec"),  # noqa: S102
             ns)
        return ns.pop("entry")  # (left in ns, the function and its globals: a cycle)

    def _chain_next(self, entry: Any) -> Any:
        """``entry`` for the plan's first replay (which builds the prepared calls' fast
        paths), after which ``_entry`` becomes the chained run (``hwbench.graph.chain``,
        else ``hwbench.graph.step_chain``'s, built on these feeds) where there is one and
        it gives that replay's results bit for bit, else ``entry``."""
        def first(feeds: Any) -> Any:
            results = entry(feeds)
            if results is None:
                return None
            self._entry = self._plain_entry = entry
            body, flag, recorded = chain_body(self), "chained", None
            if body is None:
                body, flag = step_body(self, feeds), "step_chained"
            if body is None and hasattr(self.backend, "recorded_body"):
                body = recorded = self.backend.recorded_body(self, feeds)
                flag = "recorded"
            if body is not None:
                chained = self._compile_entry(body)
                times, sums = self._times, list(self._sums)
                # a recorded command list must not depend on the feeds' values: checked
                # on the feeds reversed too
                other = None if recorded is None else {
                    k: np.ascontiguousarray(np.asarray(x).reshape(-1)[::-1]).reshape(
                        np.shape(x)) for k, x in feeds.items()}
                if same_results(chained(feeds), results) and (
                        other is None or same_results(chained(other), entry(other))):
                    self._entry = chained
                    setattr(self, flag, True)
                self._times, self._sums = times, sums
            return results
        return first

    def release(self) -> None:
        """Drop the plan and the generated entry: they refer back to this executor, a
        cycle that only the garbage collector would free, with every device array of the
        model in it (``Session`` calls this when it is freed). A later ``replay`` traces
        anew."""
        self.plan = None
        self._entry = self._plain_entry = None
        self.chained = self.step_chained = self.recorded = False

    def _replay_checked(self, feeds: Mapping[str, np.ndarray],
                        output_names: list[str] | None) -> list[np.ndarray]:
        """``replay`` through ``check_feeds`` and ``output_names``: the first (traced) run,
        a selection of outputs, and anything ``screened_feeds`` leaves to the full checks."""
        self.check_feeds(feeds)
        names = self._output_names(output_names)
        be, sync = self.backend, self.time_transfers
        t0 = time.perf_counter()
        inputs = self._upload(feeds)
        if sync:
            be.synchronize()
        t1 = time.perf_counter()
        if self.plan is None:
            plan = Plan(self)
            env = {**self._params, **self._weights,
                   **{v.name: x for v, x in zip(self.graph.inputs, inputs, strict=True)}}
            traced = plan.trace(env)
            values = [traced[n] if n in traced else self.graph.initializers[n]
                      for n in self.graph.output_names]
            self.plan = plan
            self._entry = None if self.time_transfers else self._chain_next(
                self._compile_entry())
            memory.trim(be)  # the trace held every value at once; a replay holds far fewer
        else:
            values = self.plan.replay(inputs)
        if output_names is not None:
            index = {n: i for i, n in enumerate(self.graph.output_names)}
            values = [values[index[n]] for n in names]
        if sync:
            be.synchronize()
        t2 = time.perf_counter()
        results = host_outputs(be, values)
        self._record(t0, t1, t2, time.perf_counter())
        return results

    def run(self, feeds: Mapping[str, np.ndarray],
            output_names: list[str] | None = None) -> list[np.ndarray]:
        """Graph outputs (or ``output_names``) as NumPy arrays, in graph output order."""
        self.check_feeds(feeds)
        names = self._output_names(output_names)
        be, sync = self.backend, self.time_transfers
        t0 = time.perf_counter()
        env: dict[str, Any] = {**self._params, **self._weights}
        for v, x in zip(self.graph.inputs, self._upload(feeds), strict=True):
            env[v.name] = x
        if sync:
            be.synchronize()
        t1 = time.perf_counter()
        for step, free in zip(self._steps, self._free_after, strict=True):
            args = [env[n] if n in env else None for n in step.node.inputs]
            if self.profile:
                start = time.perf_counter()
                out = step.fn(be, args, step)
                be.synchronize()
                self.op_seconds[step.kind] += time.perf_counter() - start
            else:
                out = step.fn(be, args, step)
            bind_outputs(env, step.node.outputs, out, free)
        if sync:
            be.synchronize()
        t2 = time.perf_counter()
        results = host_outputs(be, [env[name] if name in env else self.graph.initializers[name]
                                    for name in names])
        self._record(t0, t1, t2, time.perf_counter())
        return results
