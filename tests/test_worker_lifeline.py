"""Workers never outlive their parent, and a worker lost between cases is recorded
(issue 13, defect 8).

A local sweep killed with SIGKILL or SIGTERM once left its pool workers computing for
minutes; ``hwbench run``'s worker kept running a case after its parent was killed; and an
idle ``run`` worker killed with -9 was replaced without a word. Each test polls, bounded,
for processes to be gone; none asserts a time.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from hwbench.harness.running import isolation, lifeline

REPO = Path(__file__).resolve().parents[1]
WAIT = 60.0  # seconds to wait for workers to start (a loaded 2-core machine)
GONE = 15.0  # seconds for killed workers to go


def _alive(pid: int) -> bool:
    """Running (a zombie, which a container's init may never reap, counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    except OSError:  # no /proc: ask the kernel
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True


def _wait_for(predicate, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


def _env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), str(REPO),
                                         env.get("PYTHONPATH", "")])
    return env


SLOW_POINT = '''
import os, time
from pathlib import Path

def slow(point, timeout):
    """A sweep point that records its worker's pid and then works for minutes."""
    Path(os.environ["PIDS"], str(os.getpid())).touch()
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        sum(range(10000))
    return {"id": point.id, "status": "ok", "reason": "", "result": None, "seconds": 300}
'''

SWEEP = '''
from slowpoint import slow
from hwbench.harness.sweep.runner import run_sweep
from hwbench.harness.sweep.spec import load_spec

spec = load_spec(None, ["simulate.models=['alexnet']",
                        "simulate.arrays=['16x16','32x32','64x64','128x128']"])
run_sweep(spec, {out!r}, executor="local", workers=2, execute=slow)
'''


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_killing_a_local_sweep_ends_its_workers(tmp_path, sig):
    (tmp_path / "slowpoint.py").write_text(SLOW_POINT)
    pids = tmp_path / "pids"
    pids.mkdir()
    env = {**_env(tmp_path), "PIDS": str(pids)}
    parent = subprocess.Popen([sys.executable, "-c", SWEEP.format(out=str(tmp_path / "out"))],
                              env=env, cwd=tmp_path, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE)
    try:
        assert _wait_for(lambda: len(list(pids.iterdir())) >= 2, WAIT), (
            parent.poll(), parent.stderr.read() if parent.poll() is not None else "")
        workers = [int(p.name) for p in pids.iterdir()]
        assert all(_alive(pid) for pid in workers)
        parent.send_signal(sig)
        parent.wait(timeout=GONE)
        assert _wait_for(lambda: not any(_alive(pid) for pid in workers), GONE), (
            f"workers {[pid for pid in workers if _alive(pid)]} outlived their parent")
    finally:
        parent.kill()
        parent.wait()
        for p in pids.iterdir():
            try:
                os.kill(int(p.name), signal.SIGKILL)
            except ProcessLookupError:
                pass


BUSY_WORKER = '''
import json, sys
from hwbench.harness.running import isolation

job = {{"kind": "kernels", "backend": "numpy", "peer": False, "options": {{"threads": 1}},
       "ops": ["sigmoid"], "shapes": "small", "batch": 1, "seed": 0,
       "timing": {{"repeats": 1000000, "min_time": 300.0, "max_time": 300.0}}}}
worker = isolation.Worker(job, timeout=600)
print(worker.proc.pid, flush=True)
worker.run(0)  # minutes of timing: the parent is killed meanwhile
'''


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_a_run_worker_busy_with_a_case_dies_with_its_killed_parent(tmp_path):
    parent = subprocess.Popen([sys.executable, "-c", BUSY_WORKER.format()], env=_env(tmp_path),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    worker = 0
    try:
        line = parent.stdout.readline()
        assert line.strip().isdigit(), parent.stderr.read()
        worker = int(line)
        time.sleep(1.0)  # let it get into the case
        assert _alive(worker)
        parent.kill()
        parent.wait()
        assert _wait_for(lambda: not _alive(worker), GONE), "the worker outlived its parent"
    finally:
        parent.kill()
        parent.wait()
        if worker and _alive(worker):
            os.kill(worker, signal.SIGKILL)


def test_a_child_whose_parent_is_already_gone_exits_at_once(tmp_path):
    code = ("from hwbench.harness.running.lifeline import die_with_parent\n"
            "die_with_parent(1)\n"  # not its parent: as if the real one had died
            "print('still here')\n")
    done = subprocess.run([sys.executable, "-c", code], env=_env(tmp_path),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == lifeline.EXIT_STATUS and "still here" not in done.stdout


def test_the_watchdog_ends_a_child_when_its_parent_dies(tmp_path):
    """Where PR_SET_PDEATHSIG is not used (other OSes, workers started off the main
    thread) a polling thread does the same."""
    child = textwrap.dedent('''
        import os, sys, time
        from hwbench.harness.running.lifeline import die_with_parent
        print(die_with_parent(os.getppid(), pdeathsig=False), os.getpid(), flush=True)
        time.sleep(300)
    ''')
    middle = textwrap.dedent(f'''
        import subprocess, sys, time
        p = subprocess.Popen([sys.executable, "-c", {child!r}])
        time.sleep(300)
    ''')
    parent = subprocess.Popen([sys.executable, "-c", middle], env=_env(tmp_path),
                              stdout=subprocess.PIPE, text=True)
    try:
        how, pid = parent.stdout.readline().split()
        assert how == "watchdog" and _alive(int(pid))
        parent.kill()
        parent.wait()
        assert _wait_for(lambda: not _alive(int(pid)), GONE)
    finally:
        parent.kill()
        parent.wait()


def test_an_idle_worker_killed_between_cases_is_recorded(capsys, monkeypatch, tmp_path):
    """The worker is killed -9 after its first case; the second case's row carries a
    note, the run a warning, and the console says so."""
    from hwbench.cli import main

    real_run = isolation.Worker.run
    killed: list[int] = []

    def run_then_kill(self, index, extra=None):
        row = real_run(self, index, extra)
        if index == 0:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
            killed.append(self.proc.pid)
        return row

    monkeypatch.setattr(isolation.Worker, "run", run_then_kill)
    argv = ["kernels", "--backend", "numpy", "--op", "sigmoid", "--shapes", "small",
            "--repeats", "1", "--min-time", "0", "--max-time", "0.01", "--no-peak",
            "--output", str(tmp_path)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert killed and "died while idle" in out and "SIGKILL" in out
    path = next(line.split("results: ")[1].split()[0] for line in out.splitlines()
                if line.startswith("results: "))
    result = json.loads(Path(path).read_text())
    assert any("died while idle" in w for w in result["warnings"])
    notes = [row.get("notes", []) for row in result["rows"]]
    assert notes[0] == [] and any("SIGKILL" in n for n in notes[1])


@pytest.mark.skipif(not Path(f"/proc/{os.getpid()}/task/{os.getpid()}/children").exists(),
                    reason="needs Linux's /proc/PID/task/TID/children to find the worker")
def test_sigterm_stops_a_kernels_run_as_ctrl_c_does(tmp_path):
    """SIGTERM (a CI timeout, ``kill``): the run stops, marks its file interrupted and
    leaves no worker behind, instead of ending on the spot."""
    argv = [sys.executable, "-m", "hwbench.cli", "kernels", "--backend", "numpy", "--op",
            "sigmoid", "--shapes", "small", "--no-peak", "--repeats", "1000000",
            "--min-time", "300", "--max-time", "300", "--output", str(tmp_path)]
    parent = subprocess.Popen(argv, env=_env(tmp_path), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    try:
        def worker_started() -> list[int]:
            children = Path(f"/proc/{parent.pid}/task/{parent.pid}/children")
            try:
                pids = [int(pid) for pid in children.read_text().split()]
                return [pid for pid in pids if b"hwbench.harness.running.worker" in Path(
                    f"/proc/{pid}/cmdline").read_bytes()]
            except OSError:
                return []

        assert _wait_for(lambda: list(tmp_path.glob("kernels-*.json")) and worker_started(),
                         WAIT)
        workers = worker_started()
        time.sleep(1.0)
        parent.send_signal(signal.SIGTERM)
        out, _ = parent.communicate(timeout=60)
        assert parent.returncode == 130, out
        (path,) = tmp_path.glob("kernels-*.json")
        assert json.loads(path.read_text())["interrupted"] is True
        assert _wait_for(lambda: not any(_alive(pid) for pid in workers), GONE)
    finally:
        parent.kill()
        parent.wait()
