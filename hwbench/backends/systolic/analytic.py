"""The analytic timing model: per-fold fill, stream and drain, memory traffic and stalls.

A layer's GEMM ``out[m × n] = A[m × k] @ B[k × n]`` is laid on the array by its dataflow
(``mapping``): one GEMM dimension along the rows, one along the columns, and the third
*streamed* through, ``T`` values per fold. It takes ``ceil(rows_dim / R) × ceil(cols_dim /
C)`` folds; a fold that uses ``r`` of the ``R`` rows and ``c`` of the ``C`` columns takes

    T + R + r + c - 2 cycles                                      (every dataflow)

which ``cycle_model`` reproduces clock by clock: for ws/is, ``r`` cycles to shift the
stationary tile in from the top, then ``T`` streamed vectors whose partial sums leave the
bottom edge ``R + c - 2`` cycles after the last one entered (skewed in by row, out by
column); for os, ``T + r + c - 2`` cycles until the last PE's last MAC, then ``R`` cycles
to shift the results out of the bottom edge. Folds run back to back.

Memory: the fold loop runs column folds outside, row folds inside. Before a fold starts,
its operands must be on chip; with double buffering, fold ``f + 1``'s operands (and fold
``f - 1``'s results) cross the off-chip link while fold ``f`` computes, and a fold whose
transfers take longer than its predecessor's compute stalls by the difference. An
operand is fetched once if it fits half its buffer (the other half is being filled),
and otherwise once per pass of the loop that reuses it; partial sums that do not fit half
the accumulator buffer spill to DRAM and come back. Everything is vectorized over folds:
ResNet-50 on tpu-v1 takes milliseconds.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from hwbench.backends import memory
from hwbench.backends.systolic.config import SystolicConfig
from hwbench.backends.systolic.topology import Layer, VectorOp
from hwbench.errors import ArgumentError

ACC_BYTES = 4  # int32 accumulators / partial sums
# Host bytes the model holds per fold at its peak: ~25 int64/bool arrays over the folds
# (indices, used rows/columns, cycles, traffic, SRAM counts, stalls), rounded up.
FOLD_BYTES = 256
OUT_BYTES = 1  # requantized int8 results


def mapping(dataflow: str, m: int, k: int, n: int) -> tuple[int, int, int]:
    """``(rows_dim, cols_dim, stream)``: which GEMM dimension lies along the array's rows,
    which along its columns, and which is streamed (``T``) for each dataflow.

    ws: weights stationary, k × n on the array, the m input rows streamed;
    os: outputs stationary, m × n on the array, the k-long dot products streamed;
    is: inputs stationary, k × m on the array, the n filters streamed.
    """
    if dataflow == "ws":
        return k, n, m
    if dataflow == "os":
        return m, n, k
    if dataflow == "is":
        return k, m, n
    raise ArgumentError(f"argument 'dataflow' must be ws, os or is, got {dataflow!r}")


def used(extent: int, size: int) -> np.ndarray:
    """How much of an array side of ``size`` each fold of a dimension ``extent`` uses."""
    folds = -(-extent // size)
    out = np.full(folds, size, dtype=np.int64)
    out[-1] = extent - size * (folds - 1)
    return out


def fold_cycles(config: SystolicConfig, stream: int, r, c):
    """Cycles of one fold using ``r`` rows and ``c`` columns with ``stream`` values (T)."""
    return stream + config.rows + r + c - 2


def compute_cycles(config: SystolicConfig, layer: Layer) -> int:
    """The array's busy cycles for a layer, in closed form (sum of ``fold_cycles``)."""
    rows_dim, cols_dim, stream = mapping(config.dataflow, layer.m, layer.k, layer.n)
    nr, nc = -(-rows_dim // config.rows), -(-cols_dim // config.cols)
    one = nr * nc * (stream + config.rows - 2) + nc * rows_dim + nr * cols_dim
    return one * layer.groups


@dataclass(frozen=True)
class LayerReport:
    """What one layer costs on the array. Cycles are clock cycles, bytes are bytes,
    utilizations are fractions (0..1), ``seconds`` at the config's clock."""

    name: str
    kind: str
    dataflow: str
    m: int
    k: int
    n: int
    groups: int
    folds: int
    macs: int
    compute_cycles: int
    stall_cycles: int
    prefetch_cycles: int
    writeback_cycles: int
    vector_cycles: int
    total_cycles: int
    total_cycles_with_prefetch: int
    mapping_efficiency: float
    compute_utilization: float
    overall_utilization: float
    ifmap_sram_reads: int
    filter_sram_reads: int
    ofmap_sram_writes: int
    ofmap_sram_reads: int
    dram_ifmap_bytes: int
    dram_filter_bytes: int
    dram_ofmap_bytes: int
    seconds: float
    tops: float
    geometry: str = ""

    @property
    def dram_bytes(self) -> int:
        return self.dram_ifmap_bytes + self.dram_filter_bytes + self.dram_ofmap_bytes

    def to_dict(self) -> dict:
        return {**asdict(self), "dram_bytes": self.dram_bytes}


def check_fits(config: SystolicConfig, layer: Layer) -> None:
    """Refuse a layer whose smallest tile cannot be double-buffered on chip: the stationary
    tile (ws: weights, is: inputs) twice in its buffer, and one row of int32 accumulators
    for every used column twice in the accumulator buffer."""
    rows_dim, cols_dim, _ = mapping(config.dataflow, layer.m, layer.k, layer.n)
    tile = min(rows_dim, config.rows) * min(cols_dim, config.cols)
    stationary = {"ws": "weight_buffer_bytes", "is": "ifmap_buffer_bytes"}.get(config.dataflow)
    if stationary and 2 * tile > getattr(config, stationary):
        raise ArgumentError(
            f"layer {layer.name!r} cannot fit even one tile on {config.name!r}: field "
            f"'{stationary}' ({getattr(config, stationary)} bytes) must hold two "
            f"{min(rows_dim, config.rows)}x{min(cols_dim, config.cols)} int8 tiles "
            f"({2 * tile} bytes, double buffered)")
    row = 2 * ACC_BYTES * min(cols_dim, config.cols)
    if row > config.ofmap_buffer_bytes:
        raise ArgumentError(
            f"layer {layer.name!r} cannot fit even one tile on {config.name!r}: field "
            f"'ofmap_buffer_bytes' ({config.ofmap_buffer_bytes} bytes) must hold two rows of "
            f"{min(cols_dim, config.cols)} int32 accumulators ({row} bytes)")


def _split(total: int, used_cum: np.ndarray, extent: int) -> np.ndarray:
    """``total`` bytes split over folds in proportion to the extent each covers, in whole
    bytes that add up to ``total`` exactly."""
    edges = (total * np.concatenate(([0], used_cum))) // extent
    return np.diff(edges)


def _transfer(nbytes: np.ndarray, bytes_per_cycle: float) -> np.ndarray:
    """Cycles to move ``nbytes`` over the off-chip link (0 with unlimited bandwidth)."""
    if math.isinf(bytes_per_cycle):
        return np.zeros_like(nbytes)
    return np.ceil(nbytes / bytes_per_cycle).astype(np.int64)


def fold_traffic(config: SystolicConfig, layer: Layer):
    """Per fold (column folds outside, row folds inside, groups one after another):
    ``(cycles, dram_reads, dram_writes, (ifmap_reads, filter_reads), sram, (r, c, T))``:
    int64 arrays of cycles and bytes, ``sram`` a dict of per-fold SRAM access counts
    (values), and the rows and columns each fold uses (of one group) with the stream T."""
    R, C = config.rows, config.cols
    m, k, n = layer.m, layer.k, layer.n
    rows_dim, cols_dim, T = mapping(config.dataflow, m, k, n)
    r, c = used(rows_dim, R), used(cols_dim, C)
    nr, nc = len(r), len(c)
    ii = np.tile(np.arange(nr), nc)
    jj = np.repeat(np.arange(nc), nr)
    rf, cf = r[ii], c[jj]
    cycles = fold_cycles(config, T, rf, cf)
    first_pass, last_row, first_row = jj == 0, ii == nr - 1, ii == 0

    ifmap = layer.ifmap_bytes // layer.groups
    act_dram = config.activations_in_dram or ifmap > config.ifmap_buffer_bytes
    ifmap_fits = ifmap <= config.ifmap_buffer_bytes // 2
    half_w, half_o = config.weight_buffer_bytes // 2, config.ofmap_buffer_bytes // 2
    zeros = np.zeros_like(cycles)
    out_dram = OUT_BYTES if config.activations_in_dram else 0
    psum_rmw = zeros
    if config.dataflow == "ws":      # rows: k, cols: n, streamed: the m input rows
        weights = rf * cf
        per_row = _split(ifmap, np.cumsum(r), k)[ii]
        inputs = per_row * (first_pass | (not ifmap_fits)) if act_dram else zeros
        psum = m * cf * ACC_BYTES
        outputs = m * cf
        sram = dict(ifmap_sram_reads=T * rf, filter_sram_reads=rf * cf, ofmap_sram_writes=m * cf)
    elif config.dataflow == "is":    # rows: k, cols: m, streamed: the n filters
        rc, cc = np.concatenate(([0], np.cumsum(r))), np.concatenate(([0], np.cumsum(c)))
        grid = (ifmap * np.outer(rc, cc)) // (k * m)
        tiles = np.diff(np.diff(grid, axis=0), axis=1)  # (nr, nc) bytes per stationary tile
        inputs = tiles[ii, jj] if act_dram else zeros
        weights = rf * n * (first_pass | (k * n > half_w))
        psum = cf * n * ACC_BYTES
        outputs = cf * n
        sram = dict(ifmap_sram_reads=rf * cf, filter_sram_reads=T * rf, ofmap_sram_writes=T * cf)
    else:                            # os — rows: m, cols: n, streamed: the k-long dot products
        per_row = _split(ifmap, np.cumsum(r), m)[ii]
        inputs = per_row * (first_pass | (not ifmap_fits)) if act_dram else zeros
        weights = k * cf * (first_row | (k * cf > half_w))
        psum = zeros
        outputs = rf * cf
        sram = dict(ifmap_sram_reads=rf * T, filter_sram_reads=T * cf, ofmap_sram_writes=rf * cf)
    if config.dataflow != "os":      # partial sums accumulate over the row folds
        spill = psum > half_o
        reads = inputs + weights + psum * (spill & ~first_row)
        writes = psum * (spill & ~last_row) + outputs * out_dram * last_row
        psum_rmw = (psum // ACC_BYTES) * ~first_row
    else:
        reads = inputs + weights
        writes = outputs * out_dram
    sram["ofmap_sram_reads"] = psum_rmw
    if layer.groups > 1:
        g = layer.groups
        cycles, reads, writes = np.tile(cycles, g), np.tile(reads, g), np.tile(writes, g)
        inputs, weights = np.tile(inputs, g), np.tile(weights, g)
        sram = {key: np.tile(value, g) for key, value in sram.items()}
    return cycles, reads, writes, (inputs, weights), sram, (rf, cf, T)


def stalls(cycles: np.ndarray, reads: np.ndarray, writes: np.ndarray,
           bytes_per_cycle: float) -> tuple[int, int, int]:
    """``(prefetch, stall, writeback)`` cycles of a fold sequence with double buffering.

    Fold 0's operands are fetched before anything runs (the prefetch). While fold ``f``
    computes, the link moves fold ``f + 1``'s operands and fold ``f - 1``'s results;
    whatever of that exceeds fold ``f``'s cycles is a stall. The last fold's results are
    written back after it (the writeback).
    """
    if math.isinf(bytes_per_cycle) or not len(cycles):
        return 0, 0, 0
    work = np.zeros_like(reads)
    work[:-1] += reads[1:]
    work[1:] += writes[:-1]
    stall = np.maximum(_transfer(work, bytes_per_cycle) - cycles, 0)
    prefetch = int(_transfer(reads[:1], bytes_per_cycle)[0])
    writeback = int(_transfer(writes[-1:], bytes_per_cycle)[0])
    return prefetch, int(stall.sum()), writeback


def fold_count(config: SystolicConfig, layer: Layer) -> int:
    """Folds the layer takes: ``ceil(rows_dim / R) * ceil(cols_dim / C) * groups``."""
    rows_dim, cols_dim, _ = mapping(config.dataflow, layer.m, layer.k, layer.n)
    return -(-rows_dim // config.rows) * -(-cols_dim // config.cols) * layer.groups


def check_memory(config: SystolicConfig, layer: Layer) -> None:
    """Refuse (``OutOfMemoryError``) a layer whose per-fold arrays cannot fit in host
    memory, before any is allocated: the model holds ``FOLD_BYTES`` per fold (its size
    grows with M·N/(R·C), never with M·N·K), so a 1e8-sized GEMM would ask for terabytes."""
    folds = fold_count(config, layer)

    def fits(free: int) -> str:
        return (f"layers of at most {free // FOLD_BYTES:,} folds fit on this machine (this "
                f"one has {folds:,} on the {config.rows}x{config.cols} array)")

    memory.require(folds * FOLD_BYTES, f"the analytic model of layer {layer.name!r} "
                   f"(m={layer.m}, k={layer.k}, n={layer.n}, groups={layer.groups})", fits=fits)


def simulate_layer(config: SystolicConfig, layer: Layer) -> LayerReport:
    """The analytic model of one conv/GEMM layer on ``config``."""
    check_fits(config, layer)
    check_memory(config, layer)
    cycles, reads, writes, (inputs, weights), sram, (rf, cf, T) = fold_traffic(config, layer)
    prefetch, stall, writeback = stalls(cycles, reads, writes, config.dram_bytes_per_cycle)
    compute = int(cycles.sum())
    # The activation unit (requantization, Relu) takes the array's results as they leave
    # it; it costs cycles only where it is narrower than the rate they come out at.
    activation = -(-layer.output_elements // config.activation_width)
    extra = max(0, activation - compute)
    total = compute + stall + extra
    full = prefetch + total + writeback
    pes = config.rows * config.cols
    seconds = full / config.clock_hz
    dram_out = int(writes.sum())
    return LayerReport(
        name=layer.name, kind=layer.kind, dataflow=config.dataflow, m=layer.m, k=layer.k,
        n=layer.n, groups=layer.groups, folds=len(cycles), macs=layer.macs,
        compute_cycles=compute, stall_cycles=stall, prefetch_cycles=prefetch,
        writeback_cycles=writeback, vector_cycles=extra, total_cycles=total,
        total_cycles_with_prefetch=full,
        mapping_efficiency=float(np.mean(rf * cf)) / pes,
        compute_utilization=float(np.mean(rf * cf * T / (pes * cycles[:len(rf)]))),
        overall_utilization=layer.macs / (pes * total),
        ifmap_sram_reads=int(sram["ifmap_sram_reads"].sum()),
        filter_sram_reads=int(sram["filter_sram_reads"].sum()),
        ofmap_sram_writes=int(sram["ofmap_sram_writes"].sum()),
        ofmap_sram_reads=int(sram["ofmap_sram_reads"].sum()),
        dram_ifmap_bytes=int(inputs.sum()), dram_filter_bytes=int(weights.sum()),
        dram_ofmap_bytes=dram_out + int(reads.sum() - inputs.sum() - weights.sum()),
        seconds=seconds, tops=2 * layer.macs / seconds / 1e12, geometry=layer.geometry)


def simulate_vector(config: SystolicConfig, op: VectorOp) -> LayerReport:
    """Vector- or activation-unit work: ``elements × ops_per_element`` unit operations at
    the unit's width per cycle, operands on chip."""
    width = config.activation_width if op.unit == "activation" else config.vector_width
    cycles = max(1, -(-op.elements * op.ops_per_element // width))
    seconds = cycles / config.clock_hz
    return LayerReport(
        name=op.name, kind=op.op, dataflow=config.dataflow, m=0, k=0, n=0, groups=1, folds=0,
        macs=0, compute_cycles=0, stall_cycles=0, prefetch_cycles=0, writeback_cycles=0,
        vector_cycles=cycles, total_cycles=cycles, total_cycles_with_prefetch=cycles,
        mapping_efficiency=0.0, compute_utilization=0.0, overall_utilization=0.0,
        ifmap_sram_reads=op.elements, filter_sram_reads=0, ofmap_sram_writes=op.elements,
        ofmap_sram_reads=0, dram_ifmap_bytes=0, dram_filter_bytes=0, dram_ofmap_bytes=0,
        seconds=seconds, tops=0.0, geometry=f"{op.op}: {op.elements:,} values")


def simulate(config: SystolicConfig, layers: list[Layer | VectorOp]) -> list[LayerReport]:
    """Every layer in order (the array runs one layer at a time)."""
    return [simulate_vector(config, x) if isinstance(x, VectorOp) else simulate_layer(config, x)
            for x in layers]


def summarize(config: SystolicConfig, reports: list[LayerReport]) -> dict:
    """Totals over layers: cycles, seconds at the clock, MACs, TOP/s and utilization."""
    cycles = sum(r.total_cycles_with_prefetch for r in reports)
    macs = sum(r.macs for r in reports)
    seconds = cycles / config.clock_hz
    return {
        "config": config.name, "dataflow": config.dataflow, "array": f"{config.rows}x{config.cols}",
        "clock_hz": config.clock_hz, "layers": len(reports), "macs": macs, "cycles": cycles,
        "compute_cycles": sum(r.compute_cycles for r in reports),
        "stall_cycles": sum(r.stall_cycles for r in reports),
        "vector_cycles": sum(r.vector_cycles for r in reports),
        "dram_bytes": sum(r.dram_bytes for r in reports), "seconds": seconds,
        "tops": 2 * macs / seconds / 1e12 if seconds else 0.0,
        "utilization": macs / (config.rows * config.cols * cycles) if cycles else 0.0,
        "peak_tops": config.peak_ops_per_s / 1e12,
    }
