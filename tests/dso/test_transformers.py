"""Feeders with transformers, several voltage levels and static generators, against runpp.

Each network is loaded as is (its own pandapower elements, taps, switches), solved by our
radial power flow in the base case and compared bus by bus and branch by branch with
``runpp`` of the original network (pandapower's defaults: T model, voltage angles).
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandapower as pp
import pandapower.networks as pn
import pytest

from dso.errors import NetworkError
from dso.networks import DATA_DIR, feeder_from_pandapower, load_network, to_pandapower
from dso.powerflow import RadialPowerFlow
from dso.sensitivity import loss_sensitivities

#: Committed example networks (``scripts/make_example_networks.py``).
EXAMPLE_FILES = ("cigre_mv", "cigre_mv_pv_wind", "simbench_mv_rural", "simbench_lv_rural1")
#: pandapower example networks with transformers (built by pandapower, not committed).
PANDAPOWER_EXAMPLES: dict[str, Callable[[], Any]] = {
    "cigre_lv": pn.create_cigre_network_lv,
    "kerber_landnetz_freileitung_1": pn.create_kerber_landnetz_freileitung_1,
    "simple_mv_open_ring": pn.simple_mv_open_ring_net,
    "synthetic_voltage_control_lv": pn.create_synthetic_voltage_control_lv_network,
}


def _net(name: str) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if name in PANDAPOWER_EXAMPLES:
            return PANDAPOWER_EXAMPLES[name]()
        return pp.from_json(str(DATA_DIR / f"{name}.json"))


def _names(table: Any) -> list[str]:
    """Element names, the index where a name is missing (as the loader names them)."""
    return [
        str(i) if n is None or n != n else str(n)
        for i, n in zip(table.index, table.name, strict=True)
    ]


def _compare_with_runpp(net: Any, name: str) -> tuple[float, float]:
    """Solve the base case both ways and compare; return (max |dV| pu, loss difference kW)."""
    feeder = feeder_from_pandapower(net, name)
    result = RadialPowerFlow(feeder).solve(*feeder.base_injection())
    pp.runpp(net, numba=False, tolerance_mva=1e-10)
    bus_names = _names(net.bus)
    assert len(set(bus_names)) == len(bus_names)
    ours = {n: i for i, n in enumerate(feeder.bus_names)}
    on = [b for b, n in zip(net.bus.index, bus_names, strict=True) if n in ours]
    idx = [ours[bus_names[net.bus.index.get_loc(b)]] for b in on]
    # every feeder bus but the open ends of lines is a pandapower bus (fused ones: the first)
    assert len(on) == sum(not n.startswith("open end of line") for n in feeder.bus_names)
    dv = np.abs(result.vm_pu[idx] - net.res_bus.vm_pu[on].to_numpy())
    dva = (result.va_deg[idx] - net.res_bus.va_degree[on].to_numpy() + 180.0) % 360.0 - 180.0
    assert dv.max() < 1e-6 and np.abs(dva).max() < 1e-6
    loss_kw = (net.res_line.pl_mw.sum() + net.res_trafo.pl_mw.sum()) * 1000.0
    assert result.loss_kw == pytest.approx(loss_kw, abs=1e-3)
    # ours flows into the lines; the ext_grid also feeds what is at the slack bus
    p_at_slack, q_at_slack = (x[feeder.slack_bus] for x in feeder.base_injection())
    grid_p_kw, grid_q_kvar = net.res_ext_grid[["p_mw", "q_mvar"]].iloc[0] * 1000.0
    assert result.p_slack_kw == pytest.approx(grid_p_kw + p_at_slack, abs=1e-3)
    assert result.q_slack_kvar == pytest.approx(grid_q_kvar + q_at_slack, abs=1e-3)
    loading = {}
    for kind, table in (("line", net.line), ("transformer", net.trafo)):
        res = net[f"res_{'trafo' if kind == 'transformer' else 'line'}"].loading_percent
        loading |= {(kind, n): x for n, x in zip(_names(table), res, strict=True)}
    for branch in range(feeder.n_line):
        kind, _, branch_name = feeder.branch_label(branch).partition(" ")
        for part in branch_name.split(" + "):  # identical transformers in parallel: one branch
            assert result.loading_percent[branch] == pytest.approx(loading[kind, part], abs=1e-6)
    return float(dv.max()), float(result.loss_kw - loss_kw)


@pytest.mark.parametrize("name", EXAMPLE_FILES + tuple(PANDAPOWER_EXAMPLES))
def test_network_with_transformers_matches_runpp(name: str) -> None:
    net = _net(name)
    assert len(net.trafo) > 0 and len(set(net.bus.vn_kv)) > 1
    _compare_with_runpp(net, name)


def test_example_files_load_by_path_with_their_transformers() -> None:
    mv = load_network(str(DATA_DIR / "simbench_mv_rural.json"))
    # two identical 110/20 kV transformers between fused busbars: one branch
    assert mv.line_names[mv.trafos.branch[0]] == "HV1-MV1.101-Trafo1 + HV1-MV1.101-Trafo2"
    assert sorted(set(mv.bus_vn_kv)) == [20.0, 110.0] and mv.gen_kwp.sum() > mv.load_p_kw.sum()
    cigre = load_network(str(DATA_DIR / "cigre_mv_pv_wind.json"))
    assert len(cigre.trafos) == 2 and cigre.gen_kwp.sum() == pytest.approx(1500 + 210)


def _two_level_net(slack_at_lv: bool) -> Any:
    """20 kV -> 0.4 kV -> 10 kV: taps on either side, iron losses, a phase shift, and the
    second transformer oriented lv -> hv (its high-voltage side is the child)."""
    net = pp.create_empty_network(sn_mva=1.0)
    mv, lv, lv2, up = (
        pp.create_bus(net, vn_kv=v, name=n)
        for v, n in ((20.0, "mv"), (0.4, "lv"), (0.4, "lv2"), (10.0, "up"))
    )
    pp.create_ext_grid(net, lv if slack_at_lv else mv, vm_pu=1.02, va_degree=3.0)
    pp.create_transformer_from_parameters(
        net,
        mv,
        lv,
        sn_mva=0.63,
        vn_hv_kv=20.0,
        vn_lv_kv=0.42,
        vkr_percent=1.2,
        vk_percent=6.0,
        pfe_kw=1.4,
        i0_percent=0.4,
        shift_degree=150.0,
        tap_side="lv",
        tap_pos=-2,
        tap_neutral=0,
        tap_step_percent=2.5,
        tap_changer_type="Ratio",
        name="t1",
    )
    pp.create_line_from_parameters(net, lv, lv2, 0.2, 0.2, 0.08, 250.0, 0.3, name="cable")
    pp.create_transformer_from_parameters(
        net,
        up,
        lv2,
        sn_mva=0.25,
        vn_hv_kv=10.5,
        vn_lv_kv=0.4,
        vkr_percent=1.5,
        vk_percent=4.0,
        pfe_kw=0.6,
        i0_percent=0.5,
        shift_degree=30.0,
        tap_side="hv",
        tap_pos=3,
        tap_neutral=0,
        tap_step_percent=1.5,
        tap_changer_type="Ratio",
        name="t2",
    )
    pp.create_load(net, lv2, p_mw=0.12, q_mvar=0.04)
    pp.create_load(net, up, p_mw=0.05, q_mvar=0.01)
    pp.create_sgen(net, up, p_mw=0.2, name="pv at the 10 kV end")  # net generation
    pp.create_load(net, lv if slack_at_lv else mv, p_mw=0.01)
    return net


@pytest.mark.parametrize("slack_at_lv", [False, True])
def test_taps_iron_losses_and_both_orientations_match_runpp(slack_at_lv: bool) -> None:
    _compare_with_runpp(_two_level_net(slack_at_lv), "two levels")


def test_loss_sensitivities_through_transformers_match_runpp_differences() -> None:
    """dP_loss/dp and dP_loss/dq behind two transformers, against central differences of
    runpp's loss (lines and transformers)."""
    feeder = feeder_from_pandapower(_two_level_net(False), "two levels")
    pf = RadialPowerFlow(feeder)
    p, q = feeder.base_injection()
    lsf = loss_sensitivities(pf, p, q)
    net = to_pandapower(feeder)
    loads = net.load.set_index("bus")

    def loss_kw(dp: np.ndarray, dq: np.ndarray) -> float:
        net.load["p_mw"] = -(p + dp)[net.load.bus] / 1000.0
        net.load["q_mvar"] = -(q + dq)[net.load.bus] / 1000.0
        pp.runpp(net, numba=False, tolerance_mva=1e-12)
        return float((net.res_line.pl_mw.sum() + net.res_trafo.pl_mw.sum()) * 1000.0)

    assert len(loads) == feeder.n_bus - 1
    h = 1.0
    for bus in range(feeder.n_bus):
        if bus == feeder.slack_bus:
            continue
        e = np.zeros(feeder.n_bus)
        e[bus] = h
        zero = np.zeros(feeder.n_bus)
        fd_p = (loss_kw(e, zero) - loss_kw(-e, zero)) / (2 * h)
        fd_q = (loss_kw(zero, e) - loss_kw(zero, -e)) / (2 * h)
        assert lsf.dloss_dp[bus] == pytest.approx(fd_p, rel=1e-3, abs=1e-6)
        assert lsf.dloss_dq[bus] == pytest.approx(fd_q, rel=1e-3, abs=1e-6)


def test_bus_that_generates_more_than_it_consumes_is_accepted() -> None:
    """Issue 22: a static generator larger than its bus's load was refused."""
    net = to_pandapower(load_network("ieee33"))
    pp.create_sgen(net, 5, p_mw=1.0, q_mvar=-0.1, name="pv farm")
    feeder = feeder_from_pandapower(net, "ieee33 with a farm")
    assert feeder.gen_kwp[5] == 1000.0 and feeder.gen_p_kw[5] == 1000.0
    assert feeder.load_p_kw[5] == load_network("ieee33").load_p_kw[5]  # not netted
    _compare_with_runpp(net, "ieee33 with a farm")


def _with(element: str) -> Callable[[Any], None]:
    builders: dict[str, Callable[[Any], None]] = {
        "trafo3w": lambda net: pp.create_transformer3w(
            net,
            1,
            pp.create_bus(net, 0.4),
            pp.create_bus(net, 0.4),
            "63/25/38 MVA 110/20/10 kV",
            name="x3",
        ),
        "gen": lambda net: pp.create_gen(net, 5, p_mw=0.1, vm_pu=1.0, name="x3"),
        "storage": lambda net: pp.create_storage(net, 5, p_mw=0.1, max_e_mwh=1.0, name="x3"),
        "shunt": lambda net: pp.create_shunt(net, 5, q_mvar=0.1, name="x3"),
        "impedance": lambda net: pp.create_impedance(net, 5, 6, 0.1, 0.1, 1.0, name="x3"),
        "ward": lambda net: pp.create_ward(net, 5, 0.1, 0.1, 0.1, 0.1, name="x3"),
    }
    return builders[element]


@pytest.mark.parametrize("element", ["trafo3w", "gen", "storage", "shunt", "impedance", "ward"])
def test_unsupported_element_is_refused_by_name(element: str) -> None:
    net = to_pandapower(load_network("ieee33"))
    _with(element)(net)
    with pytest.raises(NetworkError) as exc:
        feeder_from_pandapower(net, "net")
    message = str(exc.value)
    assert "\n" not in message
    assert f"element table {element!r} is not supported" in message and "'x3'" in message


def test_cigre_mv_with_all_der_is_refused_for_its_storage() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net = pn.create_cigre_network_mv(with_der="all")
    with pytest.raises(NetworkError, match=r"element table 'storage' is not supported .*2 in"):
        feeder_from_pandapower(net, "cigre_mv_all")


def test_parallel_transformers_merge_only_when_identical() -> None:
    net = pn.simple_mv_open_ring_net()
    pp.create_transformer(net, 0, 1, net.trafo.std_type.iloc[0], name="twin")
    feeder = feeder_from_pandapower(net, "twins")
    assert len(feeder.trafos) == 1 and feeder.line_names[feeder.trafos.branch[0]].endswith("twin")
    _compare_with_runpp(net, "twins")
    net.trafo.loc[net.trafo.name == "twin", "vk_percent"] *= 1.1
    with pytest.raises(NetworkError) as exc:
        feeder_from_pandapower(net, "twins")
    assert re.search(
        r"meshed: transformer 'twin' is in parallel with .* not identical", str(exc.value)
    )


def test_open_transformer_switch_takes_it_out(tmp_path: Path) -> None:
    net = pn.simple_mv_open_ring_net()
    pp.create_switch(net, bus=0, element=0, et="t", closed=False)
    with pytest.raises(NetworkError, match="disconnected"):
        feeder_from_pandapower(net, "open trafo")
