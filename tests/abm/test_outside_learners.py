"""BenchMARL's learners on the market (``abm.training.outside``, ``benchmarl_run``): the
exported actor files act as BenchMARL's deterministic policy, ``p2pvar train-outside`` takes
``p2pvar train``'s flags and, with a tiny budget, writes what ``p2pvar train`` writes, and
``p2pvar evaluate`` plays its team."""

from __future__ import annotations

import csv
import dataclasses
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from tensordict import TensorDict
from torchrl.envs.utils import ExplorationType, set_exploration_type

from abm.cli.main import build_parser, main
from abm.config import DaySet, SimConfig
from abm.envs.benchmarl_task import MarketTask, market_task
from abm.envs.torchrl_env import GROUP
from abm.errors import ConfigError
from abm.inputs.profiles import TEST_DAYS, TRAIN_DAYS
from abm.training.benchmarl_run import actor_team, make_experiment, train_outside
from abm.training.outside import NOT_OUTSIDE, OutsideLearnerConfig, OutsideRunConfig
from abm.training.train_config import check_trained_market
from abm.training.train_run import learner_config
from agents.actor import load_actor
from agents.learning.checkpoint import RunIdentity, export_actors
from tests.abm.test_test_days_guard import _spy

TINY = OutsideRunConfig(
    worlds=2, iterations=1, eval_every=1, train_days=2, val_days=2, updates_per_rollout=1
)


@pytest.mark.slow
@pytest.mark.parametrize("algo", ["mappo", "maddpg"])  # a TanhNormal and a TanhDelta actor
def test_actor_files_act_as_benchmarls_deterministic_policy(
    algo: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    run = dataclasses.replace(TINY, algo=algo)
    experiment = make_experiment(run, learner_config(run), tmp_path, [])
    env = experiment.test_env
    n_agents, obs_dim = 32, env.full_observation_spec[GROUP, "observation"].shape[-1]
    obs = torch.randn(5, 1, n_agents, obs_dim, generator=torch.Generator().manual_seed(1))
    td = TensorDict({GROUP: TensorDict({"observation": obs}, batch_size=(5, 1, n_agents))}, (5, 1))
    with set_exploration_type(ExplorationType.DETERMINISTIC), torch.no_grad():
        want = experiment.policy(td)[GROUP, "action"]
    ids = env.group_map[GROUP]
    identity = RunIdentity(algo, "ieee33", tuple(ids), obs_dim, 0, 4, "tou", 0.1)
    paths = export_actors(tmp_path / "actors", actor_team(experiment, GROUP), identity)
    for i, path in enumerate(paths):
        actor = load_actor(path, prosumer_id=ids[i], network="ieee33", obs_dim=obs_dim)
        assert (actor.base_policy, actor.residual_scale) == ("tou", 0.1)
        got = actor.act(obs[:, 0, i].numpy())
        np.testing.assert_allclose(got, want[:, 0, i].numpy(), atol=2e-6)


@pytest.mark.slow
def test_train_outside_writes_the_runs_files_and_evaluate_plays_its_team(
    tmp_path: Path, capsys
) -> None:
    out = tmp_path / "run"
    flags = ["--worlds", "2", "--iterations", "2", "--eval-every", "1", "--train-days", "2"]
    args = ["train-outside", "--algo", "masac", "--updates-per-rollout", "2", *flags]
    days = ["--val-days", "1", "--test-days", "1"]
    assert main([*args, *days, "--market", "p2p", "--out", str(out), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["env_steps"] == printed["env_steps"] == 2 * 2 * 24
    assert summary["validation"]["policy"]["cost_eur"] == printed["validation_cost_eur"]
    assert summary["test"]["days"] == 1 and summary["test"]["tou"]["cost_eur"] > 0
    assert summary["setup"]["worlds"] == 2 and summary["learner"]["updates_per_rollout"] == 2
    assert summary["algo"] == "masac" and summary["setup"]["sim"]["market"] == "p2p"
    assert len(list((out / "actors").glob("*.npz"))) == 32
    config = json.loads((out / "config.json").read_text())
    assert config["command"] == "train-outside" and config["config"]["algo"] == "masac"
    assert config["learner"] == {"updates_per_rollout": 2}
    # the team plays the market it was trained on, and no other
    with pytest.raises(ConfigError, match="trained with market='p2p'"):
        check_trained_market(out, SimConfig(market="multi"))
    evaluate = ["evaluate", "--checkpoint", str(out), "--market", "p2p", "--n-days", "1"]
    evaluate += ["--days", "validation"]
    assert main([*evaluate, "--out", str(tmp_path / "eval"), "--no-progress"]) == 0
    played = json.loads((tmp_path / "eval" / "summary.json").read_text())
    # the validation day played by the agents (Mesa) costs what the run's evaluation found
    with (out / "metrics.csv").open() as f:
        val_costs = [float(row["val_cost"]) for row in csv.DictReader(f)]
    assert len(val_costs) == 2 and summary["curve"]["val_cost_best"] == min(val_costs)
    assert played["intervals"] == 24  # the exported team is the one of the lowest val_cost
    assert played["prosumer_cost_eur"] == pytest.approx(min(val_costs), rel=1e-6)


@pytest.mark.slow
def test_a_benchmarl_run_never_loads_or_plays_a_test_day(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = _spy(monkeypatch)
    monkeypatch.chdir(tmp_path)
    result = train_outside(dataclasses.replace(TINY, iterations=2), tmp_path / "run")
    assert ("loaded", DaySet.TRAIN) in seen and ("loaded", DaySet.TEST) not in seen
    played = {d for kind, d in seen if kind == "played"}
    assert played and played <= set(TRAIN_DAYS) and not played & set(TEST_DAYS)
    assert "test_cost_eur" not in result and result["iterations"] == 2


def test_train_outside_takes_trains_flags_but_the_unused_ones() -> None:
    """The market, budget and day flags are ``p2pvar train``'s (one config: SimConfig and
    TrainRunConfig); the ones BenchMARL has no use for are not offered."""

    def flags(command: str) -> set[str]:
        return set(vars(build_parser().parse_args([command, "--out", "x"])))

    assert flags("train-outside") == flags("train") - NOT_OUTSIDE - {"resume", "no_progress"}
    assert {"network", "market", "var_pricing", "iterations", "env_steps"} <= flags("train")
    assert {"batch_size", "population", "minutes", "init"} <= NOT_OUTSIDE


def test_outside_run_config_refuses_what_benchmarl_cannot_do() -> None:
    assert learner_config(TINY) == OutsideLearnerConfig(updates_per_rollout=1)
    with pytest.raises(ConfigError, match="batch_size=8 is not a setting of mappo"):
        learner_config(OutsideRunConfig(batch_size=8))
    with pytest.raises(ConfigError, match="minutes=5: a BenchMARL run has no time budget"):
        OutsideRunConfig(minutes=5)
    with pytest.raises(ConfigError, match="init='clone': a BenchMARL run starts from random"):
        OutsideRunConfig(init="clone", base_policy="")
    with pytest.raises(ConfigError, match="algo='ea-matd3' is not one of mappo, ippo"):
        OutsideRunConfig(algo="ea-matd3")


def test_train_outside_refuses_an_unknown_learner(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["train-outside", "--algo", "qmix", "--out", "x"])
    assert "invalid choice: 'qmix'" in capsys.readouterr().err


def test_without_the_extra_the_commands_say_what_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys
) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "benchmarl" else real(name)
    )
    assert main(["train-outside", "--algo", "mappo", "--out", str(tmp_path / "run")]) == 2
    assert capsys.readouterr().err.strip() == (
        "p2pvar: error: train-outside needs benchmarl, which is not installed: "
        "pip install -e '.[torchrl]'"
    )
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_bench_torchrl_short_run(capsys) -> None:
    args = ["bench", "torchrl", "--worlds", "2", "--days", "1", "--seconds", "0.01", "--json"]
    assert main(args) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["check_env_specs"] == "passed"
    assert result["env_steps_per_s_direct"] > 0 and result["env_steps_per_s_torchrl"] > 0
    ratio = result["env_steps_per_s_direct"] / result["env_steps_per_s_torchrl"]
    assert result["overhead"] == pytest.approx(ratio)


def test_the_task_enum_gives_the_market_task() -> None:
    task = MarketTask.MARKET.get_task({"run": TINY})
    assert task == market_task(TINY)
    assert task.supports_continuous_actions() and not task.supports_discrete_actions()
    assert MarketTask.env_name() == "p2pvar"
