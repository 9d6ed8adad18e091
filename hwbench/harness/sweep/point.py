"""One sweep point, run on the node it lands on; what that node is and what it offers.

``execute_point`` is the task body every executor runs (a local worker process or a Ray
worker): a ``simulate`` point goes through the very functions ``hwbench simulate`` calls
(``load_config(...).with_overrides(...)``, then ``simulate.run_simulation``), a ``run``
point through ``hwbench run``'s isolated worker (``isolation.Worker``: the backend in its
own subprocess, so a native crash or hang costs the point, not the node's Ray worker).

Outcome statuses: ``ok``; ``refused`` — hwbench refused the point (a config whose buffers
cannot hold one tile, a backend this node lacks, an unsupported op): deterministic, so
not retried; ``failed`` — anything else (an exception, a timeout, a crash): retried once.

``node_resources`` is what ``hwbench node-resources`` prints: the backends ``hwbench list``
finds here as Ray custom resources, for ``ray start --resources``; ``point_resources`` is
what a point asks Ray for.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import platform
import signal
import sys
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from hwbench.backends import backend_class, default_threads, list_backends
from hwbench.backends.systolic.config import load_config
from hwbench.errors import HwbenchError
from hwbench.files import write_atomic
from hwbench.harness.running import isolation, omp_wait
from hwbench.harness.running.environment import environment
from hwbench.harness.suites import model_suite, simulate
from hwbench.harness.sweep.spec import Point
from hwbench.models import load_model

OK, REFUSED, FAILED = "ok", "refused", "failed"
# One timed `run` point per node at a time: a benchmark beside another measures neither.
TIMING_SLOT = "hwbench_timing_slot"


class PointTimeout(Exception):
    """A point ran past its timeout (raised by the SIGALRM handler in the task's thread)."""


@contextlib.contextmanager
def _deadline(seconds: float):
    """Raise ``PointTimeout`` in this thread after ``seconds`` (Python code only: a hang in
    native code is the isolated worker's to catch). A no-op off the main thread, where
    signals cannot be handled."""
    if threading.current_thread() is not threading.main_thread() or not seconds:
        yield
        return

    def expire(signum, frame):
        raise PointTimeout(f"timed out after {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def execute_point(point: Point, timeout: float) -> dict[str, Any]:
    """Run ``point`` here; return its outcome: ``status``, ``reason``, ``result`` (the
    simulation's summary or the run's row), ``seconds`` (host wall time) and ``node``."""
    start = time.perf_counter()
    status, reason, result = OK, "", None
    try:
        with _deadline(timeout):
            if point.kind == "simulate":
                result = simulate_point(point)
            else:
                status, reason, result = run_point(point, timeout)
    except HwbenchError as exc:
        status, reason = REFUSED, f"{type(exc).__name__}: {exc}"
    except PointTimeout as exc:
        status, reason = FAILED, str(exc)
    except Exception as exc:  # noqa: BLE001 - the point fails; the sweep goes on
        status, reason = FAILED, f"{type(exc).__name__}: {exc}"
    return {"id": point.id, "status": status, "reason": reason, "result": result,
            "seconds": time.perf_counter() - start, "node": describe_node()}


# -- simulate points ---------------------------------------------------------------------------
def _local_file(entry: dict[str, str]) -> str:
    """The path of a file the point names: where the spec found it if it is there with the
    same text (one machine, a shared file system), else a copy under this node's temp
    folder (a cluster node without the spec's folder), named as the original."""
    path = Path(entry["path"])
    try:
        if path.read_text(encoding="utf-8-sig") == entry["text"]:
            return str(path)
    except (OSError, UnicodeDecodeError):
        pass
    digest = hashlib.sha256(entry["text"].encode()).hexdigest()[:16]
    copy = Path(tempfile.gettempdir()) / f"hwbench-sweep-{os.getuid()}" / digest / entry["name"]
    if not copy.is_file():
        write_atomic(copy, lambda fh: fh.write(entry["text"]))
    return str(copy)


def simulation_config(point: Point):
    """The point's ``SystolicConfig``: the base (preset or .cfg), with array and dataflow
    overridden as ``hwbench simulate --array --dataflow`` does, then the buffers and the
    off-chip bandwidth."""
    p = point.params
    base = load_config(p["config"] if isinstance(p["config"], str)
                       else _local_file(point.files["config"]))
    config = base.with_overrides(dataflow=p["dataflow"], array=p["array"])
    changes: dict[str, Any] = {}
    suffix = ""
    if p["buffers"]:
        b = p["buffers"]
        changes.update(ifmap_buffer_bytes=b["ifmap"], weight_buffer_bytes=b["weight"],
                       ofmap_buffer_bytes=b["ofmap"])
        suffix += f"-buf{b['ifmap']}/{b['weight']}/{b['ofmap']}"
    if p["bandwidth"] is not None:
        changes["dram_bytes_per_s"] = None if p["bandwidth"] == "unlimited" else p["bandwidth"]
        suffix += f"-bw{p['bandwidth']}"
    return replace(config, name=config.name + suffix, **changes) if changes else config


@functools.lru_cache(maxsize=16)
def _model(name: str, batch: int):
    """A model loaded once per worker process (``run_simulation`` copies its graph before
    the passes, so one object serves every point)."""
    return load_model(name, batch=batch)


def simulate_point(point: Point) -> dict[str, Any]:
    config = simulation_config(point)
    work = point.params["workload"]
    if "topology" in work:
        sim = simulate.run_simulation(config, topology=_local_file(point.files["topology"]))
    else:
        sim = simulate.run_simulation(config, model=_model(work["model"], work["batch"]),
                                      batch=work["batch"])
    return {"workload": sim.workload, "summary": _finite(sim.summary),
            "config": _finite(config.describe()), "simulation_seconds": sim.simulation_seconds}


def _finite(values: dict[str, Any]) -> dict[str, Any]:
    """Infinities (an unlimited link's ridge point) as None: results stay strict JSON."""
    return {k: (None if isinstance(v, float) and v in (float("inf"), float("-inf")) else v)
            for k, v in values.items()}


# -- run points --------------------------------------------------------------------------------
def resolve_backend(name: str) -> str:
    """``opencl:GPU`` (a sweep's device type) -> ``opencl:N``, the first such device here;
    any other name as it is."""
    base, sep, device = name.partition(":")
    if not sep:
        return name
    return f"{base}:{backend_class(base).resolve_device(device)}"


def reference_path(case) -> str:
    """The case's float64 reference outputs, computed once per node and kept in its temp
    folder (renamed into place whole, so concurrent points never read half a file)."""
    folder = Path(tempfile.gettempdir()) / f"hwbench-sweep-{os.getuid()}" / "references"
    key = hashlib.sha256(case.model.encode()).hexdigest()[:8]
    target = folder / f"{Path(case.model).stem}-{key}-b{case.batch}.npz"
    if not target.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=folder) as scratch:
            os.replace(model_suite.reference_outputs(case, scratch)[case.batch], target)
    return str(target)


def run_point(point: Point, timeout: float) -> tuple[str, str, dict[str, Any]]:
    """``hwbench run``'s row for one backend × model × batch × precision, measured in an
    isolated worker; ``(status, reason, row)``."""
    p = point.params
    start = time.monotonic()
    backend = resolve_backend(p["backend"])
    case = model_suite.ModelCase(p["model"], p["batch"], p["precision"])
    reference = reference_path(case)
    wait = omp_wait.resolve(p.get("omp_wait", "auto"))  # as `hwbench run --omp-wait`
    job = {"kind": "models", "backend": backend, "peer": False, "omp_wait": wait,
           "options": {"threads": p["threads"] or default_threads()}, "models": [p["model"]],
           "batches": [p["batch"]], "precisions": [p["precision"]], "timing": p["timing"],
           "ceilings": False}
    left = max(1.0, timeout - (time.monotonic() - start))
    worker = isolation.Worker(job, left)
    try:
        if worker.info is None:  # hwbench's refusals are deterministic: never retried
            return (REFUSED if worker.failure_kind["refused"] else FAILED), str(
                worker.failure), {"backend": backend}
        row = {"backend": backend, **worker.run(0, {"reference": reference}),
               "omp_wait": wait["policy"], "omp_wait_why": wait["why"],
               "backend_info": worker.info}
    finally:
        worker.close()
    return (*row_outcome(row), row)


def row_outcome(row: dict[str, Any]) -> tuple[str, str]:
    """A run row's point status and reason, by the row's ``status`` and ``refused``
    (``row_status``): hwbench's refusals are deterministic, so refused, not retried."""
    if row.get("status") == "ok":
        return OK, ""
    refused = row.get("status") == "unsupported" or row.get("refused") is True
    return (REFUSED if refused else FAILED), str(row.get("reason", ""))


# -- the node ----------------------------------------------------------------------------------
def _ray_node_id() -> str | None:
    ray = sys.modules.get("ray")  # imported only inside a Ray worker (or a Ray driver)
    try:
        if ray is not None and ray.is_initialized():
            return ray.get_runtime_context().get_node_id()
    except Exception:  # noqa: BLE001 - a node without a Ray id is still a node
        return None
    return None


@functools.cache
def _node_facts() -> dict[str, Any]:
    return {"environment": environment(),
            "backends": {row.name: row.versions for row in list_backends() if row.available}}


def describe_node() -> dict[str, Any]:
    """Host name, Ray node id, and (once per process) the hardware and library versions:
    ``environment()`` and every available backend's versions, as ``hwbench list``."""
    node_id = _ray_node_id()
    host = platform.node()
    key = f"{host}/{node_id[:12]}" if node_id else host
    return {"key": key, "host": host, "ray_node_id": node_id, **_node_facts()}


def node_resources() -> dict[str, float]:
    """This node's hardware as Ray custom resources: ``hwbench_<backend>`` for every
    backend ``hwbench list`` finds available (each backend class's ``node_resources``:
    ``hwbench_cuda`` its GPU count, OpenCL devices by type too, ``hwbench_opencl_gpu``),
    and one timing slot (``run`` points take it: one benchmark at a time per node)."""
    out: dict[str, float] = {TIMING_SLOT: 1}
    for row in list_backends():
        if row.available:
            out.update(backend_class(row.name).node_resources(row.devices))
    return out


def point_resources(point: Point) -> dict[str, Any]:
    """What the point asks Ray for: ``num_cpus``, ``num_gpus`` and custom ``resources``,
    by its backend class's ``sweep_resources`` (a ``cuda`` point a GPU, an ``opencl:GPU``
    point an OpenCL GPU); host-timed benchmarks take the timing slot too."""
    if point.kind == "simulate":
        return {"num_cpus": 1, "num_gpus": 0, "resources": {}}
    base, _, device = point.params["backend"].partition(":")
    try:  # the spec checked the name; a backend that cannot be imported here asks the defaults
        wanted = backend_class(base).sweep_resources(device or None)
    except ImportError:
        wanted = {"num_gpus": 0, "resources": {f"hwbench_{base}": 1}, "host_timed": True}
    resources = dict(wanted["resources"])
    if wanted["host_timed"]:
        resources[TIMING_SLOT] = 1
    return {"num_cpus": 1, "num_gpus": wanted["num_gpus"], "resources": resources}
