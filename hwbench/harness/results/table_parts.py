"""The pieces every results table is made of: a result file as a ``Source`` (its rows,
its caption naming the hardware), the cell formats and the Markdown table itself. Shared
by ``doc_tables`` and the tables that live in their own modules (``peer_tables``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hwbench.harness.results.result_files import read_result
from hwbench.harness.results.summary import trust_lines

MACHINE = "amd-epyc-zen4-2core"
# library versions a caption names, from each backend's info(): key -> how it is called
LIBRARIES = {"onednn": "oneDNN", "torch": "PyTorch", "onnxruntime": "onnxruntime",
             "pyopencl": "pyopencl"}


@dataclass(frozen=True)
class Source:
    """One result file and the rows of it a table shows."""

    path: Path  # relative to the repository root
    result: dict[str, Any]

    @property
    def rows(self) -> list[dict[str, Any]]:
        return self.result["rows"]

    def row(self, backend: str, **match: Any) -> dict[str, Any] | None:
        for row in self.rows:
            if row.get("backend") == backend and all(row.get(k) == v for k, v in match.items()):
                return row
        return None

    def backends(self) -> list[str]:
        """Backends and peers in the order the run lists them."""
        seen = list(self.result.get("backends") or {})
        for row in self.rows:
            if row.get("backend") not in seen:
                seen.append(row.get("backend"))
        return seen

    def caption(self) -> str:
        """The hardware, the software and the file: every table carries them."""
        env = self.result.get("environment") or {}
        peak = env.get("fma_peak") or {}
        threads = self.result.get("threads")
        wait = env.get("openmp_wait") if isinstance(env.get("openmp_wait"), dict) else {}
        parts = [f"{env.get('cpu', 'unknown CPU')}, {env.get('cores_available', '?')} cores "
                 f"(`{self.path.parent.name}`)",
                 f"{threads} threads" if threads else None,
                 f"OpenMP threads {wait['policy']}" if "choice" in wait else None,
                 f"hwbench {env['hwbench']}" if env.get("hwbench") else None,
                 f"Python {env['python']}" if env.get("python") else None,
                 f"NumPy {env['numpy']}" if env.get("numpy") else None,
                 f"measured FMA peak {peak['gflops']:.1f} GFLOP/s" if peak.get("gflops")
                 else None]
        libraries = {}
        for info in (self.result.get("backends") or {}).values():
            for key, label in LIBRARIES.items():
                if isinstance(info, dict) and isinstance(info.get(key), str):
                    libraries.setdefault(label, info[key].split()[0])
        parts += [f"{label} {version}" for label, version in libraries.items()]
        when = str(self.result.get("created", ""))[:10]
        return (f"*Measured on {', '.join(p for p in parts if p)}; {when}; "
                f"from `{self.path.as_posix()}`.*")


def rate(value: Any) -> str:
    """GFLOP/s or samples/s as a reader compares them: 3 figures, thousands separated."""
    if not isinstance(value, (int, float)):
        return "—"
    if value >= 1000:
        return f"{value:,.0f}"
    return f"{value:.0f}" if value >= 100 else f"{value:.1f}"


def _figure(row: dict[str, Any] | None, key: str) -> float | None:
    if row is None or row.get("status") != "ok":
        return None
    value = row.get(key)
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}×" if a is not None and b else "—"


def _ms(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    ms = seconds * 1e3
    if ms < 1:
        return f"{ms * 1e3:.0f} µs"
    return f"{ms:.1f} ms" if ms < 100 else f"{ms:.0f} ms"


def _flagged(cell: str, row: dict[str, Any] | None) -> str:
    """A figure from a row its run flagged as untrustworthy carries a ⚠ (trust.md)."""
    return f"{cell} ⚠" if row is not None and row.get("flags") and cell != "—" else cell


def _warnings(source: Source) -> list[str]:
    """What summary.trust_lines says of the run: a busy machine, flagged rows, a peak that
    could not be confirmed."""
    env = source.result.get("environment") or {}
    lines = trust_lines(source.rows, source.result.get("machine_state"), env.get("fma_peak"))
    return [f"> **Warning:** {line}" for line in lines]


def _table(header: list[str], align: list[str], body: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |",
             "| " + " | ".join("---:" if a == "r" else "---" for a in align) + " |"]
    return lines + ["| " + " | ".join(cells) + " |" for cells in body]


def _ordered(values: list[Any]) -> list[Any]:
    return list(dict.fromkeys(values))


def load(root: Path, name: str, machine: str = MACHINE) -> Source:
    path = Path("results") / machine / name
    return Source(path, read_result(root / path))
