"""The harness: the timing loop, atomic result files and crash/hang isolation of workers.

No assertion here depends on how fast anything runs: ``measure`` is checked by counting
calls, and the worker tests use a fake worker that crashes or hangs on purpose.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

import hwbench.harness.running.isolation as isolation
from hwbench.errors import ArgumentError, ResultsError
from hwbench.harness.results import result_files as results
from hwbench.harness.results.result_files import new_result, read_result, write_json_atomic
from hwbench.harness.running import timing as timing_module
from hwbench.harness.running.timing import MIN_SAMPLE_SECONDS, Timing, measure


# -- measure -------------------------------------------------------------------------------
class Recorder:
    """A callable that logs each call, and a synchronize that logs a marker.

    With ``step`` set, it also stands in for ``time.perf_counter`` (see ``fake_clock``):
    time then advances by exactly ``step`` per call and not at all otherwise, so the
    loop's decisions are deterministic however busy the machine is.
    """

    def __init__(self, step: float = 0.0) -> None:
        self.log: list[str] = []
        self.step = step
        self.now = 1000.0

    def __call__(self) -> None:
        self.log.append("call")
        self.now += self.step

    def clock(self) -> float:
        return self.now

    def sync(self) -> None:
        self.log.append("sync")

    def segments(self) -> list[int]:
        """Number of calls between consecutive synchronizations."""
        counts, run = [], 0
        for event in self.log:
            if event == "call":
                run += 1
            else:
                counts.append(run)
                run = 0
        assert run == 0, "calls after the last synchronize"
        return counts


@pytest.fixture
def fake_clock(monkeypatch):
    def make(step: float) -> Recorder:
        rec = Recorder(step)
        monkeypatch.setattr(timing_module.time, "perf_counter", rec.clock)
        return rec

    return make


def test_measure_warms_up_then_samples():
    rec = Recorder()
    timing = measure(rec, rec.sync, warmup=3, repeats=5, min_time=0, max_time=60)
    segments = rec.segments()
    assert segments[0] == 3  # the warm-up, synchronized before any sample
    assert segments[1:] == [timing.calls_per_sample] * 5
    assert len(timing.samples) == 5
    assert timing.warmup_calls == 3
    assert rec.log.count("call") == 3 + 5 * timing.calls_per_sample


def test_measure_batches_tiny_calls():
    rec = Recorder()  # a no-op: far below a millisecond on any machine
    timing = measure(rec, rec.sync, warmup=5, repeats=3, min_time=0, max_time=60)
    assert timing.calls_per_sample > 1
    assert len(timing.samples) == 3


def test_measure_sizes_batches_to_last_a_millisecond(fake_clock):
    step = 2.0**-20  # about 1 µs per call
    rec = fake_clock(step)
    timing = measure(rec, rec.sync, warmup=4, repeats=3, min_time=0, max_time=60)
    sample_seconds = timing.calls_per_sample * step
    assert MIN_SAMPLE_SECONDS <= sample_seconds <= 2 * MIN_SAMPLE_SECONDS
    assert timing.samples == (pytest.approx(step),) * 3  # per call, not per sample
    assert rec.segments() == [4] + [timing.calls_per_sample] * 3


def test_measure_caps_the_batch(fake_clock):
    rec = fake_clock(0.0)  # infinitely fast: the batch must still be finite
    timing = measure(rec, rec.sync, warmup=1, repeats=1, min_time=0, max_time=60)
    assert 1 < timing.calls_per_sample <= 100_000


def test_measure_does_not_batch_slow_calls(fake_clock):
    rec = fake_clock(2.0**-8)  # about 4 ms per call
    timing = measure(rec, rec.sync, warmup=1, repeats=2, min_time=0, max_time=60)
    assert timing.calls_per_sample == 1
    assert rec.segments() == [1, 1, 1]
    assert timing.samples == (2.0**-8, 2.0**-8)


def test_measure_stops_at_max_time_with_three_samples(fake_clock):
    rec = fake_clock(2.0**-8)  # every sample outlasts max_time
    timing = measure(rec, rec.sync, warmup=1, repeats=50, min_time=0, max_time=2.0**-9)
    assert len(timing.samples) == 3


def test_measure_max_time_never_cuts_below_repeats_when_fewer_than_three(fake_clock):
    rec = fake_clock(2.0**-8)
    timing = measure(rec, rec.sync, warmup=1, repeats=2, min_time=10, max_time=2.0**-9)
    assert len(timing.samples) == 2  # min(3, repeats) samples, then over budget


def test_measure_keeps_sampling_until_min_time(fake_clock):
    step = 2.0**-8
    rec = fake_clock(step)
    timing = measure(rec, rec.sync, warmup=1, repeats=1, min_time=10 * step, max_time=60)
    # One sample satisfies `repeats`; min_time asks for ten samples' worth of time.
    assert len(timing.samples) == 10


def test_measure_zero_warmup_still_calls_once_first_when_batching():
    rec = Recorder()
    timing = measure(rec, rec.sync, warmup=0, repeats=1, min_time=0, max_time=60)
    assert timing.warmup_calls == 1  # one call's time sizes the batches
    assert rec.segments()[0] == 1


def test_measure_zero_warmup_unbatched_samples_at_once():
    """A caller that has warmed ``fn`` up itself (the model harness's accuracy pass)."""
    rec = Recorder()
    timing = measure(rec, rec.sync, warmup=0, repeats=2, min_time=0, max_time=60,
                     batch_calls=False)
    assert timing.warmup_calls == 0
    assert rec.log.count("call") == 2 and len(timing.samples) == 2


@pytest.mark.parametrize("kwargs", [
    {"repeats": 0}, {"repeats": -1}, {"warmup": -1}, {"min_time": -0.1}, {"max_time": 0},
    {"max_time": -1.0},
], ids=lambda kw: ",".join(f"{k}={v}" for k, v in kw.items()))
def test_measure_rejects_bad_arguments(kwargs):
    rec = Recorder()
    with pytest.raises(ArgumentError, match="measure"):
        measure(rec, rec.sync, **kwargs)
    assert rec.log == []  # refused before running anything


# -- Timing --------------------------------------------------------------------------------
def test_timing_statistics_on_known_samples():
    t = Timing(samples=(8.0, 1.0, 7.0, 2.0, 6.0, 3.0, 5.0, 4.0), calls_per_sample=10,
               warmup_calls=2)
    assert t.median == 4.5
    assert t.min == 1.0 and t.max == 8.0
    # Exclusive-method quartiles of 1..8: 2.25 and 6.75.
    assert t.iqr == pytest.approx(4.5)
    assert t.spread == pytest.approx(1.0)
    assert t.percentile(0) == 1.0
    assert t.percentile(100) == 8.0
    assert t.percentile(-5) == 1.0 and t.percentile(250) == 8.0  # clamped
    assert t.percentile(50) in (4.0, 5.0)
    d = t.to_dict()
    assert d["samples"] == [8.0, 1.0, 7.0, 2.0, 6.0, 3.0, 5.0, 4.0]
    assert d["median"] == 4.5 and d["calls_per_sample"] == 10 and d["warmup_calls"] == 2
    json.dumps(d)  # serialisable as is


def test_timing_few_samples_use_the_range():
    t = Timing(samples=(2.0, 4.0, 3.0), calls_per_sample=1, warmup_calls=1)
    assert t.median == 3.0
    assert t.iqr == 2.0
    assert t.spread == pytest.approx(2.0 / 3.0)


def test_timing_spread_of_zero_median_is_zero():
    t = Timing(samples=(0.0, 0.0, 0.0, 0.0, 0.0), calls_per_sample=1, warmup_calls=1)
    assert t.iqr == 0.0
    assert t.spread == 0.0


# -- result files --------------------------------------------------------------------------
def test_write_json_atomic_writes_and_overwrites(tmp_path):
    import numpy as np

    target = tmp_path / "deep" / "er" / "result.json"  # parents are created
    assert write_json_atomic(target, {"x": 1}) == target
    assert json.loads(target.read_text()) == {"x": 1}
    write_json_atomic(target, {"x": np.float32(1.5), "i": np.int64(7), "t": (1, 2)})
    assert json.loads(target.read_text()) == {"x": 1.5, "i": 7, "t": [1, 2]}
    assert list(target.parent.iterdir()) == [target]


def test_write_json_atomic_serialises_numpy_arrays(tmp_path):
    import numpy as np

    target = write_json_atomic(tmp_path / "r.json", {"v": np.arange(3), "m": np.eye(2)})
    assert json.loads(target.read_text()) == {"v": [0, 1, 2], "m": [[1.0, 0.0], [0.0, 1.0]]}


def test_write_json_atomic_failure_keeps_old_file(tmp_path, monkeypatch):
    target = tmp_path / "result.json"
    write_json_atomic(target, {"generation": 1})
    old = target.read_bytes()

    def dump_then_fail(obj, fh, **kwargs):
        fh.write('{"generation": 2, "rows": [')  # half a file reaches the temporary file
        fh.flush()
        raise RuntimeError("disk full")

    monkeypatch.setattr(results.json, "dump", dump_then_fail)
    with pytest.raises(RuntimeError, match="disk full"):
        write_json_atomic(target, {"generation": 2})
    assert target.read_bytes() == old
    assert list(tmp_path.iterdir()) == [target]  # no temporary file left behind


def test_write_json_atomic_interrupted_keeps_old_file(tmp_path, monkeypatch):
    target = tmp_path / "result.json"
    write_json_atomic(target, {"generation": 1})

    def interrupted(obj, fh, **kwargs):
        fh.write("{")
        raise KeyboardInterrupt

    monkeypatch.setattr(results.json, "dump", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_json_atomic(target, {"generation": 2})
    assert json.loads(target.read_text()) == {"generation": 1}
    assert list(tmp_path.iterdir()) == [target]


def test_write_json_atomic_unwritable_folder(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(ResultsError, match="cannot write"):
        write_json_atomic(blocker / "result.json", {})


def test_read_result_round_trip(tmp_path):
    payload = new_result("kernels", {"cpu": "test"}, threads=3)
    payload["rows"].append({"status": "ok"})
    path = write_json_atomic(tmp_path / "r.json", payload)
    back = read_result(path)
    assert back["schema"] == "hwbench.kernels"
    assert back["version"] == results.SCHEMA_VERSION == 1
    assert back["threads"] == 3 and back["rows"] == [{"status": "ok"}]


@pytest.mark.parametrize("content", [
    json.dumps({"rows": []}),
    json.dumps({"schema": "other.kernels", "version": 1, "rows": []}),
    json.dumps([{"schema": "hwbench.kernels"}]),
    json.dumps({"schema": "hwbench.kernels", "version": 2, "rows": []}),
    json.dumps({"schema": "hwbench.kernels", "rows": []}),
    json.dumps({"schema": "hwbench.kernels", "version": "1", "rows": []}),
    '{"schema": "hwbench.kernels", "version": 1, "rows": [',
    "",
], ids=["no-schema", "foreign-schema", "a-list", "version-2", "no-version", "version-str",
        "truncated", "empty"])
def test_read_result_rejects(tmp_path, content):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(ResultsError):
        read_result(path)


def test_read_result_missing_file(tmp_path):
    with pytest.raises(ResultsError, match="cannot read"):
        read_result(tmp_path / "absent.json")


# -- worker isolation ----------------------------------------------------------------------
FAKE_WORKER = textwrap.dedent("""
    import json, os, sys, time

    job = json.loads(sys.stdin.readline())
    mode = job["fake"]
    generation = int(os.environ.get("FAKE_GENERATION", "0"))

    def emit(*messages):  # several messages in one write: one read may get them all
        sys.stdout.write("".join(json.dumps(m) + "\\n" for m in messages))
        sys.stdout.flush()

    if mode == "die-before-cases":
        sys.stderr.write("fake worker: cannot start\\n")
        sys.exit(4)
    if mode == "chatty-stderr":
        sys.stderr.write("native library warning\\n" * 5000)  # > a 64 KiB pipe buffer
        sys.stderr.flush()
    if mode == "noise-on-stdout":
        print("a native library printing on stdout", flush=True)
    emit({"type": "info", "info": {"pid": os.getpid()}})
    for line in sys.stdin:
        command = json.loads(line)
        if command.get("quit"):
            break
        index = command["run"]
        if mode == "crash" and index == 1:
            sys.stderr.write("fake worker: crashing on purpose\\n")
            sys.stderr.flush()
            os._exit(3)
        if mode == "hang" and index == 0:
            time.sleep(30)
        if mode == "noise-on-stdout":
            print("more native noise", flush=True)
        emit({"type": "row", "index": index,
              "row": {"backend": job["backend"], "case": f"case{index}", "status": "ok"}})
""")


@pytest.fixture
def fake_worker(tmp_path, monkeypatch):
    """Make ``Worker`` start the fake worker instead of ``-m hwbench.harness.running.worker``."""
    script = tmp_path / "fake_worker.py"
    script.write_text(FAKE_WORKER)
    real_popen = subprocess.Popen
    started: list[subprocess.Popen] = []

    def popen(argv, *args, **kwargs):
        assert argv[1:] == ["-m", "hwbench.harness.running.worker"], argv
        proc = real_popen([sys.executable, str(script)], *args, **kwargs)
        started.append(proc)
        return proc

    monkeypatch.setattr(isolation.subprocess, "Popen", popen)
    return started


def _job(mode: str, backend: str = "numpy") -> dict:
    return {"kind": "kernels", "backend": backend, "options": {}, "fake": mode}


def _rows(messages: list[dict], backend: str = "numpy") -> dict[int, dict]:
    rows = [m for m in messages if m["type"] == "row" and m["backend"] == backend]
    indices = [m["index"] for m in rows]
    assert len(indices) == len(set(indices)), f"a case reported twice: {indices}"
    return {m["index"]: m["row"] for m in rows}


def test_side_by_side_survives_a_crashing_worker(fake_worker):
    messages = list(isolation.run_side_by_side([_job("crash")], total=4, timeout=60))
    rows = _rows(messages)
    assert sorted(rows) == [0, 1, 2, 3]
    errors = [i for i, row in rows.items() if row["status"] == "error"]
    assert errors == [1]
    reason = rows[1]["reason"]
    assert "status 3" in reason
    assert "crashing on purpose" in reason  # the worker's last stderr line
    assert rows[1]["backend"] == "numpy"
    assert all(rows[i]["status"] == "ok" for i in (0, 2, 3))
    # A fresh worker took over at the case after the crash.
    assert len(fake_worker) == 2
    assert [m["type"] for m in messages].count("info") == 2
    assert all(p.returncode is not None for p in fake_worker)


def test_side_by_side_kills_a_hung_worker(fake_worker):
    """Silent on case 0: case 0 fails, the worker is killed, the others run."""
    messages = list(isolation.run_side_by_side([_job("hang")], total=3, timeout=1))
    rows = _rows(messages)
    assert sorted(rows) == [0, 1, 2]
    assert rows[0]["status"] == "error"
    assert "no progress" in rows[0]["reason"]
    assert rows[1]["status"] == "ok" and rows[2]["status"] == "ok"
    assert len(fake_worker) == 2
    hung = fake_worker[0]
    assert hung.returncode is not None and hung.returncode < 0  # killed, not left running


def test_side_by_side_interleaves_backends_case_by_case(fake_worker):
    jobs = [_job("ok", "numpy"), _job("ok", "cpu")]
    messages = list(isolation.run_side_by_side(jobs, total=3, timeout=60))
    order = [(m["backend"], m["index"]) for m in messages if m["type"] == "row"]
    assert order == [("numpy", 0), ("cpu", 0), ("numpy", 1), ("cpu", 1), ("numpy", 2),
                     ("cpu", 2)]
    assert len(fake_worker) == 2
    assert all(p.returncode == 0 for p in fake_worker)  # asked to quit, and did


def test_side_by_side_one_backend_failing_leaves_the_other(fake_worker):
    jobs = [_job("die-before-cases", "numpy"), _job("ok", "cpu")]
    messages = list(isolation.run_side_by_side(jobs, total=2, timeout=60))
    fatal = [m for m in messages if m["type"] == "fatal"]
    assert len(fatal) == 1 and fatal[0]["backend"] == "numpy"
    assert "status 4" in fatal[0]["reason"] and "cannot start" in fatal[0]["reason"]
    assert _rows(messages, "numpy") == {}
    assert sorted(_rows(messages, "cpu")) == [0, 1]
    assert len(fake_worker) == 2  # the failed one is not restarted in a loop


def test_side_by_side_survives_a_chatty_stderr(fake_worker):
    rows = _rows(list(isolation.run_side_by_side([_job("chatty-stderr")], total=2, timeout=5)))
    assert sorted(rows) == [0, 1]
    assert all(row["status"] == "ok" for row in rows.values())


def test_side_by_side_survives_non_json_stdout_lines(fake_worker):
    rows = _rows(list(isolation.run_side_by_side([_job("noise-on-stdout")], total=2,
                                                 timeout=60)))
    assert sorted(rows) == [0, 1]


def test_real_worker_reports_an_unknown_job_kind():
    job = {"kind": "nonsense", "backend": "numpy", "options": {}}
    messages = list(isolation.run_side_by_side([job], total=1, timeout=120))
    assert [m["type"] for m in messages] == ["fatal"]
    assert "nonsense" in messages[0]["reason"]


def test_real_worker_runs_a_case():
    job = {"kind": "kernels", "backend": "numpy", "options": {"threads": 1}, "peer": False,
           "ops": ["sigmoid"], "shapes": "small", "batch": 1, "seed": 0,
           "timing": {"repeats": 1, "min_time": 0, "max_time": 0.01}}
    messages = list(isolation.run_side_by_side([job], total=2, timeout=120))
    kinds = [m["type"] for m in messages]
    assert kinds == ["info", "start", "row", "start", "row"]
    assert messages[0]["info"]["threads"] == 1
    rows = _rows(messages)
    assert rows[1]["status"] == "ok" and rows[1]["op"] == "sigmoid"


def test_worker_env_limits_blas_threads_except_for_numpy():
    assert isolation.worker_env("cpu", 4)["OPENBLAS_NUM_THREADS"] == "1"
    assert isolation.worker_env("cpu:mkl", None)["OPENBLAS_NUM_THREADS"] == "1"
    assert isolation.worker_env("numpy", 3)["OPENBLAS_NUM_THREADS"] == "3"
    assert isolation.worker_env("systolic", 2)["OPENBLAS_NUM_THREADS"] == "2"  # NumPy-built
    assert isolation.worker_env("opencl", 2)["OPENBLAS_NUM_THREADS"] == "1"

