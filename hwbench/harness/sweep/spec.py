"""Sweep specs: a TOML file (and/or ``--set`` overrides) describing grids, expanded to points.

Two kinds of grid, each one table of the file (both may appear in one spec)::

    [sweep]
    name = "systolic-zoo"          # default: the file's stem
    timeout = 600                  # seconds one point may run (default 600)

    [simulate]                     # the systolic timing model, as `hwbench simulate`
    config = "tpu-v1"              # the base: a preset or a SCALE-Sim .cfg (relative paths
                                   # are relative to the spec file)
    arrays = ["32x32", "128x128"]  # ROWSxCOLS (default: the base's)
    dataflows = ["ws", "os", "is"] # (default: the base's)
    buffers = ["1MiB", {ifmap = "24MiB", weight = "256KiB", ofmap = "4MiB"}]
                                   # a size sets all three on-chip buffers; a table sets each
    bandwidths = ["34GB/s", "unlimited"]   # off-chip bytes/s (default: the base's)
    models = ["resnet50", "alexnet"]       # zoo names or .onnx files
    topologies = ["gemm.csv"]              # SCALE-Sim topology CSVs
    batches = [1]                          # batch sizes of the models (default [1])

    [run]                          # whole models on backends, as `hwbench run`
    backends = ["numpy", "cpu", "cuda", "opencl:GPU"]
    models = ["lenet", "resnet50"]
    batches = [1, 8]
    precisions = ["fp32", "int8"]
    repeats = 10                   # timing: as `hwbench run`'s options
    min_time = 0.5
    max_time = 5.0
    threads = 4                    # default: every core of the node the point runs on

Every grid point is a ``Point`` whose ``id`` is a hash of its parameters (files enter by
name and content, not by path), so a sweep resumes by id wherever its files now live.
Errors are ``ArgumentError``\\s that name the file, the table and the key.
"""

from __future__ import annotations

import difflib
import hashlib
import itertools
import json
import math
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hwbench.backends import parse_backend_name
from hwbench.backends.opencl.runtime import DEVICE_TYPES
from hwbench.backends.systolic.config import DATAFLOWS, PRESETS, load_config, parse_array
from hwbench.backends.systolic.topology import read_topology
from hwbench.errors import ArgumentError
from hwbench.files import read_text
from hwbench.harness.suites.model_suite import DIGITS_MODELS, PRECISIONS
from hwbench.models.zoo import ZOO

DEFAULT_TIMEOUT = 600.0
# opencl:GPU / opencl:CPU in a sweep mean "the first OpenCL device of that type on the node
# the point lands on" (``OpenclBackend.resolve_device`` picks it there).
OPENCL_KINDS = DEVICE_TYPES

SWEEP_KEYS = ("name", "timeout")
SIMULATE_KEYS = ("config", "arrays", "dataflows", "buffers", "bandwidths", "models",
                 "topologies", "batches")
RUN_KEYS = ("backends", "models", "batches", "precisions", "repeats", "min_time", "max_time",
            "threads", "omp_wait")
TABLES = {"sweep": SWEEP_KEYS, "simulate": SIMULATE_KEYS, "run": RUN_KEYS}

_SIZE_UNITS = {"": 1, "b": 1, "kb": 1000, "mb": 1000 ** 2, "gb": 1000 ** 3, "kib": 1024,
               "mib": 1024 ** 2, "gib": 1024 ** 3}
_RATE_UNITS = {"b/s": 1, "kb/s": 1e3, "mb/s": 1e6, "gb/s": 1e9, "tb/s": 1e12,
               "kib/s": 1024.0, "mib/s": 1024.0 ** 2, "gib/s": 1024.0 ** 3}


@dataclass(eq=False)
class Point:
    """One task of a sweep. ``params`` is what it computes (JSON; hashed into ``id``);
    ``files`` what the node needs to read (path and text of small text files, shipped
    with the point so a cluster node without the spec's folder can run it)."""

    kind: str                      # "simulate" or "run"
    params: dict[str, Any]
    id: str = ""
    files: dict[str, dict[str, str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.id:
            self.id = point_id(self.kind, self.params)

    @property
    def label(self) -> str:
        """A short human name: ``resnet50 b1 128x128 ws buf 1MiB bw 34GB/s``."""
        p = self.params
        if self.kind == "run":
            wait = f" omp {p['omp_wait']}" if "omp_wait" in p else ""
            return f"{p['backend']} {p['model']} b{p['batch']} {p['precision']}{wait}"
        work = p["workload"]
        parts = [work.get("model") or work.get("topology")]
        if "batch" in work:
            parts.append(f"b{work['batch']}")
        parts += [p["array"] or "", p["dataflow"] or ""]
        if p["buffers"]:
            sizes = [format_size(p["buffers"][k]) for k in ("ifmap", "weight", "ofmap")]
            parts.append("buf " + (sizes[0] if len(set(sizes)) == 1 else "/".join(sizes)))
        if p["bandwidth"] is not None:
            parts.append("bw " + format_rate(p["bandwidth"]))
        return " ".join(str(x) for x in parts if x)


@dataclass
class SweepSpec:
    name: str
    timeout: float
    points: list[Point]
    source: str                    # the file, or "--set" for flags only
    table: dict[str, Any]          # the spec as read (after overrides), for the results


def point_id(kind: str, params: dict[str, Any]) -> str:
    """A stable id: the first 16 hex digits of SHA-256 over the canonical JSON of the
    point's kind and parameters."""
    text = json.dumps({"kind": kind, "params": params}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# -- reading ------------------------------------------------------------------------------------
def load_spec(path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = (),
              ) -> SweepSpec:
    """Read ``path`` (TOML) and apply ``overrides`` (``"simulate.arrays=['8x8']"``; the
    value is read as TOML, else as a plain string); check it; expand it to points."""
    if path is None and not overrides:
        raise ArgumentError("a sweep needs a spec file or --set TABLE.KEY=VALUE options")
    table: dict[str, Any] = {}
    source = "--set"
    base = Path.cwd()
    if path is not None:
        path = Path(path)
        source = str(path)
        text = read_text(path, "spec", encoding="utf-8")
        try:
            table = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ArgumentError(f"{path}: not valid TOML: {exc}") from exc
        base = path.resolve().parent
    for item in overrides:
        _apply_override(table, item)
    return build_spec(table, source, base, default_name=Path(source).stem if path else "sweep")


def _apply_override(table: dict[str, Any], item: str) -> None:
    key, sep, raw = item.partition("=")
    parts = key.strip().split(".")
    if not sep or len(parts) != 2 or not all(parts):
        raise ArgumentError(f"argument '--set': expected TABLE.KEY=VALUE (e.g. "
                            f"simulate.arrays=['8x8']), got {item!r}")
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()  # a bare word: resnet50, tpu-v1
    section = table.setdefault(parts[0], {})
    if not isinstance(section, dict):
        raise ArgumentError(f"argument '--set': {parts[0]!r} is not a table in the spec")
    section[parts[1]] = value


class _Where:
    """Error messages that name the file, the table and the key."""

    def __init__(self, source: str, table: str) -> None:
        self.source, self.table = source, table

    def error(self, key: str, message: str) -> ArgumentError:
        return ArgumentError(f"{self.source}: [{self.table}] key '{key}': {message}")


def build_spec(table: dict[str, Any], source: str, base: Path,
               default_name: str = "sweep") -> SweepSpec:
    """Check a parsed spec (``tomllib``'s dict) and expand its grids to points."""
    for name, value in table.items():
        if name not in TABLES:
            hint = difflib.get_close_matches(name, TABLES, n=1)
            raise ArgumentError(f"{source}: unknown table [{name}]" + (
                f" (did you mean [{hint[0]}]?)" if hint else
                f"; tables: {', '.join('[' + t + ']' for t in TABLES)}"))
        if not isinstance(value, dict):
            raise ArgumentError(f"{source}: '{name}' must be a table ([{name}]), got "
                                f"{type(value).__name__}")
        for key in value:
            if key not in TABLES[name]:
                hint = difflib.get_close_matches(key, TABLES[name], n=1)
                raise ArgumentError(
                    f"{source}: [{name}] unknown key '{key}'"
                    + (f" (did you mean '{hint[0]}'?)" if hint
                       else f"; keys: {', '.join(TABLES[name])}"))
    sweep = table.get("sweep", {})
    where = _Where(source, "sweep")
    name = sweep.get("name", default_name)
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
        raise where.error("name", f"must be a name of letters, digits, '.', '_' or '-' (it "
                                  f"names the results files), got {name!r}")
    timeout = sweep.get("timeout", DEFAULT_TIMEOUT)
    if not _positive_number(timeout):
        raise where.error("timeout", f"must be a positive number of seconds, got {timeout!r}")
    points: list[Point] = []
    if "simulate" in table:
        points += simulate_points(table["simulate"], _Where(source, "simulate"), base)
    if "run" in table:
        points += run_points(table["run"], _Where(source, "run"), base)
    if not points:
        raise ArgumentError(f"{source}: no grid: add a [simulate] or a [run] table")
    seen: dict[str, Point] = {}
    for point in points:  # the same point twice (e.g. "8x8" and "8X8") runs once
        seen.setdefault(point.id, point)
    return SweepSpec(name, float(timeout), list(seen.values()), source, table)


def _positive_number(value: Any) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value) and value > 0)


def _list(section: dict[str, Any], key: str, where: _Where, default: list | None = None,
          ) -> list[Any]:
    if key not in section:
        if default is None:
            raise where.error(key, "is required")
        return default
    value = section[key]
    if not isinstance(value, list):
        value = [value]  # a single value is a one-value axis
    if not value:
        raise where.error(key, "is an empty list (leave it out for the default)")
    return value


def _positive_ints(section: dict[str, Any], key: str, where: _Where, default: list[int],
                   ) -> list[int]:
    values = _list(section, key, where, default)
    for value in values:
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise where.error(key, f"must be positive integers, got {value!r}")
    return values


# -- units --------------------------------------------------------------------------------------
def parse_size(value: Any, what: str = "size") -> int:
    """Bytes: an int, or ``"512KiB"``, ``"4 MiB"``, ``"64kB"``."""
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*", str(value))
    unit = match[2].lower() if match else ""
    if not match or unit not in _SIZE_UNITS or float(match[1]) <= 0:
        raise ArgumentError(f"{what} must be a positive number of bytes, e.g. 262144, "
                            f"'256KiB' or '4MiB', got {value!r}")
    number = float(match[1]) * _SIZE_UNITS[unit]
    if number != int(number):
        raise ArgumentError(f"{what} must be a whole number of bytes, got {value!r}")
    return int(number)


def parse_rate(value: Any, what: str = "bandwidth") -> float | str:
    """Bytes per second: a number, ``"34GB/s"``, ``"1.5 TB/s"``, or ``"unlimited"``."""
    if isinstance(value, str) and value.strip().lower() in ("unlimited", "inf", "none"):
        return "unlimited"
    if _positive_number(value):
        return float(value)
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)\s*([A-Za-z/]+)\s*", str(value))
    unit = match[2].lower() if match else ""
    if not match or unit not in _RATE_UNITS or float(match[1]) <= 0:
        raise ArgumentError(f"{what} must be bytes per second, e.g. 34e9, '34GB/s' or "
                            f"'unlimited', got {value!r}")
    return float(match[1]) * _RATE_UNITS[unit]


def format_size(nbytes: int) -> str:
    for unit, scale in (("GiB", 1024 ** 3), ("MiB", 1024 ** 2), ("KiB", 1024)):
        if nbytes >= scale and nbytes % scale == 0:
            return f"{nbytes // scale}{unit}"
    return f"{nbytes}B"


def format_rate(rate: float | str) -> str:
    if rate == "unlimited":
        return "unlimited"
    return f"{float(rate) / 1e9:g}GB/s"


def _file(path_text: Any, base: Path, where: _Where, key: str) -> tuple[Path, str]:
    """A spec-relative path, checked readable; its text."""
    if not isinstance(path_text, str) or not path_text.strip():
        raise where.error(key, f"must be file paths, got {path_text!r}")
    path = (base / path_text).resolve() if not Path(path_text).is_absolute() else Path(path_text)
    try:
        return path, read_text(path, key, encoding="utf-8-sig")
    except ArgumentError as exc:
        why = str(exc).removeprefix(f"argument '{key}': ")
        raise where.error(key, f"cannot read it ({why})") from exc


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# -- simulate grids -----------------------------------------------------------------------------
def simulate_points(section: dict[str, Any], where: _Where, base: Path) -> list[Point]:
    files: dict[str, dict[str, str]] = {}
    config_text = section.get("config", "tpu-v1")
    if not isinstance(config_text, str) or not config_text.strip():
        raise where.error("config", f"must be a preset ({', '.join(PRESETS)}) or a .cfg "
                                    f"path, got {config_text!r}")
    if config_text in PRESETS:
        config_param: Any = config_text
    else:
        path, text = _file(config_text, base, where, "config")
        try:
            load_config(str(path))
        except ArgumentError as exc:
            raise where.error("config", str(exc)) from exc
        config_param = {"file": path.name, "sha256": _digest(text)}
        files["config"] = {"path": str(path), "name": path.name, "text": text}

    arrays = []
    for value in _list(section, "arrays", where, [None]):
        if value is None:
            arrays.append(None)
            continue
        try:
            rows, cols = parse_array(value) if isinstance(value, str) else tuple(value)
        except (ArgumentError, TypeError, ValueError):
            raise where.error("arrays", f"must be 'ROWSxCOLS' strings such as '128x128', got "
                                        f"{value!r}") from None
        arrays.append(f"{rows}x{cols}")
    dataflows = _list(section, "dataflows", where, [None])
    for value in dataflows:
        if value is not None and value not in DATAFLOWS:
            raise where.error("dataflows", f"must be among {', '.join(DATAFLOWS)}, got "
                                           f"{value!r}")
    buffers = [_buffers(value, where) for value in _list(section, "buffers", where, [None])]
    bandwidths = []
    for value in _list(section, "bandwidths", where, [None]):
        try:
            bandwidths.append(None if value is None else parse_rate(value))
        except ArgumentError as exc:
            raise where.error("bandwidths", str(exc)) from None

    batches = _positive_ints(section, "batches", where, [1])
    workloads: list[tuple[dict[str, Any], dict[str, dict[str, str]]]] = []
    if "models" not in section and "topologies" not in section:
        raise where.error("models", "a [simulate] grid needs 'models' and/or 'topologies'")
    for model in _list(section, "models", where, []) if "models" in section else []:
        name = _model_name(model, base, where, "models")
        workloads += [({"model": name, "batch": b}, {}) for b in batches]
    for topo in _list(section, "topologies", where, []) if "topologies" in section else []:
        path, text = _file(topo, base, where, "topologies")
        _check_topology(path, where)
        workloads.append(({"topology": path.name, "sha256": _digest(text)},
                          {"topology": {"path": str(path), "name": path.name, "text": text}}))

    points = []
    for (work, work_files), array, flow, buf, bw in itertools.product(
            workloads, arrays, dataflows, buffers, bandwidths):
        params = {"config": config_param, "array": array, "dataflow": flow, "buffers": buf,
                  "bandwidth": bw, "workload": work}
        points.append(Point("simulate", params, files={**files, **work_files}))
    return points


def _buffers(value: Any, where: _Where) -> dict[str, int] | None:
    if value is None:
        return None
    try:
        if isinstance(value, dict):
            unknown = set(value) - {"ifmap", "weight", "ofmap"}
            if unknown or len(value) != 3:
                raise where.error("buffers", f"a table must give exactly ifmap, weight and "
                                             f"ofmap, got {sorted(value)}")
            return {k: parse_size(value[k], f"buffer {k!r}") for k in ("ifmap", "weight",
                                                                        "ofmap")}
        size = parse_size(value, "a buffer size")
    except ArgumentError as exc:
        if str(exc).startswith(where.source):
            raise
        raise where.error("buffers", str(exc)) from None
    return {"ifmap": size, "weight": size, "ofmap": size}


def _model_name(model: Any, base: Path, where: _Where, key: str) -> str:
    """A zoo name as it is; a model file as an absolute path (it must exist on every node)."""
    if not isinstance(model, str) or not model.strip():
        raise where.error(key, f"must be zoo names or .onnx paths, got {model!r}")
    if model in ZOO or model in DIGITS_MODELS:
        return model
    path = (base / model).resolve()
    if not path.is_file():
        raise where.error(key, f"{model!r} is neither a zoo model ("
                               f"{', '.join(DIGITS_MODELS + tuple(ZOO))}) nor a file")
    return str(path)


def _check_topology(path: Path, where: _Where) -> None:
    try:
        read_topology(path)
    except ArgumentError as exc:
        raise where.error("topologies", str(exc)) from None


# -- run grids ----------------------------------------------------------------------------------
def run_points(section: dict[str, Any], where: _Where, base: Path) -> list[Point]:
    backends = _list(section, "backends", where)
    for name in backends:
        if not isinstance(name, str):
            raise where.error("backends", f"must be backend names, got {name!r}")
        try:
            parse_backend_name(name)
        except ArgumentError as exc:
            raise where.error("backends", str(exc)) from None
    models = [_model_name(m, base, where, "models") for m in _list(section, "models", where)]
    batches = _positive_ints(section, "batches", where, [1])
    precisions = _list(section, "precisions", where, ["fp32"])
    for value in precisions:
        if value not in PRECISIONS:
            raise where.error("precisions", f"must be among {', '.join(PRECISIONS)}, got "
                                            f"{value!r}")
    timing = {"repeats": section.get("repeats", 10), "min_time": section.get("min_time", 0.5),
              "max_time": section.get("max_time", 5.0)}
    if not isinstance(timing["repeats"], int) or isinstance(timing["repeats"], bool) or \
            timing["repeats"] < 1:
        raise where.error("repeats", f"must be a positive integer, got {timing['repeats']!r}")
    for key in ("min_time", "max_time"):
        value = timing[key]
        if not (_positive_number(value) or value == 0):
            raise where.error(key, f"must be a number of seconds >= 0, got {value!r}")
    threads = section.get("threads")
    if threads is not None and (not isinstance(threads, int) or isinstance(threads, bool)
                                or threads < 1):
        raise where.error("threads", f"must be a positive integer, got {threads!r}")
    # An axis only when named, so a spec without it keeps its points' ids (``--resume``).
    waits = [{"omp_wait": w} for w in _omp_waits(section, where)] or [{}]
    return [Point("run", {"backend": backend, "model": model, "batch": batch,
                          "precision": precision, "timing": timing, "threads": threads,
                          **wait})
            for backend in backends for model in models for precision in precisions
            for batch in sorted(batches) for wait in waits]


def _omp_waits(section: dict[str, Any], where: _Where) -> list[str]:
    """``omp_wait``: the workers' OpenMP wait policies to sweep (``hwbench run
    --omp-wait``'s choices); none named: ``auto``, as ``hwbench run``."""
    from hwbench.harness.running.omp_wait import CHOICES

    if "omp_wait" not in section:
        return []
    values = _list(section, "omp_wait", where)
    for value in values:
        if value not in CHOICES:
            raise where.error("omp_wait", f"must be among {', '.join(CHOICES)}, got {value!r}")
    return values
