"""One CI baseline from N recordings of the same benchmark pass: per benchmark, the
recording whose *normalized* median is the median one, rescaled to one reference workload.

Why: on the shared 2-core CI VM back-to-back single recordings of one tiny benchmark swung
from 28 to 56 µs; a baseline re-recorded in a fast moment made the fresh-clone CI measure
mlp/lenet b8 on numpy 2-2.8x slower in both passes, and fail. The median of N recordings is
a typical moment, not a lucky one.

How (``merge``): every recording's medians are divided by its own reference workload
(``comparison.normalizer``: compute-bound work by the SGEMM, memory-bound by the ``add``,
the kind decided against the merged file's reference). Per benchmark the recording with
the median normalized median is picked (for an even count the upper, slower, of the two
middle ones: a baseline errs towards typical-or-slow) and its stats are copied multiplied by
merged reference seconds / that recording's reference seconds, so that ``hwbench compare
--normalized`` reads the merged file exactly as it would read the picked recording. The
merged file's reference is the recording with the median SGEMM speed. Rows flagged by
their run (busy machine, bimodal, ...) are picked only where every recording flagged the
benchmark; a benchmark missing from some recordings is the median of those that have it.
``ratio_vs_onnxruntime`` (benchmarks/test_peer_ratios.py) is the median over recordings.

``python -m hwbench.harness.results.baseline_merge RECORDING... --storage DIR`` saves the
result as pytest-benchmark's next ``NNNN_commit_date.json`` (what ``newest_json`` picks);
scripts/record-ci-baseline.sh records and merges.
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hwbench.errors import HwbenchError, ResultsError
from hwbench.files import read_json, write_new
from hwbench.harness.results.benchmark_runs import TIMING_NEUTRAL_FLAGS, Entry, Run, load_run
from hwbench.harness.results.comparison import normalizer

METHOD = ("per benchmark, the recording with the median normalized median (upper middle "
          "for an even count), its stats rescaled to the reference of the recording with "
          "the median SGEMM speed; ratio_vs_onnxruntime: the median over recordings")
RATIO = "ratio_vs_onnxruntime"
# pytest-benchmark stats in seconds, and per second; counts (rounds, outliers) stay as they are
TIME_STATS = ("min", "max", "mean", "stddev", "median", "iqr", "q1", "q3", "ld15iqr", "hd15iqr",
              "total")
RATE_STATS = ("ops",)
# hwbench's extra_info figures derived from the median
TIME_EXTRA = ("seconds",)
RATE_EXTRA = ("rate", "gbytes_per_s", "samples_per_s")
SAME_MACHINE = ("host", "cpu", "arch", "cores", "threads")


@dataclass
class Recording:
    """One ``--benchmark-json`` file: its JSON as written, and as ``hwbench compare`` reads it."""

    path: Path
    payload: dict[str, Any]
    run: Run

    @functools.cached_property
    def benchmarks(self) -> dict[str, dict[str, Any]]:
        """The JSON benchmarks by the key ``load_run`` gives their entries."""
        return {str(b.get("fullname") or b.get("name")): b for b in self.payload["benchmarks"]
                if isinstance(b, dict)}

    @property
    def commit(self) -> Any:
        info = self.payload.get("commit_info")
        return info.get("id") if isinstance(info, dict) else None


def read_recording(path: str | Path) -> Recording:
    """A pytest-benchmark JSON with hwbench's reference workload, else ``ResultsError``."""
    path = Path(path)
    if path.is_dir():
        raise ResultsError(f"argument 'recordings': {path} is a folder; give the JSON files")
    payload = read_json(path, "recordings", error=ResultsError)
    run = load_run(path)
    if run.kind != "pytest-benchmark":
        raise ResultsError(f"argument 'recordings': {path} is {run.kind} results, not "
                           "pytest-benchmark JSON")
    if not run.reference:
        raise ResultsError(f"argument 'recordings': {path} has no reference workload "
                           "(recorded without hwbench's pytest plugin?): it cannot be normalized")
    return Recording(path, payload, run)


def check_alike(recordings: Sequence[Recording]) -> None:
    """Refuse recordings of different machines, code, library or reference workload
    versions: their median would be no one machine's typical run."""
    first = recordings[0]
    for rec in recordings[1:]:
        a, b = (r.run.reference.get("version") for r in (first, rec))  # type: ignore[union-attr]
        if a != b:
            raise ResultsError(f"argument 'recordings': {rec.path.name} has reference workload "
                               f"version {b}, {first.path.name} {a}: scores do not compare")
        for key in SAME_MACHINE:
            a, b = first.run.machine.get(key), rec.run.machine.get(key)
            if a != b:
                raise ResultsError(f"argument 'recordings': {rec.path.name} is from another "
                                   f"machine than {first.path.name} ({key} {b!r} vs {a!r})")
        if rec.commit != first.commit:
            raise ResultsError(f"argument 'recordings': {rec.path.name} is of commit "
                               f"{rec.commit}, {first.path.name} of {first.commit}")
        changed = [k for k in sorted(set(first.run.versions) & set(rec.run.versions))
                   if first.run.versions[k] != rec.run.versions[k]]
        if changed:
            raise ResultsError(f"argument 'recordings': {rec.path.name} has other library "
                               f"versions than {first.path.name}: " + "; ".join(
                                   f"{k} {rec.run.versions[k]} vs {first.run.versions[k]}"
                                   for k in changed))


def middle(values: Sequence[float]) -> int:
    """Index of the median value: the upper of the two middle ones for an even count (ties:
    the earlier recording)."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    return order[len(values) // 2]


def _flagged(rec: Recording, entry: Entry) -> bool:
    return rec.run.busy or any(f not in TIMING_NEUTRAL_FLAGS for f in entry.flags)


def _extra(bench: dict[str, Any]) -> dict[str, Any]:
    extra = bench.get("extra_info")
    return extra if isinstance(extra, dict) else {}


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def rescaled(bench: dict[str, Any], factor: float) -> dict[str, Any]:
    """A copy of a pytest-benchmark benchmark with every time multiplied by ``factor`` and
    every rate divided by it."""
    out = json.loads(json.dumps(bench))  # a deep copy of plain JSON
    stats = out["stats"] if isinstance(out.get("stats"), dict) else {}
    extra = _extra(out)
    for table, times, rates in ((stats, TIME_STATS, RATE_STATS), (extra, TIME_EXTRA, RATE_EXTRA)):
        for key in times:
            if _number(table.get(key)):
                table[key] = table[key] * factor
        for key in rates:
            if _number(table.get(key)):
                table[key] = table[key] / factor
    if isinstance(stats.get("data"), list):
        stats["data"] = [s * factor for s in stats["data"]]
    return out


def _merged_benchmark(name: str, recordings: Sequence[Recording],
                      scales: Sequence[Callable[[Entry], float]],
                      merged_scale: Callable[[Entry], float]) -> dict[str, Any] | None:
    """The merged pytest-benchmark entry of ``name``; None if no recording timed it validly."""
    have = [i for i, rec in enumerate(recordings) if name in rec.run.entries]
    valid = [i for i in have if recordings[i].run.entries[name].status == "ok"]
    if not valid:
        return None
    steady = [i for i in valid if not _flagged(recordings[i], recordings[i].run.entries[name])]
    pool = steady or valid
    normalized = [recordings[i].run.entries[name].median /
                  scales[i](recordings[i].run.entries[name]) for i in pool]
    pick = pool[middle(normalized)]
    entry = recordings[pick].run.entries[name]
    bench = rescaled(recordings[pick].benchmarks[name],
                     merged_scale(entry) / scales[pick](entry))
    extra = bench["extra_info"] = _extra(bench)
    ratios = [r for r in (_extra(recordings[i].benchmarks[name]).get(RATIO) for i in valid)
              if _number(r)]
    if ratios:
        extra[RATIO] = float(statistics.median(ratios))
    extra["baseline_merge"] = {"from": recordings[pick].path.name, "of": len(pool),
                               "spread": max(normalized) / min(normalized) - 1}
    return bench


def merge(paths: Sequence[str | Path]) -> dict[str, Any]:
    """N pytest-benchmark recordings of one machine and commit -> one pytest-benchmark JSON
    payload that ``hwbench compare --normalized`` reads as a typical single recording."""
    if not paths:
        raise ResultsError("argument 'recordings': no recording to merge")
    recordings = [read_recording(p) for p in paths]
    check_alike(recordings)
    base = recordings[middle([r.run.reference["gemm"]["gflops"]  # type: ignore[index]
                              for r in recordings])]
    reference = base.run.reference or {}
    scales = [normalizer(r.run, reference) for r in recordings]  # refuses other versions
    merged_scale = normalizer(base.run, reference)
    names = list(dict.fromkeys(k for r in recordings for k in r.run.entries))
    benchmarks, dropped = [], []
    for name in names:
        bench = _merged_benchmark(name, recordings, scales, merged_scale)
        if bench is None:
            dropped.append(name)
        else:
            benchmarks.append(bench)
    hw = dict(base.payload.get("hwbench") or {})
    hw.pop("machine_state", None)  # one recording's state; each row keeps its own
    hw["baseline_merge"] = {
        "method": METHOD, "recordings": len(recordings), "reference_from": base.path.name,
        "sources": [{"file": r.path.name, "datetime": r.payload.get("datetime"),
                     "sgemm_gflops": r.run.reference["gemm"]["gflops"],  # type: ignore[index]
                     "add_gbytes_per_s":
                         r.run.reference["stream"]["gbytes_per_s"]}  # type: ignore[index]
                    for r in recordings],
        "dropped": dropped}  # benchmarks no recording timed validly
    return {"machine_info": base.payload.get("machine_info"),
            "commit_info": base.payload.get("commit_info"), "benchmarks": benchmarks,
            "datetime": max(str(r.payload.get("datetime", "")) for r in recordings),
            "version": base.payload.get("version"), "hwbench": hw}


def machine_folder(machine_info: dict[str, Any]) -> str:
    """pytest-benchmark's storage subfolder for the recording machine
    (``Linux-CPython-3.11-64bit``), from the file's ``machine_info``."""
    try:
        version = ".".join(str(machine_info["python_version"]).split(".")[:2])
        return (f"{machine_info['system']}-{machine_info['python_implementation']}-{version}-"
                f"{machine_info['cpu']['bits']}bit")
    except (KeyError, TypeError) as exc:
        raise ResultsError(f"machine_info lacks {exc}: cannot name the storage folder; "
                           "give --output") from exc


def storage_path(payload: dict[str, Any], storage: Path) -> Path:
    """The next ``NNNN_commit_date.json`` in ``storage``'s machine folder, as
    ``--benchmark-autosave`` would name it."""
    folder = storage / machine_folder(payload.get("machine_info") or {})
    numbers = [int(p.name[:4]) for p in folder.glob("[0-9][0-9][0-9][0-9]_*.json")]
    info = payload.get("commit_info") if isinstance(payload.get("commit_info"), dict) else {}
    stamp = datetime.now(UTC).strftime("%Y%m%d_%H%M%S")
    name = f"{max(numbers, default=0) + 1:04d}_{info.get('id') or 'unversioned'}_{stamp}"
    return folder / (name + ("_uncommitted-changes" if info.get("dirty") else "") + ".json")


def save(payload: dict[str, Any], path: Path) -> Path:
    """Write ``payload`` as a new file (never over an existing one)."""
    text = json.dumps(payload, indent=4, ensure_ascii=True)
    return write_new(path, lambda fh: fh.write(text), unique=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m hwbench.harness.results.baseline_merge",
        description="Merge N pytest-benchmark recordings of the CI pass into one baseline.")
    parser.add_argument("recordings", nargs="+", help="--benchmark-json files of one machine")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--storage", type=Path, help="pytest-benchmark storage folder: save "
                       "as its next NNNN_commit_date.json")
    where.add_argument("-o", "--output", type=Path, help="save to this (new) file")
    args = parser.parse_args(argv)
    try:
        payload = merge(args.recordings)
        path = save(payload, args.output or storage_path(payload, args.storage))
    except HwbenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    info = payload["hwbench"]["baseline_merge"]
    print(f"merged {info['recordings']} recordings into {path}: "
          f"{len(payload['benchmarks'])} benchmarks, reference from {info['reference_from']}")
    spreads = sorted(((b["extra_info"]["baseline_merge"]["spread"], str(b.get("name")))
                      for b in payload["benchmarks"]), reverse=True)
    for spread, name in [s for s in spreads if s[0] > 0][:5]:  # the noisiest, for the record
        print(f"  normalized medians differ up to {spread:+.0%}: {name}")
    for name in info["dropped"]:
        print(f"  left out (no valid timing in any recording): {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
