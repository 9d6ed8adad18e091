"""Backends side by side in one model run: each backend's speed ÷ the first backend's,
per model, with the geometric mean over the models both ran (issue 16's ``opencl`` ÷
``cpu`` goal is stated as such a mean "in one ``hwbench run``"). Used by ``hwbench run``'s
console output and its ``--markdown`` summary; ``python -m
hwbench.harness.results.backend_ratios RESULT.json`` prints it for a saved run.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from typing import Any

from hwbench.errors import ArgumentError


@dataclass(frozen=True)
class RatioGroup:
    """``backend`` samples/s ÷ ``base`` samples/s at one (precision, batch)."""

    base: str
    backend: str
    precision: str
    batch: int
    ratios: dict[str, float]  # model -> ratio, where both rows are ok

    @property
    def geomean(self) -> float:
        return math.exp(sum(math.log(r) for r in self.ratios.values()) / len(self.ratios))

    @property
    def worst(self) -> str:
        return min(self.ratios, key=self.ratios.__getitem__)


def _speed(row: dict[str, Any]) -> float | None:
    value = row.get("samples_per_s")
    if row.get("status") != "ok" or not isinstance(value, (int, float)) or value <= 0:
        return None
    return float(value)


def backend_order(rows: list[dict[str, Any]]) -> list[str]:
    """Backends in the order the rows first name them (a run's ``--backend`` order)."""
    seen: list[str] = []
    for row in rows:
        if row.get("backend") not in seen:
            seen.append(row.get("backend"))
    return seen


def ratio_groups(rows: list[dict[str, Any]], order: list[str] | None = None) -> list[RatioGroup]:
    """One group per other backend and (precision, batch) with at least one model both
    ran; the base is ``order[0]`` (default: the first backend in ``rows``)."""
    if not isinstance(rows, list):
        raise ArgumentError(f"argument 'rows': a list of result rows, not {type(rows).__name__}")
    order = backend_order(rows) if order is None else list(order)
    if len(order) < 2:
        return []
    base = order[0]
    speeds: dict[tuple[str, str, int, str], float] = {}
    for row in rows:
        speed = _speed(row)
        if speed is not None:
            speeds[(row.get("backend"), row.get("precision", "fp32"), row.get("batch"),
                    row.get("model"))] = speed
    groups = []
    for backend in order[1:]:
        cases = sorted({(p, b) for (name, p, b, _) in speeds if name == backend},
                       key=lambda pb: (str(pb[0]), pb[1] or 0))
        for precision, batch in cases:
            ratios = {}
            for (name, p, b, model), speed in speeds.items():
                mine = speeds.get((base, p, b, model))
                if name == backend and (p, b) == (precision, batch) and mine:
                    ratios[model] = speed / mine
            if ratios:
                groups.append(RatioGroup(base, backend, precision, batch, ratios))
    return groups


def ratio_lines(rows: list[dict[str, Any]], order: list[str] | None = None) -> list[str]:
    """A line per group: the geometric mean, over how many models, and the worst one."""
    return [f"{g.backend} ÷ {g.base} samples/s, {g.precision} batch {g.batch}: geometric "
            f"mean {g.geomean:.3f} over {len(g.ratios)} model(s); lowest {g.worst} "
            f"{g.ratios[g.worst]:.2f}" for g in ratio_groups(rows, order)]


def ratio_markdown(rows: list[dict[str, Any]], order: list[str] | None = None) -> str:
    """The groups as a Markdown table (empty when the rows hold a single backend)."""
    groups = ratio_groups(rows, order)
    if not groups:
        return ""
    lines = ["| ratio | precision | batch | models | geometric mean | lowest |",
             "| --- | --- | ---: | ---: | ---: | --- |"]
    for g in groups:
        lines.append(f"| {g.backend} ÷ {g.base} | {g.precision} | {g.batch} | "
                     f"{len(g.ratios)} | {g.geomean:.3f} | {g.worst} "
                     f"({g.ratios[g.worst]:.2f}) |")
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    """Print the ratio lines of saved model runs."""
    from hwbench.harness.results.result_files import read_result

    for name in argv:
        result = read_result(name)
        order = list(result.get("backends") or {}) or None
        print(name)
        for line in ratio_lines(result["rows"], order):
            print("  " + line)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
