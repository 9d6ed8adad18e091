"""What a simulated systolic array is: its size, dataflow, clock, buffers and memory link.

``SystolicConfig`` holds the parameters every timing model reads; ``PRESETS`` holds
named ones (``tpu-v1`` after Jouppi et al., ISCA 2017, and small arrays for tests), and
``read_scalesim_cfg`` reads SCALE-Sim's ``.cfg`` files so that both simulators can be run
on the same machine description. Bad values raise ``ArgumentError`` naming the field
(and, for a file, the file and line).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, fields, replace
from pathlib import Path

from hwbench.errors import ArgumentError
from hwbench.files import read_text

DATAFLOWS = ("ws", "os", "is")
DATAFLOW_NAMES = {"ws": "weight stationary", "os": "output stationary",
                  "is": "input stationary"}
KIB = 1024
MIB = 1024 * 1024


@dataclass(frozen=True)
class SystolicConfig:
    """One accelerator: a ``rows`` × ``cols`` grid of int8 MACs with int32 accumulators.

    Buffers are in bytes, the off-chip link in bytes per second (``None``: unlimited),
    the activation and vector units in values per cycle. With ``activations_in_dram``
    (SCALE-Sim's machine) every layer reads its input from and writes its output to DRAM;
    without it (the TPU) activations stay in the on-chip ``ifmap_buffer_bytes`` (the
    unified buffer) and only weights cross the off-chip link.
    """

    name: str
    rows: int
    cols: int
    dataflow: str = "ws"
    clock_hz: float = 1e9
    ifmap_buffer_bytes: int = 64 * KIB
    weight_buffer_bytes: int = 64 * KIB
    ofmap_buffer_bytes: int = 64 * KIB
    dram_bytes_per_s: float | None = None
    activations_in_dram: bool = True
    activation_width: int = 0  # 0: as wide as the array (one result row per cycle)
    vector_width: int = 0      # 0: as wide as the array
    source: str = "preset"

    def __post_init__(self) -> None:
        for name in ("rows", "cols", "ifmap_buffer_bytes", "weight_buffer_bytes",
                     "ofmap_buffer_bytes"):
            _positive_int(getattr(self, name), name)
        for name in ("activation_width", "vector_width"):
            value = getattr(self, name)
            if not _is_int(value) or value < 0:
                raise ArgumentError(f"systolic config {self.name!r}: field '{name}' must be an "
                                    f"int >= 0 (0: the array's width), got {value!r}")
        if self.dataflow not in DATAFLOWS:
            raise ArgumentError(f"systolic config {self.name!r}: field 'dataflow' must be one "
                                f"of {', '.join(DATAFLOWS)}, got {self.dataflow!r}")
        if not _positive_real(self.clock_hz):
            raise ArgumentError(f"systolic config {self.name!r}: field 'clock_hz' must be a "
                                f"positive number, got {self.clock_hz!r}")
        if self.dram_bytes_per_s is not None and not _positive_real(self.dram_bytes_per_s):
            raise ArgumentError(f"systolic config {self.name!r}: field 'dram_bytes_per_s' must "
                                f"be a positive number or None (unlimited), got "
                                f"{self.dram_bytes_per_s!r}")
        if not self.activation_width:
            object.__setattr__(self, "activation_width", self.cols)
        if not self.vector_width:
            object.__setattr__(self, "vector_width", self.cols)

    # -- what the parameters imply -------------------------------------------------------
    @property
    def macs(self) -> int:
        """MAC units in the array."""
        return self.rows * self.cols

    @property
    def peak_macs_per_s(self) -> float:
        return self.macs * self.clock_hz

    @property
    def peak_ops_per_s(self) -> float:
        """Peak operations per second (a MAC is two): tpu-v1's 92 TOP/s."""
        return 2.0 * self.peak_macs_per_s

    @property
    def dram_bytes_per_cycle(self) -> float:
        """Off-chip bytes per clock cycle (``inf`` when unlimited)."""
        if self.dram_bytes_per_s is None:
            return math.inf
        return self.dram_bytes_per_s / self.clock_hz

    @property
    def ridge_macs_per_byte(self) -> float:
        """The roofline's ridge: MACs per off-chip byte at which compute and memory take the
        same time (tpu-v1: ~1,350 MACs per weight byte); ``inf`` with unlimited bandwidth."""
        if self.dram_bytes_per_s is None:
            return math.inf
        return self.peak_macs_per_s / self.dram_bytes_per_s

    def describe(self) -> dict:
        """The parameters and what they imply, for reports and ``Backend.info()``."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out.update(peak_tops=self.peak_ops_per_s / 1e12,
                   ridge_macs_per_byte=self.ridge_macs_per_byte,
                   dataflow_name=DATAFLOW_NAMES[self.dataflow])
        return out

    def with_overrides(self, *, dataflow: str | None = None,
                       array: str | tuple[int, int] | None = None) -> SystolicConfig:
        """A copy with another dataflow and/or array size (``"128x128"`` or ``(rows, cols)``)."""
        changes: dict = {}
        if dataflow is not None:
            changes["dataflow"] = dataflow
        if array is not None:
            rows, cols = parse_array(array) if isinstance(array, str) else array
            changes.update(rows=rows, cols=cols)
            # widths that followed the array keep following it
            if self.activation_width == self.cols:
                changes["activation_width"] = 0
            if self.vector_width == self.cols:
                changes["vector_width"] = 0
        if not changes:
            return self
        suffix = f"-{dataflow}" if dataflow is not None else ""
        if array is not None:
            suffix += f"-{changes['rows']}x{changes['cols']}"
        return replace(self, name=self.name + suffix, **changes)


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _positive_int(value, name: str, where: str = "") -> int:
    if not _is_int(value) or value < 1:
        raise ArgumentError(f"{where or 'systolic config'}: field '{name}' must be a positive "
                            f"integer, got {value!r}")
    return value


def _positive_real(value) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value) and value > 0)


def parse_array(text: str) -> tuple[int, int]:
    """``"128x128"`` -> ``(128, 128)`` (rows × columns)."""
    match = re.fullmatch(r"\s*(\d+)\s*[xX×]\s*(\d+)\s*", str(text))
    if not match or min(int(match[1]), int(match[2])) < 1:
        raise ArgumentError(f"argument 'array' must be ROWSxCOLS with positive sizes, e.g. "
                            f"128x128, got {text!r}")
    return int(match[1]), int(match[2])


# Jouppi et al., "In-Datacenter Performance Analysis of a Tensor Processing Unit", ISCA 2017:
# a 256x256 int8 MAC array at 700 MHz, weight stationary; weights stream from an 8 GiB DDR3
# "weight memory" at 34 GB/s through a weight FIFO four 64 KiB tiles deep; activations live
# in the 24 MiB unified buffer; 4 MiB of 32-bit accumulators (4096 rows of 256); the
# activation pipeline handles one 256-wide accumulator row per cycle.
TPU_V1 = SystolicConfig(
    name="tpu-v1", rows=256, cols=256, dataflow="ws", clock_hz=700e6,
    ifmap_buffer_bytes=24 * MIB, weight_buffer_bytes=4 * 64 * KIB,
    ofmap_buffer_bytes=4 * MIB, dram_bytes_per_s=34e9, activations_in_dram=False,
    activation_width=256, vector_width=256)

PRESETS: dict[str, SystolicConfig] = {
    "tpu-v1": TPU_V1,
    # Small arrays for tests and for the cycle-stepped model (slow: a Python loop per cycle).
    "small-4x4": SystolicConfig(name="small-4x4", rows=4, cols=4, dataflow="ws",
                                ifmap_buffer_bytes=4 * KIB, weight_buffer_bytes=4 * KIB,
                                ofmap_buffer_bytes=4 * KIB, dram_bytes_per_s=4e9),
    "small-8x8": SystolicConfig(name="small-8x8", rows=8, cols=8, dataflow="ws",
                                ifmap_buffer_bytes=16 * KIB, weight_buffer_bytes=16 * KIB,
                                ofmap_buffer_bytes=16 * KIB, dram_bytes_per_s=8e9),
    "small-16x16": SystolicConfig(name="small-16x16", rows=16, cols=16, dataflow="os",
                                  ifmap_buffer_bytes=64 * KIB, weight_buffer_bytes=64 * KIB,
                                  ofmap_buffer_bytes=64 * KIB, dram_bytes_per_s=16e9),
}


def preset(name: str) -> SystolicConfig:
    try:
        return PRESETS[name]
    except KeyError:
        raise ArgumentError(f"argument 'config': unknown preset {name!r}; presets: "
                            f"{', '.join(PRESETS)} (or a SCALE-Sim .cfg file)") from None


def load_config(spec: str | SystolicConfig) -> SystolicConfig:
    """A preset name, a SCALE-Sim ``.cfg`` path, or a config (returned as it is)."""
    if isinstance(spec, SystolicConfig):
        return spec
    if not isinstance(spec, str) or not spec.strip():
        raise ArgumentError(f"argument 'config' must be a preset name or a .cfg path, got "
                            f"{spec!r}")
    if spec in PRESETS:
        return PRESETS[spec]
    if spec.endswith(".cfg") or Path(spec).is_file():
        return read_scalesim_cfg(spec)
    return preset(spec)


# -- SCALE-Sim's .cfg files ---------------------------------------------------------------
def _read_ini(path: Path) -> dict[str, dict[str, tuple[str, int]]]:
    """``{section: {key (lower case): (value, line number)}}`` of an INI file; its own
    small reader because ``configparser`` forgets line numbers, and errors must name them."""
    text = read_text(path, "config", encoding="utf-8")
    sections: dict[str, dict[str, tuple[str, int]]] = {}
    current: dict[str, tuple[str, int]] | None = None
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1].strip().lower(), {})
            continue
        key, sep, value = _split_key(line)
        if not sep or current is None:
            raise ArgumentError(f"{path}:{number}: expected 'key: value' inside a [section], "
                                f"got {raw.strip()!r}")
        current[key.strip().lower()] = (value.strip(), number)
    return sections


def _split_key(line: str) -> tuple[str, str, str]:
    colon, equals = line.find(":"), line.find("=")
    cut = min(i for i in (colon, equals) if i >= 0) if max(colon, equals) >= 0 else -1
    if cut < 0:
        return line, "", ""
    return line[:cut], line[cut], line[cut + 1:]


def read_scalesim_cfg(path: str | Path) -> SystolicConfig:
    """A SCALE-Sim (v2/v3) ``.cfg`` file as a config.

    Read: ``[architecture_presets]`` ArrayHeight (rows), ArrayWidth (columns), the three
    SRAM sizes in KiB, Dataflow, Bandwidth (words of one byte per cycle; the first of a
    list); ``[run_presets] InterfaceBandwidth`` (CALC: SCALE-Sim estimates the bandwidth
    a layer needs, which here means unlimited). SCALE-Sim has no clock: 1 GHz unless the
    file sets ``ClockMHz`` (an hwbench extension). Everything else is SCALE-Sim's own
    (traces, layouts, sparsity) and ignored.
    """
    path = Path(path)
    ini = _read_ini(path)
    arch = ini.get("architecture_presets")
    if arch is None:
        raise ArgumentError(f"{path}: no [architecture_presets] section")
    run = ini.get("run_presets", {})
    general = ini.get("general", {})

    def get(key: str, required: bool = True) -> tuple[str, int] | None:
        item = arch.get(key.lower())
        if item is None and required:
            raise ArgumentError(f"{path}: [architecture_presets] lacks field '{key}'")
        return item

    def integer(key: str) -> int:
        value, line = get(key)
        try:
            number = int(value)
        except ValueError:
            number = 0
        if number < 1:
            raise ArgumentError(f"{path}:{line}: field '{key}' must be a positive integer, "
                                f"got {value!r}")
        return number

    rows, cols = integer("ArrayHeight"), integer("ArrayWidth")
    ifmap_kib, filter_kib = integer("IfmapSramSzkB"), integer("FilterSramSzkB")
    ofmap_kib = integer("OfmapSramSzkB")
    flow, flow_line = get("Dataflow")
    if flow.lower() not in DATAFLOWS:
        raise ArgumentError(f"{path}:{flow_line}: field 'Dataflow' must be one of "
                            f"{', '.join(DATAFLOWS)}, got {flow!r}")
    mode = run.get("interfacebandwidth", ("USER", 0))[0].upper()
    bandwidth = None
    if mode != "CALC":
        value, line = get("Bandwidth")
        try:
            words = float(value.split(",")[0])
        except ValueError:
            words = 0.0
        if not words > 0:
            raise ArgumentError(f"{path}:{line}: field 'Bandwidth' must be a positive number "
                                f"of words per cycle, got {value!r}")
    clock = 1e9
    clock_item = get("ClockMHz", required=False)
    if clock_item is not None:
        try:
            clock = float(clock_item[0]) * 1e6
        except ValueError:
            clock = 0.0
        if not clock > 0:
            raise ArgumentError(f"{path}:{clock_item[1]}: field 'ClockMHz' must be a positive "
                                f"number, got {clock_item[0]!r}")
    if mode != "CALC":
        bandwidth = words * clock  # SCALE-Sim's words are one byte
    name = general.get("run_name", (path.stem, 0))[0] or path.stem
    return SystolicConfig(name=name, rows=rows, cols=cols, dataflow=flow.lower(),
                          clock_hz=clock, ifmap_buffer_bytes=ifmap_kib * KIB,
                          weight_buffer_bytes=filter_kib * KIB,
                          ofmap_buffer_bytes=ofmap_kib * KIB, dram_bytes_per_s=bandwidth,
                          activations_in_dram=True, source=str(path))
