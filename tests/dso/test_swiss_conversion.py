"""The Swiss-PDGs conversion rules, on a tiny synthetic grid in the dataset's format."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from dso.errors import NetworkError
from dso.networks import feeder_from_pandapower
from scripts.swiss_mv import convert

ROOT = Path(__file__).resolve().parents[2]


def _feature(props: dict, kind: str, coordinates: list) -> dict:
    return {
        "type": "Feature",
        "properties": props,
        "geometry": {"type": kind, "coordinates": coordinates},
    }


def _write_grid(folder: Path, source_voltage: float = 1.0, leaf_voltage: float = 1.0) -> None:
    """Three nodes in a line (slack in the middle), one small load, geojson as the dataset."""

    def node(osmid: str, x: float, dmd: float, source: bool, voltage: float) -> dict:
        props = {"osmid": osmid, "x": x, "y": 0.0, "el_dmd": dmd, "source": source}
        props["voltage"] = voltage
        return _feature(props, "Point", [x, 0.0])

    def edge(u: str, v: str, x0: float, x1: float, ohl: str) -> dict:
        props = {"u": u, "v": v, "length": 0.5, "OHL": ohl, "r": 0.2, "x": 0.1, "b": 0.0}
        props |= {"s_nom": 4.4, "load": 0.0}
        return _feature(props, "LineString", [[x0, 0.0], [x1, 0.0]])

    nodes = [
        node("7", 0.0, 0.0, True, source_voltage),
        node("8", 500.0, 1e-4, False, leaf_voltage),
        node("9", -500.0, 0.0, False, leaf_voltage),
    ]
    edges = [edge("7", "8", 0.0, 500.0, "False"), edge("9", "7", -500.0, 0.0, "True")]
    for name, features in (("0_0_nodes.geojson", nodes), ("0_0_edges.geojson", edges)):
        doc = {"type": "FeatureCollection", "features": features}
        (folder / name).write_text(json.dumps(doc))


def test_conversion_rules(tmp_path: Path) -> None:
    _write_grid(tmp_path)
    conv = convert(tmp_path / "0_0_nodes.geojson", tmp_path / "0_0_edges.geojson", "tiny")
    net = conv.net
    assert list(net.bus.name) == ["7", "8", "9"] and (net.bus.vn_kv == 20.0).all()
    assert net.ext_grid.bus.tolist() == [0]
    line = net.line.iloc[0]
    assert line.r_ohm_per_km == pytest.approx(0.4) and line.x_ohm_per_km == pytest.approx(0.2)
    assert line.max_i_ka == pytest.approx(0.22)  # s_nom / 20 kV
    assert list(net.line.type) == ["cs", "ol"]
    load = net.load.iloc[0]
    assert load.p_mw == pytest.approx(1e-4)
    assert load.q_mvar / load.p_mw == pytest.approx(math.tan(math.acos(0.9)))
    feeder = feeder_from_pandapower(net, "tiny")
    assert feeder.from_bus.tolist() == [0, 0]  # both lines hang from the slack
    assert conv.max_dv_vs_dataset_pu < 1e-6


def test_conversion_refuses_a_grid_that_does_not_reproduce_its_voltages(tmp_path: Path) -> None:
    _write_grid(tmp_path, leaf_voltage=0.99)
    with pytest.raises(NetworkError, match="does not reproduce the dataset voltages"):
        convert(tmp_path / "0_0_nodes.geojson", tmp_path / "0_0_edges.geojson", "tiny")


@pytest.mark.slow  # a fresh interpreter in a subprocess
def test_script_writes_network_and_provenance(tmp_path: Path) -> None:
    _write_grid(tmp_path)
    out = tmp_path / "out"
    args = ["--input-dir", str(tmp_path), "--out-dir", str(out)]
    command = [sys.executable, "-m", "scripts.convert_swiss_mv", *args]
    subprocess.run(command, cwd=ROOT, check=True, capture_output=True, timeout=120)
    note = (out / "SWISS161_SOURCE.md").read_text()
    assert "doi:10.36227/techrxiv.24607662" in note and "sha256" in note
    assert (out / "swiss161.json").stat().st_size > 0
