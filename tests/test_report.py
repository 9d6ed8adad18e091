"""``hwbench report``: Markdown and self-contained HTML, tables per backend/model, PNG plots."""

from __future__ import annotations

import base64
import copy
import html
import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from hwbench.cli import main
from hwbench.harness.results import compare, report
from hwbench.harness.results.result_files import new_result, write_json_atomic

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
ENV = {"hwbench": "0.1.0", "host": "vm", "cpu": "AMD EPYC", "cores_available": 2,
       "machine": "x86_64", "python": "3.11.7", "numpy": "2.4.6"}


def _kernels(path: Path, factor: float, created: str) -> Path:
    result = new_result("kernels", dict(ENV), threads=2, backends={})
    result["created"] = created
    for backend in ("numpy", "cpu"):
        for case, seconds in (("gemm_256^3", 1e-3), ("gemm_512^3", 5e-3)):
            samples = list(factor * seconds * np.linspace(0.95, 1.05, 9))
            result["rows"].append({
                "op": "gemm", "case": case, "backend": backend, "status": "ok",
                "seconds": float(np.median(samples)), "flops": 2 * 256 ** 3,
                "bytes": 3 * 4 * 256 ** 2, "gflops": 33.0 / factor, "gbytes_per_s": 0.2,
                "rel_error": 3e-7, "timing": {"samples": samples, "spread": 0.05}})
    return write_json_atomic(path, result)


def _models(path: Path) -> Path:
    result = new_result("models", dict(ENV), threads=2, backends={
        "cpu": {"backend": "cpu", "ceilings": {"gflops": 200.0, "gbytes_per_s": 20.0,
                                               "gemm_n": 2048, "stream_op": "add"}}})
    result["rows"] = [{"model": "lenet", "batch": 8, "precision": "fp32", "backend": "cpu",
                       "status": "ok", "top1": 0.981, "rel_error": 8.9e-7,
                       "samples_per_s": 33445.0, "gflops": 10.5, "intensity": 2.0,
                       "seconds": 2.4e-4, "timing": {"samples": [2.4e-4] * 5}},
                      {"model": "lenet", "batch": 8, "precision": "int8", "backend": "cpu",
                       "status": "unsupported", "reason": "no int8 here"}]
    return write_json_atomic(path, result)


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    folder = tmp_path_factory.mktemp("report")
    inputs = [_kernels(folder / "k1.json", 1.0, "2026-11-20T10:00:00"),
              _kernels(folder / "k2.json", 1.0, "2026-11-21T10:00:00"),
              _kernels(folder / "k3.json", 2.0, "2026-11-22T10:00:00"),
              _models(folder / "m.json")]
    return report.write_report(inputs, folder / "out"), inputs


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tables, self.images, self.external = 0, [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table":
            self.tables += 1
        if tag == "img":
            self.images.append(attrs.get("src", ""))
        if tag in ("link", "script") or (tag == "img" and not attrs.get("src", "").startswith(
                "data:")):
            self.external.append((tag, attrs))


def _check_png(data: bytes) -> np.ndarray:
    import io

    from matplotlib.image import imread

    assert data.startswith(PNG_SIGNATURE) and len(data) > 2000
    pixels = imread(io.BytesIO(data), format="png")
    assert pixels.ndim == 3 and pixels.shape[0] > 100 and pixels.shape[1] > 100
    assert float(pixels[..., :3].std()) > 0.01, "a blank image"
    return pixels


def test_markdown_has_a_table_per_backend_and_model_and_links_its_plots(written):
    rep, _ = written
    text = rep.markdown.read_text()
    assert "### backend numpy" in text and "### backend cpu" in text
    assert "### model lenet" in text and "top-1 98.1%" in text and "no int8 here" in text
    assert "| gemm | gemm_256^3 |" in text
    for png in rep.images:
        assert f"]({png.name})" in text


def test_html_is_self_contained_with_tables_and_embedded_pngs(written):
    rep, _ = written
    page = _Page()
    page.feed(rep.html.read_text())
    assert page.tables == 3 * 2 + 1  # 3 kernels runs × 2 backends, 1 model
    assert page.external == []
    assert len(page.images) == len(rep.images) == 3  # roofline + history of 2 backends
    for src in page.images:
        assert src.startswith("data:image/png;base64,")
        _check_png(base64.b64decode(src.split(",", 1)[1]))


def test_pngs_are_valid_and_show_what_they_claim(written, tmp_path):
    rep, inputs = written
    for png in rep.images:
        _check_png(png.read_bytes())
    assert {p.name for p in rep.images} == {"roofline-m.png", "history-hwbench.kernels-cpu.png",
                                            "history-hwbench.kernels-numpy.png"}
    runs = [compare.load_run(p) for p in inputs[:3]]
    plot = report.plot_history(runs, "cpu", tmp_path / "h.png")
    assert plot.lines == 2 and plot.runs == 3  # one line per benchmark of that backend
    _check_png(plot.path.read_bytes())


def test_history_needs_a_benchmark_in_two_runs(tmp_path):
    one = _kernels(tmp_path / "only.json", 1.0, "2026-11-20T10:00:00")
    rep = report.write_report([one], tmp_path / "out")
    assert rep.images == [] and any("no history plot" in n for n in rep.notes)


def test_report_reads_pytest_benchmark_storage(tmp_path):
    bench = {"machine_info": {"node": "vm", "machine": "x86_64", "python_version": "3.11.7",
                              "cpu": {"brand_raw": "AMD EPYC"}},
             "commit_info": {"id": "abc"}, "version": "5.3.1"}
    for i, factor in enumerate((1.0, 1.5)):
        payload = copy.deepcopy(bench)
        payload["datetime"] = f"2026-11-2{i}T10:00:00"
        payload["benchmarks"] = [{
            "name": "test_kernel[numpy-gemm]", "fullname": "b.py::test_kernel[numpy-gemm]",
            "stats": {"median": factor * 1e-3, "q1": factor * 9e-4, "q3": factor * 1.1e-3,
                      "iqr": factor * 2e-4, "rounds": 20},
            "extra_info": {"backend": "numpy", "op": "gemm", "case": "gemm_256^3",
                           "rate": 30.0, "unit": "GFLOP/s", "rel_error": 2e-7}}]
        (tmp_path / "store" / "Linux").mkdir(parents=True, exist_ok=True)
        (tmp_path / "store" / "Linux" / f"000{i + 1}_x.json").write_text(json.dumps(payload))
    assert main(["report", str(tmp_path / "store"), "-o", str(tmp_path / "out")]) == 0
    text = (tmp_path / "out" / "report.md").read_text()
    assert "pytest-benchmark run: 0002_x.json" in text and "30.0 GFLOP/s" in text
    assert (tmp_path / "out" / "history-pytest-benchmark-numpy.png").is_file()


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        if shutil.which(name):
            return shutil.which(name)
    return None


def test_html_renders_in_headless_chromium(written, tmp_path):
    """The page as a browser shows it: tables and decoded images (IF a browser is here)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright = None
    browser = _chromium()
    if sync_playwright is None and browser is None:
        pytest.skip("no headless browser here: neither chromium/google-chrome on PATH nor "
                    "the playwright package (browsers are not downloaded at test time)")
    rep, _ = written
    if sync_playwright is not None:
        with sync_playwright() as p:
            try:
                page = p.chromium.launch().new_page()
            except Exception as exc:  # playwright without its browser build
                pytest.skip(f"playwright cannot start chromium: {exc}")
            page.goto(rep.html.as_uri())
            assert page.locator("table").count() == 7
            widths = page.eval_on_selector_all("img", "els => els.map(e => e.naturalWidth)")
            assert len(widths) == 3 and all(w > 100 for w in widths)
        return
    # Debian's chromium, headless: a copy of the page with a probe that writes what the
    # browser decoded (tables, each image's natural width) into the DOM that --dump-dom prints.
    probe = tmp_path / "probe.html"
    probe.write_text(rep.html.read_text().replace(
        "</body>", "<script>window.addEventListener('load', () => { const p = "
        "document.createElement('pre'); p.id = 'probe'; p.textContent = JSON.stringify({"
        "tables: document.querySelectorAll('table').length, widths: Array.from("
        "document.images, i => i.naturalWidth)}); document.body.appendChild(p); });"
        "</script></body>"))
    flags = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
             "--no-first-run", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}",
             "--virtual-time-budget=5000"]
    dom = subprocess.run([*flags, "--dump-dom", probe.as_uri()], capture_output=True,
                         text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    found = re.search(r'<pre id="probe">(.*?)</pre>', dom.stdout)
    assert found, "the load handler never ran"
    seen = json.loads(html.unescape(found.group(1)))
    assert seen["tables"] == 7
    assert len(seen["widths"]) == 3 and all(w > 100 for w in seen["widths"])
    shot = tmp_path / "shot.png"
    subprocess.run([*flags, f"--screenshot={shot}", "--window-size=1200,3000",
                    rep.html.as_uri()], capture_output=True, timeout=120, check=True)
    _check_png(shot.read_bytes())
