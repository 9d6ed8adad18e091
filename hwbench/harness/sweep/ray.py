"""Sweep points as Ray tasks: a local Ray instance by default, a cluster when given one.

Ray does the distributed part — scheduling each task on a node that has the resources it
asks for (``num_gpus``, custom resources such as ``hwbench_opencl_gpu``), rerunning a task
whose worker process or node died (``max_retries=1``), moving results back. What is
written here is only the glue: connect, submit one task per point with its resources, and
hand each outcome to the sweep as it arrives (plus one retry of a point that failed by
exception or timeout, which Ray does not retry by itself).
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from typing import Any

from hwbench.harness.sweep.point import FAILED, REFUSED, node_resources, point_resources
from hwbench.harness.sweep.spec import Point

MAX_ATTEMPTS = 2  # a failed point is retried once


def ray_installed() -> bool:
    return importlib.util.find_spec("ray") is not None


def connect(address: str | None, workers: int | None) -> tuple[Any, bool, dict[str, Any]]:
    """``ray.init``: the cluster at ``address`` (or ``RAY_ADDRESS``), else a local instance
    with ``workers`` CPUs (default: every core) that advertises this machine's hardware.
    Returns ``(ray, started_here, description)``; an already initialized Ray is used as
    it is (``started_here`` False: the caller shuts down only what it started)."""
    import ray

    started = False
    if not ray.is_initialized():
        address = address or os.environ.get("RAY_ADDRESS")
        if address:
            ray.init(address=address, log_to_driver=False)
        else:
            cores = workers or len(os.sched_getaffinity(0))
            ray.init(num_cpus=cores, resources=node_resources(), include_dashboard=False,
                     log_to_driver=False)
        started = True
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    description = {"ray": ray.__version__, "address": address or "local",
                   "nodes": [{"node_id": n["NodeID"], "host": n.get("NodeManagerHostname"),
                              "resources": n.get("Resources", {})} for n in nodes]}
    return ray, started, description


def _feasible(demand: dict[str, Any], nodes: list[dict[str, Any]]) -> bool:
    need = {"CPU": demand["num_cpus"], "GPU": demand["num_gpus"], **demand["resources"]}
    return any(all(node["resources"].get(k, 0) >= v for k, v in need.items() if v)
               for node in nodes)


def _demand_text(demand: dict[str, Any]) -> str:
    parts = [f"{k}={v:g}" for k, v in demand["resources"].items()]
    if demand["num_gpus"]:
        parts.insert(0, f"num_gpus={demand['num_gpus']:g}")
    return ", ".join(parts)


def _task(execute: Callable[[Point, float], dict[str, Any]], point: Point, timeout: float,
          ) -> dict[str, Any]:
    """The Ray task: ``execute`` travels as an argument (``ray.remote`` takes functions
    only, and tests wrap ``execute_point`` in a ``functools.partial``)."""
    return execute(point, timeout)


def run_ray(points: list[Point], execute: Callable[[Point, float], dict[str, Any]],
            timeout: float, on_done: Callable[[Point, dict[str, Any]], None],
            on_retry: Callable[[Point, str], None], ray: Any,
            description: dict[str, Any]) -> None:
    """Run every point as a Ray task; call ``on_done(point, outcome)`` once per point.
    KeyboardInterrupt cancels what is still running and propagates."""
    remote = ray.remote(max_retries=1)(_task)
    crash_errors = tuple(getattr(ray.exceptions, name) for name in (
        "WorkerCrashedError", "NodeDiedError", "OwnerDiedError", "ObjectLostError")
        if hasattr(ray.exceptions, name))
    attempts: dict[str, int] = {}
    in_flight: dict[Any, Point] = {}

    def submit(point: Point) -> None:
        attempts[point.id] = attempts.get(point.id, 0) + 1
        demand = point_resources(point)
        ref = remote.options(num_cpus=demand["num_cpus"], num_gpus=demand["num_gpus"],
                             resources=demand["resources"] or None).remote(execute, point, timeout)
        in_flight[ref] = point

    for point in points:
        demand = point_resources(point)
        if _feasible(demand, description["nodes"]):
            submit(point)
        else:  # Ray would keep an infeasible task pending for ever
            on_done(point, {"id": point.id, "status": REFUSED, "attempts": 0, "reason": (
                f"no node of the Ray cluster offers {_demand_text(demand)}: start the nodes "
                f"with `ray start --resources \"$(hwbench node-resources)\"`")})
    try:
        while in_flight:
            ready, _ = ray.wait(list(in_flight), num_returns=1, timeout=1.0)
            for ref in ready:
                point = in_flight.pop(ref)
                try:
                    outcome = ray.get(ref)
                except crash_errors as exc:  # Ray already ran it twice: a lost worker or node
                    attempts[point.id] = MAX_ATTEMPTS
                    outcome = {"id": point.id, "status": FAILED,
                               "reason": f"{type(exc).__name__}: {str(exc).splitlines()[0]}"}
                except Exception as exc:  # noqa: BLE001 - e.g. the task could not unpickle
                    outcome = {"id": point.id, "status": FAILED,
                               "reason": f"{type(exc).__name__}: {str(exc).splitlines()[0]}"}
                if outcome["status"] == FAILED and attempts[point.id] < MAX_ATTEMPTS:
                    on_retry(point, outcome["reason"])
                    submit(point)  # Ray places it on whichever worker is free
                    continue
                on_done(point, {**outcome, "attempts": attempts[point.id]})
    finally:
        for ref in in_flight:  # Ctrl-C: stop what still runs; finished points are saved
            try:
                ray.cancel(ref, force=True)
            except Exception:  # noqa: BLE001 - already finished or gone
                pass
