"""Every study end to end at a test size (``p2pvar study NAME``), and what its tables hold."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from abm.cli.main import build_parser, main
from abm.study import interdependence
from abm.study.executor import RUNS_DIR
from tests.helpers import assert_conserved

pytestmark = pytest.mark.slow

EXECUTOR = ["--workers", "1", "--no-progress"]


def _study(*args: str) -> None:
    assert main(["study", *args, *EXECUTOR]) == 0


def _run_tables(run_dir: Path) -> dict[str, pd.DataFrame]:
    return {n: pd.read_csv(run_dir / f"{n}.csv") for n in ("prosumers", "trades", "intervals")}


def test_markets(tmp_path: Path) -> None:
    _study("markets", "--quick", "--policies", "tou,optimum", "--out", str(tmp_path))
    table = pd.read_csv(tmp_path / "comparison.csv").set_index(["policy", "market"])
    assert len(table) == 8  # four market modes, two policies
    # The optimum's share of its own savings is 1; the ToU rule's is at most that.
    shares = table["share_of_optimum_savings"]
    assert shares.loc["optimum"].drop("grid-only").to_numpy() == pytest.approx(1.0)
    assert (shares.loc["tou"] <= 1.0 + 1e-9).all() and shares.loc[("tou", "grid-only")] == 0.0
    # The share of the ToU-to-optimum gap closed: 0 for ToU, 1 for the optimum (each market)
    gap = table["gap_closed"]
    assert gap.loc["tou"].to_numpy() == pytest.approx(0.0)
    assert gap.loc["optimum"].to_numpy() == pytest.approx(1.0)
    for policy in ("tou",):
        rows = table.loc[policy]
        assert rows.loc["grid-only", "cost_change_pct"] == 0.0
        assert rows.loc["grid-only", "p2p_volume_kwh"] == rows.loc["var", "p2p_volume_kwh"] == 0
        assert rows.loc["grid-only", "var_volume_kvarh"] == rows.loc["p2p", "var_volume_kvarh"] == 0
        assert rows.loc["multi", "p2p_volume_kwh"] > 0 and rows.loc["multi", "var_volume_kvarh"] > 0
        for market, row in rows.iterrows():
            run_dir = tmp_path / RUNS_DIR / f"{policy}-{market}"
            summary = json.loads((run_dir / "summary.json").read_text())
            assert row["prosumer_cost_eur"] == pytest.approx(summary["prosumer_cost_eur"])
            assert row["welfare_total_eur"] == pytest.approx(
                row[["welfare_prosumers_eur", "welfare_dso_eur", "welfare_retailer_eur"]].sum()
            )
            tables = _run_tables(run_dir)
            assert_conserved(tables)  # P2P money and energy balance on both sides
            pr = tables["prosumers"]  # each prosumer's energy balance
            balance = pr["pv_used_kw"] - pr["load_kw"] + pr["battery_p_kw"] - pr["p_kw"]
            assert np.abs(balance).max() < 1e-6
    assert (tmp_path / "market_changes.png").stat().st_size > 0
    assert "| tou |" in (tmp_path / "comparison.md").read_text()


def test_envelopes(tmp_path: Path) -> None:
    _study(
        "envelopes", "--quick", "--scales", "0.5,3", "--rules", "dynamic,none",
        "--out", str(tmp_path),
    )  # fmt: skip
    sweep = pd.read_csv(tmp_path / "sweep.csv")
    assert len(sweep) == 4  # two rules x two PV scales
    assert (sweep["pv_curtailed_kwh"] <= sweep["pv_available_kwh"] + 1e-6).all()
    by = sweep.set_index(["envelopes", "pv_scale"])
    for rule in ("dynamic", "none"):  # available PV scales with the PV scale
        ratio = by.loc[(rule, 3.0), "pv_available_kwh"] / by.loc[(rule, 0.5), "pv_available_kwh"]
        assert ratio == pytest.approx(6.0)
    # the envelopes keep every voltage inside the limits; without them high PV breaks them
    assert (sweep[sweep["envelopes"] == "dynamic"]["voltage_violations"] == 0).all()
    assert by.loc[("none", 3.0), "voltage_violations"] > 0
    assert by.loc[("none", 3.0), "pv_curtailed_kwh"] == pytest.approx(0.0, abs=1e-6)
    capacity = pd.read_csv(tmp_path / "hosting_capacity.csv").set_index(
        ["envelopes", "curtailment_tolerance_pct"]
    )
    assert len(capacity) == 4  # two rules x (strict, tolerant)
    none = capacity.loc[("none", 0)]
    assert none["first_limit"] == "voltage" and none["reached"]
    assert none["first_limit_pv_penetration"] == pytest.approx(
        by.loc[("none", 3.0), "pv_penetration"]
    )
    assert (tmp_path / "hosting_capacity.png").stat().st_size > 0


def test_interdependence(tmp_path: Path) -> None:
    args = ["interdependence", "--quick", "--rules", "dynamic", "--out", str(tmp_path)]
    specs = interdependence.specs(build_parser().parse_args(["study", *args, *EXECUTOR]))
    # 3 sweeps x 3 points, the shared default point once, plus p2p and var
    assert len(specs) == 3 * 3 - 2 + 2
    _study(*args)
    sweeps = pd.read_csv(tmp_path / "sweeps.csv")
    assert len(sweeps) == 3 * 3  # rows per sweep point and swept variable
    assert set(sweeps.groupby(["sweep", "envelopes"]).size()) == {3}
    var = sweeps[(sweeps["sweep"] == "var_price_scale") & (sweeps["envelopes"] == "dynamic")]
    zero = var.set_index("value").loc[0.0]
    assert zero["var_revenue_eur"] == pytest.approx(0.0, abs=1e-9)  # no Var price, no revenue
    slopes = pd.read_csv(tmp_path / "slopes.csv")
    assert len(slopes) == 3 * 4 and np.isfinite(slopes["slope"]).all()
    single = pd.read_csv(tmp_path / "single_markets.csv")
    assert len(single) == 3  # multi, p2p and var at the default point
    assert (tmp_path / "sweeps.png").stat().st_size > 0


def test_overhead(tmp_path: Path) -> None:
    _study(
        "overhead", "--sizes", "2,4", "--protocols", "auction",
        "--backends", "in-process,ipc", "--out", str(tmp_path),
    )  # fmt: skip
    table = pd.read_csv(tmp_path / "overhead.csv")
    assert len(table) == 4  # two backends x two sizes
    assert (table["intervals"] == 24).all()
    assert (table["deliveries_per_interval"] >= table["messages_per_interval"]).all()
    for _, group in table.groupby("backend"):
        group = group.sort_values("prosumers")
        assert group["messages_per_interval"].is_monotonic_increasing
    growth = pd.read_csv(tmp_path / "growth.csv")
    assert len(growth) == 2 * 4  # two backends x four figures
    assert np.isfinite(growth["exponent"]).all() and (growth["points"] == 2).all()
    assert (tmp_path / "overhead.png").stat().st_size > 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["markets", "--policies", "rule,greedy"], "policy='greedy' is not one of"),
        (["markets", "--policies", ","], "policies=',' must name at least one policy"),
        (["envelopes", "--rules", "dynamc"], "rules='dynamc' is not one of dynamic, static, none"),
        (["envelopes", "--scales", "1,-2"], "scales='1,-2' must be one or more numbers >= 0"),
        (["interdependence", "--var-pricing", "x"], "invalid choice"),
        (["overhead", "--backends", "carrier"], "backends='carrier' is not one of"),
        (["overhead", "--sizes", "1,4"], "every size must be at least 2 prosumers"),
    ],
)
def test_bad_input_is_one_line(
    args: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    try:
        code = main(["study", *args, "--out", str(tmp_path / "out"), *EXECUTOR])
    except SystemExit as exc:  # argparse's own choices
        code = int(exc.code or 0)
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()  # refused before any folder is made


def test_markets_takes_the_mpc_policies() -> None:
    from abm.study.markets import specs

    args = build_parser().parse_args(
        ["study", "markets", "--out", "x", "--policies", "mpc,mpc:regression,mpc-perfect"]
    )
    names = [spec.name for spec in specs(args)]
    assert {"mpc-multi", "mpc-regression-grid-only", "mpc-perfect-var"} <= set(names)
    assert len(names) == 3 * 4
