"""The roofline: byte counting, placement math, ceilings, the plot, and its two commands."""

from __future__ import annotations

import json

import numpy as np
import pytest

import hwbench.harness.running.isolation as isolation
from hwbench import cli
from hwbench.cli import measuring
from hwbench.errors import ResultsError, UnsupportedError
from hwbench.graph.ir import Graph, Node, ValueInfo
from hwbench.graph.shape_inference import infer_shapes
from hwbench.graph.statistics import graph_bytes, graph_flops
from hwbench.harness.measure import ceilings as ceilings_module
from hwbench.harness.results import roofline as R
from hwbench.harness.results.result_files import new_result, write_json_atomic
from hwbench.harness.suites import model_suite as M

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _tiny_graph() -> Graph:
    """x[1,4] -> Gemm(w[3,4]ᵀ, b[3]) -> Relu -> Reshape(to [3,1]) -> z."""
    inits = {"w": np.ones((3, 4), np.float32), "b": np.zeros(3, np.float32),
             "s": np.array([3, 1], np.int64)}
    nodes = [Node("Gemm", ["x", "w", "b"], ["y"], {"transB": 1}),
             Node("Relu", ["y"], ["r"]),
             Node("Reshape", ["r", "s"], ["z"])]
    return Graph("tiny", [ValueInfo("x", (1, 4))], [ValueInfo("z", (3, 1))], inits, nodes, 13)


def test_graph_bytes_counts_weights_once_activations_twice_and_views_never():
    graph = _tiny_graph()
    shapes = infer_shapes(graph)
    # weights: w 12×4 + b 3×4 + s 2×8 = 76; x written+read 2×16; y and r 2×12 each; z is a
    # view of r (Reshape): nothing.
    assert graph_bytes(graph, shapes) == 76 + 32 + 24 + 24
    assert graph_flops(graph, shapes) == 2 * 1 * 3 * 4  # graph_flops leaves biases out


def test_model_work_is_flops_over_bytes_on_a_real_model():
    import hwbench

    model = hwbench.load_model("mlp", batch=1)
    work = M.model_work(model)
    weights = sum(a.nbytes for a in model.graph.initializers.values() if a.dtype == np.float32)
    assert work.flops == M.model_flops(model) == 2 * (64 * 64 + 64 * 10)
    assert work.bytes > weights  # weights plus activations
    assert work.intensity == pytest.approx(work.flops / work.bytes)
    assert M.ModelWork(10, 0).intensity == 0.0


def test_attainable_is_the_lower_of_the_two_roofs():
    assert R.attainable(100.0, 10.0, 2.0) == 20.0  # bandwidth-bound below the ridge
    assert R.attainable(100.0, 10.0, 50.0) == 100.0  # compute-bound above it
    assert R.ridge_point(100.0, 10.0) == 10.0
    assert R.attainable(100.0, 10.0, R.ridge_point(100.0, 10.0)) == 100.0


def _result(ceilings: bool = True, intensities: bool = True) -> dict:
    env = {"host": "testhost", "cpu": "Test CPU", "cores_available": 2,
           "fma_peak": {"gflops": 150.0, "threads": 2, "isa": "avx512", "spread": 0.0}}
    result = new_result("models", env, models=["mlp", "lenet"], batches=[1, 8],
                        precisions=["fp32"], threads=2, backends={})
    for i, name in enumerate(("numpy", "cpu")):
        result["backends"][name] = {"backend": name, "threads": 2}
        if ceilings:
            result["backends"][name]["ceilings"] = {
                "gflops": 100.0 * (i + 1), "gemm_n": 2048, "gbytes_per_s": 10.0 * (i + 1),
                "stream_op": "add", "seconds": 1.0}
        for model in ("mlp", "lenet"):
            for batch in (1, 8):
                row = {"backend": name, "model": model, "batch": batch, "precision": "fp32",
                       "status": "ok", "gflops": 0.5 * batch * (i + 1)}
                if intensities:
                    row["intensity"] = 0.5 * batch
                result["rows"].append(row)
    result["rows"].append({"backend": "numpy", "model": "vgg19", "batch": 1,
                           "precision": "int8", "status": "unsupported", "reason": "no"})
    return result


def test_points_are_the_ok_rows_at_their_intensity():
    points, skipped = R.points_of(_result())
    assert len(points) == 8 and skipped == []
    p = next(p for p in points if (p.backend, p.model, p.batch) == ("cpu", "lenet", 8))
    assert (p.intensity, p.gflops, p.precision) == (4.0, 8.0, "fp32")
    assert set(R.ceilings_of(_result())) == {"numpy", "cpu"}


def test_plot_writes_a_png_with_every_point_and_roof(tmp_path):
    plot = R.plot_roofline(_result(), tmp_path / "roof.png")
    assert plot.path.read_bytes()[:8] == PNG_SIGNATURE
    assert plot.drawn_points == len(plot.points) == 8
    assert plot.drawn_roofs == 2 and plot.fma_peak == 150.0
    assert [p.name for p in tmp_path.iterdir()] == ["roof.png"]  # no temporary left


def test_older_results_without_ceilings_or_intensities_still_plot(tmp_path):
    """Intensities come from the models themselves; there are no roofs to draw."""
    result = _result(ceilings=False, intensities=False)
    del result["environment"]["fma_peak"]
    plot = R.plot_roofline(result, tmp_path / "old.png")
    assert plot.drawn_points == 8 and plot.drawn_roofs == 0 and plot.fma_peak is None
    work = M.model_work(__import__("hwbench").load_model("lenet", batch=8))
    lenet8 = [p for p in plot.points if (p.model, p.batch) == ("lenet", 8)]
    assert {p.intensity for p in lenet8} == {work.intensity}


def test_a_row_whose_model_cannot_be_found_is_skipped_with_the_reason():
    result = _result(intensities=False)
    result["rows"][0]["model"] = "no-such-model.onnx"
    points, skipped = R.points_of(result)
    assert len(points) == 7 and "no-such-model.onnx" in skipped[0]


def test_nothing_to_place_is_a_results_error(tmp_path):
    result = _result()
    for row in result["rows"]:
        row["status"] = "error"
    with pytest.raises(ResultsError, match="nothing to place"):
        R.plot_roofline(result, tmp_path / "x.png")
    kernels = new_result("kernels", {}, backends={})
    with pytest.raises(ResultsError, match="hwbench.kernels"):
        R.plot_roofline(kernels, tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


def test_ceilings_on_numpy_are_positive_and_sane():
    from hwbench.models.session import session_backend

    ceilings = ceilings_module.measure_ceilings(session_backend("numpy"), gemm_sizes=(128, 256),
                                  stream_elements=1 << 20)
    assert ceilings["gemm_n"] in (128, 256) and set(ceilings["gemm_gflops_median"]) <= {
        "128", "256"}
    assert 0 < ceilings["gflops"] < 1e5
    assert 0 < ceilings["gbytes_per_s"] < 5000  # 4 MiB arrays: cache, not DRAM, but bounded
    assert ceilings["stream_bytes"] == 3 * 4 * (1 << 20)


def test_ceilings_stop_growing_the_gemm_past_the_time_budget(monkeypatch):
    from hwbench.models.session import session_backend

    monkeypatch.setattr(ceilings_module, "GEMM_CALL_BUDGET", 0.0)
    ceilings = ceilings_module.measure_ceilings(session_backend("numpy"), gemm_sizes=(64, 4096),
                                  stream_elements=1 << 16)
    assert ceilings["gemm_n"] == 64 and list(ceilings["gemm_gflops_median"]) == ["64"]


def test_ceilings_need_gemm_and_add():
    with pytest.raises(UnsupportedError, match="no 'asarray'"):
        ceilings_module.measure_ceilings(object())


def test_a_models_worker_reports_its_ceilings_with_its_info():
    """The real worker process, default sizes: the bandwidth of 64 MiB arrays is DRAM's."""
    job = {"kind": "models", "backend": "numpy", "options": {"threads": 1},
           "models": ["mlp"], "batches": [1], "precisions": ["fp32"],
           "timing": {"repeats": 1, "min_time": 0, "max_time": 0.1}, "ceilings": True}
    (message,) = list(isolation.run_side_by_side([job], 0, timeout=120))
    assert message["type"] == "info", message
    ceilings = message["info"]["ceilings"]
    assert 0 < ceilings["gflops"] < 1e5, ceilings
    assert 0 < ceilings["gbytes_per_s"] < 2000, ceilings  # no host memory streams 2 TB/s


# -- the commands --------------------------------------------------------------------------
def test_roofline_command_redraws_beside_the_results_file(tmp_path, capsys):
    path = write_json_atomic(tmp_path / "models-host-1.json", _result())
    assert cli.main(["roofline", str(path)]) == 0
    png = tmp_path / "roofline-models-host-1.png"
    assert png.read_bytes()[:8] == PNG_SIGNATURE
    assert str(png) in capsys.readouterr().out
    assert cli.main(["roofline", str(path), "-o", str(tmp_path / "elsewhere.png")]) == 0
    assert (tmp_path / "elsewhere.png").is_file()


def test_roofline_command_refuses_a_kernels_file(tmp_path, capsys):
    path = write_json_atomic(tmp_path / "k.json", new_result("kernels", {}, backends={}))
    assert cli.main(["roofline", str(path)]) == 2
    assert "hwbench.kernels" in capsys.readouterr().out


def _fake_run(jobs_seen: list):
    def run_side_by_side(jobs, total, timeout, prepare=None):
        jobs_seen.extend(jobs)
        ceilings = {"gflops": 50.0, "gemm_n": 512, "gbytes_per_s": 5.0, "stream_op": "add"}
        info = {"backend": "numpy", "threads": 1}
        if jobs[0]["ceilings"]:
            info["ceilings"] = ceilings
        yield {"type": "info", "backend": "numpy", "info": info}
        for index in range(total):
            yield {"type": "row", "backend": "numpy", "index": index,
                   "row": {"status": "ok", "seconds": 1e-3, "samples_per_s": 1e3,
                           "gflops": 1.0 + index, "intensity": 2.0 + index}}
    return run_side_by_side


@pytest.mark.parametrize("flag", [[], ["--no-roofline"]])
def test_run_draws_the_roofline_beside_its_results_unless_told_not_to(tmp_path, monkeypatch,
                                                                      capsys, flag):
    jobs: list = []
    monkeypatch.setattr(isolation, "run_side_by_side", _fake_run(jobs))
    monkeypatch.setattr(measuring, "measure_peak", lambda threads, console, **how: {"gflops": 99.0})
    code = cli.main(["run", "--backend", "numpy", "--model", "mlp", "--batch", "1,8",
                     "--output", str(tmp_path), *flag])
    assert code == 0
    (results,) = tmp_path.glob("models-*.json")
    payload = json.loads(results.read_text())
    pngs = list(tmp_path.glob("*.png"))
    out = capsys.readouterr().out
    if flag:
        assert pngs == [] and jobs[0]["ceilings"] is False
        assert "fma_peak" not in payload["environment"]
        return
    assert [p.name for p in pngs] == [f"roofline-{results.stem}.png"]
    assert pngs[0].read_bytes()[:8] == PNG_SIGNATURE
    assert jobs[0]["ceilings"] is True and payload["environment"]["fma_peak"]["gflops"] == 99.0
    assert payload["backends"]["numpy"]["ceilings"]["gflops"] == 50.0  # saved: redrawable
    assert "roofline-" in out and "ceilings: numpy: 50.0 GFLOP/s" in out
