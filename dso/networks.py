"""Radial distribution feeders: the :class:`Feeder` data object and where feeders come from.

A feeder is one slack (substation) bus and a radial tree of branches: pi-model lines and
two-winding transformers (``dso/trafo.py``) between voltage levels. Feeders come from
pandapower: ``ieee33`` is pandapower's ``case33bw`` (Baran & Wu), ``swiss161`` is the
project's own pandapower JSON converted from a real-topology Swiss MV grid
(``dso/data/SWISS161_SOURCE.md``), and any pandapower JSON file can be loaded by path.
Sign convention everywhere in ``dso``: injection positive (generation > 0, load < 0).
"""

from __future__ import annotations

import functools
import math
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dso.errors import NetworkError
from dso.trafo import (
    TrafoRows,
    Transformers,
    add_pandapower_trafos,
    merge_parallel,
    read_trafos,
)

DATA_DIR = Path(__file__).resolve().parent / "data"
#: Built-in feeders: name -> pandapower JSON file in ``DATA_DIR`` (None: pandapower's case33bw).
NETWORK_FILES: dict[str, str | None] = {"ieee33": None, "swiss161": "swiss161.json"}
#: pandapower element tables this radial model does not represent; in service they are refused.
UNSUPPORTED_TABLES = (
    "gen",
    "shunt",
    "storage",
    "motor",
    "asymmetric_load",
    "asymmetric_sgen",
    "trafo3w",
    "impedance",
    "ward",
    "xward",
    "dcline",
    "svc",
    "ssc",
    "tcsc",
    "vsc",
    "bus_dc",
    "line_dc",
    "source_dc",
    "load_dc",
    "vsc_stacked",
    "vsc_bipolar",
)
#: Load columns that make a pandapower load voltage dependent (refused: loads are constant P/Q).
ZIP_COLUMNS = tuple(
    f"const_{kind}{part}_percent" for kind in ("z", "i") for part in ("", "_p", "_q")
)
F_HZ = 50.0
KW_PER_MW = 1000.0
US_PER_S = 1e6


def _frozen(values: Any, dtype: type, name: str, shape: tuple[int, ...]) -> np.ndarray:
    arr: np.ndarray = np.array(values, dtype=dtype)
    if arr.shape != shape:
        raise NetworkError(f"feeder field {name} has shape {arr.shape}, expected {shape}")
    if not np.isfinite(arr).all():
        raise NetworkError(f"feeder field {name} has non-finite values")
    arr.setflags(write=False)
    return arr


@dataclass(frozen=True, eq=False)
class Feeder:
    """A radial feeder (all arrays read-only).

    Branches ("lines": ``from_bus``, ``to_bus``, ``r_ohm``, ..., ``line_names``) are lines
    and transformers; they are oriented on construction so that ``from_bus`` is the parent
    (slack side) and ``to_bus`` the child; a meshed or disconnected topology raises
    :class:`NetworkError`. ``b_us`` is each line's whole shunt susceptance (pi model: half
    at each end; 0 for a transformer). ``trafos`` says which branches are transformers and
    holds the rest of their model; a transformer's ``r_ohm``/``x_ohm`` and ``i_max_ka`` are
    at its low-voltage side. ``vn_kv`` is the slack bus's voltage level, ``bus_vn_kv`` every
    bus's (its per-unit base; default ``vn_kv``). Loads are constant power;
    ``load_p_kw``/``load_q_kvar`` are the base-case consumption, ``gen_p_kw``/``gen_q_kvar``
    the base-case static generation and ``gen_kwp`` its rated power, per bus. A load or
    generator at the slack bus is fed directly by the grid.
    """

    name: str
    vn_kv: float
    n_bus: int
    slack_bus: int
    vm_slack_pu: float
    bus_names: tuple[str, ...]
    from_bus: np.ndarray
    to_bus: np.ndarray
    r_ohm: np.ndarray
    x_ohm: np.ndarray
    i_max_ka: np.ndarray
    load_p_kw: np.ndarray
    load_q_kvar: np.ndarray
    #: None (the default) is read as no shunt: zeros, set in ``__post_init__``.
    b_us: np.ndarray = None  # type: ignore[assignment]
    line_names: tuple[str, ...] = ()
    va_slack_deg: float = 0.0
    bus_vn_kv: np.ndarray = None  # type: ignore[assignment]
    gen_p_kw: np.ndarray = None  # type: ignore[assignment]
    gen_q_kvar: np.ndarray = None  # type: ignore[assignment]
    gen_kwp: np.ndarray = None  # type: ignore[assignment]
    trafos: Transformers = field(default_factory=Transformers.none)
    _root_first: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        n, n_line = self.n_bus, len(self.from_bus)
        if not 0 <= self.slack_bus < n:
            raise NetworkError(f"feeder {self.name}: slack_bus={self.slack_bus} not in 0..{n - 1}")
        if len(self.bus_names) != n:
            raise NetworkError(f"feeder {self.name}: {len(self.bus_names)} bus_names for {n} buses")
        set_ = functools.partial(object.__setattr__, self)
        set_("line_names", tuple(self.line_names or (f"line {i}" for i in range(n_line))))
        set_("b_us", np.zeros(n_line) if self.b_us is None else self.b_us)
        for name in ("r_ohm", "x_ohm", "i_max_ka", "b_us"):
            set_(name, _frozen(getattr(self, name), float, name, (n_line,)))
        set_("bus_vn_kv", np.full(n, self.vn_kv) if self.bus_vn_kv is None else self.bus_vn_kv)
        for name in ("gen_p_kw", "gen_q_kvar", "gen_kwp"):
            set_(name, np.zeros(n) if getattr(self, name) is None else getattr(self, name))
        for name in ("load_p_kw", "load_q_kvar", "bus_vn_kv", "gen_p_kw", "gen_q_kvar", "gen_kwp"):
            set_(name, _frozen(getattr(self, name), float, name, (n,)))
        if not (self.bus_vn_kv > 0).all():
            raise NetworkError(f"feeder {self.name}: bus_vn_kv must be > 0")
        if len(self.line_names) != n_line:
            raise NetworkError(
                f"feeder {self.name}: {len(self.line_names)} line_names for {n_line} lines"
            )
        if np.any(np.hypot(self.r_ohm, self.x_ohm) <= 0):
            bad = int(np.flatnonzero(np.hypot(self.r_ohm, self.x_ohm) <= 0)[0])
            raise NetworkError(
                f"feeder {self.name}: line {self.line_names[bad]!r} has zero impedance"
            )
        if np.any(self.i_max_ka <= 0):
            bad = int(np.flatnonzero(self.i_max_ka <= 0)[0])
            raise NetworkError(
                f"feeder {self.name}: line {self.line_names[bad]!r} has i_max_ka <= 0"
            )
        parent, child, order = _orient_tree(
            n,
            self.slack_bus,
            np.asarray(self.from_bus),
            np.asarray(self.to_bus),
            self.name,
            self.bus_names,
            self.line_names,
        )
        set_("from_bus", _frozen(parent, np.int64, "from_bus", (n_line,)))
        set_("to_bus", _frozen(child, np.int64, "to_bus", (n_line,)))
        set_("_root_first", _frozen(order, np.int64, "line order", (n_line,)))
        t = self.trafos
        if len(t) and not (
            ((t.branch >= 0) & (t.branch < n_line)).all()
            and ((self.from_bus[t.branch] == t.hv_bus) | (self.to_bus[t.branch] == t.hv_bus)).all()
        ):
            raise NetworkError(f"feeder {self.name}: a transformer is not one of its branches")
        is_line = np.ones(n_line, dtype=bool)
        is_line[t.branch] = False
        ends = self.bus_vn_kv[self.from_bus] != self.bus_vn_kv[self.to_bus]
        if (ends & is_line).any():
            bad = int(np.flatnonzero(ends & is_line)[0])
            raise NetworkError(
                f"feeder {self.name}: line {self.line_names[bad]!r} joins buses of different "
                f"voltage levels (a transformer is required)"
            )

    @property
    def n_line(self) -> int:
        """Number of lines (``n_bus - 1`` for a radial feeder)."""
        return len(self.from_bus)

    @property
    def lines_root_first(self) -> np.ndarray:
        """Line indices so that every line comes after the line feeding its parent bus."""
        return self._root_first

    @functools.cached_property
    def branch_of_bus(self) -> np.ndarray:
        """Per bus, the number of the slack-adjacent line whose subtree holds it (slack: -1).

        With the slack voltage fixed, buses of different branches do not influence each
        other: a power flow decouples into one independent problem per branch.
        """
        branch = np.full(self.n_bus, -1)
        roots = 0
        for line in self.lines_root_first:
            parent, child = self.from_bus[line], self.to_bus[line]
            if parent == self.slack_bus:
                branch[child], roots = roots, roots + 1
            else:
                branch[child] = branch[parent]
        branch.setflags(write=False)
        return branch

    def branch_label(self, line: int) -> str:
        """``"line NAME"`` or ``"transformer NAME"`` of branch ``line``."""
        kind = "transformer" if line in self.trafos.branch else "line"
        return f"{kind} {self.line_names[line]}"

    def base_injection(self) -> tuple[np.ndarray, np.ndarray]:
        """Base-case bus injections ``(p_kw, q_kvar)``: generation minus load."""
        return self.gen_p_kw - self.load_p_kw, self.gen_q_kvar - self.load_q_kvar


def _orient_tree(
    n_bus: int,
    slack: int,
    from_bus: np.ndarray,
    to_bus: np.ndarray,
    name: str,
    bus_names: tuple[str, ...],
    line_names: tuple[str, ...],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Parent and child bus of every line and a root-first line order (breadth first).

    Raises :class:`NetworkError` naming a line that closes a loop or a bus not reached.
    """
    if len(from_bus) != len(to_bus):
        raise NetworkError(f"feeder {name}: {len(from_bus)} from_bus but {len(to_bus)} to_bus")
    ends = np.concatenate([from_bus, to_bus])
    if ends.size and (ends.min() < 0 or ends.max() >= n_bus):
        raise NetworkError(f"feeder {name}: a line end is outside bus indices 0..{n_bus - 1}")
    adjacent: list[list[tuple[int, int]]] = [[] for _ in range(n_bus)]
    for line, (a, b) in enumerate(zip(from_bus.tolist(), to_bus.tolist(), strict=True)):
        adjacent[a].append((line, b))
        adjacent[b].append((line, a))
    parent = np.full(len(from_bus), -1)
    child = np.full(len(from_bus), -1)
    seen = np.zeros(n_bus, dtype=bool)
    seen[slack] = True
    order: list[int] = []
    queue = deque([slack])
    while queue:
        bus = queue.popleft()
        for line, other in adjacent[bus]:
            if parent[line] >= 0:
                continue
            if seen[other]:
                raise NetworkError(
                    f"network {name} is meshed: line {line_names[line]!r} closes a loop "
                    f"(a radial feeder is required)"
                )
            parent[line], child[line] = bus, other
            seen[other] = True
            order.append(line)
            queue.append(other)
    if not seen.all():
        lost = int(np.flatnonzero(~seen)[0])
        raise NetworkError(
            f"network {name} is disconnected: bus {bus_names[lost]!r} (and {int((~seen).sum()) - 1}"
            f" more) not connected to the slack bus {bus_names[slack]!r}"
        )
    return parent, child, np.array(order, dtype=np.int64)


def available_networks() -> tuple[str, ...]:
    """Names :func:`load_network` accepts besides a pandapower JSON path."""
    return tuple(NETWORK_FILES)


def load_network(name_or_path: str) -> Feeder:
    """The feeder ``"ieee33"``, ``"swiss161"``, or one read from a pandapower JSON file.

    Raises :class:`NetworkError` for an unknown name or a network this model cannot represent
    (meshed, disconnected, no slack, several voltage levels, transformers, ...).
    """
    key = str(name_or_path)
    if key in NETWORK_FILES:
        return _builtin(key)
    path = Path(key)
    if not path.is_file():
        if path.suffix or len(path.parts) > 1:  # meant as a file
            what = "is a folder, not a file" if path.is_dir() else "file not found"
            raise NetworkError(f"network file {key!r}: {what}")
        raise NetworkError(
            f"unknown network {key!r}: expected one of {', '.join(NETWORK_FILES)} "
            f"or the path of a pandapower JSON file"
        )
    import pandapower as pp

    try:
        net = pp.from_json(str(path))
    except Exception as exc:  # pandapower raises many kinds on a bad file
        raise NetworkError(f"network file {key!r} is not a pandapower JSON network: {exc}") from exc
    return feeder_from_pandapower(net, path.stem)


@functools.cache
def _builtin(name: str) -> Feeder:
    import pandapower as pp
    import pandapower.networks as pn

    file = NETWORK_FILES[name]
    net = pn.case33bw() if file is None else pp.from_json(str(DATA_DIR / file))
    return feeder_from_pandapower(net, name)


def _in_service(table: Any) -> Any:
    return table[table["in_service"].astype(bool)] if "in_service" in table else table


def _names(table: Any) -> tuple[str, ...]:
    """Element names, the pandapower index where a name is missing."""
    names = table["name"] if "name" in table else [None] * len(table)
    return tuple(
        str(idx) if name is None or (isinstance(name, float) and math.isnan(name)) else str(name)
        for idx, name in zip(table.index, names, strict=True)
    )


def feeder_from_pandapower(net: Any, name: str) -> Feeder:
    """A :class:`Feeder` from a pandapower network (in-service elements only).

    Supported (``docs/grid.md``): buses at any voltage levels, lines (pi model,
    ``g_us_per_km`` = 0), two-winding transformers (T model, ratio taps), constant power
    loads, static generators (kept apart from the loads: ``gen_*``), one ext_grid (the
    slack), closed bus-bus switches (their buses are fused), identical transformers in
    parallel (one branch), and switches that open lines (a line open at one end keeps its
    charging: its open end becomes a bus of its own) or transformers (taken out). Anything
    else in service raises :class:`NetworkError`.
    """
    for table in UNSUPPORTED_TABLES:
        if table in net and len(_in_service(net[table])):
            raise NetworkError(
                f"network {name}: element table {table!r} is not supported by the radial "
                f"feeder model ({len(_in_service(net[table]))} in service, first "
                f"{_names(_in_service(net[table]))[0]!r})"
            )
    buses = _in_service(net.bus)
    grids = _in_service(net.ext_grid)
    grids = grids[grids.bus.isin(buses.index)]
    if len(grids) != 1:
        what = "no slack (no in-service ext_grid)" if len(grids) == 0 else f"{len(grids)} slacks"
        raise NetworkError(f"network {name} has {what}: exactly one ext_grid is required")
    fused = _fused_buses(net, buses, name)
    kept = buses.loc[sorted(set(fused.values()))]
    position = {bus: kept.index.get_loc(rep) for bus, rep in fused.items()}
    lines = _in_service(net.line)
    lines = lines[lines.from_bus.isin(position) & lines.to_bus.isin(position)]
    lines, open_ends = _open_line_ends(net, lines, name)
    if (lines.g_us_per_km != 0).any():
        raise NetworkError(
            f"network {name}: line shunt conductance g_us_per_km != 0 is not supported"
        )
    loads = _in_service(net.load)
    for col in ZIP_COLUMNS:
        if col in loads and (loads[col].fillna(0) != 0).any():
            raise NetworkError(
                f"network {name}: voltage-dependent loads ({col} != 0) are not supported"
            )
    n = len(kept) + len(open_ends)
    load_p, load_q = _bus_sums(loads, position, n)
    sgens = _in_service(net.sgen)
    sgens = sgens[sgens.bus.isin(position)]
    if (sgens.p_mw < 0).any():
        raise NetworkError(
            f"network {name}: static generator {_names(sgens[sgens.p_mw < 0])[0]!r} has "
            "p_mw < 0 (a consumer: model it as a load)"
        )
    gen_p, gen_q = _bus_sums(sgens, position, n)
    rated = sgens.sn_mva if "sn_mva" in sgens else sgens.p_mw * np.nan
    rated = rated.where(rated > 0, sgens.p_mw * sgens.scaling)
    gen_kwp = np.zeros(n)
    np.add.at(gen_kwp, sgens.bus.map(position).to_numpy(int), rated.to_numpy(float) * KW_PER_MW)
    from_bus = lines.from_bus.map(position).to_numpy(dtype=int)
    to_bus = lines.to_bus.map(position).to_numpy(dtype=int)
    for k, (line, end) in enumerate(open_ends):  # the open end becomes a bus of its own
        row = lines.index.get_loc(line)
        (from_bus if end == "from" else to_bus)[row] = len(kept) + k
    length = lines.length_km.to_numpy(float)
    parallel = lines.parallel.to_numpy(float)
    c_f = lines.c_nf_per_km.to_numpy(float) * 1e-9 * length * parallel
    trafos = _trafo_branches(net, position, name)
    grid = grids.iloc[0]
    bus_vn_kv = np.concatenate(
        [
            kept.vn_kv.to_numpy(float),
            [float(net.bus.vn_kv[lines.loc[ln].from_bus]) for ln, _ in open_ends],
        ]
    )
    slack = position[int(grid.bus)]
    return Feeder(
        name=name,
        vn_kv=float(bus_vn_kv[slack]),
        n_bus=n,
        slack_bus=slack,
        vm_slack_pu=float(grid.vm_pu),
        va_slack_deg=float(grid.va_degree),
        bus_names=_names(kept)
        + tuple(f"open end of line {_names(lines.loc[[line]])[0]}" for line, _ in open_ends),
        from_bus=np.concatenate([from_bus, trafos.hv_bus]),
        to_bus=np.concatenate([to_bus, trafos.lv_bus]),
        r_ohm=np.concatenate(
            [lines.r_ohm_per_km.to_numpy(float) * length / parallel, trafos.r_ohm]
        ),
        x_ohm=np.concatenate(
            [lines.x_ohm_per_km.to_numpy(float) * length / parallel, trafos.x_ohm]
        ),
        b_us=np.concatenate(
            [2 * math.pi * float(net.f_hz) * c_f * US_PER_S, np.zeros(len(trafos.names))]
        ),
        i_max_ka=np.concatenate(
            [
                lines.max_i_ka.to_numpy(float) * lines.df.to_numpy(float) * parallel,
                trafos.i_max_lv_ka,
            ]
        ),
        load_p_kw=load_p,
        load_q_kvar=load_q,
        line_names=_names(lines) + trafos.names,
        bus_vn_kv=bus_vn_kv,
        gen_p_kw=gen_p,
        gen_q_kvar=gen_q,
        gen_kwp=gen_kwp,
        trafos=Transformers(
            branch=len(lines) + np.arange(len(trafos.names)), hv_bus=trafos.hv_bus, **trafos.values
        ),
    )


def _open_line_ends(net: Any, lines: Any, name: str) -> tuple[Any, list[tuple[int, str]]]:
    """Lines without those open at both ends; ``(line, "from"|"to")`` of each open end.

    A line open at one end only stays energised from its closed end, as in pandapower: its
    charging current flows. It is kept, its open end on a bus of its own (no load).
    """
    switches = net.switch if "switch" in net else None
    if switches is None or not len(switches):
        return lines, []
    opened = switches[(switches.et == "l") & ~switches.closed.astype(bool)]
    opened = opened[opened.element.isin(lines.index)]
    ends: dict[int, set[str]] = {}
    for line, bus in zip(opened.element.astype(int), opened.bus.astype(int), strict=True):
        row = lines.loc[line]
        side = "from" if bus == int(row.from_bus) else "to" if bus == int(row.to_bus) else None
        if side is not None:
            ends.setdefault(line, set()).add(side)
    dead = [line for line, sides in ends.items() if len(sides) == 2]
    one_end = sorted((line, sides.pop()) for line, sides in ends.items() if len(sides) == 1)
    return lines[~lines.index.isin(dead)], one_end


def _bus_sums(table: Any, position: dict, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Per feeder bus, the summed ``p_mw``/``q_mvar`` times ``scaling`` of a load or sgen
    table (kW, kvar)."""
    table = table[table.bus.isin(position)]
    idx = table.bus.map(position).to_numpy(dtype=int)
    p, q = np.zeros(n), np.zeros(n)
    np.add.at(p, idx, (table.p_mw * table.scaling).to_numpy(float) * KW_PER_MW)
    np.add.at(q, idx, (table.q_mvar * table.scaling).to_numpy(float) * KW_PER_MW)
    return p, q


def _fused_buses(net: Any, buses: Any, name: str) -> dict[int, int]:
    """Each in-service pandapower bus -> the bus it is fused with (the lowest index of its
    group of buses joined by closed bus-bus switches, as pandapower fuses them)."""
    rep = {int(b): int(b) for b in buses.index}

    def find(bus: int) -> int:
        while rep[bus] != bus:
            bus = rep[bus]
        return bus

    switches = net.switch if "switch" in net else None
    if switches is not None and len(switches):
        closed = switches[(switches.et == "b") & switches.closed.astype(bool)]
        if "z_ohm" in closed and (closed.z_ohm.fillna(0) > 0).any():
            raise NetworkError(
                f"network {name}: switch {_names(closed[closed.z_ohm > 0])[0]!r} is a closed "
                "bus-bus switch with z_ohm > 0 (an impedance: not supported)"
            )
        for a, b in zip(closed.bus.astype(int), closed.element.astype(int), strict=True):
            if a in rep and b in rep:
                ra, rb = find(a), find(b)
                if float(buses.vn_kv[a]) != float(buses.vn_kv[b]):
                    raise NetworkError(
                        f"network {name}: a closed bus-bus switch joins buses {a} and {b} of "
                        "different voltage levels"
                    )
                rep[max(ra, rb)] = min(ra, rb)
    return {bus: find(bus) for bus in rep}


def _trafo_branches(net: Any, position: dict, name: str) -> TrafoRows:
    """The in-service transformers between in-service buses, feeder bus numbers, open ones
    (a switch open at either side) left out and identical parallel ones merged."""
    if "trafo" not in net or not len(_in_service(net.trafo)):
        return TrafoRows.none()
    trafos = _in_service(net.trafo)
    trafos = trafos[trafos.hv_bus.isin(position) & trafos.lv_bus.isin(position)]
    switches = net.switch if "switch" in net else None
    if switches is not None and len(switches):
        opened = switches[(switches.et == "t") & ~switches.closed.astype(bool)]
        trafos = trafos[~trafos.index.isin(opened.element.astype(int))]
    rows = read_trafos(trafos, _names(trafos), name)
    hv = np.array([position[b] for b in rows.hv_bus], dtype=int)
    lv = np.array([position[b] for b in rows.lv_bus], dtype=int)
    return merge_parallel(rows, hv, lv, name)


def to_pandapower(
    feeder: Feeder, p_inj_kw: np.ndarray | None = None, q_inj_kvar: np.ndarray | None = None
) -> Any:
    """A pandapower network of ``feeder``, one load per bus at ``-p_inj_kw``, ``-q_inj_kvar``.

    Bus ``i`` of the feeder is pandapower bus ``i``; its lines, in branch order, are
    pandapower's lines (length 1 km, whole-line parameters), its transformers pandapower's
    transformers in ``feeder.trafos`` order (:func:`dso.trafo.add_pandapower_trafos`).
    Without injections the base case (generation minus load) is used. For validation
    against pandapower only; the slack bus gets no load.
    """
    import pandapower as pp

    base_p, base_q = feeder.base_injection()
    p = base_p if p_inj_kw is None else np.asarray(p_inj_kw, dtype=float)
    q = base_q if q_inj_kvar is None else np.asarray(q_inj_kvar, dtype=float)
    net = pp.create_empty_network(name=feeder.name, f_hz=F_HZ, sn_mva=1.0)
    for bus_name, vn_kv in zip(feeder.bus_names, feeder.bus_vn_kv, strict=True):
        pp.create_bus(net, vn_kv=float(vn_kv), name=bus_name)
    pp.create_ext_grid(
        net, feeder.slack_bus, vm_pu=feeder.vm_slack_pu, va_degree=feeder.va_slack_deg
    )
    c_nf = feeder.b_us / US_PER_S / (2 * math.pi * F_HZ) * 1e9
    t = feeder.trafos
    for line in np.setdiff1d(np.arange(feeder.n_line), t.branch):
        pp.create_line_from_parameters(
            net,
            int(feeder.from_bus[line]),
            int(feeder.to_bus[line]),
            length_km=1.0,
            r_ohm_per_km=float(feeder.r_ohm[line]),
            x_ohm_per_km=float(feeder.x_ohm[line]),
            c_nf_per_km=float(c_nf[line]),
            max_i_ka=float(feeder.i_max_ka[line]),
            name=feeder.line_names[line],
        )
    other_end = feeder.from_bus[t.branch] + feeder.to_bus[t.branch] - t.hv_bus
    add_pandapower_trafos(
        net,
        t,
        other_end,
        feeder.r_ohm[t.branch],
        feeder.x_ohm[t.branch],
        tuple(feeder.line_names[b] for b in t.branch),
    )
    buses = np.array([b for b in range(feeder.n_bus) if b != feeder.slack_bus])
    pp.create_loads(net, buses, p_mw=-p[buses] / KW_PER_MW, q_mvar=-q[buses] / KW_PER_MW)
    return net
