"""Figures from tiny real runs: units on the axes, the series drawn, axes that show
differences, and the PNG files written."""

from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PathCollection

from analysis.compare import read_run
from analysis.figures.envelopes import plot_envelopes
from analysis.figures.feeder import (
    plot_network_map,
    plot_voltage_profile,
    tree_layout,
    voltage_by_bus,
)
from analysis.figures.market import plot_p2p_market, plot_var_by_bus
from analysis.figures.style import merge_coinciding, value_limits
from analysis.figures.training import plot_training_curves, spread_over_seeds
from analysis.plots import COMPARISON_PANELS, plot_comparison, plot_daily_profiles
from dso.layout import bus_coordinates
from dso.networks import load_network


def assert_png(path: Path) -> None:
    """A readable PNG image that is not blank."""
    image = mpimg.imread(path)
    assert image.ndim == 3 and image.shape[0] > 200 and image.shape[1] > 200
    assert image[..., :3].std() > 0.01


def visible_axes(fig):
    return [ax for ax in fig.axes if ax.get_visible() and ax.get_label() != "<colorbar>"]


def test_value_limits_truncate_only_small_differences() -> None:
    low, high = value_limits([3634.0, 3622.0, 3626.0])
    assert 3600 < low < 3622 and 3634 < high < 3660
    assert value_limits([136.2, 97.9]) is None  # 28 % apart: visible from 0
    assert value_limits([0.0, 60.4]) is None
    assert value_limits([-3.0, 2.0]) is None
    assert value_limits([0.0, 0.0]) is None
    low, high = value_limits([-214.4, -205.3])  # negative values: limits around them
    assert low < -214.4 and -205.3 < high < 0


def test_merge_coinciding_lists_identical_series_once() -> None:
    merged = merge_coinciding({"a": np.ones(3), "b": np.ones(3), "c": np.arange(3.0)})
    assert [label for label, _ in merged] == ["a = b", "c"]


def test_comparison_bars_show_differences_under_one_percent(tiny_study, tmp_path, kept_figures):
    comparison = pd.read_csv(tiny_study / "comparison.csv", index_col="market")
    cost = comparison["prosumer_cost_eur"]
    assert abs(cost.iloc[1] / cost.iloc[0] - 1) < 0.01  # the case the issue names
    path = plot_comparison(comparison, tmp_path / "comparison.png")
    assert_png(path)
    axes = {ax.get_title(): ax for ax in visible_axes(kept_figures())}
    assert len(axes) == 8
    cost_ax = axes["prosumers' cost"]
    assert cost_ax.get_ylim()[0] > 0.9 * cost.min()
    assert cost_ax.get_ylabel() == "EUR (axis not from 0)"
    labels = [t.get_text() for t in cost_ax.texts]
    assert labels == [f"{v:,.4g}" for v in cost]
    volume_ax = axes["P2P volume"]
    assert volume_ax.get_ylim()[0] == 0.0 and volume_ax.get_ylabel() == "kWh"
    assert len(volume_ax.patches) == len(comparison)


def test_comparison_of_many_runs_is_grouped_by_market(tmp_path, kept_figures):
    """Twelve runs (3 policies x 4 markets, as the demo's report): grouped by market, one
    colour per policy in one legend, vertical value labels."""
    markets, policies = ["grid-only", "p2p", "var", "multi"], ["rule", "tou", "optimum"]
    rng = np.random.default_rng(0)
    rows = [
        {"policy": p, "market": m, **{c: 3000.0 + rng.uniform(0, 500) for c in COMPARISON_PANELS}}
        for p in policies
        for m in markets
    ]
    comparison = pd.DataFrame(rows, index=[f"{r['policy']}-{r['market']}" for r in rows])
    assert_png(plot_comparison(comparison, tmp_path / "grouped.png"))
    fig = kept_figures()
    axes = {ax.get_title(): ax for ax in visible_axes(fig)}
    assert len(axes) == len(COMPARISON_PANELS)
    cost_ax = axes["prosumers' cost"]
    assert [t.get_text() for t in cost_ax.get_xticklabels()] == markets
    assert len(cost_ax.patches) == 12
    expected = comparison.set_index(["policy", "market"])["prosumer_cost_eur"]
    assert [t.get_text() for t in cost_ax.texts] == [
        f"{expected[(p, m)]:,.4g}" for p in policies for m in markets
    ]
    assert {t.get_rotation() for t in cost_ax.texts} == {90.0}
    (legend,) = fig.legends
    assert [t.get_text() for t in legend.get_texts()] == policies
    # a run per policy and market no more: each run its own bar again
    assert plot_comparison(comparison.iloc[:4], tmp_path / "plain.png")
    plain = {ax.get_title(): ax for ax in visible_axes(kept_figures())}["prosumers' cost"]
    assert [t.get_text() for t in plain.get_xticklabels()] == list(comparison.index[:4])


def test_daily_profiles_legend_lists_each_visible_line(tiny_study, tmp_path, kept_figures):
    runs = {mode: tiny_study / mode for mode in ("grid-only", "multi")}
    assert_png(plot_daily_profiles(runs, tmp_path / "profiles.png"))
    axes = visible_axes(kept_figures())
    assert [ax.get_ylabel() for ax in axes] == [
        "prosumers' net import (kW, mean)",
        "network loss (kW, mean)",
        "lowest voltage (pu)",
        "highest voltage (pu)",
    ]
    for ax in axes:
        lines = [line for line in ax.get_lines() if not line.get_label().startswith("_")]
        legend = [t.get_text() for t in ax.get_legend().get_texts()]
        assert legend == [line.get_label() for line in lines]
        assert sorted(" = ".join(legend).split(" = ")) == ["grid-only", "multi"]
    # the Var market lowers the loss in this run: two distinct loss lines
    assert len(axes[1].get_legend().get_texts()) == 2


def test_voltage_profile_band_and_mean(tiny_study, tmp_path, kept_figures):
    buses = pd.read_csv(tiny_study / "multi" / "buses.csv")
    assert_png(plot_voltage_profile(buses, tmp_path / "v.png"))
    ax = visible_axes(kept_figures())[0]
    assert ax.get_ylabel() == "voltage magnitude (pu)"
    low, high = ax.get_ylim()
    assert buses["vm_pu"].min() > low > 0.9 and buses["vm_pu"].max() < high < 1.1
    mean = ax.get_lines()[0].get_ydata()
    np.testing.assert_allclose(mean, buses.groupby("bus")["vm_pu"].mean().to_numpy())
    assert len(ax.collections) == 1  # the min-max band


def test_tree_layout_places_children_one_level_deeper() -> None:
    feeder = load_network("ieee33")
    xy = tree_layout(feeder)
    assert xy[feeder.slack_bus, 0] == 0
    np.testing.assert_array_equal(xy[feeder.to_bus, 0], xy[feeder.from_bus, 0] + 1)
    leaves = np.setdiff1d(np.arange(feeder.n_bus), feeder.from_bus)
    assert len(set(xy[leaves, 1])) == len(leaves)  # leaves do not overlap


@pytest.mark.parametrize("from_data", [True, False])
def test_network_map_colours_buses_by_voltage(tiny_study, tmp_path, kept_figures, from_data):
    feeder = load_network("ieee33")
    vm = voltage_by_bus(pd.read_csv(tiny_study / "multi" / "buses.csv"))["min"].to_numpy()
    coordinates = bus_coordinates("ieee33") if from_data else None
    assert_png(plot_network_map(feeder, vm, tmp_path / "map.png", coordinates))
    fig = kept_figures()
    ax = visible_axes(fig)[0]
    assert ("coordinates from the network data" in ax.get_title()) == from_data
    buses = next(c for c in ax.collections if isinstance(c, PathCollection))
    np.testing.assert_allclose(buses.get_array(), vm)
    expected = coordinates if from_data else tree_layout(feeder)
    np.testing.assert_allclose(buses.get_offsets(), expected)
    assert any(a.get_ylabel() == "lowest voltage over the run (pu)" for a in fig.axes)


def test_p2p_market_draws_every_trade(tiny_study, tmp_path, kept_figures):
    tables, duration_h = read_run(tiny_study / "multi")
    trades = tables["trades"]
    assert len(trades) > 0
    assert_png(plot_p2p_market(tables, duration_h, tmp_path / "p2p.png"))
    price_ax, volume_ax = visible_axes(kept_figures())
    assert price_ax.get_ylabel() == "price (EUR/kWh)"
    assert volume_ax.get_ylabel() == "P2P energy (kWh)"
    dots = next(c for c in price_ax.collections if isinstance(c, PathCollection))
    np.testing.assert_allclose(dots.get_offsets()[:, 1], trades["price_eur_per_kwh"])
    heights = [bar.get_height() for bar in volume_ax.patches]
    assert sum(heights) == pytest.approx(trades["quantity_kwh"].sum())
    retail = price_ax.get_lines()[0]
    assert retail.get_xdata()[-1] == 24 * duration_h  # the last interval is drawn too


def test_p2p_market_without_trades_says_so(tiny_study, tmp_path, kept_figures):
    tables, duration_h = read_run(tiny_study / "grid-only")
    assert_png(plot_p2p_market(tables, duration_h, tmp_path / "p2p.png"))
    volume_ax = visible_axes(kept_figures())[1]
    assert [t.get_text() for t in volume_ax.texts] == ["no P2P trades in this run"]


def test_var_by_bus_heat_maps(tiny_study, tmp_path, kept_figures):
    tables, duration_h = read_run(tiny_study / "multi")
    prosumers = tables["prosumers"]
    assert_png(plot_var_by_bus(prosumers, duration_h, tmp_path / "var.png"))
    fig = kept_figures()
    price_ax, q_ax = visible_axes(fig)
    q = prosumers.pivot_table(
        index="bus", columns="interval", values="q_inverter_kvar", aggfunc="sum"
    )
    np.testing.assert_allclose(q_ax.images[0].get_array(), q.to_numpy())
    units = sorted(a.get_ylabel() for a in fig.axes if a.get_label() == "<colorbar>")
    assert units == ["Var price (EUR/kvarh)", "inverter reactive power (kvar)"]
    assert np.abs(price_ax.images[0].get_array()).max() > 0  # a Var market ran


#: The prosumers of the envelope figures' tests (a panel each: three draw as all 32 would).
ENVELOPE_PROSUMERS = ("p01", "p02", "p03")


def test_envelopes_one_panel_per_prosumer(tiny_study, tmp_path, kept_figures):
    tables, duration_h = read_run(tiny_study / "multi")
    prosumers = tables["prosumers"][tables["prosumers"]["prosumer"].isin(ENVELOPE_PROSUMERS)]
    assert_png(plot_envelopes(prosumers, duration_h, tmp_path / "env.png"))
    axes = visible_axes(kept_figures())
    assert len(axes) == prosumers["prosumer"].nunique()
    first = prosumers[prosumers["prosumer"] == "p01"].sort_values("interval")
    dispatch = axes[0].get_lines()[0].get_ydata()
    np.testing.assert_allclose(dispatch[:-1], first["p_kw"])
    assert axes[0].get_ylabel() == "kW (+ export)" and axes[0].get_title() == "p01 (bus 1)"
    band = axes[0].collections[0].get_paths()[0].vertices[:, 1]
    assert band.max() == pytest.approx(first["export_limit_kw"].max())
    assert band.min() == pytest.approx(-first["import_limit_kw"].max())
    assert all(len(ax.get_lines()[1].get_xdata()) == 0 for ax in axes)  # none outside


def test_envelopes_mark_a_dispatch_outside_the_band(tiny_study, tmp_path, kept_figures):
    tables, duration_h = read_run(tiny_study / "multi")
    prosumers = tables["prosumers"][tables["prosumers"]["prosumer"].isin(ENVELOPE_PROSUMERS)]
    prosumers = prosumers.copy()
    row = (prosumers["prosumer"] == "p01") & (prosumers["interval"] == 5)
    prosumers.loc[row, "p_kw"] = prosumers.loc[row, "export_limit_kw"] + 5.0
    plot_envelopes(prosumers, duration_h, tmp_path / "env.png")
    marks = visible_axes(kept_figures())[0].get_lines()[1]
    np.testing.assert_allclose(marks.get_xdata(), [5.5 * duration_h])


def write_metrics(path: Path, returns: list[float]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame(
        {
            "iteration": range(1, len(returns) + 1),
            "env_steps": [24 * i for i in range(1, len(returns) + 1)],
            "episode_return": returns,
            "val_cost": [np.nan] * (len(returns) - 1) + [-returns[-1]],
        }
    )
    frame.to_csv(path, index=False)
    return path


def test_training_curves_mean_and_spread_over_seeds(tmp_path, kept_figures):
    seeds = [
        write_metrics(tmp_path / "a" / f"seed{k}" / "metrics.csv", [-10.0 + k, -8.0 + k, -5.0])
        for k in range(3)
    ]
    other = [write_metrics(tmp_path / "b" / "metrics.csv", [-12.0, -11.0, -9.0])]
    stats = spread_over_seeds([pd.read_csv(p) for p in seeds], "episode_return")
    np.testing.assert_allclose(stats["mean"], [-9.0, -7.0, -5.0])
    np.testing.assert_allclose(stats["std"], [1.0, 1.0, 0.0])
    path = plot_training_curves({"a": seeds, "b": other}, tmp_path / "curves.png")
    assert_png(path)
    ret_ax, eval_ax = visible_axes(kept_figures())
    assert ret_ax.get_ylabel() == "training return per world-day (-EUR)"
    assert eval_ax.get_ylabel() == "validation cost per day (EUR)"
    assert [t.get_text() for t in ret_ax.get_legend().get_texts()] == [
        "a (n=3 seeds)",
        "b (n=1 seeds)",
    ]
    np.testing.assert_allclose(ret_ax.get_lines()[0].get_ydata(), [-9.0, -7.0, -5.0])
    band = ret_ax.collections[0].get_paths()[0].vertices[:, 1]
    assert band.min() == pytest.approx(-10.0) and band.max() == pytest.approx(-5.0)
