"""``hwbench simulate``: a model or a SCALE-Sim topology through the systolic timing model.

``backends/systolic`` simulates layers it is given; this module finds them (a topology
CSV, or the convolutions, matrix products and vector work of an ONNX model after the
graph passes), runs the analytic model, and writes the reports: ``COMPUTE_REPORT.csv``
with SCALE-Sim's columns first, in SCALE-Sim's order, then hwbench's; and a JSON file with
everything. ``compare_with_scalesim`` puts SCALE-Sim's own COMPUTE_REPORT.csv beside ours
and accounts for every cycle of difference (see docs/simulator.md).
"""

from __future__ import annotations

import csv
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.markup import escape
from rich.table import Table

from hwbench.backends.systolic.analytic import (
    LayerReport,
    mapping,
    simulate,
    summarize,
    used,
)
from hwbench.backends.systolic.config import SystolicConfig
from hwbench.backends.systolic.topology import (
    Layer,
    VectorOp,
    conv_layer,
    gemm_layer,
    read_topology,
    vector_op,
)
from hwbench.errors import ArgumentError, ResultsError
from hwbench.files import make_new_folder, read_text, write_atomic
from hwbench.graph.ops.shapes import conv_params
from hwbench.graph.passes import optimize
from hwbench.graph.shape_inference import infer_shapes
from hwbench.models import load_model

SCHEMA = "hwbench-simulate/1"
# SCALE-Sim 3's COMPUTE_REPORT.csv columns, in its order; ours follow.
SCALESIM_COLUMNS = ("LayerID", "Total Cycles (incl. prefetch)", "Total Cycles", "Stall Cycles",
                    "Overall Util %", "Mapping Efficiency %", "Compute Util %")
OUR_COLUMNS = ("Layer Name", "Kind", "Dataflow", "M", "K", "N", "Groups", "Folds", "MACs",
               "Compute Cycles", "Prefetch Cycles", "Writeback Cycles", "Vector Cycles",
               "IFMAP SRAM Reads", "Filter SRAM Reads", "OFMAP SRAM Writes", "OFMAP SRAM Reads",
               "IFMAP DRAM Bytes", "Filter DRAM Bytes", "OFMAP DRAM Bytes", "Time (s)", "TOP/s")


@dataclass
class Simulation:
    """One workload on one config: the per-layer reports and their totals."""

    workload: str
    config: SystolicConfig
    reports: list[LayerReport]
    summary: dict[str, Any]
    simulation_seconds: float  # host time the timing model took
    comparison: list[dict[str, Any]] = field(default_factory=list)


# -- workloads ------------------------------------------------------------------------------
VECTOR_OP_NAMES = {"Relu": "relu", "Sigmoid": "sigmoid", "Softmax": "softmax", "Add": "add",
                   "Sum": "add", "Mul": "mul", "Concat": "concat", "Transpose": "transpose",
                   "QuantizeLinear": "quantize_linear",
                   "DequantizeLinear": "dequantize_linear", "MaxPool": "max_pool2d",
                   "AveragePool": "avg_pool2d", "GlobalAveragePool": "global_avg_pool2d",
                   "LRN": "lrn"}
# the normalization and reductions family, as the systolic backend's vector unit counts it
VECTOR_OP_NAMES.update({"LayerNormalization": "layer_norm", "ReduceSum": "reduce",
                        "ReduceMean": "reduce", "ReduceMax": "reduce", "ReduceMin": "reduce",
                        "ReduceProd": "reduce", "ReduceL1": "reduce", "ReduceL2": "reduce",
                        "ReduceSumSquare": "reduce", "ReduceLogSum": "reduce",
                        "ReduceLogSumExp": "reduce"})


def model_layers(model: Any) -> list[Layer | VectorOp]:
    """The array layers and vector-unit work of one inference of ``model`` (a
    ``hwbench.models.Model``), as hwbench runs it: after the graph passes, shapes at the
    model's batch size. A float Conv/Gemm/MatMul is preceded by the quantization of its
    input (vector work), as the systolic backend does it."""
    graph = optimize(model.graph)
    shapes = infer_shapes(graph)
    out: list[Layer | VectorOp] = []
    for index, node in enumerate(graph.nodes):
        name = node.name or f"{node.op_type}_{index}"
        ins = [shapes.get(value) for value in node.inputs]
        result = shapes.get(node.outputs[0]) if node.outputs else None
        op = node.op_type
        if op in ("Conv", "QLinearConv", "ConvInteger"):
            x, w = ins[0], ins[3 if op == "QLinearConv" else 1]
            kernel = tuple(node.attrs.get("kernel_shape") or w[2:])
            p = conv_params(node, x, kernel)
            groups = node.attrs.get("group", 1)
            if op == "Conv":
                out.append(vector_op("quantize", math.prod(x)))
            out.append(conv_layer(name, x[2], x[3], kernel[0], kernel[1], x[1], w[0],
                                  p["stride"][0], p["stride"][1], batch=x[0], groups=groups,
                                  padding=p["padding"], dilation=p["dilation"]))
        elif op in ("Gemm", "MatMul", "QLinearMatMul", "MatMulInteger"):
            a, b = ins[0], ins[3 if op == "QLinearMatMul" else 1]
            if op == "Gemm":
                (m, k) = a[::-1] if node.attrs.get("transA", 0) else a
                n = b[0] if node.attrs.get("transB", 0) else b[1]
                layer = gemm_layer(name, m, k, n)
            elif len(b) == 2:
                layer = gemm_layer(name, math.prod(a[:-1]), a[-1], b[-1])
            else:  # batched: one GEMM per leading index
                layer = Layer(name, m=a[-2], k=a[-1], n=b[-1], groups=math.prod(b[:-2]),
                              geometry=f"{math.prod(b[:-2])} x {a[-2]}x{a[-1]} @ "
                                       f"{b[-2]}x{b[-1]}")
            if op in ("Gemm", "MatMul"):
                out.append(vector_op("quantize", math.prod(a)))
            out.append(layer)
        elif op in VECTOR_OP_NAMES and result is not None:
            kind = VECTOR_OP_NAMES[op]
            ops = None
            elements = math.prod(result)
            if op in ("MaxPool", "AveragePool"):
                ops = math.prod(node.attrs["kernel_shape"])
            elif op == "GlobalAveragePool":
                ops = math.prod(ins[0][2:])
            elif op == "LRN":
                ops = int(node.attrs["size"]) + 3
            elif op == "LayerNormalization":
                ops = 8
            elif kind == "reduce":  # counted per input value, as SystolicBackend._reduce
                elements = math.prod(ins[0])
                ops = 2 if op == "ReduceLogSumExp" else 1
            work = vector_op(kind, elements, ops)
            out.append(VectorOp(name, work.op, work.elements, work.ops_per_element, work.unit))
    if not any(isinstance(x, Layer) for x in out):
        raise ArgumentError(f"model {getattr(model, 'name', '?')!r} has no convolution or "
                            f"matrix product for the array")
    return out


def run_simulation(config: SystolicConfig, *, topology: str | None = None, model: Any = None,
                   batch: int = 1, dims: dict[str, int] | None = None) -> Simulation:
    """Simulate a SCALE-Sim topology CSV or a model (a zoo name, an .onnx path, or a
    ``Model``) on ``config``; ``simulation_seconds`` times the timing model alone.
    ``dims`` sizes a model file's symbolic dimensions (``load_model``)."""
    if (topology is None) == (model is None):
        raise ArgumentError("give exactly one of 'topology' (a SCALE-Sim CSV) and 'model'")
    if topology is not None:
        topo = read_topology(topology)
        workload, layers = topo.name, list(topo.layers)
    else:
        if isinstance(model, str):
            model = load_model(model, batch=batch, dims=dims)
        workload = Path(getattr(model, "name", "model")).stem
        layers = model_layers(model)
    start = time.perf_counter()
    reports = simulate(config, layers)
    summary = summarize(config, reports)
    elapsed = time.perf_counter() - start
    return Simulation(workload, config, reports, summary, elapsed)


# -- SCALE-Sim's figures beside ours -------------------------------------------------------------
def explain_difference(config: SystolicConfig, layer: LayerReport) -> dict[str, int]:
    """Where our compute cycles and SCALE-Sim's part, fold by fold, from the two models'
    formulas (ours checked clock by clock by ``cycle_model``):

    - ``unused``: folds that leave rows or columns of the array unused. Ours end when the
      last *used* column's last result leaves and load only the used rows of a stationary
      tile; SCALE-Sim waits as if the whole array were used: ``-(R - r) - (C - c)`` per
      fold (ws, is); for os ``-(R - r) - (C - c)`` too, its skew running through all R + C.
    - ``drain``: os only. Ours shift the results out of the array after the last product
      (R cycles per fold); SCALE-Sim does not count that time.
    - ``off_by_one``: SCALE-Sim's layer total is its last cycle's index, one less than the
      number of cycles.
    """
    rows_dim, cols_dim, stream = mapping(config.dataflow, layer.m, layer.k, layer.n)
    r, c = used(rows_dim, config.rows), used(cols_dim, config.cols)
    folds_r, folds_c = len(r), len(c)
    unused = -(folds_c * int((config.rows - r).sum()) + folds_r * int((config.cols - c).sum()))
    drain = folds_r * folds_c * config.rows if config.dataflow == "os" else 0
    return {"unused": unused * layer.groups, "drain": drain * layer.groups, "off_by_one": 1}


def read_scalesim_report(path: str | Path) -> list[dict[str, float]]:
    """SCALE-Sim's COMPUTE_REPORT.csv: one dict per layer, keyed by its column names."""
    path = Path(path)
    rows = list(csv.reader(read_text(path, "compare", encoding="utf-8-sig").splitlines()))
    if not rows or [c.strip() for c in rows[0][:len(SCALESIM_COLUMNS)]] != list(
            SCALESIM_COLUMNS):
        raise ArgumentError(f"{path}:1: not a SCALE-Sim COMPUTE_REPORT.csv (expected columns "
                            f"{', '.join(SCALESIM_COLUMNS)})")
    out = []
    for number, row in enumerate(rows[1:], start=2):
        cells = [c.strip() for c in row if c.strip()]
        if not cells:
            continue
        try:
            out.append({key: float(cells[i]) for i, key in enumerate(SCALESIM_COLUMNS)})
        except (ValueError, IndexError):
            raise ArgumentError(f"{path}:{number}: a row of {len(SCALESIM_COLUMNS)} numbers "
                                f"expected, got {','.join(row)!r}") from None
    return out


def compare_with_scalesim(sim: Simulation, report_path: str | Path) -> list[dict[str, Any]]:
    """Per layer: our compute cycles, SCALE-Sim's (its Total Cycles minus its Stall
    Cycles), the difference, and the part of it ``explain_difference`` accounts for."""
    theirs = read_scalesim_report(report_path)
    layers = [r for r in sim.reports if r.folds]
    if len(theirs) != len(layers):
        raise ArgumentError(f"{report_path}: {len(theirs)} layers, but the workload has "
                            f"{len(layers)}")
    rows = []
    for ours, other in zip(layers, theirs, strict=True):
        scalesim = int(other["Total Cycles"] - other["Stall Cycles"])
        parts = explain_difference(sim.config, ours)
        rows.append({"layer": ours.name, "ours": ours.compute_cycles, "scalesim": scalesim,
                     "difference": ours.compute_cycles - scalesim, **parts,
                     "unexplained": ours.compute_cycles - scalesim - sum(parts.values())})
    sim.comparison = rows
    return rows


# -- reports -------------------------------------------------------------------------------------
def _csv_row(index: int, r: LayerReport) -> list[Any]:
    return [index, r.total_cycles_with_prefetch, r.total_cycles, r.stall_cycles,
            100 * r.overall_utilization, 100 * r.mapping_efficiency, 100 * r.compute_utilization,
            r.name, r.kind, r.dataflow, r.m, r.k, r.n, r.groups, r.folds, r.macs,
            r.compute_cycles, r.prefetch_cycles, r.writeback_cycles, r.vector_cycles,
            r.ifmap_sram_reads, r.filter_sram_reads, r.ofmap_sram_writes, r.ofmap_sram_reads,
            r.dram_ifmap_bytes, r.dram_filter_bytes, r.dram_ofmap_bytes, r.seconds, r.tops]


def to_json(sim: Simulation) -> dict[str, Any]:
    return {"schema": SCHEMA, "workload": sim.workload, "config": sim.config.describe(),
            "summary": sim.summary, "simulation_seconds": sim.simulation_seconds,
            "layers": [r.to_dict() for r in sim.reports],
            **({"scalesim_comparison": sim.comparison} if sim.comparison else {})}


def write_reports(sim: Simulation, output: str | Path) -> tuple[Path, Path]:
    """``OUTPUT/simulate/<workload>-<config>/COMPUTE_REPORT.csv`` and ``simulate.json``,
    each written atomically, in a folder of their own: an earlier simulation's folder of
    that name is kept and this one goes to ``<workload>-<config>-2``, ``-3``, ..."""
    folder = make_new_folder(Path(output) / "simulate" / f"{sim.workload}-{sim.config.name}")

    def write_csv(fh) -> None:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(SCALESIM_COLUMNS + OUR_COLUMNS)
        for index, report in enumerate(sim.reports):
            writer.writerow(_csv_row(index, report))

    try:
        csv_path = write_atomic(folder / "COMPUTE_REPORT.csv", write_csv)
        json_path = write_atomic(folder / "simulate.json",
                                 lambda fh: json.dump(to_json(sim), fh, indent=1))
    except OSError as exc:
        raise ResultsError(f"cannot write the reports under {folder}: {exc}") from exc
    return csv_path, json_path


def simulated_row(counters: dict[str, Any], batch: int) -> dict[str, Any]:
    """The fields ``hwbench run`` adds to a row for a simulated accelerator: its time for
    one inference at its clock, TOP/s and utilization, beside the host's time, and the
    per-layer cycles."""
    seconds = counters["seconds"]
    return {"simulated_seconds": seconds, "simulated_cycles": counters["cycles"],
            "simulated_samples_per_s": batch / seconds if seconds else None,
            "simulated_tops": counters["tops"], "simulated_utilization": counters["utilization"],
            "simulated": counters}


# -- tables for the terminal ----------------------------------------------------------------------
def layer_table(sim: Simulation):
    """A rich table: one line per layer (cycles, utilization, off-chip bytes, time)."""
    cfg = sim.config
    table = Table(title=escape(f"{sim.workload} on {cfg.name}: {cfg.rows}x{cfg.cols} "
                               f"{cfg.dataflow}, {cfg.clock_hz / 1e6:g} MHz"))
    for name in ("#", "layer", "shape", "folds", "compute", "stall", "total", "util %",
                 "map eff %", "DRAM KiB", "µs", "TOP/s"):
        table.add_column(name, justify="left" if name in ("layer", "shape") else "right")
    for index, r in enumerate(sim.reports):
        array = bool(r.folds)
        table.add_row(
            str(index), escape(r.name), escape(r.geometry or f"{r.m}x{r.k}x{r.n}"),
            str(r.folds) if array else "-", f"{r.compute_cycles:,}" if array else "-",
            f"{r.stall_cycles:,}", f"{r.total_cycles_with_prefetch:,}",
            f"{100 * r.overall_utilization:.1f}" if array else "-",
            f"{100 * r.mapping_efficiency:.1f}" if array else "-",
            f"{r.dram_bytes / 1024:,.0f}", f"{r.seconds * 1e6:,.1f}",
            f"{r.tops:.2f}" if array else "-")
    return table


def comparison_table(sim: Simulation):
    """Our compute cycles beside SCALE-Sim's, with the difference taken apart."""
    table = Table(title="compute cycles: hwbench vs SCALE-Sim (Total - Stall Cycles)")
    for name in ("layer", "hwbench", "SCALE-Sim", "difference", "unused rows/cols", "os drain",
                 "off by one", "unexplained"):
        table.add_column(name, justify="left" if name == "layer" else "right")
    for row in sim.comparison:
        table.add_row(escape(row["layer"]), *(f"{row[key]:,}" for key in (
            "ours", "scalesim", "difference", "unused", "drain", "off_by_one", "unexplained")))
    totals = {key: sum(row[key] for row in sim.comparison) for key in (
        "ours", "scalesim", "difference", "unused", "drain", "off_by_one", "unexplained")}
    table.add_row("total", *(f"{value:,}" for value in totals.values()), style="bold")
    return table
