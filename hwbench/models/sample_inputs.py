"""Seeded inputs of every kind, by dtype and role: what ``hwbench run`` (``model_suite``)
feeds a model, and what int8 calibration feeds one with other than one float input.

- float inputs: standard normal;
- integer (or bool) inputs whose name says ``mask``: ones (attend to every position);
  ``token_type``: zeros (one segment);
- other integer inputs are token ids: uniform in [0, vocab), vocab the rows of the
  constant Gather table the input indexes (found by walking the graph through casts and
  reshapes); an id input that feeds no constant table gets [0, ``FALLBACK_IDS``), and
  the row says so (``notes``).

Sample i is the same at every batch size: one seed per (sample, input), so a smaller
batch's feeds (and reference) are a prefix of a larger one's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

FALLBACK_IDS = 16  # ids in [0, 16) where no Gather table bounds them
# ops an id tensor passes through on its way to the Gather that reads it
_ID_CARRIERS = {"Cast", "Reshape", "Unsqueeze", "Squeeze", "Flatten", "Identity"}


@dataclass
class InputPlan:
    """How each graph input is drawn, and what the row should say about it."""

    roles: dict[str, str]  # input -> "normal", "ones", "zeros", "ids"
    vocab: dict[str, int]  # id input -> ids drawn from [0, vocab)
    notes: list[str] = field(default_factory=list)
    sequence: int | None = None  # the length of the token-id inputs' sequence axis

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.vocab:
            out["input_ids_range"] = {name: [0, v] for name, v in self.vocab.items()}
        if self.notes:
            out["input_notes"] = list(self.notes)
        return out


def gather_tables(graph: Any, name: str) -> list[int]:
    """The row counts of the constant Gather tables that ``name`` indexes (directly or
    through ``_ID_CARRIERS``)."""
    readers: dict[str, list[Any]] = {}
    for node in graph.nodes:
        for i, value in enumerate(node.inputs):
            readers.setdefault(value, []).append((node, i))
    rows, frontier, seen = [], [name], set()
    while frontier:
        value = frontier.pop()
        if value in seen:
            continue
        seen.add(value)
        for node, i in readers.get(value, []):
            if node.op_type == "Gather" and i == 1 and node.inputs[0] in graph.initializers:
                table = graph.initializers[node.inputs[0]]
                axis = int(node.attrs.get("axis", 0)) % max(table.ndim, 1)
                rows.append(int(table.shape[axis]))
            elif node.op_type in _ID_CARRIERS and i == 0:
                frontier.extend(o for o in node.outputs if o)
    return rows


def plan_inputs(graph: Any) -> InputPlan:
    roles: dict[str, str] = {}
    vocab: dict[str, int] = {}
    notes: list[str] = []
    sequence = None
    for v in graph.inputs:
        dtype = np.dtype(v.dtype)
        lower = v.name.lower()
        if dtype.kind == "f":
            roles[v.name] = "normal"
        elif "mask" in lower:
            roles[v.name] = "ones"
        elif "token_type" in lower or "segment" in lower:
            roles[v.name] = "zeros"
        elif dtype == np.bool_:
            roles[v.name] = "ones"
            notes.append(f"{v.name}: a bool input of no known role, fed all true")
        else:
            roles[v.name] = "ids"
            tables = gather_tables(graph, v.name)
            if tables:
                vocab[v.name] = min(tables)
                if sequence is None and len(v.shape) == 2:
                    sequence = int(v.shape[1])
            else:
                vocab[v.name] = FALLBACK_IDS
                notes.append(f"{v.name}: an integer input that indexes no constant Gather "
                             f"table; fed ids in [0, {FALLBACK_IDS})")
    return InputPlan(roles, vocab, notes, sequence)


def sample(plan: InputPlan, graph: Any, i: int, seed: int) -> dict[str, np.ndarray]:
    """Sample ``i`` of every input (no batch axis), each from its own seed."""
    out = {}
    for k, v in enumerate(graph.inputs):
        shape, dtype = tuple(v.shape[1:]), np.dtype(v.dtype)
        # the first input keeps the seed it always had (references stay comparable)
        rng = np.random.default_rng([seed, i] if k == 0 else [seed, i, k])
        role = plan.roles[v.name]
        if role == "normal" and dtype == np.float32:
            out[v.name] = rng.standard_normal(shape, dtype=np.float32)
        elif role == "normal":
            out[v.name] = rng.standard_normal(shape).astype(dtype)
        elif role == "ones":
            out[v.name] = np.ones(shape, dtype)
        elif role == "zeros":
            out[v.name] = np.zeros(shape, dtype)
        else:
            out[v.name] = rng.integers(0, plan.vocab[v.name], shape).astype(dtype)
    return out


def batch_feeds(graph: Any, batch: int, seed: int) -> tuple[dict[str, np.ndarray], InputPlan]:
    """One batch of feeds for every input of ``graph`` (samples 0..batch-1)."""
    plan = plan_inputs(graph)
    samples = [sample(plan, graph, i, seed) for i in range(batch)]
    return {v.name: np.stack([s[v.name] for s in samples]) for v in graph.inputs}, plan
