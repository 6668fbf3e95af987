"""The honest protocol: training never reads the test days (``docs/ea-matd3.md``).

The training environment holds no test day at all (their profiles are not even loaded), so
no choice made while training (evaluations, the exported team) can depend on one; only
``--test-days`` plays them, once, after training, from an environment of its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import abm.envs.vec_env as vec_env
from abm.config import DaySet
from abm.envs.train_env import make_env
from abm.errors import ConfigError
from abm.inputs.profiles import FIT_DAYS, TEST_DAYS, TRAIN_DAYS, VALIDATION_DAYS
from abm.training.train_config import TrainRunConfig
from abm.training.train_run import train_run

pytest.importorskip("torch")


@pytest.fixture(autouse=True)
def publication_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("P2PVAR_CACHE", str(tmp_path / "cache"))
    yield


def test_the_day_sets_are_disjoint_and_cover_the_year() -> None:
    assert len(VALIDATION_DAYS) == 58 and len(FIT_DAYS) == 234 and len(TEST_DAYS) == 73
    assert set(FIT_DAYS) | set(VALIDATION_DAYS) == set(TRAIN_DAYS)
    assert not set(FIT_DAYS) & set(VALIDATION_DAYS)
    assert not set(TRAIN_DAYS) & set(TEST_DAYS)
    assert min(VALIDATION_DAYS) < 10 and max(VALIDATION_DAYS) > 355  # spread over the year


def test_the_training_environment_holds_no_test_day() -> None:
    env = make_env(TrainRunConfig(worlds=1))
    assert env.test_days == () and set(env.val_days) == set(VALIDATION_DAYS)
    with pytest.raises(ConfigError, match="is a test day, and this environment holds none"):
        env.reset(0, [TEST_DAYS[0]])
    env.reset(0, [VALIDATION_DAYS[0]])  # a validation day is there


def _spy(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, Any]]:
    """Record every day set loaded and every day played by any vectorised environment."""
    seen: list[tuple[str, Any]] = []
    build, reset = vec_env.build_run_inputs, vec_env.MarketVecEnv.reset

    def spy_build(config: Any, **kw: Any) -> Any:
        seen.append(("loaded", config.day_set))
        return build(config, **kw)

    def spy_reset(self: Any, seed: int, days: Any = None) -> Any:
        out = reset(self, seed, days)
        seen.extend(("played", int(d)) for d in self.days)
        return out

    monkeypatch.setattr(vec_env, "build_run_inputs", spy_build)
    monkeypatch.setattr(vec_env.MarketVecEnv, "reset", spy_reset)
    return seen


TINY = TrainRunConfig(
    algo="matd3", worlds=2, iterations=2, eval_every=1, train_days=3, val_days=2,
    updates_per_rollout=1, learning_starts=24, batch_size=8, checkpoint_buffer=False,
)  # fmt: skip


@pytest.mark.slow  # a whole (tiny) training run with its summary
def test_a_training_run_never_loads_or_plays_a_test_day(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = _spy(monkeypatch)
    result = train_run(TINY, tmp_path / "run", progress=False)
    assert ("loaded", DaySet.TRAIN) in seen and ("loaded", DaySet.TEST) not in seen
    played = {d for kind, d in seen if kind == "played"}
    assert played and not played & set(TEST_DAYS)
    assert played <= set(TRAIN_DAYS)
    assert "test_cost_eur" not in result and "validation_cost_eur" in result


@pytest.mark.slow  # a whole (tiny) training run with its summary
def test_test_days_are_read_only_after_training(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With ``test_days``, the test days are loaded and played only by the final evaluation,
    after every training iteration (the metrics are written before they are touched)."""
    import dataclasses

    import agents.learning.train as loop

    seen = _spy(monkeypatch)
    write = loop.write_metrics

    def spy_write(path: Path, rows: list) -> None:
        seen.append(("metrics", len(rows)))
        write(path, rows)

    monkeypatch.setattr(loop, "write_metrics", spy_write)
    result = train_run(dataclasses.replace(TINY, test_days=2), tmp_path / "run", progress=False)
    first_test = next(
        i
        for i, (kind, d) in enumerate(seen)
        if kind != "metrics" and (d == DaySet.TEST or d in TEST_DAYS)
    )
    last_metrics = max(i for i, (kind, _) in enumerate(seen) if kind == "metrics")
    assert first_test > last_metrics  # training was over before any test day was read
    played_test = {d for kind, d in seen if kind == "played" and d in TEST_DAYS}
    assert played_test == {TEST_DAYS[0], TEST_DAYS[36]}  # spread over the year
    assert result["test_cost_eur"] > 0 and result["validation_cost_eur"] > 0
