"""Worker process entry point: ``python -m hwbench.harness.worker`` (see ``isolation``)."""

from __future__ import annotations

import itertools
import json
import sys
from typing import Any

from hwbench.harness.results import to_jsonable


def _emit(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message, default=to_jsonable) + "\n")
    sys.stdout.flush()


def run_kernels(job: dict[str, Any]) -> None:
    from hwbench.backends import get_backend
    from hwbench.harness import kernel_suite
    from hwbench.harness.peers import get_peer

    make = get_peer if job.get("peer") else get_backend
    backend = make(job["backend"], **job.get("options", {}))
    _emit({"type": "info", "info": backend.info()})
    cases = kernel_suite.build_cases(tuple(job["ops"]), job["shapes"], job["batch"], job["seed"])
    for index, case in enumerate(itertools.islice(cases, job["start"], None), job["start"]):
        _emit({"type": "start", "index": index, "case": case.name})
        row = kernel_suite.run_case(backend, case, **job["timing"])
        _emit({"type": "row", "index": index, "row": row})
    _emit({"type": "done"})


def main() -> int:
    job = json.loads(sys.stdin.read())
    try:
        if job["kind"] == "kernels":
            run_kernels(job)
        else:
            raise ValueError(f"unknown job kind {job['kind']!r}")
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which goes on
        _emit({"type": "fatal", "reason": f"{type(exc).__name__}: {exc}"})
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
