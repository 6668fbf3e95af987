"""``--policy checkpoint:DIR``: each prosumer acts with its own actor file, in every backend."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from abm.cli.main import main
from abm.config import SimConfig
from abm.deploy.launcher import deploy, prepare
from abm.deploy.spec import DeployOptions
from abm.envs.pettingzoo_env import MarketParallelEnv
from abm.errors import ConfigError
from abm.inputs.mpc_policies import prosumer_outlooks
from abm.inputs.run_inputs import RunInputs, build_run_inputs
from abm.sim.model import MarketModel
from abm.sim.simulation import run_simulation
from agents.actor import ActorFileError, ActorPolicy, load_actor
from agents.policy import OBS_DIM
from tests.abm.actor_checkpoint import write_actor_checkpoint
from tests.abm.test_deploy_equality import assert_same_results
from tests.abm.test_torch_optional import NO_TORCH

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def world() -> RunInputs:
    return build_run_inputs(SimConfig())


@pytest.fixture(scope="module")
def actors(tmp_path_factory: pytest.TempPathFactory, world: RunInputs) -> Path:
    """A training run's folder with its ``actors/`` (one file per prosumer)."""
    run_dir = tmp_path_factory.mktemp("run")
    write_actor_checkpoint(run_dir / "actors", world)
    return run_dir


def test_each_prosumer_acts_with_its_own_actor(actors: Path, world: RunInputs) -> None:
    """... on the whole observation of format 3: the record's features and its outlook."""
    model = MarketModel(SimConfig(policy=f"checkpoint:{actors}"), world=world)
    model.begin_interval()
    outlooks = prosumer_outlooks(world)
    for i, agent in enumerate(model.prosumers):
        pid = agent.logic.agent_id
        policy = agent.logic.policy
        assert isinstance(policy, ActorPolicy) and policy.actor.prosumer_id == pid
        obs = agent.logic.observe()
        vector = obs.to_vector(outlooks[i].at(obs))
        assert vector.shape == (OBS_DIM,)
        expected = load_actor(actors / "actors" / f"{pid}.npz").act(vector)
        np.testing.assert_array_equal(policy.act(obs), expected.astype(np.float32))
    actions = np.array([a.logic.policy.act(a.logic.observe()) for a in model.prosumers])
    assert np.ptp(actions, axis=0).max() > 1e-3  # prosumers' actors differ


def test_actor_folder_itself_is_accepted(actors: Path) -> None:
    summary = run_simulation(SimConfig(policy=f"checkpoint:{actors / 'actors'}"), None).summary
    assert summary["intervals"] == 24 and summary["voltage_violations"] == 0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("missing", r"p05\.npz: actor file not found"),
        ("network", r"p\d+\.npz: network is 'swiss161', expected 'ieee33'"),
        ("obs_dim", rf"p\d+\.npz: obs_dim is 6, expected {OBS_DIM}"),
    ],
)
def test_mismatched_checkpoint_refused_in_one_line(
    tmp_path: Path, world: RunInputs, change: str, message: str, capsys: pytest.CaptureFixture
) -> None:
    if change == "missing":
        write_actor_checkpoint(tmp_path, world)
        (tmp_path / "p05.npz").unlink()
    elif change == "network":
        write_actor_checkpoint(tmp_path, world, network="swiss161")
    else:
        write_actor_checkpoint(tmp_path, world, obs_dim=6)
    with pytest.raises(ActorFileError, match=message):
        MarketModel(SimConfig(policy=f"checkpoint:{tmp_path}"), world=world)
    assert main(["simulate", "--policy", f"checkpoint:{tmp_path}", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "p2pvar: error:" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("policy", ["checkpoint:", "greedy", "checkpoint"])
def test_bad_policy_name_refused(policy: str) -> None:
    with pytest.raises(ConfigError, match=f"policy={policy!r} is not one of rule, random, tou"):
        SimConfig(policy=policy)


def test_pettingzoo_env_runs_the_checkpoint_like_simulate(actors: Path, tmp_path: Path) -> None:
    config = SimConfig(policy=f"checkpoint:{actors}")
    expected = run_simulation(config, tmp_path / "sim", progress=False)
    env = MarketParallelEnv(config, sample_days=False)
    env.reset(seed=0)
    total = 0.0
    while env.agents:
        _, rewards, *_ = env.step(env.policy_actions())
        total += sum(rewards.values())
    assert total == pytest.approx(-expected.summary["prosumer_cost_eur"], rel=1e-12)


@pytest.mark.slow  # one OS process per agent
def test_deploy_with_checkpoint_matches_simulate(
    actors: Path, tmp_path: Path, ieee33_with: Callable[[int], Path]
) -> None:
    """Four prosumers (five processes, not 33): p01-p04 play the actor files of those ids."""
    scenario = ieee33_with(4)
    config = SimConfig(market="multi", policy=f"checkpoint:{actors}", scenario=str(scenario))
    run_simulation(config, tmp_path / "sim", progress=False)
    result = deploy(config, DeployOptions(transport="ipc"), tmp_path / "dep")
    assert result.complete
    assert_same_results(tmp_path / "sim", tmp_path / "dep")


def test_prosumer_process_loads_only_its_own_actor_without_torch(
    actors: Path, world: RunInputs, tmp_path: Path
) -> None:
    """A prosumer built as ``agent_main`` builds it, from a folder holding only its own actor
    file, imports neither torch nor the training code."""
    own_dir = tmp_path / "only-p05"
    own_dir.mkdir()
    shutil.copy(actors / "actors" / "p05.npz", own_dir / "p05.npz")
    config = SimConfig(policy=f"checkpoint:{own_dir}")
    prepared = prepare(config, DeployOptions(transport="ipc"), tmp_path / "dep", world=world)
    shutil.rmtree(prepared.tmp_dir)  # the ipc socket folder: nothing is started
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from abm.deploy.agent_main import build_agent_world\n"
        "from abm.deploy.policies import load_policy\n"
        "from abm.deploy.spec import load_run_spec\n"
        "from abm.inputs.run_inputs import agent_rngs, make_prosumer\n"
        f"spec = load_run_spec(Path({str(prepared.spec_path)!r}))\n"
        "world = build_agent_world(spec)\n"
        "ids = world.prosumer_ids\n"
        "i = ids.index('p05')\n"
        "policy = load_policy(spec.entry('p05').policy or spec.sim.policy,"
        " agent_rngs(spec.sim.seed, len(ids))[i], world, i)\n"
        "agent = make_prosumer(world, i, policy)\n"
        "print(type(agent.policy).__name__, agent.policy.actor.prosumer_id)\n"
        "heavy = ('torch', 'agents.learning', 'pandapower', 'mesa', 'pandas')\n"
        "print([m for m in sys.modules if m.split('.')[0] in heavy or"
        " m.startswith('agents.learning')])\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.splitlines() == ["ActorPolicy p05", "[]"]


@pytest.mark.slow  # a full-day run in a subprocess
def test_simulate_with_checkpoint_runs_without_torch(actors: Path) -> None:
    argv = ["simulate", "--policy", f"checkpoint:{actors}", "--no-progress", "--json"]
    code = f"from abm.cli.main import main\nraise SystemExit(main({argv!r}))\n"
    out = subprocess.run(
        [sys.executable, "-c", NO_TORCH + code], cwd=ROOT, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["intervals"] == 24
