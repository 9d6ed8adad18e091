"""What every ``hwbench train`` run reports, whatever the model: each model's report adds
its own metrics to these fields."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class TrainReport:
    model: str
    backend: str
    seed: int
    epochs: int
    seconds: float
    samples_per_second: float
    losses: list[float]  # one per epoch
