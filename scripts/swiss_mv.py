"""Conversion of a Swiss-PDGs MV grid (geojson nodes and edges) into a pandapower network.

Rules (see ``dso/data/SWISS161_SOURCE.md``): one bus per node at 20 kV with its LV95
coordinates; the ``source`` node is the slack at its ``voltage``; one line per edge from the
whole-line ``r``, ``x`` (ohm) and ``b`` (S) over its ``length`` (km), rated
``max_i_ka = s_nom / 20 kV`` (the dataset derived ``s_nom`` as 20 kV times the rated current
of the matching pandapower standard type, so this is the cable's or conductor's thermal
rating); one load per node with ``el_dmd > 0`` (MW) at power factor 0.9 lagging.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dso.errors import NetworkError

VN_KV = 20.0
F_HZ = 50.0
LOAD_POWER_FACTOR = 0.9
#: Largest accepted difference between pandapower's and the dataset's node voltages (the
#: dataset's own power flow agrees to 1.03e-6 pu, quoted as 1.0e-6 in the input's SOURCE.md).
VOLTAGE_CHECK_TOL_PU = 2e-6
#: pandapower runpp tolerance of the check (it does not converge much tighter on this grid).
CHECK_TOLERANCE_MVA = 1e-9


@dataclass(frozen=True)
class Conversion:
    """A converted grid and the figures that document it."""

    net: Any  # pandapower network
    n_load: int
    load_mw: float
    max_dv_vs_dataset_pu: float  # |our runpp vm - dataset voltage|, max over nodes
    load_ratio_median: float  # median over edges of dataset 'load' / our loading fraction


def sha256(path: Path) -> str:
    """Hex sha256 of a file."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _features(path: Path) -> list[dict[str, Any]]:
    try:
        return json.loads(path.read_text())["features"]
    except (OSError, ValueError, KeyError) as exc:
        raise NetworkError(f"{path} is not a geojson FeatureCollection: {exc}") from exc


def convert(nodes_path: Path, edges_path: Path, name: str) -> Conversion:
    """Build the pandapower network from the two geojson files and check it against them."""
    import pandapower as pp

    nodes = [f["properties"] for f in _features(nodes_path)]
    edges = _features(edges_path)
    sources = [n for n in nodes if n["source"]]
    if len(sources) != 1:
        raise NetworkError(f"{nodes_path}: {len(sources)} source nodes, expected exactly one")
    net = pp.create_empty_network(name=name, f_hz=F_HZ, sn_mva=1.0)
    bus = {
        n["osmid"]: pp.create_bus(net, vn_kv=VN_KV, name=n["osmid"], geodata=(n["x"], n["y"]))
        for n in nodes
    }
    pp.create_ext_grid(net, bus[sources[0]["osmid"]], vm_pu=float(sources[0]["voltage"]))
    for feature in edges:
        e = feature["properties"]
        if e["u"] not in bus or e["v"] not in bus:
            raise NetworkError(f"{edges_path}: edge {e['u']}-{e['v']} ends on an unknown node")
        km = float(e["length"])
        pp.create_line_from_parameters(
            net,
            bus[e["u"]],
            bus[e["v"]],
            length_km=km,
            r_ohm_per_km=float(e["r"]) / km,
            x_ohm_per_km=float(e["x"]) / km,
            c_nf_per_km=float(e["b"]) / (2 * math.pi * F_HZ) * 1e9 / km,
            max_i_ka=float(e["s_nom"]) / VN_KV,
            name=f"{e['u']}-{e['v']}",
            type="ol" if e["OHL"] == "True" else "cs",
            geodata=[tuple(xy) for xy in feature["geometry"]["coordinates"]],
        )
    tan_phi = math.tan(math.acos(LOAD_POWER_FACTOR))
    loads = [n for n in nodes if n["el_dmd"] > 0]
    for n in loads:
        p_mw = float(n["el_dmd"])
        pp.create_load(net, bus[n["osmid"]], p_mw=p_mw, q_mvar=p_mw * tan_phi, name=n["osmid"])
    pp.runpp(net, numba=False, tolerance_mva=CHECK_TOLERANCE_MVA)
    vm_dataset = np.array([float(n["voltage"]) for n in nodes])
    dv = float(np.abs(net.res_bus.vm_pu.to_numpy() - vm_dataset).max())
    loading_dataset = np.array([float(f["properties"]["load"]) for f in edges])
    ours = net.res_line.loading_percent.to_numpy() / 100
    used = ours > 0
    ratio = float(np.median(loading_dataset[used] / ours[used])) if used.any() else math.nan
    if dv > VOLTAGE_CHECK_TOL_PU:
        raise NetworkError(
            f"converted grid does not reproduce the dataset voltages: max |dv| = {dv:.3g} pu "
            f"> {VOLTAGE_CHECK_TOL_PU:g}"
        )
    return Conversion(net, len(loads), sum(float(n["el_dmd"]) for n in loads), dv, ratio)


def write_json(net: Any, path: Path) -> None:
    """Save a pandapower network as pandapower JSON."""
    import pandapower as pp

    path.parent.mkdir(parents=True, exist_ok=True)
    pp.to_json(net, str(path))
