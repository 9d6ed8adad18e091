"""hwbench's pytest plugin (registered as ``hwbench`` through the ``pytest11`` entry point).

``hwbench_backend``: a fixture that runs a test once per backend hwbench knows — every
available backend and device flavour (``numpy``, ``cpu``, ``cpu:mkl``, ``opencl``, ...) —
and skips, with the backend's own reason, where one is absent::

    def test_my_layer(hwbench_backend):
        be = hwbench_backend
        y = be.to_numpy(be.gemm(be.asarray(a), be.asarray(b)))

A test that needs a given float precision says so with a marker; backends whose float
math is less precise (``systolic`` computes float GEMM and conv in int8) are then skipped
with the reason, not dropped::

    @pytest.mark.hwbench_precision("fp32")
    def test_my_layer(hwbench_backend): ...

Precisions, least to most precise: ``int8``, ``bf16``, ``fp16``/``tf32``, ``fp32``,
``fp64``; a backend qualifies when its float math (the class attribute
``Backend.float_precision``, or a CUDA backend's ``math_mode``) is at least as precise.

``--hwbench-backends=numpy,cpu`` narrows the list. With pytest-benchmark, runs whose
benchmarks were recorded by ``hwbench.harness.suites.benchmarking`` also store the reference
workload in the saved JSON (its ``hwbench`` field), for ``hwbench compare --normalized``.
"""

from __future__ import annotations

from typing import Any

import pytest

from hwbench.backends import backend_class, get_backend, onnxruntime_requant, parse_backend_name
from hwbench.backends import backend_names as every_backend_name
from hwbench.errors import ArgumentError
from hwbench.harness.suites.benchmarking import run_record

FIXTURE = "hwbench_backend"
MARKER = "hwbench_precision"
# Significand bits (implicit bit included) of each float math mode: a backend whose
# precision has at least as many bits as a test asks for qualifies. int8 quantization of a
# float tensor keeps about 7 bits of it.
PRECISION_BITS = {"int8": 7, "bf16": 8, "fp16": 11, "tf32": 11, "fp32": 24, "fp64": 53}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("hwbench")
    group.addoption("--hwbench-backends", default=None, metavar="LIST",
                    help="comma list of backends the hwbench_backend fixture runs over "
                         "(default: every registered backend and its device flavours)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", f"{MARKER}(precision): run the {FIXTURE} fixture only on backends whose "
                   f"float math is at least this precise ({', '.join(PRECISION_BITS)}); "
                   "the others are skipped with the reason")


def backend_names(selection: str | None = None) -> list[str]:
    """Every backend name to run over: available ones with each device flavour beyond the
    default (``cpu``, ``cpu:mkl``), unavailable ones by their bare name (they will skip)."""
    if selection:
        names = [part.strip() for part in selection.split(",") if part.strip()]
        for name in names:
            parse_backend_name(name)  # an unknown name is an error, not a skip
        return names
    return every_backend_name("listed")


def availability(name: str) -> tuple[bool, str]:
    """``(True, "")`` or ``(False, why)`` for a backend name with an optional device."""
    base, device = parse_backend_name(name)
    device, _ = onnxruntime_requant.split_device(device)  # a math mode, not a device
    try:
        cls = backend_class(base)
    except ImportError as exc:
        return False, f"{base} cannot be imported: {exc}"
    ok, why = cls.available()
    if ok and device is not None:
        why = cls.device_status(device)
        ok = not why
    return ok, why


def float_precision(backend: Any) -> str:
    """The float math of a backend class or instance: its ``math_mode`` where it has a
    selectable one (cuda: fp32 unless tf32/fp16/bf16 is named), else ``float_precision``."""
    mode = getattr(backend, "math_mode", None)
    if isinstance(mode, str) and mode in PRECISION_BITS:
        return mode
    return getattr(backend, "float_precision", "fp32")


def required_precision(node: Any) -> str | None:
    """The precision a test asks for with ``@pytest.mark.hwbench_precision(...)``, checked."""
    marker = node.get_closest_marker(MARKER)
    if marker is None:
        return None
    args = list(marker.args) + ([marker.kwargs["precision"]] if "precision" in marker.kwargs
                                else [])
    if len(args) != 1 or args[0] not in PRECISION_BITS:
        raise ArgumentError(f"{MARKER}: argument 'precision' must be one of "
                            f"{', '.join(PRECISION_BITS)}, got {marker.args or marker.kwargs!r} "
                            f"(on {node.nodeid})")
    return args[0]


def precision_shortfall(precision: str, needed: str | None, name: str) -> str:
    """"" when a backend computing in ``precision`` meets ``needed``, else the skip reason."""
    if needed is None or PRECISION_BITS[precision] >= PRECISION_BITS[needed]:
        return ""
    return (f"{name} computes float GEMM and conv in {precision}; this test asks {needed} "
            f"(@pytest.mark.{MARKER})")


def _class_precision(name: str) -> str | None:
    try:
        return float_precision(backend_class(parse_backend_name(name)[0]))
    except ImportError:  # the fixture skips it as unavailable, with that reason
        return None


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if FIXTURE in metafunc.fixturenames:
        names = backend_names(metafunc.config.getoption("hwbench_backends"))
        needed = required_precision(metafunc.definition)
        params = []
        for name in names:
            precision = _class_precision(name) if needed else None
            why = precision_shortfall(precision, needed, name) if precision else ""
            marks = [pytest.mark.skip(reason=why)] if why else []
            params.append(pytest.param(name, id=name, marks=marks))
        metafunc.parametrize(FIXTURE, params, indirect=True, scope="session")


@pytest.fixture(scope="session")
def hwbench_backend(request: pytest.FixtureRequest) -> Any:
    """A backend instance (``hwbench.backends.get_backend(name)``), one per backend name;
    skipped with the reason where the backend cannot run here."""
    name = getattr(request, "param", None)
    if name is None:  # requested indirectly, where pytest_generate_tests cannot see it
        pytest.skip("hwbench_backend is parametrized only when a test names it directly")
    ok, why = availability(name)
    if not ok:
        pytest.skip(f"backend {name} unavailable: {why}")
    return get_backend(name)


_RECORD = pytest.StashKey[dict]()


@pytest.hookimpl(optionalhook=True)
def pytest_benchmark_update_json(config: pytest.Config, benchmarks: list,
                                 output_json: dict) -> None:
    """Store the reference workload with benchmarks that hwbench recorded (once a run)."""
    if not any("hwbench" in (getattr(b, "extra_info", None) or {}) for b in benchmarks):
        return
    if _RECORD not in config.stash:
        config.stash[_RECORD] = run_record()
    output_json["hwbench"] = config.stash[_RECORD]
