"""``--omp-wait``: the workers' OpenMP wait policy, resolved once, set in every worker's
environment before libgomp loads, and recorded in the results file and every row."""

from __future__ import annotations

import json

import pytest

from hwbench.backends import backend_class
from hwbench.cli import main
from hwbench.errors import ArgumentError
from hwbench.harness.results.table_parts import Source
from hwbench.harness.running import isolation, omp_wait


def _never_probe():
    raise AssertionError("the machine was probed although the policy was already known")


def _probe(quiet: bool):
    return lambda: (quiet, {"others_share": 0.01 if quiet else 0.6, "steal_share": 0.0,
                            "seconds": 0.3})


@pytest.mark.parametrize("choice, variables", [
    ("passive", {"OMP_WAIT_POLICY": "PASSIVE"}), ("active", {"GOMP_SPINCOUNT": "30000"})])
def test_an_explicit_choice_wins_over_the_users_variables(choice, variables):
    wait = omp_wait.resolve(choice, {"OMP_WAIT_POLICY": "ACTIVE", "GOMP_SPINCOUNT": "0"},
                            probe=_never_probe)
    assert wait["policy"] == choice and wait["env"] == variables


def test_auto_keeps_the_users_variables():
    wait = omp_wait.resolve("auto", {"GOMP_SPINCOUNT": "10000"}, probe=_never_probe)
    assert wait["policy"] == "active" and wait["env"] == {"GOMP_SPINCOUNT": "10000"}
    wait = omp_wait.resolve("auto", {"OMP_WAIT_POLICY": "passive"}, probe=_never_probe)
    assert wait["policy"] == "passive" and "OMP_WAIT_POLICY=passive" in wait["why"]


@pytest.mark.parametrize("quiet, policy", [(True, "active"), (False, "passive")])
def test_auto_spins_only_on_a_quiet_machine(quiet, policy):
    wait = omp_wait.resolve("auto", {}, probe=_probe(quiet))
    assert wait["policy"] == policy and wait["env"] == omp_wait.SETTINGS[policy]
    assert ("quiet" if quiet else "busy") in wait["why"]


def test_without_a_choice_workers_sleep_unless_the_user_said_otherwise():
    assert omp_wait.default({})["policy"] == "passive"
    assert omp_wait.default({})["env"] == {"OMP_WAIT_POLICY": "PASSIVE"}
    assert omp_wait.default({"GOMP_SPINCOUNT": "1k"})["policy"] == "active"


def test_a_bad_choice_names_the_argument():
    with pytest.raises(ArgumentError, match="--omp-wait"):
        omp_wait.resolve("spin", {})


def test_the_worker_env_carries_the_policy_and_drops_the_other_variable(monkeypatch):
    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")
    env = isolation.worker_env("cpu", 2, omp_wait.resolve("active", probe=_never_probe))
    assert env["GOMP_SPINCOUNT"] == "30000" and "OMP_WAIT_POLICY" not in env
    monkeypatch.delenv("OMP_WAIT_POLICY")
    monkeypatch.setenv("GOMP_SPINCOUNT", "30000")
    env = isolation.worker_env("cpu", 2, omp_wait.resolve("passive", probe=_never_probe))
    assert env["OMP_WAIT_POLICY"] == "PASSIVE" and "GOMP_SPINCOUNT" not in env


@pytest.mark.parametrize("choice, seen", [("active", {"GOMP_SPINCOUNT": "30000"}),
                                          ("passive", {"OMP_WAIT_POLICY": "PASSIVE"})])
def test_the_policy_reaches_the_worker_and_the_results_file(tmp_path, choice, seen):
    """A real ``hwbench run``: each worker reports the variables its process started with
    (cpu, where available: its libgomp read them, so its one-thread limit follows); the
    environment and every row record the policy."""
    cpu = backend_class("cpu").available()[0]
    code = main(["run", "--backend", "numpy,cpu" if cpu else "numpy", "--model", "lenet",
                 "--batch", "1",
                 "--repeats", "1", "--min-time", "0", "--max-time", "0.05", "--no-roofline",
                 "--threads", "1", "--omp-wait", choice, "--output", str(tmp_path)])
    assert code == 0
    (path,) = tmp_path.glob("*.json")
    payload = json.loads(path.read_text())
    assert payload["environment"]["openmp_wait"]["policy"] == choice
    assert payload["backends"]["numpy"]["openmp_wait_env"] == seen
    assert payload["rows"] and {row["omp_wait"] for row in payload["rows"]} == {choice}
    assert f"OpenMP threads {choice}" in Source(path, payload).caption()  # docs' tables
    if cpu:
        assert payload["backends"]["cpu"]["openmp_wait_env"] == seen
        spinning = payload["backends"]["cpu"]["small_problems"].endswith("(spinning threads)")
        assert spinning == (choice == "active")


def test_auto_tells_hwbench_own_passive_setting_from_the_users(monkeypatch):
    """Loading oneDNN in this process sets OMP_WAIT_POLICY=PASSIVE here: not the user's."""
    from hwbench.backends.cpu import onednn

    monkeypatch.delenv("GOMP_SPINCOUNT", raising=False)
    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")
    monkeypatch.setattr(onednn, "SET_IN_THIS_PROCESS", {})
    assert omp_wait.resolve("auto", probe=_never_probe)["policy"] == "passive"  # the user's
    monkeypatch.setattr(onednn, "SET_IN_THIS_PROCESS", {"OMP_WAIT_POLICY": "PASSIVE"})
    assert omp_wait.resolve("auto", probe=_probe(True))["policy"] == "active"
