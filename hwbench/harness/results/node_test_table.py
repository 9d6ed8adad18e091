"""The node-tests table of docs/ops.md: which ONNX node tests passed on which backend.

Rendered from a ``hwbench.node-tests`` result file (written by ``pytest
--node-test-record FILE``, tests/node_test_record.py; ``scripts/node-tests.sh`` saves one
under results/MACHINE/): one line per op of the registry (``catalog.entries()``), its node
tests, and per backend the node tests that passed out of those recorded, at the kernel
level and through the graph layer. An op without a node test says why, from the record
(tests/test_graph_ops.py's reasons) or the registry (folded at load, removed by a pass).
A backend on which every node test was skipped (absent here) is a note, not a column.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from hwbench.graph import catalog

LEVELS = ("kernel", "graph")
SHOWN_FAILURES = 20  # failed node tests named one by one; the rest are counted


def _count(rows: list[dict[str, Any]]) -> tuple[int, int]:
    return sum(r.get("status") == "passed" for r in rows), len(rows)


def _cell(rows: list[dict[str, Any]]) -> str:
    """``passed/recorded`` at one level; — where none were recorded; skipped where none ran."""
    if not rows:
        return "—"
    if all(r.get("status") == "skipped" for r in rows):
        return "skipped"
    passed, total = _count(rows)
    return f"{passed}/{total}" + ("" if passed == total else " ✗")


def _listed(names: list[str]) -> str:
    shown = ", ".join(f"`{n}`" for n in names)
    return f"<details><summary>{len(names)}</summary>{shown}</details>"


def _no_test_reason(entry: catalog.OpEntry | None, reasons: dict[str, str]) -> str:
    if entry is not None and entry.name in reasons:
        return f"none: {reasons[entry.name]}"
    if entry is not None and entry.on_host:
        return f"none: never reaches a backend; {entry.how}"
    return "none recorded"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def node_tests_table(source: Any) -> list[str]:
    """The table's lines, caption first (``source``: a ``doc_tables.Source``)."""
    rows = source.rows
    backends = list(dict.fromkeys(r.get("backend") for r in rows))
    ran = [b for b in backends
           if any(r.get("backend") == b and r.get("status") != "skipped" for r in rows)]
    entries = {e.name: e for e in catalog.entries()}
    ops = list(entries) + [op for op in dict.fromkeys(r.get("op") for r in rows)
                           if op not in entries]
    by_key: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for r in rows:
        by_key.setdefault((r.get("op"), r.get("backend"), r.get("level")), []).append(r)
    reasons = source.result.get("no_node_tests") or {}

    header = ["op", "node tests", *ran]
    body = []
    for op in ops:
        names = list(dict.fromkeys(r.get("case") for r in rows if r.get("op") == op))
        if not names:
            body.append([f"`{op}`", _no_test_reason(entries.get(op), reasons),
                         *("—" for _ in ran)])
            continue
        cells = [" · ".join(_cell(by_key.get((op, b, level), [])) for level in LEVELS)
                 for b in ran]
        body.append([f"`{op}`", _listed(names), *cells])
    totals = []
    for b in ran:
        parts = [_count([r for r in rows if r.get("backend") == b and r.get("level") == lv])
                 for lv in LEVELS]
        totals.append(" · ".join(f"**{p}/{t}**" for p, t in parts))
    body.append(["**all**", f"**{len({r.get('case') for r in rows})}**", *totals])
    lines = ["| " + " | ".join(header) + " |",
             "| --- | --- | " + " | ".join("---:" for _ in ran) + " |",
             *("| " + " | ".join(cells) + " |" for cells in body)]
    return [source.caption(), "", *lines, "", *_notes(source, rows, backends, ran)]


def _notes(source: Any, rows: list[dict[str, Any]], backends: list[Any],
           ran: list[Any]) -> list[str]:
    out = ["Each cell: node tests passed / recorded at the kernel level "
           "(`tests/test_onnx_node_<family>.py`) · as one-node models through the graph "
           "layer (`tests/test_onnx_node_graph.py`; reductions and Resize with their "
           "run-time inputs made constants); — none at that level (a run-time shape input "
           "the graph layer refuses on purpose); ✗ some failed (listed below).", ""]
    for b in backends:
        if b in ran:
            continue
        why = Counter(r.get("reason", "") for r in rows if r.get("backend") == b)
        out.append(f"- `{b}`: every node test skipped ({'; '.join(why)}).")
    skipped = Counter((r.get("backend"), r.get("reason", "")) for r in rows
                      if r.get("backend") in ran and r.get("status") == "skipped")
    for (b, why), n in skipped.items():
        out.append(f"- `{b}`: {_plural(n, 'node test')} skipped: {why}")
    bad = [r for r in rows if r.get("status") not in ("passed", "skipped")]
    for r in bad[:SHOWN_FAILURES]:
        out.append(f"- {r.get('status')}: `{r.get('case')}` ({r.get('op')}) on "
                   f"`{r.get('backend')}`, {r.get('level')} level: {r.get('reason', '')}")
    if len(bad) > SHOWN_FAILURES:
        out.append(f"- ... and {len(bad) - SHOWN_FAILURES} more not passed (see the file).")
    run = source.result.get("pytest") or {}
    if run.get("seconds") is not None:
        out.append(f"- The run: {_plural(len(rows), 'node-test item')} in "
                   f"{run['seconds']:.0f} s, pytest exit status {run.get('exitstatus')}.")
    notes = [f"> **Note:** {note}" for note in source.result.get("notes") or []]
    return [*out, *([""] if notes else []), *notes]
