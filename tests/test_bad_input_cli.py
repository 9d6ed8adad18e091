"""Bad input on the command line: every command, each argument given a wrong type or value,
and every file argument given a file that is missing, empty, truncated, binary, a folder,
or holds the wrong content; output paths that cannot be written.

Each case calls ``hwbench.cli.main(argv)`` in-process and must end with a non-zero exit, a
message that says what was wrong, and no traceback (an exception escaping ``main`` fails
the case with its own traceback). Every case is refused before anything is measured, so
the whole corpus runs in seconds; an alarm fails any case that starts real work.

Strings that look like rich markup (``[/x]``, ``[cuda]``) are among the values: the CLI
must print them as written, never as markup (issue 13).
"""

from __future__ import annotations

import json
import os
import re
import signal
from dataclasses import dataclass
from pathlib import Path

import pytest

from hwbench.cli import main
from hwbench.pytest_plugin import availability

CASE_SECONDS = 20  # an alarm, not a measurement: a refused case takes well under a second
MARKUP = "[/x]"


@dataclass(frozen=True)
class Case:
    argv: tuple[str, ...]
    expect: str = ""  # a regex the output must match (besides: non-zero exit, no traceback)
    marks: tuple = ()


# -- the files the cases name (built once, under one tmp folder) ------------------------------
RESULT_ROW = {"model": "mlp", "batch": 1, "precision": "fp32", "backend": "numpy",
              "status": "ok", "seconds": 1e-3, "samples_per_s": 1e3, "gflops": 1.0,
              "timing": {"samples": [1e-3, 1e-3]}}


def _result(**change) -> dict:
    payload = {"schema": "hwbench.models", "version": 1, "created": "2026-12-03T00:00:00",
               "environment": {}, "backends": {}, "rows": [dict(RESULT_ROW)]}
    payload.update(change)
    return payload


def _bad_row(**change) -> dict:
    return _result(rows=[{**RESULT_ROW, **change}])


GOOD_RESULT = json.dumps(_result())


def _benchmark(**stats) -> bytes:
    """pytest-benchmark JSON whose one benchmark has ``stats``."""
    return json.dumps({"machine_info": {"node": "x"}, "benchmarks": [
        {"name": "t", "fullname": "t", "stats": stats}]}).encode()


# name -> bytes: every kind of file a user can hand a reader by mistake
FILES: dict[str, bytes] = {
    "empty": b"",
    "blank": b"  \n\n",
    "binary": bytes(range(256)) * 4,
    "latin1": "caf\xe9 na\xefve\n".encode("latin-1") * 20,
    "png": b"\x89PNG\r\n\x1a\n" + b"\x00" * 64,
    "text": b"hello, world\n",
    "markup": f"{MARKUP} [cuda] [bold red]x[/]\n".encode(),
    "truncated_json": GOOD_RESULT[:len(GOOD_RESULT) // 2].encode(),
    "json_list": b"[1, 2, 3]",
    "json_string": b'"hwbench.models"',
    "json_other_schema": json.dumps({"schema": "someone.else", "rows": []}).encode(),
    "json_version_99": json.dumps(_result(version=99)).encode(),
    "json_no_version": json.dumps({"schema": "hwbench.models", "rows": []}).encode(),
    "json_deep": b"[" * 100_000 + b"]" * 100_000,
    "rows_object": json.dumps(_result(rows={"a": 1})).encode(),
    "rows_string": json.dumps(_result(rows="many")).encode(),
    "row_is_number": json.dumps(_result(rows=[1])).encode(),
    "row_seconds_null": json.dumps(_bad_row(seconds=None)).encode(),
    "row_seconds_string": json.dumps(_bad_row(seconds="fast")).encode(),
    "row_seconds_bool": json.dumps(_bad_row(seconds=True)).encode(),
    "row_samples_strings": json.dumps(_bad_row(timing={"samples": ["a", "b"]})).encode(),
    "row_samples_null": json.dumps(_bad_row(timing={"samples": [None, 1e-3]})).encode(),
    "row_samples_object": json.dumps(_bad_row(timing={"samples": {"x": 1}})).encode(),
    "row_timing_list": json.dumps(_bad_row(timing=[1, 2])).encode(),
    "row_gflops_string": json.dumps(_bad_row(gflops="many")).encode(),
    "row_backend_number": json.dumps(_bad_row(backend=7)).encode(),
    "row_markup_model": json.dumps(_bad_row(model=MARKUP, seconds=None)).encode(),
    "environment_list": json.dumps(_result(environment=[1, 2])).encode(),
    "backends_string": json.dumps(_result(backends="numpy")).encode(),
    "truncated_onnx": b"\x08\x07\x12\x07hwbench:\x8a\x01\n\x0b\n\x01x",
    "toml_truncated": b"[simulate\nmodels = [",
    "toml_unknown_table": b"[nosuch]\nkey = 1\n",
    "toml_unknown_key": b"[simulate]\nmodels = ['mlp']\nbogus = 1\n",
    "toml_markup_table": b"[simulate]\nmodels = ['mlp']\n\"[/x]\" = 1\n",
    "toml_wrong_type": b"[simulate]\nmodels = 5\n",
    "toml_empty_grid": b"[simulate]\nmodels = []\n",
    "toml_bad_array": b"[simulate]\nmodels = ['mlp']\narrays = ['0x0']\n",
    "toml_no_section": b"# nothing here\n",
    "csv_header_only": b"Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, "
                       b"Channels, Num Filter, Strides,\n",
    "csv_bad_numbers": b"Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, "
                       b"Channels, Num Filter, Strides,\nconv1, x, 224, 7, 7, 3, 64, 2,\n",
    "csv_negative": b"Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, "
                    b"Channels, Num Filter, Strides,\nconv1, -224, 224, 7, 7, 3, 64, 2,\n",
    "csv_short_row": b"Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, "
                     b"Channels, Num Filter, Strides,\nconv1, 224, 224\n",
    "csv_filter_too_big": b"Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter "
                          b"Width, Channels, Num Filter, Strides,\nconv1, 4, 4, 7, 7, 3, 64, 1,\n",
    "cfg_no_section": b"ArrayHeight : 8\n",
    "cfg_bad_value": b"[general]\nrun_name = x\n[architecture_presets]\nArrayHeight : many\n"
                     b"ArrayWidth : 8\nIfmapSramSzkB : 64\nFilterSramSzkB : 64\n"
                     b"OfmapSramSzkB : 64\nDataflow : ws\n",
    "cfg_zero_array": b"[general]\nrun_name = x\n[architecture_presets]\nArrayHeight : 0\n"
                      b"ArrayWidth : 8\nIfmapSramSzkB : 64\nFilterSramSzkB : 64\n"
                      b"OfmapSramSzkB : 64\nDataflow : ws\n",
    "cfg_markup": b"[general]\nrun_name = [/x]\n[architecture_presets]\nArrayHeight : [/x]\n",
    "report_csv_wrong_header": b"a,b,c\n1,2,3\n",
    "benchmark_median_null": _benchmark(median=None, data=None),
    "benchmark_data_strings": _benchmark(median=1e-3, data=["a", "b"]),
    "benchmark_no_stats": _benchmark(),
    "benchmark_list": b'{"machine_info": {}, "benchmarks": 7}',
}
NOT_JSON = ("empty", "blank", "binary", "latin1", "png", "text", "markup", "truncated_json",
            "json_deep")
NOT_RESULTS = ("json_list", "json_string", "json_other_schema", "json_version_99",
               "json_no_version")
BAD_ROWS = ("rows_object", "rows_string", "row_is_number", "row_seconds_null",
            "row_seconds_string", "row_seconds_bool", "row_samples_strings", "row_samples_null",
            "row_samples_object", "row_timing_list", "row_gflops_string", "row_backend_number",
            "row_markup_model", "environment_list", "backends_string")
NOT_TEXT = ("empty", "blank", "binary", "latin1", "png")
BAD_BENCHMARKS = ("benchmark_median_null", "benchmark_data_strings", "benchmark_no_stats",
                  "benchmark_list")


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("bad-input")
    for name, data in FILES.items():
        (folder / name).write_bytes(data)
    (folder / "folder").mkdir()
    (folder / "good.json").write_text(GOOD_RESULT)
    for name in ("binary", "truncated_json", "row_seconds_null"):  # sweep --resume targets
        (folder / f"resume-{name}").mkdir()
        (folder / f"resume-{name}" / "sweep-sweep.json").write_bytes(FILES[name])
    return folder


def F(name: str) -> str:
    """A placeholder for the path of ``FILES[name]`` (or missing / folder / good.json)."""
    return f"@{name}"


def _resolve(argv: tuple[str, ...], folder: Path) -> list[str]:
    out = []
    for arg in argv:
        if arg.startswith("@"):
            name = arg[1:]
            path = folder / ("does-not-exist" if name == "missing" else name)
            arg = str(path)
        elif "{tmp}" in arg:
            arg = arg.replace("{tmp}", str(folder))
        out.append(arg)
    return out


# -- the cases ----------------------------------------------------------------------------------
UNWRITABLE = "{tmp}/text/below-a-file"  # a path under a regular file: no one can create it

KERNELS = ("kernels", "--backend", "numpy", "--op", "sigmoid", "--no-peak", "--no-save",
           "--repeats", "1", "--min-time", "0", "--max-time", "0.01")
RUN = ("run", "--backend", "numpy", "--model", "mlp", "--batch", "1", "--no-roofline",
       "--no-save", "--repeats", "1", "--min-time", "0", "--max-time", "0.01")
SIMULATE = ("simulate", "--no-save")
SIM_MODEL = (*SIMULATE, "--model", "mlp")


def _cases() -> dict[str, Case]:
    cases: dict[str, Case] = {}

    def add(name: str, *argv: str, expect: str = "", marks: tuple = ()) -> None:
        assert name not in cases, name
        cases[name] = Case(tuple(argv), expect, marks)

    # the command line itself
    add("no-command")
    add("unknown-command", "frobnicate", expect="invalid choice")
    add("markup-command", MARKUP, expect=re.escape(MARKUP))
    add("unknown-global-option", "--frob", "list")
    add("list-extra-argument", "list", "extra")
    add("list-unknown-option", "list", "--csv")
    add("node-resources-extra", "node-resources", "--json")

    # --backend, --threads and the numeric options every measuring command shares
    for command, base in (("kernels", KERNELS), ("run", RUN)):
        for label, value, expect in (
                ("empty", "", "names no backend"), ("comma", ",", "names no backend"),
                ("unknown", "nosuch", "nosuch"), ("markup", f"cpu:{MARKUP}", re.escape(MARKUP)),
                ("markup-name", MARKUP, re.escape(MARKUP)),
                ("bracket-cuda", "[cuda]", re.escape("[cuda]")),
                ("bad-device", "numpy:7", "numpy"), ("space", "num py", "num py"),
                ("unicode", "nümpy", "nümpy"), ("colon", ":", ""),
                ("opencl-99", "opencl:99", "")):
            # names that parse but fail in the worker: "nothing ran" must exit non-zero
            add(f"{command}-backend-{label}", *base, "--backend", value, expect=expect)
        add(f"{command}-backend-cuda-unavailable", *base, "--backend", "cuda")
        for value in ("0", "-1", "-999999999999"):
            add(f"{command}-threads-{value}", *base, "--threads", value, expect="threads")
        for value in ("x", "1.5", "nan", "", MARKUP):
            add(f"{command}-threads-type-{value or 'empty'}", *base, "--threads", value,
                expect="threads")
        for option in ("--max-time", "--timeout", "--min-time", "--repeats"):
            for value in ("x", "", MARKUP, "1,2"):
                add(f"{command}{option}-type-{value or 'empty'}", *base, option, value,
                    expect=option.lstrip("-"))
        for option, value in (("--timeout", "0"), ("--timeout", "-1"), ("--timeout", "nan"),
                              ("--repeats", "0"), ("--repeats", "-1"),
                              ("--max-time", "nan"), ("--max-time", "-1"),
                              ("--max-time", "inf"), ("--min-time", "-1"),
                              ("--min-time", "nan")):
            add(f"{command}{option}-{value}", *base, option, value)
        add(f"{command}-peers-unknown", *base, "--peers", "nosuch", expect="unknown peer")
        add(f"{command}-peers-markup", *base, "--peers", MARKUP, expect=re.escape(MARKUP))
        add(f"{command}-output-unwritable", *base[:-7], "--output", UNWRITABLE,
            "--repeats", "1", "--min-time", "0", "--max-time", "0.01")

    # kernels
    for label, value, expect in (("unknown", "nosuch", "nosuch"), ("empty", "", "op"),
                                 ("markup", MARKUP, re.escape(MARKUP)),
                                 ("mixed", "gemm,nosuch", "nosuch")):
        add(f"kernels-op-{label}", *KERNELS[:4], value, *KERNELS[5:], expect=expect)
    for value in ("nosuch", "", MARKUP):
        add(f"kernels-shapes-{value or 'empty'}", *KERNELS, "--shapes", value,
            expect="invalid choice")
    for value in ("0", "-1"):
        add(f"kernels-batch-{value}", *KERNELS, "--batch", value, expect="batch")
    for value in ("x", "1.5", ""):
        add(f"kernels-batch-type-{value or 'empty'}", *KERNELS, "--batch", value,
            expect="batch")
    for value in ("x", "1.5"):
        add(f"kernels-seed-type-{value}", *KERNELS, "--seed", value, expect="seed")
    add("kernels-seed--1", *KERNELS, "--seed", "-1")
    add("kernels-peak-value", *KERNELS, "--peak=yes")

    # run
    for label, value, expect in (
            ("unknown", "nosuch", "nosuch"), ("empty", "", "names no model"),
            ("comma", ",", "names no model"), ("markup", MARKUP, re.escape(MARKUP)),
            ("missing-file", "@missing", "neither a zoo model"),
            ("folder", "@folder", "neither a zoo model|folder"),
            ("empty-file", "@empty", "empty|not a readable ONNX"),
            ("binary-file", "@binary", "not a readable ONNX"),
            ("png-file", "@png", "not a readable ONNX"),
            ("text-file", "@text", "not a readable ONNX"),
            ("json-file", "@good.json", "not a readable ONNX"),
            ("truncated-onnx", "@truncated_onnx", "not a readable ONNX"),
            ("markup-file", "@markup", "not a readable ONNX")):
        add(f"run-model-{label}", *RUN[:3], "--model", value, *RUN[5:], expect=expect)
    for value in ("0", "-1", "1,0", "-5,8"):
        add(f"run-batch-{value}", *RUN[:5], "--batch", value, *RUN[7:], expect="batch")
    for value in ("x", "1.5", "", ",", "1;2", MARKUP):
        add(f"run-batch-type-{value or 'empty'}", *RUN[:5], "--batch", value, *RUN[7:],
            expect="batch")
    for value in ("fp64", "", ",", MARKUP, "int4,fp32"):
        add(f"run-precision-{value or 'empty'}", *RUN, "--precision", value,
            expect="precision")
    for value in ("height", "=3", "height=", "height=x", "height=0", "height=-1",
                  "height=1.5", MARKUP, ""):
        add(f"run-dim-form-{value or 'empty'}", *RUN, "--dim", value, expect="--dim")
    add("run-dim-not-in-model", *RUN, "--dim", "sequence=8",
        expect="'sequence' is no symbolic dimension")
    add("run-dim-markup-name", *RUN, "--dim", f"{MARKUP}=8", expect=re.escape(MARKUP))
    add("run-markdown-folder", *RUN, "--markdown", "{tmp}/folder")
    add("run-csv-unwritable", *RUN, "--csv", UNWRITABLE)
    add("run-roofline-value", *RUN, "--roofline=no")
    add("run-batch-huge", *RUN[:5], "--batch", "100000000000", *RUN[7:], expect="batch")

    # roofline FILE
    for name in (*NOT_JSON, *NOT_RESULTS, *BAD_ROWS, "missing", "folder"):
        expect = {"missing": "does not exist", "folder": "folder",
                  "empty": "empty", "blank": "empty", "truncated_json": "truncated",
                  "binary": "not a text file", "png": "not a text file",
                  "latin1": "not a text file", "row_seconds_null": r"row 0 .*'seconds' is null",
                  "row_samples_strings": r"row 0 .*'timing.samples'",
                  "row_markup_model": re.escape(MARKUP)}.get(name, "")
        add(f"roofline-{name}", "roofline", F(name), expect=expect)
    add("roofline-output-unwritable", "roofline", "@good.json", "-o", UNWRITABLE + ".png")
    add("roofline-output-folder", "roofline", "@good.json", "-o", "{tmp}/folder")
    add("roofline-no-argument", "roofline")

    # report FILE... -o FOLDER
    for name in (*NOT_JSON, *NOT_RESULTS, *BAD_ROWS, "missing"):
        expect = {"missing": "does not exist", "row_seconds_null": r"'seconds' is null",
                  "binary": "not a text file"}.get(name, "nothing to report")
        add(f"report-{name}", "report", F(name), "-o", f"{{tmp}}/report-{name}",
            expect=expect)
    for name in BAD_BENCHMARKS:
        add(f"report-{name}", "report", F(name), "-o", f"{{tmp}}/report-{name}")
        add(f"compare-{name}", "compare", F(name), F(name))
    add("report-empty-folder", "report", "@folder", "-o", "{tmp}/report-folder",
        expect="nothing to report")
    add("report-output-is-a-file", "report", "@good.json", "-o", "@text")
    add("report-output-unwritable", "report", "@good.json", "-o", UNWRITABLE)
    add("report-no-argument", "report")

    # compare OLD NEW
    for name in (*NOT_JSON, *NOT_RESULTS, *BAD_ROWS, "missing"):
        expect = {"missing": "does not exist", "row_seconds_null": r"'seconds' is null",
                  "binary": "not a text file", "truncated_json": "truncated"}.get(name, "")
        add(f"compare-old-{name}", "compare", F(name), "@good.json", expect=expect)
    for name in ("binary", "row_seconds_null", "row_samples_strings", "missing", "empty",
                 "json_other_schema"):
        add(f"compare-new-{name}", "compare", "@good.json", F(name))
        add(f"compare-confirm-{name}", "compare", "@good.json", "@good.json", "--confirm",
            F(name))
    add("compare-empty-folder", "compare", "@folder", "@good.json", expect="no .json")
    for value in ("x", "median", "median:", "median:x%", "median:-5%", "nosuch:10%",
                  MARKUP, f"median:{MARKUP}", ""):
        add(f"compare-fail-on-{value or 'empty'}", "compare", "@good.json", "@good.json",
            "--fail-on", value, expect="fail-on|fail_on")
    add("compare-one-argument", "compare", "@good.json")

    # simulate
    for label, value, expect in (("unknown-preset", "nosuch", "nosuch"),
                                 ("markup", MARKUP, re.escape(MARKUP)),
                                 ("empty-name", "", "config")):
        add(f"simulate-config-{label}", *SIM_MODEL, "--config", value, expect=expect)
    for name in ("missing", "folder", *NOT_TEXT, "cfg_no_section", "cfg_bad_value",
                 "cfg_zero_array", "cfg_markup", "text", "json_list"):
        add(f"simulate-config-file-{name}", *SIM_MODEL, "--config", F(name) + ".cfg"
            if name in ("missing",) else F(name), expect="")
    for name in ("missing", "folder", *NOT_TEXT, "csv_header_only", "csv_bad_numbers",
                 "csv_negative", "csv_short_row", "csv_filter_too_big", "markup", "text"):
        add(f"simulate-topology-{name}", *SIMULATE, "--topology", F(name))
    for label, value in (("unknown", "nosuch"), ("markup", MARKUP), ("empty", ""),
                         ("missing-file", "@missing"), ("binary-file", "@binary"),
                         ("truncated-onnx", "@truncated_onnx"), ("folder", "@folder")):
        add(f"simulate-model-{label}", *SIMULATE, "--model", value)
    for value in ("0", "-1"):
        add(f"simulate-batch-{value}", *SIM_MODEL, "--batch", value, expect="batch")
    for value in ("x", "1.5", "", MARKUP):
        add(f"simulate-batch-type-{value or 'empty'}", *SIM_MODEL, "--batch", value,
            expect="batch")
    for value in ("x", "0x0", "-1x4", "8x", "x8", "8x8x8", "1.5x2", MARKUP, ""):
        add(f"simulate-array-{value or 'empty'}", *SIM_MODEL, "--array", value,
            expect="array")
    for value in ("nosuch", "", MARKUP):
        add(f"simulate-dataflow-{value or 'empty'}", *SIM_MODEL, "--dataflow", value,
            expect="invalid choice")
    for name in ("missing", "folder", *NOT_TEXT, "report_csv_wrong_header", "markup"):
        add(f"simulate-compare-{name}", *SIM_MODEL, "--compare", F(name))
    add("simulate-no-workload", *SIMULATE, expect="required")
    add("simulate-two-workloads", *SIM_MODEL, "--topology", "@text",
        expect="not allowed with")
    add("simulate-output-unwritable", "simulate", "--model", "mlp", "--output", UNWRITABLE)

    # sweep
    for name in ("missing", "folder", *NOT_TEXT, "text", "markup", "toml_truncated",
                 "toml_unknown_table", "toml_unknown_key", "toml_markup_table",
                 "toml_wrong_type", "toml_empty_grid", "toml_bad_array", "toml_no_section",
                 "good.json"):
        expect = {"toml_unknown_key": "unknown key 'bogus'", "toml_markup_table":
                  re.escape(MARKUP), "toml_unknown_table": re.escape("[nosuch]")}.get(name, "")
        add(f"sweep-spec-{name}", "sweep", F(name), "--output", "{tmp}/sweeps",
            expect=expect)
    add("sweep-no-spec", "sweep", "--output", "{tmp}/sweeps", expect="spec")
    for value in ("x", "=", "a.b", "simulate=1", "simulate.arrays=[", "nosuch.key=1",
                  "simulate.nosuch=1", "simulate.arrays=5", "simulate.arrays=['0x0']",
                  "simulate.batches=[-1]", "simulate.batches=[0]", "simulate.models=[]",
                  f"simulate.models=['{MARKUP}']", f"{MARKUP}=1", "simulate.dataflows=['xx']",
                  "run.backends=['nosuch']", "run.batches=['x']", "run.precisions=['fp64']"):
        add(f"sweep-set-{value}", "sweep", "--set", value, "--output", "{tmp}/sweeps",
            expect="")
    base = ("sweep", "--set", "simulate.models=['mlp']", "--output", "{tmp}/sweeps")
    for option, value in (("--workers", "x"), ("--workers", "1.5"), ("--timeout", "x"),
                          ("--executor", "nosuch"), ("--executor", MARKUP)):
        add(f"sweep{option}-{value}", *base, option, value,
            expect=option.lstrip("-"))
    for option, value in (("--workers", "0"), ("--workers", "-1"), ("--timeout", "0"),
                          ("--timeout", "-1"), ("--timeout", "nan")):
        add(f"sweep{option}-{value}", *base, option, value)
    for name in ("binary", "truncated_json", "row_seconds_null"):
        add(f"sweep-resume-{name}", "sweep", "--set", "simulate.models=['mlp']", "--resume",
            "--output", f"{{tmp}}/resume-{name}", expect="sweep-sweep.json")
    add("sweep-output-unwritable", "sweep", "--set", "simulate.models=['mlp']", "--output",
        UNWRITABLE)

    # train
    train = ("train", "--backend", "numpy", "--output", "{tmp}/weights.npz")
    add("train-no-model", *train, expect="--model")
    for value in ("nosuch", "", MARKUP, "resnet50"):
        add(f"train-model-{value or 'empty'}", *train, "--model", value)
    for value in ("nosuch", MARKUP, "", "cpu:99"):
        add(f"train-backend-{value or 'empty'}", "train", "--model", "mlp", "--backend", value,
            "--output", "{tmp}/weights.npz")
    for option, value in (("--seed", "x"), ("--epochs", "x"), ("--epochs", "1.5"),
                          ("--threads", "x"), ("--epochs", "0"), ("--epochs", "-1"),
                          ("--threads", "0"), ("--threads", "-2"), ("--seed", "-1")):
        add(f"train{option}-{value}", *train, "--model", "mlp", option, value,
            expect=option.lstrip("-"))

    # tune (only opencl devices; every case refused before a search starts)
    for value in ("numpy", "cpu", "", MARKUP, "opencl:99", "opencl:nosuch", "nosuch"):
        add(f"tune-backend-{value or 'empty'}", "tune", "--no-save", "--budget", "0.1",
            "--backend", value)
    for option, value in (("--op", "nosuch"), ("--op", MARKUP), ("--size", "x"),
                          ("--size", "0"), ("--size", "-1"), ("--budget", "x"),
                          ("--budget", "-1"), ("--budget", "nan"), ("--size", "1e9")):
        add(f"tune{option}-{value}", "tune", "--no-save", "--backend", "opencl",
            option, value, expect=option.lstrip("-"))
    return cases


CASES = _cases()


def _params():
    return [pytest.param(case, id=name, marks=case.marks) for name, case in CASES.items()]


def _alarm(signum, frame):
    raise TimeoutError(f"a bad-input case ran past {CASE_SECONDS} s: it started real work")


@pytest.fixture
def alarm():
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(CASE_SECONDS)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


@pytest.mark.parametrize("case", _params())
def test_bad_cli_input_exits_non_zero_with_a_message_and_no_traceback(
        case, files, alarm, capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # nothing lands in the checkout, whatever a case writes
    monkeypatch.setenv("COLUMNS", "200")  # argparse and rich: one message per line
    argv = _resolve(case.argv, files)
    if argv[-2:] == ["--backend", "cuda"] and availability("cuda")[0]:
        pytest.skip("the case needs a machine without the cuda backend; this one has it")
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's refusals
        code = exc.code
    out, err = capsys.readouterr()
    text = out + err
    assert "Traceback" not in text, text
    assert code not in (0, None), f"exit {code!r} for {argv}:\n{text}"
    assert text.strip(), f"no message for {argv}"
    if case.expect:
        assert re.search(case.expect, text), f"{case.expect!r} not in:\n{text}"


def test_the_corpus_is_large():
    assert len(CASES) >= 200, len(CASES)


def test_error_text_is_printed_literally_not_as_rich_markup(capsys):
    """Issue 13: the install hint lost '[cuda]' and '--backend cpu:[/x]' raised rich's
    MarkupError instead of naming the bad backend."""
    from rich.console import Console

    from hwbench.cli.options import say
    from hwbench.errors import ArgumentError

    console = Console(width=200)
    say(console, ArgumentError("pip install 'hwbench[cuda]'; no [simulate] section; "
                               "unknown.toml: [run] unknown key"), "error:", "bold red")
    out = capsys.readouterr().out
    assert "pip install 'hwbench[cuda]'" in out
    assert "no [simulate] section" in out and "unknown.toml: [run] unknown key" in out
    for argv in (["tune", "--backend", f"cpu:{MARKUP}"], ["run", "--model", MARKUP],
                 ["sweep", "--set", f"{MARKUP}=1"]):
        assert main(argv) == 2  # each raised rich's MarkupError before
        out = capsys.readouterr().out
        assert MARKUP in out and "MarkupError" not in out, out


def test_the_files_reader_names_the_argument_and_the_path(files):
    from hwbench.errors import ArgumentError, ResultsError
    from hwbench.files import read_json, read_text

    for name, why in (("does-not-exist", "does not exist"), ("folder", "a folder"),
                      ("empty", "empty"), ("blank", "empty"), ("binary", "NUL byte"),
                      ("latin1", "not utf-8"), ("png", "NUL byte")):
        with pytest.raises(ArgumentError, match=f"argument 'spec': cannot read .*{name}.*{why}"):
            read_text(files / name, "spec")
    with pytest.raises(ResultsError, match=r"truncated_json:1:\d+: ends early \(truncated\?\)"):
        read_json(files / "truncated_json", "results", error=ResultsError)
    with pytest.raises(ResultsError, match="nested too deeply"):
        read_json(files / "json_deep", "results", error=ResultsError)
    assert read_json(files / "good.json", "results")["schema"] == "hwbench.models"
    if hasattr(os, "geteuid") and os.geteuid() != 0:  # root reads anything
        locked = files / "locked"
        locked.write_text("{}")
        locked.chmod(0)
        with pytest.raises(ArgumentError, match="cannot read .*locked.*Permission denied"):
            read_text(locked, "spec")


def test_names_from_files_are_printed_as_written(tmp_path, capsys):
    """A config's run_name and a topology's file name are shown literally in the tables,
    the summary line and the report paths (rich raised MarkupError on the title)."""
    data = Path(__file__).parent / "data" / "scalesim"
    cfg = tmp_path / "tpu.cfg"
    cfg.write_text((data / "google.cfg").read_text().replace(
        "run_name = GoogleTPU_v1_os", f"run_name = tpu{MARKUP}[bold]"))
    topology = tmp_path / "alex[cuda].csv"
    topology.write_bytes((data / "alexnet.csv").read_bytes())
    assert main(["simulate", "--config", str(cfg), "--topology", str(topology), "--output",
                 str(tmp_path / f"out{MARKUP}")]) == 0
    out = capsys.readouterr().out
    assert out.count(f"alex[cuda] on tpu{MARKUP}[bold]") == 2, out
    assert f"out{MARKUP}" in out


def test_damaged_sweep_journal_lines_are_skipped_not_a_traceback(tmp_path):
    from hwbench.harness.sweep.runner import _journal_rows

    journal = tmp_path / "sweep-x.jsonl"
    journal.write_bytes(b'{"id": "a", "status": "ok"}\n' + bytes(range(256)) + b"\n")
    assert [row["id"] for row in _journal_rows(journal)] == ["a"]


@pytest.mark.parametrize("data", [b"PK\x03\x04" + bytes(10), bytes(range(256)), b"",
                                  b"\x93NUMPY\x01\x00"], ids=["zip", "binary", "empty", "npy"])
def test_damaged_weight_files_raise_results_error(tmp_path, data):
    from hwbench.errors import ResultsError
    from hwbench.models import digits

    path = tmp_path / "mlp.npz"
    path.write_bytes(data)
    with pytest.raises(ResultsError, match=f"cannot read mlp weights from {path}"):
        digits.load_params("mlp", path)
