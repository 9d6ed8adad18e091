"""hwbench's OpenCL SGEMM beside CLBlast's, on every OpenCL runtime this machine has.

One ``hwbench kernels --shapes headline --op gemm`` run times SGEMM 2048³ on ``opencl``
(the default device: PoCL on a CPU), on ``opencl:intel`` where Intel's CPU runtime is
installed (the ``opencl-intel`` extra), and CLBlast's SGEMM on each of those devices (the
``clblast`` peer, ``pip install 'hwbench[clblast]'`` over the system CLBlast library),
each in its own worker process. The figures are printed (``-s``) and checked for
correctness only: CLBlast runs with the parameters its database has for the device (its
defaults on CPUs it was not tuned for), so there is no speed target to hold it to.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hwbench.backends import backend_class
from hwbench.cli import main
from hwbench.harness.suites.peers import ClblastPeer

CASE = "gemm_2048^3"


def _devices() -> list[str]:
    """The opencl selectors to run: the default device, and Intel's CPU runtime if any."""
    ok, why = backend_class("opencl").available()
    if not ok:
        pytest.skip(f"opencl backend unavailable: {why}")
    from hwbench.backends.opencl import runtime

    return ["opencl"] + ([] if runtime.intel_cpu_status() else ["opencl:intel"])


@pytest.fixture(scope="module")
def rows(tmp_path_factory) -> dict[tuple[str, str], dict]:
    """(backend or peer name, case) -> row of one side-by-side run."""
    devices = _devices()
    peers = ["--peers", ",".join(d.replace("opencl", "clblast", 1) for d in devices)] \
        if ClblastPeer.available()[0] else []
    out = tmp_path_factory.mktemp("opencl-runtimes")
    code = main(["kernels", "--shapes", "headline", "--op", "gemm", "--backend",
                 ",".join(devices), *peers, "--min-time", "1", "--no-peak", "--output",
                 str(out)])
    assert code == 0
    result = json.loads(next(Path(out).glob("kernels-*.json")).read_text())
    table = {(r["backend"], r["case"]): r for r in result["rows"]}
    for (name, case), row in sorted(table.items()):
        rate = f"{row['gflops']:.1f} GFLOP/s" if row.get("status") == "ok" else row.get("reason")
        print(f"\n{name:>16} {case}: {rate}")
    return table


def _ok(rows, name: str) -> float:
    row = rows.get((name, CASE))
    assert row is not None, f"no {name} row"
    assert row["status"] == "ok", row.get("reason")
    assert row["rel_error"] < 1e-4, row
    return row["gflops"]


@pytest.mark.parametrize("device", ["opencl", "opencl:intel"])
def test_sgemm_2048_beside_clblast_on_the_same_device(rows, device):
    if device not in _devices():
        from hwbench.backends.opencl import runtime

        pytest.skip(f"no Intel CPU runtime: {runtime.intel_cpu_status()}")
    ours = _ok(rows, device)
    ok, why = ClblastPeer.available()
    if not ok:
        pytest.skip(f"no CLBlast figure beside opencl's {ours:.1f} GFLOP/s: {why}")
    theirs = _ok(rows, device.replace("opencl", "clblast", 1))
    print(f"\n{device}: hwbench {ours:.1f} GFLOP/s, CLBlast {theirs:.1f} GFLOP/s "
          f"({ours / theirs:.2f}x)")
