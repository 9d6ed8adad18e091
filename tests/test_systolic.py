"""The systolic backend: a simulated int8 systolic array, exact in values and in cycles.

What is pinned down here: the configuration (tpu-v1's 92 TOP/s and ~1,350 MACs per weight
byte from its own parameters; SCALE-Sim's .cfg files; errors naming file, line and field),
SCALE-Sim's topology CSVs, the analytic model against the cycle-stepped one clock for
clock (and the values that come out of the array against A @ B), the stall model on
hand-worked cases, SCALE-Sim's own AlexNet/ResNet-50 figures with every cycle of
difference accounted for, the functional model's exactness, the backend's counters, and
``hwbench simulate`` / ``hwbench run`` end to end. The kernel-interface conformance of the
backend is the shared suites' (tests/conftest.py runs them on every registered backend).
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hwbench.backends import get_backend
from hwbench.backends.systolic import functional
from hwbench.backends.systolic.analytic import (
    compute_cycles,
    fold_cycles,
    simulate,
    simulate_layer,
    stalls,
    summarize,
)
from hwbench.backends.systolic.config import (
    PRESETS,
    SystolicConfig,
    load_config,
    parse_array,
    read_scalesim_cfg,
)
from hwbench.backends.systolic.cycle_model import simulate_gemm
from hwbench.backends.systolic.topology import Layer, conv_layer, gemm_layer, read_topology
from hwbench.cli import main
from hwbench.errors import ArgumentError
from hwbench.harness.suites.simulate import compare_with_scalesim, run_simulation
from hwbench.kernels import reference

# SCALE-Sim's own configs and topologies, and its reports on them (see the README there)
SCALESIM = DATA = Path(__file__).parent / "data" / "scalesim"
SETTINGS = settings(max_examples=30, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


# -- configuration ---------------------------------------------------------------------------
def test_tpu_v1_peak_and_ridge_come_out_of_its_parameters():
    tpu = PRESETS["tpu-v1"]
    assert (tpu.rows, tpu.cols, tpu.dataflow, tpu.clock_hz) == (256, 256, "ws", 700e6)
    assert tpu.ifmap_buffer_bytes == 24 * 2**20 and tpu.ofmap_buffer_bytes == 4 * 2**20
    # Jouppi et al., ISCA 2017: 92 TOP/s peak; ridge near 1,350 MACs per weight byte
    assert tpu.peak_ops_per_s / 1e12 == pytest.approx(92, rel=0.005)
    assert tpu.ridge_macs_per_byte == pytest.approx(1350, rel=0.001)
    assert tpu.ridge_macs_per_byte == tpu.macs * tpu.clock_hz / tpu.dram_bytes_per_s


@pytest.mark.parametrize("field,value,match", [
    ("rows", 0, "'rows'"), ("cols", -4, "'cols'"), ("dataflow", "rs", "'dataflow'"),
    ("clock_hz", 0.0, "'clock_hz'"), ("weight_buffer_bytes", 0, "'weight_buffer_bytes'"),
    ("dram_bytes_per_s", -1.0, "'dram_bytes_per_s'"), ("vector_width", -1, "'vector_width'"),
])
def test_bad_configurations_name_the_field(field, value, match):
    with pytest.raises(ArgumentError, match=match):
        SystolicConfig(**{"name": "bad", "rows": 4, "cols": 4, field: value})


def test_overrides_and_array_sizes():
    tpu = load_config("tpu-v1")
    small = tpu.with_overrides(dataflow="os", array="128x64")
    assert (small.rows, small.cols, small.dataflow) == (128, 64, "os")
    assert small.name != tpu.name and tpu.with_overrides() is tpu
    assert parse_array(" 8 x 16 ") == (8, 16)
    for bad in ("128", "0x4", "axb"):
        with pytest.raises(ArgumentError, match="'array'"):
            parse_array(bad)
    with pytest.raises(ArgumentError, match="unknown preset"):
        load_config("tpu-v9")


def test_scalesim_cfg_files_are_read():
    google = read_scalesim_cfg(SCALESIM / "google.cfg")
    assert (google.rows, google.cols, google.dataflow) == (256, 256, "os")
    assert google.ifmap_buffer_bytes == 6144 * 1024 and google.ofmap_buffer_bytes == 2048 * 1024
    assert google.dram_bytes_per_cycle == 10 and google.activations_in_dram
    scale = read_scalesim_cfg(SCALESIM / "scale.cfg")
    assert (scale.rows, scale.cols, scale.dataflow) == (32, 32, "ws")
    assert scale.dram_bytes_per_s is None  # InterfaceBandwidth: CALC
    assert load_config(str(SCALESIM / "scale.cfg")) == scale


@pytest.mark.parametrize("line,text,match", [
    (4, "ArrayHeight: 0", r"bad.cfg:4: field 'ArrayHeight'"),
    (4, "ArrayHeight: many", r"bad.cfg:4: field 'ArrayHeight'"),
    (9, "Dataflow : rs", r"bad.cfg:9: field 'Dataflow'"),
    (10, "Bandwidth : -5", r"bad.cfg:10: field 'Bandwidth'"),
    (5, "ArrayWidth 8", r"bad.cfg:5: expected 'key: value'"),
])
def test_bad_cfg_files_name_file_line_and_field(tmp_path, line, text, match):
    lines = ["[general]", "run_name = t", "[architecture_presets]", "ArrayHeight: 8",
             "ArrayWidth: 8", "IfmapSramSzkB: 64", "FilterSramSzkB: 64", "OfmapSramSzkB: 64",
             "Dataflow : ws", "Bandwidth : 10"]
    lines[line - 1] = text
    path = tmp_path / "bad.cfg"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ArgumentError, match=match):
        read_scalesim_cfg(path)


def test_cfg_without_architecture_or_a_field_is_refused(tmp_path):
    path = tmp_path / "x.cfg"
    path.write_text("[general]\nrun_name = x\n")
    with pytest.raises(ArgumentError, match="architecture_presets"):
        read_scalesim_cfg(path)
    path.write_text("[architecture_presets]\nArrayHeight: 4\n")
    with pytest.raises(ArgumentError, match="'ArrayWidth'"):
        read_scalesim_cfg(path)


# -- topologies ----------------------------------------------------------------------------
def test_scalesim_topologies_are_read_by_their_header():
    alexnet = read_topology(SCALESIM / "alexnet.csv")
    assert alexnet.kind == "conv" and len(alexnet.layers) == 5
    conv1 = alexnet.layers[0]
    # SCALE-Sim rounds the output up: 224 - 11 over stride 4 gives 55x55, not 54x54
    assert (conv1.m, conv1.k, conv1.n) == (55 * 55, 11 * 11 * 3, 96)
    assert conv1.ifmap_bytes == 224 * 224 * 3
    resnet = read_topology(SCALESIM / "Resnet50.csv")  # an empty row, extra columns
    assert len(resnet.layers) == 54 and resnet.layers[-1].name == "FC6"
    assert (resnet.layers[-1].m, resnet.layers[-1].k, resnet.layers[-1].n) == (1, 2048, 1000)
    gpt2 = read_topology(SCALESIM / "gpt2.csv")
    assert gpt2.kind == "gemm" and len(gpt2.layers) == 6
    qkt = gpt2.layers[0]  # Layer,M,N,K: QKT,1024,1024,64
    assert (qkt.m, qkt.n, qkt.k) == (1024, 1024, 64)


@pytest.mark.parametrize("rows,match", [
    (["Conv1,224,224,11,11,3,96,four,"], r"csv:2: field 'Strides'"),
    (["Conv1,224,224,11,11,3,0,4,"], r"csv:2: field 'Num Filter'"),
    (["", "Conv1,224,224,11,11,3,96,"], r"csv:3: field 'Strides'"),
    (["Conv1,8,8,11,11,3,96,1,"], r"csv:2: field 'Filter Height'"),
    ([",224,224,11,11,3,96,4,"], r"csv:2: field 'Layer name'"),
])
def test_bad_topology_rows_name_file_line_and_field(tmp_path, rows, match):
    path = tmp_path / "t.csv"
    header = ("Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, "
              "Num Filter, Strides,")
    path.write_text("\n".join([header] + rows) + "\n")
    with pytest.raises(ArgumentError, match=match):
        read_topology(path)


def test_unknown_topology_header_and_empty_files_are_refused(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("a,b,c\n1,2,3\n")
    with pytest.raises(ArgumentError, match="t.csv:1: unrecognized header"):
        read_topology(path)
    path.write_text("name, M, N, K,\n")
    with pytest.raises(ArgumentError, match="no layers"):
        read_topology(path)
    path.write_text("name, M, N, K,\nfc, 4, x, 2,\n")
    with pytest.raises(ArgumentError, match=r"t.csv:2: field 'N'"):
        read_topology(path)


# -- analytic == cycle-stepped ---------------------------------------------------------------
def _random_cases(count: int, seed: int = 2024):
    """Seeded configs: arrays 2-16 on each side, every dataflow, layers of up to 3 folds
    per array side (so most are multi-fold) and a short stream."""
    rng = np.random.default_rng(seed)
    for index in range(count):
        rows, cols = (int(v) for v in rng.integers(2, 17, 2))
        dataflow = ("ws", "os", "is")[index % 3]
        config = SystolicConfig(f"r{index}", rows, cols, dataflow)
        m, k, n = (int(v) for v in rng.integers(1, 3 * max(rows, cols) + 1, 3))
        # keep the stream short: the cycle-stepped model loops over cycles in Python
        if dataflow == "ws":
            k, n, m = min(k, 3 * rows), min(n, 3 * cols), min(m, 20)
        elif dataflow == "os":
            m, n, k = min(m, 3 * rows), min(n, 3 * cols), min(k, 20)
        else:
            k, m, n = min(k, 3 * rows), min(m, 3 * cols), min(n, 20)
        yield config, m, k, n, rng


def test_analytic_compute_cycles_equal_the_cycle_stepped_model_on_240_configs():
    multi_fold, checked = 0, 0
    for config, m, k, n, rng in _random_cases(240):
        a = rng.integers(-128, 128, (m, k))
        b = rng.integers(-128, 128, (k, n))
        result = simulate_gemm(config, a, b)
        np.testing.assert_array_equal(result.values, a @ b)  # the array computes A @ B
        layer = gemm_layer("g", m, k, n)
        assert result.cycles == compute_cycles(config, layer), (config, m, k, n)
        report = simulate_layer(config.with_overrides(), layer)  # unlimited bandwidth
        assert report.compute_cycles == result.cycles and report.stall_cycles == 0
        assert report.folds == len(result.fold_cycles)
        multi_fold += len(result.fold_cycles) > 1
        checked += 1
    assert checked == 240 and multi_fold >= 150


@pytest.mark.parametrize("dataflow", ["ws", "os", "is"])
def test_one_fold_takes_stream_plus_rows_plus_used_rows_and_columns(dataflow):
    config = SystolicConfig("t", 4, 6, dataflow)
    a = np.arange(1, 4 * 3 + 1).reshape(4, 3)  # m=4, k=3
    b = np.arange(1, 3 * 5 + 1).reshape(3, 5)  # n=5
    result = simulate_gemm(config, a, b)
    np.testing.assert_array_equal(result.values, a @ b)
    stream = {"ws": 4, "os": 3, "is": 5}[dataflow]
    rows_used, cols_used = {"ws": (3, 5), "os": (4, 5), "is": (3, 4)}[dataflow]
    assert result.fold_cycles == [fold_cycles(config, stream, rows_used, cols_used)]
    assert result.cycles == stream + 4 + rows_used + cols_used - 2


def test_groups_repeat_the_fold_sequence():
    config = PRESETS["small-8x8"]
    one = Layer("g", 30, 20, 10)
    assert compute_cycles(config, Layer("g", 30, 20, 10, groups=3)) == 3 * compute_cycles(
        config, one)
    dw = conv_layer("dw", 10, 10, 3, 3, 16, 16, 1, groups=16, padding=(1, 1, 1, 1))
    assert (dw.m, dw.k, dw.n, dw.groups) == (100, 9, 1, 16)


# -- memory and stalls (hand-worked) ---------------------------------------------------------
def test_stalls_on_a_hand_worked_fold_sequence():
    # Three folds of 10 cycles at 2 bytes per cycle. Fold 0 needs 40 bytes before it starts
    # (prefetch: 20 cycles). During fold 0 the link moves fold 1's 20 bytes (10 cycles: no
    # stall); during fold 1, fold 2's 30 bytes and fold 0's 0 result bytes... fold 0 wrote
    # nothing, so 15 cycles against 10: 5 stall; during fold 2, fold 1's 5 result bytes
    # (3 cycles); after it, fold 2's 8 result bytes (4 cycles of writeback).
    cycles = np.array([10, 10, 10])
    reads = np.array([40, 20, 30])
    writes = np.array([0, 5, 8])
    assert stalls(cycles, reads, writes, 2.0) == (20, 5, 4)
    assert stalls(cycles, reads, writes, math.inf) == (0, 0, 0)


def test_tpu_v1_fully_connected_layer_is_bound_by_weight_bandwidth():
    """ResNet-50's FC at batch 1 on tpu-v1, by hand: 8 row folds × 4 column folds (the last
    232 wide) of T=1; a fold takes 1 + 256 + 256 + c - 2 cycles (767 or 743) but its
    successor's 256 × c weight tile takes ceil(256·c / (34e9/700e6)) cycles (1350 or 1223)."""
    tpu = PRESETS["tpu-v1"]
    report = simulate_layer(tpu, gemm_layer("fc", 1, 2048, 1000))
    assert report.folds == 32
    assert report.compute_cycles == 24 * 767 + 8 * 743
    assert report.prefetch_cycles == 1350
    assert report.stall_cycles == 23 * (1350 - 767) + (1223 - 767) + 7 * (1223 - 743)
    assert report.dram_filter_bytes == 2048 * 1000 and report.dram_ifmap_bytes == 0
    assert report.total_cycles_with_prefetch == (report.prefetch_cycles
                                                 + report.compute_cycles + report.stall_cycles)


def test_partial_sums_spill_when_the_accumulators_cannot_hold_them():
    roomy = SystolicConfig("roomy", 4, 4, "ws", ofmap_buffer_bytes=1 << 20)
    tight = SystolicConfig("tight", 4, 4, "ws", ofmap_buffer_bytes=64)  # 8 rows of 4 int32
    layer = gemm_layer("g", 100, 12, 4)  # 3 row folds, 1 column fold, 100x4 partial sums
    assert simulate_layer(roomy, layer).dram_ofmap_bytes == 100 * 4  # int8 results only
    spilled = simulate_layer(tight, layer)
    psum = 100 * 4 * 4
    assert spilled.dram_ofmap_bytes == 100 * 4 + 2 * 2 * psum  # 2 write-outs, 2 read-backs
    assert spilled.ofmap_sram_reads == 2 * 100 * 4


def test_a_layer_that_cannot_fit_one_tile_is_refused_naming_the_field():
    config = SystolicConfig("tiny", 16, 16, "ws", weight_buffer_bytes=256)
    with pytest.raises(ArgumentError, match="cannot fit even one tile.*'weight_buffer_bytes'"):
        simulate_layer(config, gemm_layer("g", 4, 64, 64))
    config = SystolicConfig("tiny", 16, 16, "os", ofmap_buffer_bytes=64)
    with pytest.raises(ArgumentError, match="'ofmap_buffer_bytes'"):
        simulate_layer(config, gemm_layer("g", 4, 64, 64))


# -- tpu-v1 on ResNet-50, and SCALE-Sim's own figures ----------------------------------------
def test_resnet50_on_tpu_v1_simulates_in_well_under_half_a_second():
    layers = read_topology(SCALESIM / "Resnet50.csv").layers
    start = time.perf_counter()
    reports = simulate(PRESETS["tpu-v1"], layers)
    elapsed = time.perf_counter() - start
    assert elapsed < 0.5
    total = summarize(PRESETS["tpu-v1"], reports)
    assert 0 < total["tops"] < total["peak_tops"] and total["macs"] > 3e9


@pytest.mark.parametrize("topology,dataflow,report", [
    ("alexnet.csv", "os", "alexnet_google_os_COMPUTE_REPORT.csv"),
    ("alexnet.csv", "ws", "alexnet_google_ws_COMPUTE_REPORT.csv"),
    ("Resnet50.csv", "os", "resnet50_google_os_COMPUTE_REPORT.csv"),
    ("Resnet50.csv", "ws", "resnet50_google_ws_COMPUTE_REPORT.csv"),
])
def test_every_cycle_of_difference_from_scalesim_is_accounted_for(topology, dataflow, report):
    """SCALE-Sim 3.0.0's COMPUTE_REPORT.csv for google.cfg (256x256), kept in tests/data:
    our compute cycles differ from its Total Cycles - Stall Cycles exactly by the terms
    ``explain_difference`` names (unused rows/columns, the os drain, its off-by-one)."""
    config = read_scalesim_cfg(SCALESIM / "google.cfg").with_overrides(dataflow=dataflow)
    sim = run_simulation(config, topology=str(SCALESIM / topology))
    rows = compare_with_scalesim(sim, DATA / report)
    assert rows and all(row["unexplained"] == 0 for row in rows), rows
    if dataflow == "os":
        assert all(row["drain"] > 0 for row in rows)


# -- the functional model ----------------------------------------------------------------------
@settings(max_examples=40, deadline=None, derandomize=True, database=None)
@given(n=st.integers(1, 2), c=st.integers(1, 5), hw=st.integers(1, 7), k=st.integers(1, 6),
       r=st.integers(1, 3), stride=st.integers(1, 2), pad=st.integers(0, 1),
       x_signed=st.booleans(), zx=st.integers(0, 255), zw=st.integers(-128, 127),
       per_filter=st.booleans())
def test_int8_convolution_is_bit_exact_on_drawn_shapes_and_zero_points(
        n, c, hw, k, r, stride, pad, x_signed, zx, zw, per_filter):
    if hw + 2 * pad < r:
        return
    be = get_backend("systolic")
    rng = np.random.default_rng(n + 10 * c + 100 * hw + 1000 * k)
    x_dtype = np.int8 if x_signed else np.uint8
    info = np.iinfo(x_dtype)
    x = rng.integers(info.min, info.max + 1, (n, c, hw, hw)).astype(x_dtype)
    w = rng.integers(-128, 128, (k, c, r, r)).astype(np.int8)
    zx = x_dtype(zx - 128 if x_signed else zx)
    zw = rng.integers(-128, 128, k).astype(np.int8) if per_filter else np.int8(zw)
    got = be.to_numpy(be.conv2d_int8(be.asarray(x), be.asarray(w), zx, zw, stride=stride,
                                     padding=pad))
    want = reference.conv2d_int8(x, w, zx, zw, stride=stride, padding=pad)
    np.testing.assert_array_equal(got, want)


@settings(max_examples=40, deadline=None, derandomize=True, database=None)
@given(m=st.integers(1, 20), k=st.integers(1, 300), n=st.integers(1, 20),
       za=st.integers(0, 255), zb=st.integers(-128, 127), zy=st.integers(0, 255))
def test_qgemm_with_per_column_scales_is_bit_exact(m, k, n, za, zb, zy):
    be = get_backend("systolic")
    rng = np.random.default_rng(m + 100 * k + 10_000 * n)
    a = rng.integers(0, 256, (m, k)).astype(np.uint8)
    b = rng.integers(-128, 128, (k, n)).astype(np.int8)
    sb = rng.uniform(1e-3, 0.05, n).astype(np.float32)
    args = (np.float32(0.02), np.uint8(za), sb, np.int8(zb), np.float32(0.3), np.uint8(zy))
    got = be.to_numpy(be.qgemm(be.asarray(a), args[0], args[1], be.asarray(b), *args[2:]))
    np.testing.assert_array_equal(got, reference.qgemm(a, args[0], args[1], b, *args[2:]))


def test_sigmoid_table_error_is_within_its_bound_and_saturates():
    x = np.linspace(-20, 20, 400_001, dtype=np.float32)
    err = np.abs(functional.sigmoid(x) - reference.sigmoid(x))
    assert err.max() <= 2.0**-14 + 2.0**-17
    assert functional.sigmoid(np.float32([1e30, -1e30])).tolist() == [1 - 2**-16, 0.0]
    assert np.isnan(functional.sigmoid(np.float32([np.nan, 0.0]))[0])


def test_float_kernels_are_quantized_and_say_so():
    be = get_backend("systolic")
    info = be.info()
    assert info["math_mode"] == "int8-quantized"
    assert set(info["quantized_ops"]) == {"gemm", "conv2d", "sigmoid"}
    rng = np.random.default_rng(3)
    a = rng.standard_normal((16, 64)).astype(np.float32)
    b = rng.standard_normal((64, 8)).astype(np.float32)
    out = be.to_numpy(be.gemm(be.asarray(a), be.asarray(b)))
    ref = reference.gemm(a, b)
    err = np.abs(out - ref).max() / np.abs(ref).max()
    assert 1e-5 < err < 0.02  # quantization noise: neither float-exact nor wrong


# -- the backend's counters --------------------------------------------------------------------
def test_each_kernel_call_adds_its_simulated_cycles():
    be = get_backend("systolic:small-8x8")
    assert be.config.name == "small-8x8"
    be.reset_counters()
    a = np.ones((5, 20), np.uint8)
    b = np.ones((20, 9), np.int8)
    for _ in range(3):
        be.gemm_int8(be.asarray(a), be.asarray(b), np.uint8(0), np.int8(0))
    counters = be.simulated_counters()
    layer = simulate_layer(be.config, gemm_layer("gemm_int8", 5, 20, 9))
    assert counters["cycles"] == 3 * layer.total_cycles_with_prefetch
    assert counters["array_cycles"] == 3 * compute_cycles(be.config, gemm_layer("g", 5, 20, 9))
    assert counters["macs"] == 3 * 5 * 20 * 9
    assert counters["seconds"] == counters["cycles"] / be.config.clock_hz
    assert 0 < counters["utilization"] < 1 and counters["layers"][0]["calls"] == 3
    be.add(be.asarray(np.ones(64, np.float32)), be.asarray(np.ones(64, np.float32)))
    assert be.simulated_counters()["vector_cycles"] == 8  # 64 values, 8 lanes
    be.reset_counters()
    assert be.simulated_counters()["cycles"] == 0


def test_a_model_run_reports_per_layer_cycles():
    import hwbench

    be = get_backend("systolic")
    model = hwbench.load_model("lenet", batch=4)
    session = hwbench.Session(model, backend=be, precision="int8")
    x = hwbench.datasets.digits("test")[0][:4]
    be.reset_counters()
    session.run({model.inputs[0]: x})
    counters = be.simulated_counters()
    ops = [layer["op"] for layer in counters["layers"]]
    assert ops.count("conv2d_int8") >= 3 and "quantize_linear" in ops
    assert counters["quantized_calls"] == 0  # the int8 graph: nothing quantized on the fly
    assert counters["tops"] > 0 and counters["seconds"] > 0


# -- the command line --------------------------------------------------------------------------
def test_hwbench_simulate_writes_scalesim_style_reports(tmp_path, capsys):
    code = main(["simulate", "--config", str(SCALESIM / "google.cfg"), "--topology",
                 str(SCALESIM / "alexnet.csv"), "--dataflow", "ws", "--output", str(tmp_path),
                 "--compare", str(DATA / "alexnet_google_ws_COMPUTE_REPORT.csv")])
    assert code == 0
    (report,) = tmp_path.glob("simulate/*/COMPUTE_REPORT.csv")
    header = report.read_text().splitlines()[0].split(",")
    assert header[:7] == ["LayerID", "Total Cycles (incl. prefetch)", "Total Cycles",
                          "Stall Cycles", "Overall Util %", "Mapping Efficiency %",
                          "Compute Util %"]
    assert len(report.read_text().splitlines()) == 1 + 5
    result = json.loads((report.parent / "simulate.json").read_text())
    assert result["config"]["dataflow"] == "ws" and len(result["layers"]) == 5
    assert all(row["unexplained"] == 0 for row in result["scalesim_comparison"])
    assert "unexplained" in capsys.readouterr().out


def test_hwbench_simulate_a_model_and_bad_inputs(tmp_path, capsys):
    assert main(["simulate", "--model", "lenet", "--config", "small-8x8", "--array", "4x4",
                 "--no-save"]) == 0
    assert "lenet on small-8x8" in capsys.readouterr().out
    bad = tmp_path / "bad.cfg"
    bad.write_text("[architecture_presets]\nArrayHeight: -1\n")
    assert main(["simulate", "--config", str(bad), "--model", "lenet", "--no-save"]) == 2
    assert "bad.cfg:2: field 'ArrayHeight'" in capsys.readouterr().out


def test_hwbench_run_on_systolic_keeps_lenet_accuracy_and_reports_simulated_time(tmp_path):
    code = main(["run", "--backend", "systolic", "--model", "lenet", "--batch", "8",
                 "--precision", "fp32,int8", "--repeats", "2", "--min-time", "0",
                 "--max-time", "0.2", "--output", str(tmp_path), "--no-roofline"])
    assert code == 0
    (path,) = tmp_path.glob("models-*.json")
    rows = {r["precision"]: r for r in json.loads(path.read_text())["rows"]}
    for row in rows.values():
        assert row["status"] == "ok"
        assert abs(row["top1"] - 0.9806) <= 0.01  # the fp32 cpu result, within one point
        assert row["simulated_seconds"] > 0 and 0 < row["simulated_utilization"] < 1
        assert row["simulated_tops"] > 0 and row["simulated"]["layers"]
