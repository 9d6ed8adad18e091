"""Several OpenCL runtimes side by side: Intel's CPU runtime (the ``intel-opencl-rt`` wheel)
registered with pyopencl's ICD loader beside PoCL, its devices numbered after the others,
selection by runtime name, the compiler options it needs, and the crash probe on it.

The registration logic is tested everywhere; what needs the runtime skips, naming the
wheel, where it is not installed (it is 225 MB, so not in CI's ``all`` extra)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from backend_marks import availability

from hwbench.backends import get_backend
from hwbench.backends.opencl import runtime
from hwbench.backends.opencl.runtime import (
    OWN_VENDORS_VARIABLE,
    opencl_c_std,
    wheel_vendor_folder,
)

OK, WHY = availability("opencl")


def _intel_why() -> str:
    return runtime.intel_cpu_status() if OK else WHY


INTEL_WHY = _intel_why()
needs_intel = pytest.mark.skipif(bool(INTEL_WHY), reason=f"no Intel CPU runtime: {INTEL_WHY}")


# -- registration (no runtime needed) ----------------------------------------------------------
@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("HWBENCH_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_vendor_folder_names_the_wheel_library_beside_the_system_icds(cache, tmp_path):
    system = tmp_path / "vendors"
    system.mkdir()
    (system / "nvidia.icd").write_text("libnvidia-opencl.so.1\n")
    library = tmp_path / "lib" / "libintelocl.so"
    folder = wheel_vendor_folder(library, {"OPENCL_VENDOR_PATH": str(system)})
    assert folder is not None and folder.is_relative_to(cache)
    icds = {p.name: p.read_text() for p in folder.glob("*.icd")}
    # the system's ICDs stay visible (OCL_ICD_VENDORS replaces the loader's own folder)
    assert icds == {"nvidia.icd": "libnvidia-opencl.so.1\n",
                    "hwbench-intel-cpu.icd": f"{library}\n"}
    # the same content gives the same folder; other content another one
    assert wheel_vendor_folder(library, {"OPENCL_VENDOR_PATH": str(system)}) == folder
    assert wheel_vendor_folder(tmp_path / "other.so",
                               {"OPENCL_VENDOR_PATH": str(system)}) != folder


def test_users_ocl_icd_vendors_is_never_overridden(cache, tmp_path):
    library = tmp_path / "libintelocl.so"
    assert wheel_vendor_folder(library, {"OCL_ICD_VENDORS": "/mine"}) is None
    assert not cache.exists()


def test_a_parents_folder_is_taken_as_hwbench_s_own(cache, tmp_path):
    """A harness worker or the probe inherits the variable: it must number devices as its
    parent did, so it knows the folder as hwbench's, not the user's."""
    own = "/x/opencl-vendors/abc"
    env = {"OCL_ICD_VENDORS": own, OWN_VENDORS_VARIABLE: own}
    assert wheel_vendor_folder(None, env) == Path(own)
    env[OWN_VENDORS_VARIABLE] = "/elsewhere"  # the user changed it since: theirs
    assert wheel_vendor_folder(tmp_path / "libintelocl.so", env) is None


def test_nothing_is_added_without_the_wheel_or_over_a_system_install(cache, tmp_path):
    assert wheel_vendor_folder(None, {}) is None
    system = tmp_path / "vendors"
    system.mkdir()
    (system / "intel.icd").write_text("/opt/intel/oclcpuexp/x64/libintelocl.so\n")
    assert wheel_vendor_folder(tmp_path / "libintelocl.so",
                               {"OPENCL_VENDOR_PATH": str(system)}) is None


def test_unwritable_cache_adds_nothing_and_does_not_raise(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("HWBENCH_CACHE_DIR", str(blocker / "cache"))  # under a file
    assert wheel_vendor_folder(tmp_path / "libintelocl.so", {}) is None


@pytest.mark.parametrize("text,std", [("OpenCL C 3.1 ", "CL3.0"), ("OpenCL C 3.0", "CL3.0"),
                                      ("OpenCL C 2.0", "CL2.0"), ("OpenCL C 1.2 PoCL", None),
                                      ("", None), ("OpenCL C x.y", None)])
def test_opencl_c_std_is_the_newest_the_device_compiles(text, std):
    assert opencl_c_std(text) == std


def test_runtime_names_select_before_device_names(monkeypatch):
    """On an Intel CPU, PoCL's device is named "pthread-Intel(R) Xeon ...": opencl:intel
    must still reach Intel's runtime, and opencl:pocl PoCL (its vendor's name)."""
    from hwbench.backends.opencl.runtime import DeviceEntry

    pocl = DeviceEntry(0, 0, 0, "Portable Computing Language", "pthread-Intel(R) Xeon(R)",
                       "CPU", "3.0", "OpenCL 3.0 PoCL", "The pocl project")
    intel = DeviceEntry(1, 1, 0, "Intel(R) OpenCL", "Intel(R) Xeon(R)", "CPU", "2026",
                        "OpenCL 3.1", "Intel(R) Corporation")
    monkeypatch.setattr(runtime, "discover", lambda: (pocl, intel))
    assert runtime.select("intel") == intel
    assert runtime.select("pocl") == pocl
    assert runtime.select("xeon") == pocl  # device names: the first match, as before
    assert runtime.select(None) == pocl


def test_missing_wheel_is_named_in_the_reason(monkeypatch):
    monkeypatch.setattr(runtime, "intel_cpu_library", lambda: None)
    why = runtime.intel_cpu_status()
    assert "intel-opencl-rt" in why and "hwbench[opencl-intel]" in why



def test_fixtures_availability_selects_opencl_devices_by_name(monkeypatch):
    """The one availability check behind the plugin's, tests/' and benchmarks/' fixtures:
    opencl devices by index or name, and opencl:intel naming the missing wheel."""
    from hwbench.pytest_plugin import availability

    if not OK:
        pytest.skip(f"opencl unavailable: {WHY}")
    assert availability("opencl:0") == (True, "")
    assert availability("opencl:pocl") == (True, "")
    ok, why = availability("opencl:no-such-runtime")
    assert not ok and "no OpenCL device matches 'no-such-runtime'" in why
    monkeypatch.setattr(runtime, "intel_cpu_library", lambda: None)
    ok, why = availability("opencl:intel")
    assert not ok and "intel-opencl-rt" in why

# -- with the runtime --------------------------------------------------------------------------
@needs_intel
def test_intel_runtime_is_numbered_after_the_others_and_selected_by_name():
    entries = runtime.discover()
    intel = [e for e in entries if e.platform == runtime.INTEL_CPU_PLATFORM]
    others = [e for e in entries if e.platform != runtime.INTEL_CPU_PLATFORM]
    assert intel and all(i.index > o.index for i in intel for o in others)
    if others:  # installing the wheel moves neither opencl:N nor the default device
        assert entries[runtime.default_index(entries)].platform != runtime.INTEL_CPU_PLATFORM
    be = get_backend("opencl:intel")
    assert be.info()["platform"] == runtime.INTEL_CPU_PLATFORM
    assert be.dev.entry == intel[0]
    if any(e.vendor == "The pocl project" for e in entries):
        assert get_backend("opencl:pocl").dev.entry.vendor == "The pocl project"


@needs_intel
def test_a_fresh_process_lists_both_runtimes():
    """`hwbench list` in a new process, OCL_ICD_VENDORS unset: no hand work needed."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("OCL_ICD_VENDORS", OWN_VENDORS_VARIABLE)}
    out = subprocess.run([sys.executable, "-c", "import sys; from hwbench.cli import main; "
                          "sys.exit(main(['list', '--json']))"], env=env, capture_output=True,
                         text=True, timeout=120, check=True).stdout
    row = next(r for r in json.loads(out) if r["name"] == "opencl")
    labels = " ".join(v for k, v in row["versions"].items() if k.startswith("opencl:"))
    assert runtime.INTEL_CPU_PLATFORM in labels
    if any(e.vendor == "The pocl project" for e in runtime.discover()):
        assert "Portable Computing Language" in labels


@needs_intel
@pytest.mark.parametrize("kernel", ["sgemm_packed", "sgemm_tiled"])
def test_intel_runs_both_gemm_kernels(kernel, rng):
    be = get_backend("opencl:intel", gemm_kernel=kernel)
    a = rng.standard_normal((70, 300)).astype(np.float32)
    b = rng.standard_normal((300, 45)).astype(np.float32)
    out = be.to_numpy(be.gemm(be.asarray(a), be.asarray(b)))
    np.testing.assert_allclose(out, a.astype(np.float64) @ b, rtol=1e-4, atol=1e-3)


DOT = """
#pragma OPENCL EXTENSION cl_khr_integer_dot_product : enable
__kernel void dot4(__global const uchar4 *a, __global const char4 *b, __global int *out) {
    out[0] = dot(a[0], b[0]);
}
"""


@needs_intel
def test_integer_dot_builds_as_opencl_c_3_on_intel(tmp_path, monkeypatch):
    """Intel's compiler declares cl_khr_integer_dot_product's dot() only from OpenCL C 2.0:
    a program that uses it is built with -cl-std (it failed with "no matching function")."""
    from hwbench.backends.opencl.compiler import Compiler

    monkeypatch.setenv("HWBENCH_CACHE_DIR", str(tmp_path))
    be = get_backend("opencl:intel")
    if "cl_khr_integer_dot_product" not in be.dev.extensions:
        pytest.skip("this Intel runtime lacks cl_khr_integer_dot_product")
    prog = Compiler(be.dev, probe=True).program("dot4", {}, {"dot4": (1,)}, source=DOT)
    a = be.asarray(np.array([200, 1, 255, 7], np.uint8))
    b = be.asarray(np.array([-128, 127, -1, 5], np.int8))
    out = be.empty((1,), np.int32)
    prog.launch("dot4", (1,), a.data, b.data, out.data)
    assert int(be.to_numpy(out)[0]) == 200 * -128 + 127 - 255 + 35


@needs_intel
def test_probe_runs_on_intel_in_a_child_process(tmp_path, monkeypatch):
    """The probe child finds the same platform (it inherits OCL_ICD_VENDORS) and reports a
    build error as one, leaving this process working."""
    from hwbench.backends.opencl.compiler import BuildError, Compiler

    monkeypatch.setenv("HWBENCH_CACHE_DIR", str(tmp_path))
    be = get_backend("opencl:intel")
    compiler = Compiler(be.dev, probe=True)
    ok = "__kernel void ok(__global float *x, int n) { if (get_global_id(0) < n) x[0] = 2; }"
    compiler.program("ok", {"INTEL": 1}, {"ok": (8,)}, source=ok)
    assert compiler.probes == 1 and len(list((tmp_path / "opencl-probed").iterdir())) == 1
    with pytest.raises(BuildError, match="failed to build") as info:
        compiler.program("broken", {}, {"broken": (1,)},
                         source="__kernel void broken(__global float *x) { x[0] = nope; }")
    assert "nope" in info.value.log
    x = be.asarray(np.zeros(4, np.float32))
    np.testing.assert_array_equal(be.to_numpy(be.relu(x)), np.zeros(4, np.float32))


# -- the CLBlast peer --------------------------------------------------------------------------
def _clblast_why() -> str:
    from hwbench.harness.suites.peers import ClblastPeer

    return ClblastPeer.available()[1]


CLBLAST_WHY = _clblast_why()
needs_clblast = pytest.mark.skipif(bool(CLBLAST_WHY), reason=f"no CLBlast peer: {CLBLAST_WHY}")


def test_clblast_peer_without_pyclblast_says_how_to_get_it(monkeypatch):
    from hwbench.harness.suites.peers import ClblastPeer

    monkeypatch.setitem(sys.modules, "pyclblast", None)  # import fails as if absent
    ok, why = ClblastPeer.available()
    assert not ok and "libclblast-dev" in why and "hwbench[clblast]" in why


def test_unknown_peer_names_the_argument():
    from hwbench.errors import ArgumentError
    from hwbench.harness.suites.peers import get_peer

    for name in ("cublas", "torch:1"):
        with pytest.raises(ArgumentError, match="'peers'"):
            get_peer(name)


@needs_clblast
@pytest.mark.parametrize("selector", ["", "intel"])
def test_clblast_peer_gemm_matches_the_reference_on_the_opencl_device(selector, rng):
    from hwbench.errors import UnsupportedError
    from hwbench.harness.suites.peers import get_peer
    from hwbench.kernels import reference

    if selector == "intel" and INTEL_WHY:
        pytest.skip(f"no Intel CPU runtime: {INTEL_WHY}")
    peer = get_peer(f"clblast:{selector}" if selector else "clblast")
    ours = get_backend(f"opencl:{selector}" if selector else "opencl")
    assert peer.info()["device_name"] == ours.info()["device_name"]
    assert peer.info()["platform"] == ours.info()["platform"]
    for m, n, k, ta, tb, bias_shape in [(1, 1, 1, False, False, None),
                                        (70, 45, 300, True, False, (45,)),
                                        (33, 130, 17, False, True, (33, 1)),
                                        (129, 64, 129, True, True, (129, 64))]:
        a = rng.standard_normal((k, m) if ta else (m, k)).astype(np.float32)
        b = rng.standard_normal((n, k) if tb else (k, n)).astype(np.float32)
        bias = None if bias_shape is None else rng.standard_normal(bias_shape).astype(np.float32)
        out = peer.to_numpy(peer.gemm(peer.asarray(a), peer.asarray(b),
                                      None if bias is None else peer.asarray(bias), ta, tb))
        want = reference.gemm(a, b, bias, ta, tb)
        np.testing.assert_allclose(out, want, rtol=1e-4, atol=1e-4 * np.sqrt(k))
    with pytest.raises(UnsupportedError):
        peer.gemm_int8(np.zeros((2, 2), np.uint8), np.zeros((2, 2), np.int8), np.uint8(0),
                       np.int8(0))
