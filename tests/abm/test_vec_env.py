"""The vectorised environment against the Mesa model driven with the same actions.

Each case runs one Mesa ``MarketModel`` per day and one :class:`MarketVecEnv` with a world
per day, all with the same actions (random, or the rule policy's recorded from the Mesa
run), and compares every interval: observations (format 3: the record's features and each
prosumer's outlook, its own forecasts and tariff ahead), trades and the uniform price, plans,
battery states, bills, bus voltages, loss and the DSO's net (to 1e-9, relative above 1:
the batched power flow stops at the same tolerance as the scalar one, not at the same
iterate, so a loss of 18 kW may differ by 1e-9 kW; the loss saved, a difference of two
losses, to 1e-9 of the loss).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from abm.config import Market, SimConfig
from abm.envs.publication_cache import PublicationCache
from abm.envs.vec_env import MarketVecEnv
from abm.inputs.mpc_policies import prosumer_outlooks
from abm.inputs.profiles import TEST_DAYS, TRAIN_DAYS
from abm.inputs.run_inputs import build_run_inputs
from abm.sim.model import MarketModel
from agents.interval import EPISODE_INTERVALS
from agents.learning.env_protocol import VecMarketEnv
from agents.outlook import ProsumerOutlook
from agents.policy import OBS_DIM, Observation, RulePolicy, observation_vector

TOL = 1e-9
WINTER_DAY, SUMMER_DAY = 9, 184  # calendar days (test days)
SPRING_TRAIN_DAY = 100


class _Replay:
    """Returns prerecorded actions interval by interval, recording the observations (the
    vector the PettingZoo environment gives, with the prosumer's ``outlook``)."""

    def __init__(self, actions: np.ndarray | None, outlook: ProsumerOutlook) -> None:
        self.actions = actions  # (T, 4) or None: act as the rule policy, and record it
        self.outlook = outlook
        self.rule = RulePolicy()
        self.taken: list[np.ndarray] = []
        self.seen: list[np.ndarray] = []

    def act(self, obs: Observation) -> np.ndarray:
        self.seen.append(observation_vector(obs, self.outlook.at(obs)))
        t = len(self.taken)
        action = self.rule.act(obs) if self.actions is None else self.actions[t]
        self.taken.append(np.asarray(action, dtype=np.float32))
        return action


def _mesa_run(config: SimConfig, day: int, actions: np.ndarray | None, n_intervals: int):
    """Mesa run of calendar ``day`` with ``actions`` ``(T, N, 4)`` (None: the rule policy's)."""
    day_set, pool = ("test", TEST_DAYS) if day in TEST_DAYS else ("train", TRAIN_DAYS)
    cfg = dataclasses.replace(config, day_set=day_set, first_day=pool.index(day), days=1)
    world = build_run_inputs(cfg)
    outlooks = prosumer_outlooks(world)
    policies = {
        pid: _Replay(None if actions is None else actions[:, i], outlooks[i])
        for i, pid in enumerate(world.prosumer_ids)
    }
    model = MarketModel(cfg, world=world, policies=policies)
    for _ in range(n_intervals):
        model.step()
    return model, policies


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory):
    return tmp_path_factory.mktemp("p2pvar_cache")


def _compare(
    network: str,
    market: str,
    days: list[int],
    kind: str,
    cache_dir,
    n_intervals: int = 24,
    seed: int = 0,
) -> None:
    config = SimConfig(network=network, market=market)
    env = MarketVecEnv(len(days), config)
    env.cache = PublicationCache(env.cache_key, env.compute_day, cache_dir)
    n = env.n_agents
    rng = np.random.default_rng(seed)
    runs = []
    for day in days:
        acts = rng.uniform(-1, 1, (24, n, 4)).astype(np.float32) if kind == "random" else None
        runs.append(_mesa_run(config, day, acts, n_intervals))
    obs, state = env.reset(seed, days)
    assert state.shape == (len(days), env.state_dim)
    tables = [model.tables() for model, _ in runs]
    ids = list(env.prosumer_ids)
    for t in range(n_intervals):
        actions = np.stack([[pol[pid].taken[t] for pid in ids] for _, pol in runs])
        mesa_obs = np.stack([[pol[pid].seen[t] for pid in ids] for _, pol in runs])
        assert obs.shape[-1] == OBS_DIM == mesa_obs.shape[-1]
        np.testing.assert_allclose(obs, mesa_obs, atol=1e-6, rtol=1e-6)
        obs, state, rewards, done, info = env.step(actions)
        assert done.all() == (t == 23)
        for w, tab in enumerate(tables):
            pr = tab["prosumers"][tab["prosumers"]["interval"] == t].set_index("prosumer").loc[ids]
            for column, value in (
                ("bill_eur", -rewards[w]),
                ("soc_kwh", info["soc_kwh"][w]),
                ("p_kw", info["p_kw"][w]),
                ("q_kvar", info["q_kvar"][w]),
                ("p2p_bought_kwh", info["bought_kwh"][w]),
                ("p2p_sold_kwh", info["sold_kwh"][w]),
                ("storage_eur", np.asarray(info["bill"].storage_eur)[w]),
                ("var_eur", np.asarray(info["bill"].var_eur)[w]),
            ):
                np.testing.assert_allclose(value, pr[column].to_numpy(float), atol=TOL, rtol=TOL)
            iv = tab["intervals"].iloc[t]
            for column in ("loss_kw", "var_paid_eur", "dso_net_eur"):
                assert info[column][w] == pytest.approx(iv[column], abs=TOL, rel=TOL), column
            # a difference of two losses: its error scales with the loss, not with itself
            saved_tol = TOL * max(1.0, iv["loss_kw"])
            assert info["loss_saved_kw"][w] == pytest.approx(iv["loss_saved_kw"], abs=saved_tol)
            assert info["p2p_volume_kwh"][w] == pytest.approx(iv["p2p_volume_kwh"], abs=TOL)
            vm = tab["buses"][tab["buses"]["interval"] == t]["vm_pu"].to_numpy()
            np.testing.assert_allclose(info["vm_pu"][w], vm, atol=TOL, rtol=TOL)
            tr = tab["trades"][tab["trades"]["interval"] == t]
            mesa_trades = sorted(
                zip(
                    tr["buyer"],
                    tr["seller"],
                    tr["quantity_kwh"],
                    tr["price_eur_per_kwh"],
                    strict=True,
                )
            )
            if "matches" in info:
                m = info["matches"]
                price = float(info["p2p_price_eur_per_kwh"][w])
                ours = sorted(
                    (ids[m.buyer[r]], ids[m.seller[r]], float(m.quantity_kwh[r]), price)
                    for r in np.flatnonzero(m.world == w)
                )
            else:
                ours = []
            assert [x[:2] for x in ours] == [x[:2] for x in mesa_trades]
            np.testing.assert_allclose(
                [x[2:] for x in ours], [x[2:] for x in mesa_trades], atol=TOL, rtol=TOL
            )


def test_satisfies_the_learners_contract(cache_dir) -> None:
    env: VecMarketEnv = MarketVecEnv(2, SimConfig(network="ieee33", market="p2p"))
    assert (env.n_worlds, env.n_agents, env.action_dim) == (2, 32, 4)
    assert env.state_dim == 32 * env.obs_dim + 33 and env.network == "ieee33"
    assert set(env.train_days).isdisjoint(env.test_days)


def test_days_sampled_per_world_from_training_days(cache_dir, monkeypatch) -> None:
    monkeypatch.setenv("P2PVAR_CACHE", str(cache_dir))
    small = MarketVecEnv(2, SimConfig(network="ieee33", market="p2p"))
    big = MarketVecEnv(3, SimConfig(network="ieee33", market="p2p"))
    small.reset(7)
    big.reset(7)
    assert list(small.days) == list(big.days[:2])  # one generator per world
    assert all(d in small.train_days for d in big.days)


def test_learners_rollout_fills_a_replay_buffer(cache_dir, monkeypatch) -> None:
    torch = pytest.importorskip("torch")
    from agents.learning.buffer import ReplayBuffer
    from agents.learning.rollout import run_episode

    monkeypatch.setenv("P2PVAR_CACHE", str(cache_dir))
    env = MarketVecEnv(2, SimConfig(network="ieee33", market="p2p"))
    buffer = ReplayBuffer(100, env.n_agents, env.obs_dim, env.state_dim, env.action_dim)
    stats = run_episode(
        env, lambda obs: torch.zeros(*obs.shape[:2], 4), seed=0, days=[9, 184], buffer=buffer
    )
    assert len(buffer) == 2 * EPISODE_INTERVALS
    assert stats.world_returns.shape == (2,) and torch.isfinite(stats.world_returns).all()
    # minus the sum of the bills: the feeder imports on balance, so a cost
    assert (stats.world_returns < 0).all()


@pytest.mark.parametrize("market", list(Market))
def test_ieee33_random_actions_match_mesa(market: str, cache_dir) -> None:
    _compare("ieee33", market, [WINTER_DAY, SUMMER_DAY], "random", cache_dir)


@pytest.mark.parametrize("market", ["multi", "p2p"])
def test_ieee33_rule_actions_match_mesa(market: str, cache_dir) -> None:
    _compare("ieee33", market, [SUMMER_DAY, SPRING_TRAIN_DAY], "rule", cache_dir)


def test_swiss161_multi_random_actions_match_mesa(cache_dir) -> None:
    _compare("swiss161", "multi", [SUMMER_DAY], "random", cache_dir, seed=3)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["random", "rule"])
@pytest.mark.parametrize("market", list(Market))
def test_swiss161_all_modes_match_mesa(market: str, kind: str, cache_dir) -> None:
    day = WINTER_DAY if kind == "random" else SUMMER_DAY
    _compare("swiss161", market, [day], kind, cache_dir, seed=5)


def test_charging_at_the_end_books_a_profit_only_below_the_cheapest_tariff(
    cache_dir, monkeypatch
) -> None:
    """Three worlds of one winter day, every battery idle but, in world 2 and world 1, charging
    at full power in the last hour (23:00, the cheapest tariff) or at 20:00 (the peak): each kWh
    bought at ``retail_t`` stores ``eta`` kWh valued at the end at ``min retail / eta``, so the
    charge saves ``bought (min retail - retail_t)``: exactly 0 at 23:00, a loss at 20:00."""
    monkeypatch.setenv("P2PVAR_CACHE", str(cache_dir))
    env = MarketVecEnv(3, SimConfig(network="ieee33", market="grid-only"))
    env.reset(0, [WINTER_DAY] * 3)
    retail = np.asarray(env.scenario.tariffs.retail_eur_per_kwh)
    charge_at = {1: 20, 2: 23}  # world: hour of the charge
    soc_before, returns = env.soc_kwh.copy(), np.zeros((3, env.n_agents))
    for t in range(env.n_intervals):
        actions = np.zeros((3, env.n_agents, env.action_dim), dtype=np.float32)
        for w, hour in charge_at.items():
            actions[w, :, 0] = -1.0 if t == hour else 0.0
        _, _, rewards, _, info = env.step(actions)
        returns += rewards
        stored = info["soc_kwh"] - soc_before
        soc_before = info["soc_kwh"].copy()
        for w, hour in charge_at.items():
            if t != hour:
                np.testing.assert_allclose(stored[w], stored[0], atol=1e-12)
    assert retail[23] == retail.min() < retail[20]
    gain = returns - returns[0]
    bought_kwh = (info["soc_kwh"] - info["soc_kwh"][0]) / env.efficiency
    assert bought_kwh[1].sum() > 1.0 and bought_kwh[2].sum() > 1.0  # the batteries did charge
    np.testing.assert_allclose(gain[2], 0.0, atol=1e-9 * env.n_intervals)
    expected_peak = bought_kwh[1] * (retail.min() - retail[20])
    np.testing.assert_allclose(gain[1], expected_peak, atol=1e-9 * env.n_intervals)
    assert (gain[1][bought_kwh[1] > 0] < 0).all()
