"""The cpu backend's prepared kernel calls (``Backend._prepared_kernel``, replayed by
``hwbench.graph.plan``): the thread count a problem runs with is chosen once, when the
plan is built, and libgomp is told only when it changes; a plan sets it once for a run
of calls with the same count (``call.enter``) and calls the implementation directly.
Kernels with a fast path (``prepared_kernels.py``) are built into it on their first
replay, from the arguments they meet; the others (and a fast path's refused arguments)
call the kernel itself."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from hwbench.backends.cpu import channel_shuffle, int8_links
from hwbench.backends.cpu.binary_in_place import BUILDING
from hwbench.backends.cpu.int8_prepared import INT8_BUILDERS
from hwbench.backends.cpu.prepared_kernels import BUILDERS as FLOAT_BUILDERS
from hwbench.backends.cpu.prepared_kernels import builder_for as float_builder_for
from hwbench.backends.cpu.prepared_plain import PLAIN_BUILDERS, _first_of

# Kernels that meet float32 arrays or an int8 model's values (checked first): Gather/take
# of channels (channels-last codes', else a float32 shuffle), Reshape (a plain array's
# view, else channels-last codes')
EITHER_BUILDERS = {name: _first_of(INT8_BUILDERS[name], channel_shuffle.prepared)
                   for name in ("TensorOpsKernels._take", "TensorOpsInterface._gather")}
EITHER_BUILDERS["CpuBackend._reshape"] = _first_of(FLOAT_BUILDERS["CpuBackend._reshape"],
                                                   int8_links.reshape_codes)
# Resize and eltwise ops: a plain or blocked array's, else a channels-last float32 one's
for _name, _held in (("UpsamplingKernels._resize", int8_links.resize_held),
                     ("UnaryKernels._unary_op", int8_links.unary_held),
                     ("CpuBackend._sigmoid", int8_links.sigmoid_held)):
    EITHER_BUILDERS[_name] = _first_of(PLAIN_BUILDERS.get(_name) or FLOAT_BUILDERS[_name],
                                       _held)


def builder_for(kernel: Callable) -> Callable | None:
    """The fast-path builder for a bound cpu kernel method: the ones for float32 or int8
    values, ``prepared_plain``'s for plain-array matmul/add/mul/concat/transpose/unary
    and one-primitive rnn, then ``prepared_kernels``', then the int8 ones in
    ``int8_prepared``; or None."""
    name = getattr(getattr(kernel, "__func__", None), "__qualname__", "")
    return EITHER_BUILDERS.get(name) or PLAIN_BUILDERS.get(name) or float_builder_for(kernel) \
        or INT8_BUILDERS.get(name)


def prepared_call(backend: Any, problem: Any, kernel: Callable,
                  threads: int | None = None) -> Callable:
    """``kernel(problem, ...)`` as ``_begin_kernel`` would start it, less the checks the
    traced run made: ``_threads_now`` set (the primitive cache's key) and libgomp's
    count set where it differs. ``threads``: the plan's count for this step
    (``thread_policy.plan_threads``), else ``threads_for``'s."""
    threads = backend.threads_for(problem) if threads is None else threads
    dnnl = backend.dnnl
    set_threads, get_ident = dnnl.set_num_threads, threading.get_ident
    build = builder_for(kernel) if getattr(backend, "fast_replay", True) else None

    def plain(*args: Any, **kwargs: Any) -> Any:
        return kernel(problem, *args, **kwargs)

    def first(*args: Any, **kwargs: Any) -> Any:
        # the positions of arguments the plan drops after this call (``binary_in_place``)
        BUILDING.dying = getattr(call, "dying", ())
        try:
            impl[0] = build(backend, problem, kernel, args, kwargs) or plain
        finally:
            BUILDING.dying = ()
        return impl[0](*args, **kwargs)

    impl = [plain if build is None else first]

    def enter() -> None:
        backend._threads_now = threads
        if dnnl._threads_set != (threads, get_ident()):  # set_num_threads' own test
            set_threads(threads)

    def call(*args: Any, **kwargs: Any) -> Any:
        enter()
        return impl[0](*args, **kwargs)
    # For a plan: ``enter()`` then ``impl[0](...)`` is ``call(...)``; calls of one
    # ``enter_key`` in a row need one ``enter`` (``plan.Plan`` emits it so).
    call.enter, call.enter_key, call.impl = enter, ("cpu threads", threads), impl
    # for tests: whether a fast path was built, and what it stands for
    call.fast = lambda: impl[0] is not plain and impl[0] is not first
    call.problem, call.kernel = problem, kernel
    return call
