"""Feeders: built-in data, pandapower JSON loading, and the refusals with one-line errors."""

from __future__ import annotations

import dataclasses
import hashlib
import math
import re
from pathlib import Path

import numpy as np
import pandapower as pp
import pytest

from dso.errors import NetworkError
from dso.networks import DATA_DIR, Feeder, available_networks, load_network, to_pandapower


def test_available_networks() -> None:
    assert available_networks() == ("ieee33", "swiss161")


def test_ieee33_is_case33bw() -> None:
    f = load_network("ieee33")
    assert (f.n_bus, f.n_line, f.slack_bus, f.vn_kv) == (33, 32, 0, 12.66)
    assert f.load_p_kw.sum() == pytest.approx(3715.0)
    assert f.load_q_kvar.sum() == pytest.approx(2300.0)
    assert np.count_nonzero(f.load_p_kw) == 32


def test_swiss161_matches_its_source() -> None:
    f = load_network("swiss161")
    assert (f.n_bus, f.n_line, f.vn_kv) == (162, 161, 20.0)
    assert f.bus_names[f.slack_bus] == "95"
    loaded = f.load_p_kw > 0
    assert loaded.sum() == 78
    assert f.load_p_kw.sum() == pytest.approx(20179.44, abs=0.01)
    pf = f.load_p_kw[loaded] / np.hypot(f.load_p_kw[loaded], f.load_q_kvar[loaded])
    np.testing.assert_allclose(pf, 0.9)  # power factor 0.9 lagging
    assert set(np.round(f.i_max_ka * 20.0, 2)) == {4.4, 25.52, 7.24, 4.2, 25.8, 7.0}  # s_nom
    assert (f.b_us > 0).all()


def test_swiss161_file_matches_its_provenance_note() -> None:
    note = (DATA_DIR / "SWISS161_SOURCE.md").read_text()
    digest = hashlib.sha256((DATA_DIR / "swiss161.json").read_bytes()).hexdigest()
    assert f"Output `swiss161.json` sha256: `{digest}`" in note


def test_lines_are_oriented_parent_to_child(feeder: Feeder) -> None:
    depth = np.full(feeder.n_bus, -1)
    depth[feeder.slack_bus] = 0
    for line in feeder.lines_root_first:
        assert depth[feeder.from_bus[line]] >= 0
        depth[feeder.to_bus[line]] = depth[feeder.from_bus[line]] + 1
    assert (depth >= 0).all()
    assert sorted(feeder.to_bus.tolist()) == sorted(set(range(feeder.n_bus)) - {feeder.slack_bus})


def test_feeder_arrays_are_read_only(feeder: Feeder) -> None:
    with pytest.raises(ValueError):
        feeder.r_ohm[0] = 1.0
    p, _ = feeder.base_injection()
    p[0] = 1.0  # a copy
    assert feeder.load_p_kw[0] != -1.0 or feeder.load_p_kw[0] == 0


def test_pandapower_json_round_trip(tmp_path: Path, feeder: Feeder) -> None:
    path = tmp_path / "copy.json"
    pp.to_json(to_pandapower(feeder), str(path))
    back = load_network(str(path))
    assert back.name == "copy" and back.n_bus == feeder.n_bus
    for field in ("from_bus", "to_bus", "r_ohm", "x_ohm", "b_us", "i_max_ka", "load_p_kw"):
        np.testing.assert_allclose(getattr(back, field), getattr(feeder, field), rtol=1e-9)
    assert back.bus_names == feeder.bus_names


def _one_line(exc: pytest.ExceptionInfo[NetworkError]) -> str:
    message = str(exc.value)
    assert "\n" not in message
    return message


def _saved(tmp_path: Path, net: object) -> str:
    path = tmp_path / "net.json"
    pp.to_json(net, str(path))
    return str(path)


def test_unknown_name_is_refused() -> None:
    with pytest.raises(NetworkError) as exc:
        load_network("ieee34")
    assert re.search(r"unknown network 'ieee34'.*ieee33, swiss161", _one_line(exc))


def test_meshed_network_is_refused(tmp_path: Path) -> None:
    net = to_pandapower(load_network("ieee33"))
    pp.create_line_from_parameters(net, 20, 7, 1.0, 2.0, 2.0, 0.0, 1.0, name="tie 21-8")
    with pytest.raises(NetworkError) as exc:
        load_network(_saved(tmp_path, net))
    assert re.search(r"network net is meshed: line '\w+' closes a loop", _one_line(exc))


def test_out_of_service_tie_lines_of_case33bw_are_ignored() -> None:
    assert load_network("ieee33").n_line == 32  # case33bw has 37 lines, 5 open ties


def test_disconnected_network_is_refused(tmp_path: Path) -> None:
    net = to_pandapower(load_network("ieee33"))
    net.line.loc[net.line.to_bus == 18, "in_service"] = False
    with pytest.raises(NetworkError) as exc:
        load_network(_saved(tmp_path, net))
    assert "disconnected" in _one_line(exc) and "'18'" in str(exc.value)


def test_missing_slack_is_refused(tmp_path: Path) -> None:
    net = to_pandapower(load_network("ieee33"))
    net.ext_grid["in_service"] = False
    with pytest.raises(NetworkError) as exc:
        load_network(_saved(tmp_path, net))
    assert "no slack" in _one_line(exc)


def test_file_that_is_not_a_network_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text("{not json")
    with pytest.raises(NetworkError) as exc:
        load_network(str(path))
    assert "not a pandapower JSON network" in _one_line(exc)


def test_hand_built_feeder_is_validated_and_oriented() -> None:
    f = Feeder(
        name="tiny",
        vn_kv=10.0,
        n_bus=3,
        slack_bus=1,
        vm_slack_pu=1.0,
        bus_names=("a", "b", "c"),
        from_bus=np.array([0, 2]),
        to_bus=np.array([1, 1]),
        r_ohm=np.array([1.0, 1.0]),
        x_ohm=np.array([1.0, 1.0]),
        i_max_ka=np.array([0.1, 0.1]),
        load_p_kw=np.array([10.0, 0.0, 5.0]),
        load_q_kvar=np.zeros(3),
    )
    assert f.from_bus.tolist() == [1, 1] and f.to_bus.tolist() == [0, 2]
    assert f.line_names == ("line 0", "line 1") and (f.b_us == 0).all()
    assert f.branch_of_bus.tolist() == [0, -1, 1]
    with pytest.raises(NetworkError, match="slack_bus=3"):
        dataclasses.replace(f, slack_bus=3)


def test_branch_of_bus_groups_the_substation_branches() -> None:
    f = load_network("swiss161")
    assert f.branch_of_bus[f.slack_bus] == -1
    assert sorted(np.bincount(f.branch_of_bus[f.branch_of_bus >= 0]).tolist()) == [7, 154]
    assert math.isclose(load_network("ieee33").branch_of_bus.max(), 0)


def test_line_open_at_one_end_keeps_its_charging(tmp_path: Path) -> None:
    """IEEE-33 with tie 21-8 in service (2000 nF/km), open at its far end: loss as runpp."""
    from dso.powerflow import RadialPowerFlow

    net = pp.networks.case33bw()
    tie = int(net.line.index[(net.line.from_bus == 20) & (net.line.to_bus == 7)][0])
    net.line.loc[tie, ["in_service", "c_nf_per_km"]] = [True, 2000.0]
    pp.create_switch(net, bus=7, element=tie, et="l", closed=False)
    feeder = load_network(_saved(tmp_path, net))
    assert (feeder.n_bus, feeder.n_line) == (34, 33)  # the open end is a bus of its own
    assert feeder.bus_names[-1].startswith("open end of line")
    result = RadialPowerFlow(feeder).solve(*feeder.base_injection())
    pp.runpp(net)
    assert result.loss_kw == pytest.approx(net.res_line.pl_mw.sum() * 1000, abs=0.01)
    # Open at both ends: the line is out, and its charging no longer lowers the loss.
    pp.create_switch(net, bus=20, element=tie, et="l", closed=False)
    dead = load_network(_saved(tmp_path, net))
    assert dead.n_line == 32
    dead_loss_kw = RadialPowerFlow(dead).solve(*dead.base_injection()).loss_kw
    assert dead_loss_kw - result.loss_kw > 0.3  # 202.68 against 202.20 kW


@pytest.mark.parametrize("name", ["missing.json", "no/such/net"])
def test_missing_network_file_is_file_not_found(tmp_path: Path, name: str) -> None:
    with pytest.raises(NetworkError) as exc:
        load_network(str(tmp_path / name))
    assert "file not found" in _one_line(exc) and "unknown network" not in _one_line(exc)
