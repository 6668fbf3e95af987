"""Every learner on the toy task: learning, determinism, checkpoints, resume."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from agents.learning.checkpoint import RunIdentity, load_checkpoint
from agents.learning.errors import CheckpointError, LearningConfigError
from agents.learning.rollout import evaluate_cost
from agents.learning.train import TrainConfig, make_algorithm, train
from tests.agents.learning.conftest import TINY, tiny_config, toy_env
from tests.support.toy_env import ToyTeamEnv


def _quiet(iterations: int, **kw: object) -> TrainConfig:
    return TrainConfig(iterations=iterations, progress=False, **kw)  # type: ignore[arg-type]


def _without_time(rows: list[dict[str, float]]) -> list[dict[str, float]]:
    return [{k: v for k, v in row.items() if k != "wall_s"} for row in rows]


def _flat_state(state: object) -> list[torch.Tensor]:
    """Every tensor in a nested state (for equality checks)."""
    if isinstance(state, torch.Tensor):
        return [state]
    if isinstance(state, dict):
        return [t for key in sorted(state, key=str) for t in _flat_state(state[key])]
    if isinstance(state, list | tuple):
        return [t for item in state for t in _flat_state(item)]
    return [torch.tensor(float(state))] if isinstance(state, int | float) else []


def _same_state(a: object, b: object) -> bool:
    ta, tb = _flat_state(a), _flat_state(b)
    return len(ta) == len(tb) and all(torch.equal(x, y) for x, y in zip(ta, tb, strict=True))


def test_each_learner_improves_its_objective(algo: str, tmp_path: Path) -> None:
    env = toy_env()
    learner = make_algorithm(algo, env, 0, tiny_config(algo))
    before = evaluate_cost(env, learner.policy_team(), env.val_days, seed=0)
    rows, _ = train(learner, env, _quiet(10, eval_every=10, checkpoint_every=10), tmp_path)
    after = rows[-1]["val_cost"]
    assert after < 0.6 * before, (before, after)
    assert "critic_loss" in rows[-1] and "actor_loss" in rows[-1]


@pytest.mark.parametrize("name", ["matd3", "ea-matd3"])
def test_fixed_seed_gives_identical_runs(name: str, tmp_path: Path) -> None:
    runs = []
    for seed, sub in ((3, "a"), (3, "b"), (4, "c")):
        env = toy_env()
        learner = make_algorithm(name, env, seed, tiny_config(name))
        rows, _ = train(learner, env, _quiet(3), tmp_path / sub)
        runs.append((_without_time(rows), learner.state_dict(include_buffer=True)))
    assert runs[0][0] == runs[1][0]
    assert _same_state(runs[0][1], runs[1][1])
    assert runs[0][0] != runs[2][0]


def test_checkpoint_round_trip(algo: str, tmp_path: Path) -> None:
    env = toy_env()
    learner = make_algorithm(algo, env, 0, tiny_config(algo))
    train(learner, env, _quiet(2), tmp_path)
    checkpoint = load_checkpoint(tmp_path / "checkpoint.pt", RunIdentity.of(algo, env))
    other = make_algorithm(algo, env, 99, tiny_config(algo))
    assert not _same_state(
        other.state_dict(include_buffer=True), learner.state_dict(include_buffer=True)
    )
    other.load_state_dict(checkpoint.algorithm)
    assert checkpoint.iteration == 2
    assert _same_state(
        other.state_dict(include_buffer=True), learner.state_dict(include_buffer=True)
    )


@pytest.mark.parametrize("name", ["matd3", "ea-matd3"])
def test_resume_equals_uninterrupted_training(name: str, tmp_path: Path) -> None:
    env = toy_env()
    whole = make_algorithm(name, env, 5, tiny_config(name))
    rows_whole, _ = train(whole, env, _quiet(4, eval_every=2, checkpoint_every=2), tmp_path / "a")
    first = make_algorithm(name, env, 5, tiny_config(name))
    train(first, env, _quiet(2, eval_every=2, checkpoint_every=2), tmp_path / "b")
    resumed = make_algorithm(name, env, 77, tiny_config(name))  # state comes from the file
    config = _quiet(4, eval_every=2, checkpoint_every=2)
    rows_resumed, _ = train(resumed, env, config, tmp_path / "b", resume=True)
    assert _without_time(rows_resumed) == _without_time(rows_whole)
    assert _same_state(
        resumed.state_dict(include_buffer=True), whole.state_dict(include_buffer=True)
    )


@pytest.fixture(scope="module")
def saved_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ckpt")
    env = toy_env()
    train(make_algorithm("matd3", env, 0, TINY), env, _quiet(1), out)
    return out / "checkpoint.pt"


def test_corrupt_checkpoint_refused(saved_checkpoint: Path, tmp_path: Path) -> None:
    bad = tmp_path / "corrupt.pt"
    bad.write_bytes(b"\x00garbage" * 100)
    with pytest.raises(CheckpointError, match=r"corrupt\.pt: corrupt or truncated"):
        load_checkpoint(bad, RunIdentity.of("matd3", toy_env()))


def test_truncated_checkpoint_refused(saved_checkpoint: Path, tmp_path: Path) -> None:
    bad = tmp_path / "truncated.pt"
    data = saved_checkpoint.read_bytes()
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"truncated\.pt: corrupt or truncated"):
        load_checkpoint(bad, RunIdentity.of("matd3", toy_env()))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("network", "ieee33"),
        ("prosumer_ids", ("p01", "p02", "p99")),
        ("obs_dim", 15),
        ("algo", "ea-matd3"),
    ],
)
def test_mismatched_checkpoint_refused(saved_checkpoint: Path, field: str, value: object) -> None:
    expected = RunIdentity.of("matd3", toy_env())
    wrong = RunIdentity(**{**expected.__dict__, field: value})
    with pytest.raises(CheckpointError, match=rf"checkpoint\.pt: {field} is .*, expected"):
        load_checkpoint(saved_checkpoint, wrong)


def test_missing_checkpoint_refused(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "none.pt", RunIdentity.of("matd3", toy_env()))


def test_bad_settings_refused() -> None:
    with pytest.raises(LearningConfigError, match="algo='ppo' is not one of ea-matd3, matd3"):
        make_algorithm("ppo", toy_env(), 0)
    odd = ToyTeamEnv(16, 3)
    ea = make_algorithm("ea-matd3", odd, 0, tiny_config("ea-matd3"))
    with pytest.raises(LearningConfigError, match="n_worlds = 16: must be a multiple"):
        ea.iterate(odd)
