"""Bus coordinates from the network data, and None where the data has none."""

import json

import numpy as np
import pandapower as pp
import pandapower.networks as pn

from dso.layout import bus_coordinates
from dso.networks import load_network


def test_coordinates_of_the_builtin_feeders_come_from_their_data() -> None:
    xy = bus_coordinates("ieee33")
    net = pn.case33bw()
    assert xy is not None and xy.shape == (33, 2)
    np.testing.assert_allclose(xy[5], json.loads(net.bus.geo.iloc[5])["coordinates"])
    swiss = bus_coordinates("swiss161")
    assert swiss is not None and swiss.shape == (load_network("swiss161").n_bus, 2)
    assert len(np.unique(swiss, axis=0)) == len(swiss)  # distinct places


def test_a_network_without_coordinates_gives_none(tmp_path) -> None:
    net = pn.case33bw()
    net.bus["geo"] = None
    path = tmp_path / "nogeo.json"
    pp.to_json(net, str(path))
    assert bus_coordinates(str(path)) is None
