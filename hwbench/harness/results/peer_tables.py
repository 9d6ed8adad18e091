"""hwbench against its whole-model peers (issue 16): the ``models-peers`` table (every zoo
model at batch 1 and 8: hwbench ``cpu``, onnxruntime and PyTorch samples/s and the ratios),
``models-peers-ratios`` (one line a model: the ratios at both batches, those under the
goal marked) and ``models-peers-summary`` (geometric-mean ratios and the worst model), all from one
run of ``scripts/speed-vs-peers.sh``. Zoo models the run did not measure are named under
the table, so a subset run says it is one.
"""

from __future__ import annotations

import math
from typing import Any

from hwbench.harness.results.table_parts import (
    Source,
    _figure,
    _ms,
    _table,
    _warnings,
    rate,
)

OURS = "cpu"
PEERS = ("onnxruntime", "torch")
BATCHES = (1, 8)


def zoo_names() -> list[str]:
    """Every zoo model, in ``hwbench run --model all``'s order."""
    from hwbench.harness.suites.model_suite import expand_models

    return expand_models("all")


def _speed(source: Source, backend: str, model: str, batch: int) -> float | None:
    return _figure(source.row(backend, model=model, batch=batch, precision="fp32"),
                   "samples_per_s")


def ratios(source: Source, peer: str, batch: int) -> dict[str, float]:
    """model -> hwbench cpu samples/s ÷ ``peer``'s, where both rows are ok."""
    out = {}
    for model in _models(source):
        ours, theirs = _speed(source, OURS, model, batch), _speed(source, peer, model, batch)
        if ours is not None and theirs:
            out[model] = ours / theirs
    return out


def geomean(values: list[float]) -> float | None:
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else None


def _models(source: Source) -> list[str]:
    listed = source.result.get("models") or []
    return [m for m in listed if any(r.get("model") == m for r in source.rows)]


def _times(value: float | None) -> str:
    return f"{value:.2f}×" if value is not None else "—"


def _peers(source: Source) -> list[str]:
    return [p for p in PEERS if p in source.backends()]


def _absent(source: Source) -> list[str]:
    """Why a figure is missing: each failed or refused row's first line, once per reason."""
    reasons: dict[str, list[str]] = {}
    for row in source.rows:
        if row.get("status") != "ok":
            why = str(row.get("reason") or row.get("error") or row.get("status")).split("\n")[0]
            reasons.setdefault(f"{row.get('backend')}: {why[:160]}", []).append(
                f"{row.get('model')} b{row.get('batch')}")
    return [f"{why} ({', '.join(cases)})" for why, cases in reasons.items()]


def _settings(source: Source) -> str:
    """How each peer ran, from its recorded info."""
    backends = source.result.get("backends") or {}
    parts = []
    ort = backends.get("onnxruntime") or {}
    if ort:
        parts.append(f"onnxruntime: CPU provider, {ort.get('threads')} intra-op threads, "
                     f"inter-op {ort.get('inter_op_threads', '?')}, "
                     f"{ort.get('execution_mode', '?')} execution, graph optimization level "
                     f"{ort.get('graph_optimization_level', '?')}, on the graph hwbench runs")
    torch = backends.get("torch") or {}
    if torch:
        parts.append(f"PyTorch: {torch.get('torch_build', '?')} build, "
                     f"{torch.get('threads')} threads (inter-op "
                     f"{torch.get('interop_threads', '?')}), eager under inference_mode, "
                     "the same ONNX graph converted op by op to torch calls (fp32)")
    return "; ".join(parts)


def models_peers_table(source: Source) -> list[str]:
    """Samples/s per zoo model and batch: hwbench cpu, each peer, and cpu ÷ each peer."""
    peers = _peers(source)
    header = ["model", "batch", f"hwbench {OURS}", *peers, *(f"{OURS} / {p}" for p in peers)]
    body = []
    for model in _models(source):
        for batch in BATCHES:
            ours = _speed(source, OURS, model, batch)
            theirs = [_speed(source, p, model, batch) for p in peers]
            body.append([model, str(batch), rate(ours), *(rate(t) for t in theirs),
                         *(_times(ours / t if ours is not None and t else None)
                           for t in theirs)])
    lines = _table(header, ["l", *"r" * (len(header) - 1)], body)
    missing = [m for m in zoo_names() if m not in _models(source)]
    counts = [len(r["timing"]["samples"]) for r in source.rows
              if r.get("status") == "ok" and isinstance(r.get("timing"), dict)]
    notes = [f"Samples/s (median of ≥ {min(counts, default=0)} timed runs), fp32, each "
             "engine in its own worker process on the same inputs "
             f"and weights; ratios > 1 mean hwbench is faster. {_settings(source)}."]
    if missing:
        notes.append(f"A subset: {len(_models(source))} of {len(zoo_names())} zoo models. "
                     f"Not in this run: {', '.join(missing)} — the full run "
                     "(`scripts/speed-vs-peers.sh`, MODELS=all) is for a quiet machine.")
    absent = _absent(source)
    if absent:
        notes.append("— where a row failed or was refused: " + "; ".join(absent) + ".")
    return [source.caption(), "", *lines, "", *notes, *_warnings(source)]


GOAL = 0.8  # issue 16: no model below 0.8x onnxruntime


def _ratio_cell(source: Source, model: str, batch: int, peer: str) -> str:
    """cpu ÷ ``peer`` at ``batch``; under ``GOAL`` against onnxruntime in bold, and a ⚠
    when either row was flagged."""
    rows = [source.row(e, model=model, batch=batch, precision="fp32") for e in (OURS, peer)]
    ours, theirs = (_figure(r, "samples_per_s") for r in rows)
    if ours is None or not theirs:
        return "—"
    value = ours / theirs
    cell = f"**{_times(value)}**" if peer == "onnxruntime" and value < GOAL else _times(value)
    return f"{cell} ⚠" if any(r.get("flags") for r in rows) else cell


def models_peers_ratios(source: Source) -> list[str]:
    """One line a zoo model: the batch-1 call time of hwbench cpu and onnxruntime, and cpu ÷
    each peer at batch 1 and 8; ratios under the goal against onnxruntime in bold."""
    peers = _peers(source)
    header = ["model", f"{OURS} at batch 1", *(f"{p} at batch 1" for p in peers[:1]),
              *(f"{OURS} / {p}, batch {b}" for p in peers for b in BATCHES)]
    body = []
    for model in _models(source):
        call = [_speed(source, e, model, 1) for e in (OURS, *peers[:1])]
        body.append([model, *(_ms(1 / v if v else None) for v in call),
                     *(_ratio_cell(source, model, b, p) for p in peers for b in BATCHES)])
    lines = _table(header, ["l", *"r" * (len(header) - 1)], body)
    return [source.caption(), "", *lines, "",
            "Median time of one batch-1 call, then hwbench samples/s ÷ each peer's (> 1: "
            f"hwbench is faster); **bold**: under issue 16's {GOAL}× goal against onnxruntime; "
            "⚠: either row flagged.", *_warnings(source)]


def models_peers_summary(source: Source) -> list[str]:
    """Geometric-mean ratio per peer and batch, and the model where hwbench is furthest
    behind."""
    body = []
    for peer in _peers(source):
        for batch in BATCHES:
            found = ratios(source, peer, batch)
            worst = min(found, key=found.__getitem__) if found else None
            body.append([f"{OURS} / {peer}", str(batch), str(len(found)),
                         _times(geomean(list(found.values()))),
                         f"{worst} ({_times(found[worst])})" if worst else "—"])
    lines = _table(["ratio", "batch", "models", "geometric mean", "worst model"],
                   ["l", "r", "r", "r", "l"], body)
    measured, zoo = len(_models(source)), len(zoo_names())
    scope = ("every zoo model" if measured >= zoo else
             f"{measured} of {zoo} zoo models (a subset; the full table: docs/results.md)")
    return [source.caption(), "", *lines, "",
            f"hwbench `{OURS}` samples/s ÷ each peer's over {scope}; > 1 means hwbench is "
            "faster.", *_warnings(source)]


def tables(load: Any, name: str) -> dict[str, Any]:
    """The three tables from result file ``name`` (``load(root, name)`` -> Source)."""
    return {"models-peers": lambda root: models_peers_table(load(root, name)),
            "models-peers-ratios": lambda root: models_peers_ratios(load(root, name)),
            "models-peers-summary": lambda root: models_peers_summary(load(root, name))}
