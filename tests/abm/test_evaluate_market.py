"""``p2pvar evaluate`` plays a team only in the market it was trained on: the run records the
whole market (``config.json``'s ``sim``) and another one is refused in one line."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from abm.cli.main import main
from abm.config import SimConfig
from abm.output.provenance import to_jsonable
from abm.training.train_config import TrainRunConfig, check_trained_market, trained_market

COMMITTED = Path(__file__).resolve().parents[2] / "abm" / "data" / "checkpoints" / "ieee33-multi"


def _run_folder(tmp_path: Path, config: dict) -> Path:
    run = tmp_path / "run"
    (run / "actors").mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"config": config}))
    return run


def test_a_mismatch_is_refused_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    trained = TrainRunConfig(sim=SimConfig(fairness="proportional", var_price_scale=2.0))
    run = _run_folder(tmp_path, to_jsonable(trained))
    code = main(["evaluate", "--checkpoint", str(run), "--var-price-scale", "2", "--n-days", "1"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert "fairness='proportional'" in err[0] and "fairness='equal'" in err[0], err[0]
    assert not (tmp_path / "out").exists()
    with pytest.raises(Exception, match=r"network_charge_eur_per_kwh=0\.03.*=0\.05"):
        check_trained_market(run / "actors", dataclasses.replace(
            SimConfig(fairness="proportional", var_price_scale=2.0),
            network_charge_eur_per_kwh=0.05,
        ))  # fmt: skip
    # what training does not take may differ: days, seed, protocol, policy
    check_trained_market(run, SimConfig(fairness="proportional", var_price_scale=2.0, days=3,
                                        seed=9, protocol="bilateral"))  # fmt: skip


def test_the_committed_checkpoint_was_trained_on_the_default_market() -> None:
    """Its run (before the config held the market) recorded network and market only; the
    rest of the market was the defaults, which training always used then."""
    market = trained_market(COMMITTED)
    assert market is not None and market["sim.network"] == "ieee33"
    assert market["sim.market"] == "multi" and market["sim.fairness"] == "equal"
    check_trained_market(COMMITTED, SimConfig())
    with pytest.raises(Exception, match=r"market='multi'.*market='var'"):
        check_trained_market(COMMITTED, SimConfig(market="var"))


def test_an_older_run_config_reads_as_its_three_market_fields(tmp_path: Path) -> None:
    old = {"algo": "matd3", "network": "ieee33", "market": "p2p", "scenario": None}
    market = trained_market(_run_folder(tmp_path, old))
    assert market is not None and market["sim.market"] == "p2p"
    assert market["sim.envelopes"] == "dynamic"


def test_a_folder_of_actors_alone_is_not_checked(tmp_path: Path) -> None:
    assert trained_market(tmp_path) is None
    check_trained_market(tmp_path, SimConfig(market="var"))
