"""Worker process entry point: ``python -m hwbench.harness.running.worker`` (see ``isolation``)."""

from __future__ import annotations

import json
import sys
from typing import Any

from hwbench.backends import get_backend
from hwbench.harness.measure.ceilings import measure_ceilings
from hwbench.harness.results.result_files import to_jsonable
from hwbench.harness.running import omp_wait
from hwbench.harness.running.lifeline import die_with_parent_from_env
from hwbench.harness.running.row_status import failure_fields
from hwbench.harness.suites import kernel_suite, model_suite
from hwbench.harness.suites.peers import get_peer


def _emit(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message, default=to_jsonable) + "\n")
    sys.stdout.flush()


def run_kernels(job: dict[str, Any]) -> None:
    """Create the backend, then run the cases the parent asks for, one line at a time."""
    make = get_peer if job.get("peer") else get_backend
    backend = make(job["backend"], **job.get("options", {}))
    specs = kernel_suite.plan(tuple(job["ops"]), job["shapes"], job["batch"])
    _emit({"type": "info", "info": {**backend.info(), "openmp_wait_env": omp_wait.seen()}})
    for line in sys.stdin:
        command = json.loads(line)
        if command.get("quit"):
            return
        index = int(command["run"])
        case = kernel_suite.make_case(specs[index], job["seed"], index)
        try:
            row = kernel_suite.run_case(backend, case, **job["timing"])
        except Exception as exc:  # noqa: BLE001 - one failed case, the worker goes on
            row = {"backend": backend.full_name, "op": case.op, "case": case.name,
                   **failure_fields(exc)}
        _emit({"type": "row", "index": index, "row": row})


def run_models(job: dict[str, Any]) -> None:
    """Create the backend (or peer), then run the model cases the parent asks for."""
    runner = model_suite.make_runner(job)
    info = {**runner.info(), "openmp_wait_env": omp_wait.seen()}  # what libgomp read here
    if job.get("ceilings"):  # the roofline's, measured before any case, with this backend
        try:
            info["ceilings"] = measure_ceilings(runner.backend)
        except Exception as exc:  # noqa: BLE001 - no roofline for it; its cases still run
            info["ceilings"] = {"error": f"{type(exc).__name__}: {exc}"}
    _emit({"type": "info", "info": info})
    cases = model_suite.plan(job["models"], job["batches"], job["precisions"],
                             job.get("dims"))
    for line in sys.stdin:
        command = json.loads(line)
        if command.get("quit"):
            return
        index = int(command["run"])
        try:
            row = runner.run(cases[index], command.get("reference"))
        except Exception as exc:  # noqa: BLE001 - one failed case, the worker goes on
            row = failure_fields(exc)
        _emit({"type": "row", "index": index, "row": row})


JOBS = {"kernels": run_kernels, "models": run_models}


def main() -> int:
    die_with_parent_from_env()  # never outlive the parent (killed, or ended by SIGTERM)
    job = json.loads(sys.stdin.readline())
    try:
        if job["kind"] not in JOBS:
            raise ValueError(f"unknown job kind {job['kind']!r}")
        JOBS[job["kind"]](job)
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which goes on
        _emit({"type": "fatal", **failure_fields(exc)})
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
