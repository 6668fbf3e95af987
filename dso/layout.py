"""Where to draw a feeder's buses: their coordinates in the network data, when it has them.

Kept apart from :mod:`dso.networks` (whose source keys the publication cache): drawing
does not change what the DSO computes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from dso.networks import DATA_DIR, NETWORK_FILES, load_network


def _pandapower_net(key: str) -> Any:
    """The pandapower network behind a name :func:`load_network` has accepted."""
    import pandapower as pp
    import pandapower.networks as pn

    if key in NETWORK_FILES:
        file = NETWORK_FILES[key]
        return pn.case33bw() if file is None else pp.from_json(str(DATA_DIR / file))
    return pp.from_json(str(Path(key)))


def bus_coordinates(name_or_path: str) -> np.ndarray | None:
    """Each bus's drawing coordinates ``(n_bus, 2)`` from the network data, in feeder order.

    None when the data lacks coordinates for some bus (an open line end is a bus of its own
    without any): draw a layout of the topology instead. Raises
    :class:`dso.errors.NetworkError` as :func:`load_network` does.
    """
    key = str(name_or_path)
    feeder = load_network(key)
    net = _pandapower_net(key)
    buses = net.bus[net.bus["in_service"].astype(bool)] if "in_service" in net.bus else net.bus
    if feeder.n_bus != len(buses):
        return None
    if "geo" in buses:
        if buses["geo"].isna().any():
            return None
        xy = [json.loads(geo)["coordinates"] for geo in buses["geo"]]
    elif "bus_geodata" in net and buses.index.isin(net.bus_geodata.index).all():
        xy = net.bus_geodata.loc[buses.index, ["x", "y"]].to_numpy().tolist()
    else:
        return None
    coords = np.array(xy, dtype=float)
    return coords if coords.shape == (feeder.n_bus, 2) and np.isfinite(coords).all() else None
