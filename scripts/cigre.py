"""CIGRE MV benchmark feeder 1 as a radial feeder of its own (``docs/grid.md``).

pandapower's ``create_cigre_network_mv(with_der=False)`` holds two 20 kV feeders below two
110/20 kV transformers, tied by three normally open switches. Feeder 1 alone: buses 1-11,
its lines without the tie lines (the lines behind the open switches S1, S2, S3), the slack
at the MV busbar (bus 1) at the HV grid's setpoint, feeder 2, the HV bus and both
transformers removed. ``scripts/make_cigre_mv_feeder1.py`` writes it to
``dso/data/cigre_mv_feeder1.json``.
"""

from __future__ import annotations

from typing import Any

#: The MV busbar of feeder 1 and the buses of the feeder (pandapower indices).
BUSBAR = 1
FEEDER1_BUSES = tuple(range(1, 12))
#: Slack voltage at the busbar: the setpoint of the benchmark's HV ext_grid.
VM_SLACK_PU = 1.03


def cigre_mv_feeder1() -> Any:
    """The pandapower network of CIGRE MV feeder 1 (see the module docstring)."""
    import pandapower as pp
    import pandapower.networks as pn
    import pandapower.toolbox as tb

    net = pn.create_cigre_network_mv(with_der=False)
    switches = net.switch
    ties = switches[(switches.et == "l") & ~switches.closed.astype(bool)].element.unique()
    tb.drop_lines(net, ties)
    tb.drop_buses(net, [b for b in net.bus.index if b not in FEEDER1_BUSES])
    net.switch = net.switch.iloc[0:0]
    pp.create_ext_grid(net, BUSBAR, vm_pu=VM_SLACK_PU, name="MV busbar of feeder 1")
    net.name = "CIGRE MV feeder 1"
    return net
