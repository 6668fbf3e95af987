"""One registry per extension point: an unknown name is one line listing the known names, and
a protocol, policy or study registered here is usable through its entry point."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from abm.cli.main import main
from abm.config import SimConfig
from abm.errors import ConfigError
from abm.sim.model import MarketModel
from abm.study.executor import RunSpec
from abm.study.registry import STUDIES
from abm.study.runs import Study
from abm.training.train_config import TrainRunConfig
from agents.clearing import PROTOCOLS, InvalidSetting, ReplicatedAuction, make_protocol
from agents.learners import LEARNERS, UnknownLearner, learner_class
from agents.policy import Observation, RulePolicy
from agents.policy_registry import POLICIES, PolicyError, PolicyKind, parse_policy, per_prosumer


def _one_line(capsys: pytest.CaptureFixture, code: int, *parts: str) -> None:
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    for part in parts:
        assert part in err[0], err[0]


@pytest.mark.parametrize(
    ("lookup", "error", "message"),
    [
        (lambda: make_protocol("central", "a", lambda: 0), InvalidSetting,
         "protocol='central' is not one of auction, bilateral"),
        (lambda: parse_policy("greedy"), PolicyError,
         "policy='greedy' is not one of rule, random, tou, checkpoint:DIR, optimum, mpc, "
         "mpc:FORECASTER, mpc-perfect or module:factory[@path]"),
        (lambda: learner_class("ppo"), UnknownLearner,
         "algo='ppo' is not one of ea-matd3, matd3, maddpg, itd3"),
        (lambda: STUDIES["nope"], ConfigError,
         "study='nope' is not one of markets, envelopes, interdependence, overhead, "
         "algorithms, scalability"),
        (lambda: SimConfig(protocol="central"), ConfigError, "protocol='central' is not one of"),
        (lambda: TrainRunConfig(algo="ppo"), ConfigError, "algo='ppo' is not one of ea-matd3"),
    ],
)  # fmt: skip
def test_unknown_name_is_one_line_listing_the_known(lookup, error, message) -> None:
    with pytest.raises(error) as caught:
        lookup()
    assert str(caught.value) == message or str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)


def test_cli_refuses_an_unknown_protocol_and_policy(capsys: pytest.CaptureFixture) -> None:
    code = main(["simulate", "--policy", "greedy", "--no-progress"])
    _one_line(capsys, code, "policy='greedy' is not one of rule, random, tou")
    with pytest.raises(SystemExit):  # argparse: the registry is the flag's choices
        main(["simulate", "--protocol", "central"])
    assert "invalid choice: 'central'" in capsys.readouterr().err


class _CountingAuction(ReplicatedAuction):
    """The auction under another name."""

    name = "counting-auction"


def test_a_registered_protocol_clears_the_market(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(PROTOCOLS, _CountingAuction.name, _CountingAuction)
    config = SimConfig(protocol=_CountingAuction.name, days=1)
    model = MarketModel(config)
    reference = MarketModel(SimConfig(days=1), world=model.world)
    assert all(isinstance(a.logic.protocol, _CountingAuction) for a in model.prosumers)
    for _ in range(13):  # to the early afternoon: PV surplus trades
        model.step()
        reference.step()
    frames = model.datacollector.get_table_dataframe("trades")
    expected = reference.datacollector.get_table_dataframe("trades")
    assert len(frames) > 0 and frames.equals(expected)


class _Halved:
    """The rule policy at half the battery power."""

    acted = 0

    def act(self, obs: Observation) -> np.ndarray:
        _Halved.acted += 1
        action = RulePolicy().act(obs)
        action[0] *= 0.5
        return action


def test_a_registered_policy_plays_in_the_simulation(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(POLICIES, "halved", PolicyKind(per_prosumer(lambda run, i, rng: _Halved())))
    model = MarketModel(SimConfig(policy="halved", days=1))
    model.step()
    assert _Halved.acted == len(model.world.prosumer_ids)
    assert all(isinstance(a.logic.policy, _Halved) for a in model.prosumers)


def test_a_whole_run_policy_is_built_once_per_run(monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[int] = []

    def build(run: object, arg: str | None) -> object:
        built.append(1)
        return lambda index, rng: RulePolicy()

    monkeypatch.setitem(POLICIES, "shared", PolicyKind(build, whole_run=True))  # type: ignore[arg-type]
    MarketModel(SimConfig(policy="shared", days=1))
    assert built == [1]
    with pytest.raises(Exception, match="runs in one process only"):
        from abm.deploy.policies import check_policy_spec

        check_policy_spec("shared")


def _toy_specs(args: argparse.Namespace) -> list[RunSpec]:
    return []


def _toy_analyse(out: Path, runs: Sequence[RunSpec], args: argparse.Namespace) -> list[Path]:
    path = out / "toy.json"
    path.write_text(json.dumps({"runs": len(runs), "label": args.label}))
    return [path]


def _toy_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--label", default="x")


def test_a_registered_study_runs_through_the_cli(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    study = Study("toy", "a study without runs", _toy_args, _toy_specs, _toy_analyse)
    monkeypatch.setitem(STUDIES, "toy", study)
    out = tmp_path / "study"
    assert main(["study", "toy", "--label", "y", "--out", str(out), "--no-progress"]) == 0
    assert json.loads((out / "toy.json").read_text()) == {"runs": 0, "label": "y"}


def test_a_learner_takes_only_its_settings(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    assert list(LEARNERS) == ["ea-matd3", "matd3", "maddpg", "itd3"]
    code = main(["train", "--algo", "itd3", "--population", "3", "--out", str(tmp_path / "r")])
    _one_line(capsys, code, "population=3 is not a setting of itd3")
