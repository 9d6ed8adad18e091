"""Two runs compared benchmark by benchmark: the ``Comparison``, what differs between the
runs' machines, ``--normalized``'s scaling and ``--confirm``'s re-runs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hwbench.errors import ResultsError
from hwbench.harness.measure import reference_workload
from hwbench.harness.results.benchmark_runs import TIMING_NEUTRAL_FLAGS, Entry, Run
from hwbench.harness.results.verdicts import Change, Thresholds, compare_entries


@dataclass
class Comparison:
    """Two runs compared: a ``Change`` per benchmark both have, and what only one has."""

    old: Run
    new: Run
    thresholds: Thresholds
    normalized: bool
    changes: list[Change]
    only_old: list[str]
    only_new: list[str]
    notes: list[str]  # different machines, library versions, ...
    confirmed_by: list[str] = field(default_factory=list)  # re-runs a regression must repeat in

    @property
    def unconfirmed(self) -> list[Change]:
        return [c for c in self.changes if c.verdict == "unconfirmed"]

    @property
    def regressions(self) -> list[Change]:
        return [c for c in self.changes if c.verdict in ("regression", "broken")]

    @property
    def undecided(self) -> list[Change]:
        """Past the threshold by median, but too few samples to tell it from noise."""
        return [c for c in self.changes if c.verdict == "undecided"]

    @property
    def inconclusive(self) -> list[Change]:
        """Flagged rows or a busy machine: shown, never counted as slower or faster."""
        return [c for c in self.changes if c.verdict == "inconclusive"]

    @property
    def invalid(self) -> list[Change]:
        """Timings that are not positive numbers (NaN, null, non-numeric) on a side."""
        return [c for c in self.changes if c.verdict == "invalid"]

    @property
    def improvements(self) -> list[Change]:
        return [c for c in self.changes if c.verdict in ("improvement", "fixed")]

    @property
    def accuracy_regressions(self) -> list[Change]:
        return [c for c in self.changes if c.accuracy_regressed]

    @property
    def failed(self) -> bool:
        """True if a regression passes a ``--fail-on`` threshold (the exit status)."""
        speed = self.thresholds.median is not None and bool(self.regressions or self.undecided)
        # exact kernels with new mismatches fail only when accuracy is checked
        accuracy = self.thresholds.accuracy is not None and bool(self.accuracy_regressions)
        # nothing to compare, or timings that cannot be compared, never pass
        return speed or accuracy or bool(self.invalid) or not self.changes

    def failure_text(self) -> str:
        """What failed, for the CLI's FAIL line."""
        parts = [f"{len(self.regressions)} slower", f"{len(self.accuracy_regressions)} less "
                 "accurate past --fail-on"]
        if self.undecided:
            parts.append(f"{len(self.undecided)} past the threshold with too few samples "
                         "to judge")
        if self.invalid:
            parts.append(f"{len(self.invalid)} with invalid timings")
        if not self.changes:
            parts.append("no benchmark in both runs")
        return ", ".join(parts)


def environment_notes(old: Run, new: Run) -> list[str]:
    """What differs between the two runs' machines and libraries, one line each."""
    notes = []
    hw = [k for k in ("cpu", "arch", "cores", "threads") if old.machine.get(k) !=
          new.machine.get(k) and "?" not in (old.machine.get(k), new.machine.get(k))]
    if hw:
        notes.append("DIFFERENT MACHINES: " + "; ".join(
            f"{k} {old.machine.get(k)!r} -> {new.machine.get(k)!r}" for k in hw)
            + " — raw times compare the machines, not the code (try --normalized)")
    elif old.machine.get("host") != new.machine.get("host"):
        notes.append(f"different hosts of the same kind: {old.machine.get('host')} -> "
                     f"{new.machine.get('host')}")
    changed = [k for k in sorted(set(old.versions) & set(new.versions))
               if old.versions[k] != new.versions[k]]
    if changed:
        notes.append("different library versions: " + "; ".join(
            f"{k} {old.versions[k]} -> {new.versions[k]}" for k in changed))
    waits = old.machine.get("omp_wait", "?"), new.machine.get("omp_wait", "?")
    if waits[0] != waits[1] and "?" not in waits:
        notes.append(f"different OpenMP wait policies: {waits[0]} -> {waits[1]} (spinning "
                     "threads run small kernels up to ~1.7x faster on an idle machine, far "
                     "slower on a busy one): the times compare the settings, not the code")
    if old.kind != new.kind:
        notes.append(f"different kinds of results: {old.kind} vs {new.kind}")
    return notes


def normalizer(run: Run, reference_for_kind: dict[str, Any]):
    """entry -> the run's reference seconds for that entry's kind of work."""
    if not run.reference:
        raise ResultsError(
            f"{run.path} has no reference workload timing, so it cannot be normalized "
            f"(runs of this hwbench record one; re-run, or compare without --normalized)")
    if run.reference.get("version") != reference_for_kind.get("version"):
        raise ResultsError(f"{run.path}: reference workload version "
                           f"{run.reference.get('version')} differs from "
                           f"{reference_for_kind.get('version')}: scores do not compare")

    def seconds(entry: Entry) -> float:
        kind = reference_workload.reference_kind(reference_for_kind, entry.flops, entry.bytes)
        return reference_workload.reference_seconds(run.reference, kind)

    return seconds


def _scaled(entry: Entry, scale: float) -> Entry:
    """``entry`` with every time divided by ``scale`` (its run's reference seconds)."""
    return Entry(entry.key, tuple(s / scale for s in entry.samples), entry.median / scale,
                 entry.q1 / scale, entry.q3 / scale, entry.flops, entry.bytes, entry.accuracy,
                 entry.status, entry.backend, entry.flags)


def compare_runs(old: Run, new: Run, thresholds: Thresholds | None = None,
                 normalized: bool = False) -> Comparison:
    thresholds = thresholds or Thresholds()
    common = [k for k in old.entries if k in new.entries]
    notes = environment_notes(old, new)
    if normalized:
        if not old.reference:  # say which side lacks it
            normalizer(old, {})
        scale_old = normalizer(old, old.reference)
        scale_new = normalizer(new, old.reference)  # classify both sides alike
        notes.append(
            "normalized: times divided by each run's reference workload (old: sgemm "
            f"{old.reference['gemm']['gflops']:.0f} GFLOP/s, add "
            f"{old.reference['stream']['gbytes_per_s']:.1f} GB/s; new: "
            f"{new.reference['gemm']['gflops']:.0f} GFLOP/s, "  # type: ignore[index]
            f"{new.reference['stream']['gbytes_per_s']:.1f} GB/s)")  # type: ignore[index]
    changes = []
    for key in common:
        a, b = old.entries[key], new.entries[key]
        if normalized and a.status == "ok" and b.status == "ok":
            a, b = _scaled(a, scale_old(a)), _scaled(b, scale_new(b))
        changes.append(compare_entries(a, b, thresholds, inconclusive_reasons(old, new, key)))
    only_old = [k for k in old.entries if k not in new.entries]
    only_new = [k for k in new.entries if k not in old.entries]
    if not common:
        notes.append("no benchmark is in both runs (different suites or backends?)")
    return Comparison(old, new, thresholds, normalized, changes, only_old, only_new, notes)


def inconclusive_reasons(old: Run, new: Run, key: str) -> tuple[str, ...]:
    """Why ``key``'s timings cannot be trusted: flags of its row in either run, and a
    busy machine on either side (``machine_state.busy``)."""
    reasons = [f"{flag} (old)" for flag in old.entries[key].flags
               if flag not in TIMING_NEUTRAL_FLAGS]
    reasons += [f"{flag} (new)" for flag in new.entries[key].flags
                if flag not in TIMING_NEUTRAL_FLAGS]
    reasons += [f"busy machine ({side})" for side, run in (("old", old), ("new", new))
                if run.busy]
    return tuple(dict.fromkeys(reasons))


def confirm(comparison: Comparison, confirming: list[Comparison]) -> None:
    """Keep a speed regression only where every ``confirming`` comparison (the same
    baseline against an independent re-run) finds it too; elsewhere it becomes
    "unconfirmed". A slowdown in the code repeats; a neighbour's burst of load on a shared
    machine seldom hits the same benchmark twice (measured on the 2-core CI VM: idle
    back-to-back runs differ up to 2x on a few short, multi-threaded benchmarks)."""
    for other in confirming:
        again = {c.key for c in other.regressions + other.undecided}
        for change in comparison.changes:
            if change.verdict in ("regression", "undecided") and change.key not in again:
                change.verdict = "unconfirmed"
    comparison.confirmed_by = [other.new.path.name for other in confirming]
