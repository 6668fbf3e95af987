"""Batched baselines and residual actors: the vectorised environment plays them as the agent
simulation does (same actions, same bills)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from abm.config import SimConfig
from abm.envs.publication_cache import PublicationCache
from abm.envs.vec_env import MarketVecEnv
from abm.errors import ConfigError
from abm.inputs.mpc_policies import prosumer_outlooks
from abm.inputs.profiles import TEST_DAYS
from abm.inputs.run_inputs import build_run_inputs
from abm.sim.model import MarketModel
from abm.sim.simulation import run_simulation
from agents.actor import (
    READABLE_OBS_DIMS,
    ActorFileError,
    ActorPolicy,
    NumpyActor,
    load_actor,
    load_prosumer_actor,
    residual_action,
    save_actor,
)
from agents.learning.checkpoint import RunIdentity, export_actors
from agents.learning.env_protocol import EnvDims
from agents.learning.matd3 import MATD3
from agents.learning.seeding import seeded_generator
from agents.policy import (
    BASE_OBS_DIM,
    OBS_DIM,
    Observation,
    Policy,
    TouPolicy,
    observation_vector,
)
from agents.policy_registry import policy_maker
from tests.abm.actor_checkpoint import SMALL

WINTER_DAY, SUMMER_DAY = 9, 184  # calendar test days
CONFIG = SimConfig(network="ieee33", market="multi")


class _Recorder:
    """Acts as ``policy`` and records each action."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.taken: list[np.ndarray] = []

    def act(self, obs: Observation) -> np.ndarray:
        self.taken.append(np.asarray(self.policy.act(obs), dtype=np.float32))
        return self.taken[-1]


def _mesa_day(policy: str, day: int) -> tuple[MarketModel, list[_Recorder]]:
    """One Mesa day of ``policy`` (a baseline or ``checkpoint:DIR``), actions recorded."""
    cfg = dataclasses.replace(CONFIG, policy=policy, first_day=TEST_DAYS.index(day), days=1)
    world = build_run_inputs(cfg)
    rngs = [np.random.default_rng(0)] * len(world.prosumer_ids)
    make = policy_maker(policy, world)
    recorders = [_Recorder(make(i, rngs[i])) for i in range(len(world.prosumer_ids))]
    model = MarketModel(
        cfg, world=world, policies=dict(zip(world.prosumer_ids, recorders, strict=True))
    )
    for _ in range(24):
        model.step()
    return model, recorders


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("p2pvar_cache")


def _env(cache: Path, n_worlds: int, **residual: object) -> MarketVecEnv:
    env = MarketVecEnv(n_worlds, CONFIG, **residual)  # type: ignore[arg-type]
    env.cache = PublicationCache(env.cache_key, env.compute_day, cache)
    return env


@pytest.mark.parametrize("policy", ["rule", "tou"])
def test_batched_baseline_actions_are_the_agents(policy: str, cache: Path) -> None:
    env = _env(cache, 2)
    runs = [_mesa_day(policy, day) for day in (WINTER_DAY, SUMMER_DAY)]
    env.reset(0, [WINTER_DAY, SUMMER_DAY])
    for t in range(24):
        expected = np.stack([[r.taken[t] for r in recorders] for _, recorders in runs])
        actions = env.baseline_actions(policy)
        np.testing.assert_array_equal(actions, expected)
        env.step(actions)
    assert np.ptp(expected[..., 0]) > 0.5  # the battery action varies between prosumers


def test_residual_actor_plays_as_in_training(tmp_path: Path, cache: Path) -> None:
    """A residual team exported from the learner acts in the agent simulation (numpy actor
    on top of the ToU rule) exactly as in the vectorised environment that trains it."""
    env = _env(cache, 1, base_policy="tou", residual_scale=0.5)
    dims = EnvDims.of(env)
    team = MATD3(dims, SMALL, seeded_generator(3)).policy_team()
    identity = RunIdentity.of("matd3", env)
    paths = export_actors(tmp_path, team, identity)
    actors = [load_actor(p) for p in paths]
    assert {(a.base_policy, a.residual_scale) for a in actors} == {("tou", 0.5)}
    model, recorders = _mesa_day(f"checkpoint:{tmp_path}", SUMMER_DAY)
    obs, _ = env.reset(0, [SUMMER_DAY])
    bills = []
    for t in range(24):
        outputs = np.stack([a.act(obs[0, i]) for i, a in enumerate(actors)])[None]
        played = env.baseline_actions("tou")
        obs, _, rewards, _, _ = env.step(outputs)
        np.testing.assert_array_equal(
            np.clip(played + 0.5 * outputs, -1, 1).astype(np.float32),
            np.stack([r.taken[t] for r in recorders])[None],
        )
        bills.append(-rewards[0])
    mesa = model.tables()["prosumers"]
    np.testing.assert_allclose(np.sum(bills), mesa["bill_eur"].sum(), rtol=1e-9)
    tou_model, _ = _mesa_day("tou", SUMMER_DAY)
    assert abs(mesa["bill_eur"].sum() - tou_model.tables()["prosumers"]["bill_eur"].sum()) > 1e-3


def test_bad_residual_settings_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="base_policy='greedy'"):
        MarketVecEnv(1, CONFIG, base_policy="greedy")
    with pytest.raises(ConfigError, match="residual_scale=0"):
        MarketVecEnv(1, CONFIG, base_policy="tou", residual_scale=0)
    actor = NumpyActor("p01", "ieee33", 1, (np.zeros((1, 4)),), (np.zeros(4),), "greedy", 0.5)
    save_actor(tmp_path / "p01.npz", actor)
    with pytest.raises(ActorFileError, match=r"p01\.npz: base_policy 'greedy'"):
        load_actor(tmp_path / "p01.npz")


COMMITTED = Path(__file__).resolve().parents[2] / "abm/data/checkpoints/ieee33-multi"


def test_committed_checkpoint_runs_the_market() -> None:
    """The trained ieee33 team in the repository loads (residual ToU actors) and runs a day."""
    directory = COMMITTED
    actors = [load_actor(p) for p in sorted((directory / "actors").glob("*.npz"))]
    assert len(actors) == 32 and {a.base_policy for a in actors} == {"tou"}
    summary = run_simulation(SimConfig(policy=f"checkpoint:{directory}"), None).summary
    assert summary["intervals"] == 24 and summary["voltage_violations"] == 0


def test_a_format_2_team_reads_its_own_features_first_of_format_3() -> None:
    """The committed team (format 2, ``obs_dim`` 17) reads the first 17 features of the
    format-3 observation, the record's, unchanged: each prosumer's action is its actor's
    output on them added to the ToU rule's, interval after interval; no outlook is built."""
    world = build_run_inputs(CONFIG)
    model = MarketModel(dataclasses.replace(CONFIG, policy=f"checkpoint:{COMMITTED}"), world=world)
    outlooks = prosumer_outlooks(world)
    tou = TouPolicy(world.hourly_retail_eur_per_kwh)
    for t in range(3):
        model.begin_interval()
        for i, agent in enumerate(model.prosumers):
            policy, obs = agent.logic.policy, agent.logic.observe()
            assert isinstance(policy, ActorPolicy) and policy.outlook is None
            assert (policy.actor.format_version, policy.actor.obs_dim) == (2, BASE_OBS_DIM)
            full = observation_vector(obs, outlooks[i].at(obs))
            assert full.shape == (OBS_DIM,)
            np.testing.assert_array_equal(full[:BASE_OBS_DIM], obs.to_vector())
            output = policy.actor.act(full[:BASE_OBS_DIM])
            expected = residual_action(tou.act(obs), output, policy.actor.residual_scale)
            np.testing.assert_array_equal(policy.act(obs), expected.astype(np.float32))
        model.finish_interval()
        assert model.interval == t + 1


@pytest.mark.parametrize(("version", "obs_dim"), [(3, BASE_OBS_DIM), (2, OBS_DIM), (1, OBS_DIM)])
def test_an_actor_reads_only_its_format_s_width(tmp_path: Path, version: int, obs_dim: int) -> None:
    """Format 3 reads the whole observation (OBS_DIM), formats 1 and 2 their own 17."""
    path = tmp_path / "p01.npz"
    actor = NumpyActor("p01", "ieee33", obs_dim, (np.zeros((obs_dim, 4)),), (np.zeros(4),))
    save_actor(path, actor)
    with np.load(path) as data:
        arrays = dict(data)
    np.savez(path, **{**arrays, "format_version": np.array(version)})
    expected = READABLE_OBS_DIMS[version]
    with pytest.raises(
        ActorFileError, match=rf"p01\.npz: obs_dim is {obs_dim}, expected {expected}"
    ):
        load_prosumer_actor(tmp_path, "p01", "ieee33")


def test_an_actor_reading_the_outlook_needs_one() -> None:
    actor = NumpyActor("p01", "ieee33", OBS_DIM, (np.zeros((OBS_DIM, 4)),), (np.zeros(4),))
    with pytest.raises(ActorFileError, match=r"reads the outlook features .* no outlook"):
        ActorPolicy(actor)
