"""The measured-results tables of the README and docs/, rendered from the files under results/
(and one that is not measured: the supported-ops table, from the op registry).

A table on a page sits between marker comments::

    <!-- results:NAME -->
    ... generated, never typed ...
    <!-- /results:NAME -->

``python -m hwbench.harness.results.doc_tables`` rewrites every such table from the result
file it names (read with ``result_files.read_result``); ``--check`` rewrites nothing and
exits 1 naming every stale table, so a retyped figure or a re-measured file without its
page fails CI. Each table says which hardware it was measured on and which file it is from.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hwbench.errors import ResultsError
from hwbench.graph import catalog
from hwbench.harness.results import peer_tables
from hwbench.harness.results.node_test_table import node_tests_table
from hwbench.harness.results.table_parts import (  # noqa: F401 - doc_tables.X as before
    LIBRARIES,
    MACHINE,
    Source,
    _figure,
    _flagged,
    _ms,
    _ordered,
    _table,
    _warnings,
    load,
    rate,
    ratio,
)

ROOT = Path(__file__).resolve().parents[3]
MARKER = re.compile(r"(<!-- results:([\w-]+) -->\n)(.*?)(<!-- /results:\2 -->)", re.DOTALL)


# -- the tables ---------------------------------------------------------------------------

def kernels_table(source: Source, mine: str = "cpu", peer: str | None = "torch",
                  peak_of: str = "cpu") -> list[str]:
    """GFLOP/s (GOP/s for int8) per case and backend; ``peak_of``'s % of the measured FMA
    peak, and ``mine`` against ``peer``."""
    backends = source.backends()
    cases = _ordered([row.get("case") for row in source.rows])
    header = ["case", *backends]
    with_peak = any(_figure(source.row(peak_of, case=c), "fraction_of_peak") is not None
                    and not str(c).startswith(("gemm_int8", "qgemm")) for c in cases)
    if with_peak:
        header.append(f"{peak_of} % of peak")
    if peer in backends:
        header.append(f"{mine} / {peer}")
    body = []
    for case in cases:
        cells = [f"`{case}`"]
        cells += [_flagged(rate(_figure(row, "gflops")), row)
                  for row in (source.row(b, case=case) for b in backends)]
        if with_peak:
            fraction = _figure(source.row(peak_of, case=case), "fraction_of_peak")
            int8 = str(case).startswith(("gemm_int8", "qgemm"))
            cells.append("—" if fraction is None or int8 else f"{100 * fraction:.0f} %")
        if peer in backends:
            cells.append(ratio(_figure(source.row(mine, case=case), "gflops"),
                               _figure(source.row(peer, case=case), "gflops")))
        body.append(cells)
    batch = source.result.get("batch")
    lines = _table(header, ["l", *"r" * (len(header) - 1)], body)
    what = (f"GFLOP/s (GOP/s for int8), median time; `--shapes {source.result.get('shapes')}`"
            + (f", convs at batch {batch}" if batch else "") + "; — where a row failed or "
            "a backend lacks the op.")
    return [source.caption(), "", *lines, "", what, *_warnings(source)]


def _accuracy(source: Source, model: str, batch: int, precision: str,
              backends: list[str]) -> str:
    rows = [source.row(b, model=model, batch=batch, precision=precision) for b in backends]
    rows = [r for r in rows if r is not None and r.get("status") == "ok"]
    top1 = [r["top1"] for r in rows if isinstance(r.get("top1"), (int, float))]
    if top1:
        low, high = min(top1), max(top1)
        shown = f"{100 * low:.1f} %" if low == high else f"{100 * low:.1f}–{100 * high:.1f} %"
        return f"top-1 {shown}"
    errors = [r["rel_error"] for r in rows if isinstance(r.get("rel_error"), (int, float))]
    return f"≤ {max(errors):.1e} vs fp64" if errors else "—"


def models_table(source: Source, batch: int = 8, ours: str = "cpu",
                 peer: str = "onnxruntime", latency: bool = False) -> list[str]:
    """Samples/s at ``batch`` per model (× precision) and backend, ``ours`` against
    ``peer``, and the accuracy every backend reached."""
    backends = source.backends()
    keys = _ordered([(row.get("model"), row.get("precision")) for row in source.rows
                     if row.get("batch") == batch])
    precisions = _ordered([p for _, p in keys])
    header = ["model", *(["precision"] if len(precisions) > 1 else []), *backends]
    if latency:
        header += [f"{b} p50 at batch 1" for b in (ours, peer) if b in backends]
    if ours in backends and peer in backends:
        header.append(f"{ours} / {peer}")
    header.append("accuracy (every backend)")
    body = []
    for model, precision in keys:
        cells = [str(model), *([str(precision)] if len(precisions) > 1 else [])]
        cells += [_flagged(rate(_figure(row, "samples_per_s")), row)
                  for row in (source.row(b, model=model, batch=batch, precision=precision)
                              for b in backends)]
        if latency:
            cells += [_ms(_figure(source.row(b, model=model, batch=1, precision=precision),
                                  "latency_p50")) for b in (ours, peer) if b in backends]
        if ours in backends and peer in backends:
            cells.append(ratio(
                _figure(source.row(ours, model=model, batch=batch, precision=precision),
                        "samples_per_s"),
                _figure(source.row(peer, model=model, batch=batch, precision=precision),
                        "samples_per_s")))
        cells.append(_accuracy(source, model, batch, precision, backends))
        body.append(cells)
    prefix = 2 if len(precisions) > 1 else 1
    align = ["l"] * prefix + ["r"] * (len(header) - prefix - 1) + ["l"]
    lines = _table(header, align, body)
    what = (f"Samples/s at batch {batch}; accuracy: top-1 on the digits test split, else the "
            "largest relative error against the float64 run of the same graph.")
    return [source.caption(), "", *lines, "", what, *_warnings(source)]


def _kernels(name: str, **options: Any) -> Callable[[Path], list[str]]:
    return lambda root: kernels_table(load(root, name), **options)


def _models(name: str, **options: Any) -> Callable[[Path], list[str]]:
    return lambda root: models_table(load(root, name), **options)


def _newest_node_tests(root: Path) -> list[str]:
    """The node-tests table from the newest ``node-tests-*.json`` (scripts/node-tests.sh):
    a new record without its page regenerated fails the check."""
    def stamp(path: Path) -> tuple[str, int]:  # ...-YYYYMMDD-HHMMSS[-N].json
        found = re.search(r"(\d{8}-\d{6})(?:-(\d+))?\.json$", path.name)
        return (found.group(1), int(found.group(2) or 1)) if found else ("", 0)

    found = sorted((root / "results" / MACHINE).glob("node-tests-*.json"), key=stamp)
    if not found:
        raise ResultsError(f"no node-tests-*.json under results/{MACHINE} "
                           "(scripts/node-tests.sh makes one)")
    return node_tests_table(load(root, found[-1].name))


# measured table name -> how it is made (from which file); each names its hardware
MEASURED: dict[str, Callable[[Path], list[str]]] = {
    "kernels-headline": _kernels("kernels-vm-20261125-082612.json"),
    "models-fp32": _models("models-vm-20261204-144327.json", latency=True),
    "models-int8": _models("models-vm-20261125-101424.json"),
    "models-int8-fast": _models("models-vm-20261125-130513.json"),
    "kernels-opencl": _kernels("kernels-vm-20261125-121444.json", mine="opencl", peer="cpu"),
    "node-tests": _newest_node_tests,
    # scripts/speed-vs-peers.sh: hwbench cpu beside onnxruntime and PyTorch
    **peer_tables.tables(load, "models-vm-20261205-043612.json"),
}
# ... and the one that is not a measurement: the op registry and the backends' kernels
TABLES: dict[str, Callable[[Path], list[str]]] = {
    **MEASURED, "ops": lambda root: catalog.markdown()}


def render(name: str, root: Path = ROOT) -> str:
    if name not in TABLES:
        raise ResultsError(f"no results table {name!r}; known: {', '.join(TABLES)}")
    return "\n".join(TABLES[name](root)) + "\n"


def pages(root: Path = ROOT) -> list[Path]:
    return [root / "README.md", *sorted((root / "docs").glob("**/*.md"))]


def update(text: str, root: Path = ROOT) -> str:
    """The page with every marked table rendered afresh."""
    return MARKER.sub(lambda m: m.group(1) + render(m.group(2), root) + m.group(4), text)


def stale(root: Path = ROOT) -> list[str]:
    """``page: table`` for every table that differs from what its file renders."""
    found = []
    for page in pages(root):
        text = page.read_text(encoding="utf-8")
        for match in MARKER.finditer(text):
            if match.group(3) != render(match.group(2), root):
                found.append(f"{page.relative_to(root)}: results:{match.group(2)}")
    return found


def main(argv: list[str] | None = None, root: Path = ROOT) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m hwbench.harness.results.doc_tables",
        description="Render the measured-results tables of README.md and docs/ from results/.")
    parser.add_argument("--check", action="store_true",
                        help="change nothing; exit 1 if a table differs from its file")
    args = parser.parse_args(argv)
    if args.check:
        found = stale(root)
        for line in found:
            print(f"stale: {line} (run python -m hwbench.harness.results.doc_tables)")
        return 1 if found else 0
    for page in pages(root):
        text = page.read_text(encoding="utf-8")
        new = update(text, root)
        if new != text:
            page.write_text(new, encoding="utf-8")
            print(f"updated {page.relative_to(root)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
