"""The result tables of a run: every table, column, unit and meaning, and their rows.

The one owner of the tables' schema. Agents return typed per-interval outcomes
(:class:`agents.outcome.ProsumerOutcome`, :class:`agents.outcome.TradeOutcome`,
:class:`dso.outcome.IntervalOutcome`, fields named as the columns); :func:`outcome_row` turns
one into a row. ``docs/outputs.md`` holds :func:`markdown` of every :data:`TABLES` entry
(checked by a test; ``python -m analysis.tables`` prints it). Imports neither pandas nor
Mesa: a prosumer process writes its rows with it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from dso.powerflow import VM_MAX_PU, VM_MIN_PU
from messaging.counters import LATENCY_QUANTILES


@dataclass(frozen=True)
class Column:
    """One column: its name, unit (empty for keys, counts and text) and meaning."""

    name: str
    unit: str
    meaning: str


@dataclass(frozen=True)
class Table:
    """One table (``<name>.csv``): what a row is, and its columns in order."""

    name: str
    row: str
    columns: tuple[Column, ...]

    @property
    def column_names(self) -> tuple[str, ...]:
        """The column names in order."""
        return tuple(c.name for c in self.columns)


def _cols(*specs: tuple[str, str, str]) -> tuple[Column, ...]:
    return tuple(Column(*s) for s in specs)


INTERVALS = Table(
    "intervals",
    "one row per market interval",
    _cols(
        ("interval", "", "market interval index"),
        ("loss_kw", "kW", "total active network loss from the DSO's AC power flow"),
        ("loss_cost_eur", "EUR", "loss valued at the retail tariff (`loss_kw * h * retail`)"),
        ("vmin_pu", "pu", "lowest bus voltage"),
        ("vmin_bus", "", "bus index of the lowest voltage"),
        ("vmax_pu", "pu", "highest bus voltage"),
        ("vmax_bus", "", "bus index of the highest voltage"),
        ("n_voltage_violations", "", f"buses outside [{VM_MIN_PU}, {VM_MAX_PU}] pu"),
        ("max_loading_percent", "%", "highest line loading"),
        ("retail_eur_per_kwh", "EUR/kWh", "retail tariff of the interval"),
        ("feed_in_eur_per_kwh", "EUR/kWh", "feed-in tariff of the interval"),
        (
            "loss_saved_kw",
            "kW",
            "loss with every inverter at q = 0 (same active dispatch) minus `loss_kw`: what the "
            "Var market saved (0 without one)",
        ),
        ("loss_saved_eur", "EUR", "`loss_saved_kw * h * retail`"),
        (
            "var_paid_eur",
            "EUR",
            "net Var payments the DSO made (negative: it charged more than it paid)",
        ),
        (
            "var_service_kvarh",
            "kvarh",
            "the inverters' reactive energy (+ injection; their q above the prosumers' own "
            "reactive demand)",
        ),
        ("p2p_volume_kwh", "kWh", "P2P energy sold (sum over sellers) as declared in schedules"),
        ("envelope_violations", "", "schedules the DSO found outside their envelope"),
        (
            "export_envelope_feasible",
            "",
            "whether the export DOE had a feasible solution (false: the network violates limits "
            "even with prosumers at 0, limits are 0)",
        ),
        ("import_envelope_feasible", "", "the same for the import DOE"),
        (
            "absent_prosumers",
            "",
            "prosumers without a schedule this interval (taken at forecast, no trades)",
        ),
        ("retail_paid_eur", "EUR", "sum of the prosumers' `retail_eur` (cost positive)"),
        (
            "p2p_network_charge_eur",
            "EUR",
            "sum of the prosumers' `network_eur`: P2P network charges the DSO collects",
        ),
        (
            "dso_net_eur",
            "EUR",
            "`loss_saved_eur + p2p_network_charge_eur - var_paid_eur` "
            "([grid.md](grid.md#var-settlement-dsovar_pricepy))",
        ),
    ),
)
#: Columns of ``intervals`` summed from the ``prosumers`` rows
#: (:func:`analysis.metrics.with_bill_totals`); the others come from the DSO's outcome.
BILL_TOTAL_COLUMNS = ("retail_paid_eur", "p2p_network_charge_eur", "dso_net_eur")

PROSUMERS = Table(
    "prosumers",
    "one row per prosumer and interval",
    _cols(
        ("interval", "", "key"),
        ("prosumer", "", "key: the prosumer's id"),
        ("bus", "", "key: the prosumer's bus index"),
        ("load_kw", "kW", "demand"),
        ("pv_kw", "kW", "available PV"),
        ("pv_used_kw", "kW", "PV after curtailment (inverter rating, export envelope)"),
        ("battery_p_kw", "kW", "battery injection (+ discharge)"),
        ("soc_kwh", "kWh", "battery state of charge after the interval"),
        ("p_kw", "kW", "net injection at the bus (PV + battery − load)"),
        ("q_kvar", "kvar", "net reactive injection at the bus (inverter q − load q)"),
        ("q_inverter_kvar", "kvar", "inverter reactive power (+ injection)"),
        ("export_limit_kw", "kW", "the prosumer's dynamic operating envelope: export limit"),
        ("import_limit_kw", "kW", "the envelope's import limit"),
        (
            "q_min_limit_kvar",
            "kvar",
            "lower end of the envelope's range of `q_inverter_kvar` (0 without a Var market)",
        ),
        ("q_max_limit_kvar", "kvar", "upper end of that range (0 without a Var market)"),
        (
            "import_violation_kw",
            "kW",
            "import above the envelope that the battery could not avoid (load is not shed)",
        ),
        ("var_price_eur_per_kvarh", "EUR/kvarh", "Var price at the prosumer's bus"),
        ("order_side", "", "the P2P order's side: `buy`, `sell` or `none`"),
        ("order_kwh", "kWh", "the P2P order's quantity"),
        ("limit_price_eur_per_kwh", "EUR/kWh", "the P2P order's limit price"),
        ("p2p_bought_kwh", "kWh", "confirmed P2P energy bought"),
        ("p2p_sold_kwh", "kWh", "confirmed P2P energy sold"),
        ("p2p_eur", "EUR", "P2P payments (bought × price − sold × price)"),
        (
            "retail_eur",
            "EUR",
            "residual energy at the retail tariff (import) or feed-in tariff (export, negative)",
        ),
        ("var_eur", "EUR", "minus the Var support payment received (positive: charged, ex-post)"),
        ("network_eur", "EUR", "the prosumer's share (half) of the P2P network charge"),
        (
            "storage_eur",
            "EUR",
            "last interval of the run only: stored energy used up since the start, valued at "
            "its replacement cost `min retail / efficiency` (negative when the battery ends "
            "fuller)",
        ),
        (
            "bill_eur",
            "EUR",
            "`p2p_eur + retail_eur + var_eur + network_eur + storage_eur`; the RL reward is "
            "`-bill_eur`",
        ),
        ("vm_pu", "pu", "the prosumer's bus voltage from the DSO's power flow"),
        (
            "action_error",
            "",
            "why the policy's action was refused (empty when fine); the prosumer then abstained",
        ),
        (
            "policy_fallback",
            "",
            "why the policy fell back to the ToU rule this interval (the MPC's failed solve; "
            "empty when it did not)",
        ),
    ),
)

TRADES = Table(
    "trades",
    "one row per confirmed P2P trade",
    _cols(
        ("interval", "", "key"),
        ("buyer", "", "key: the buyer's id"),
        ("seller", "", "key: the seller's id"),
        ("quantity_kwh", "kWh", "the confirmed trade's energy"),
        ("price_eur_per_kwh", "EUR/kWh", "the confirmed trade's price"),
        (
            "reported_by",
            "",
            "`seller` (every trade is confirmed by both sides; the seller's record is written "
            "once)",
        ),
    ),
)

BUSES = Table(
    "buses",
    "one row per bus and interval",
    _cols(
        ("interval", "", "key"),
        ("bus", "", "key: bus index"),
        ("vm_pu", "pu", "voltage magnitude from the DSO's AC power flow"),
    ),
)

MESSAGES = Table(
    "messages",
    "one row per message kind and interval",
    _cols(
        ("interval", "", "key"),
        ("kind", "", "key: the message kind"),
        ("messages", "", "messages sent; a broadcast counts once"),
        ("deliveries", "", "messages received by an agent; a broadcast to N peers counts N"),
        ("bytes", "B", "wire size of the sent messages (msgpack frames)"),
    ),
)

#: The tables ``p2pvar simulate`` writes, in the order they are written.
TABLES: dict[str, Table] = {t.name: t for t in (INTERVALS, PROSUMERS, TRADES, BUSES, MESSAGES)}

_LATENCY = _cols(
    *(
        (f"latency_us_p{round(q * 100)}", "µs", f"{q:.0%} latency quantile")
        for q in LATENCY_QUANTILES
    ),
    ("latency_us_max", "µs", "largest latency, send to receive"),
)
_COUNTS = (
    *MESSAGES.columns[2:4],
    Column(
        "frames",
        "",
        "ZeroMQ frames received: a message alone counts once, a batch of messages "
        "(kind `Batch`) once for all its messages",
    ),
    *MESSAGES.columns[4:],
    Column("bytes_recv", "B", "wire size of the received messages"),
    Column("rejected", "", "frames refused on receipt"),
)

#: ``p2pvar deploy``'s ``messages``: :data:`MESSAGES` over every process plus received bytes,
#: refusals and latency quantiles (interval -1: start-up traffic).
DEPLOY_MESSAGES = Table("messages", MESSAGES.row, (*MESSAGES.columns[:2], *_COUNTS, *_LATENCY))

#: The tables only ``p2pvar deploy`` writes (``docs/deploy.md``).
DEPLOY_TABLES: dict[str, Table] = {
    t.name: t
    for t in (
        Table(
            "timing",
            "one row per interval",
            _cols(
                ("interval", "", "key"),
                ("start_ms", "ms", "start after the first interval's"),
                ("wall_ms", "ms", "`dso_compute_ms + dso_send_ms + wait_ms`"),
                ("dso_compute_ms", "ms", "DSO logic"),
                ("dso_send_ms", "ms", "DSO sending"),
                ("wait_ms", "ms", "DSO blocked for acks and messages"),
                ("agent_compute_ms_max", "ms", "slowest prosumer's logic"),
                ("agent_compute_ms_sum", "ms", "all prosumers' logic"),
                ("agent_send_ms_max", "ms", "slowest prosumer's sending"),
                ("n_present", "", "prosumers settled as present"),
                ("marked_absent", "", "`id:phase` of each prosumer marked absent"),
                ("p2p_imbalance_kwh", "kWh", "P2P energy settled one-sided"),
                ("complete", "", "whether the interval meets the market invariants"),
                ("incomplete_reason", "", "why not (empty when complete)"),
            ),
        ),
        Table(
            "phases",
            "one row per interval and clock tick",
            _cols(
                ("interval", "", "key"),
                ("phase", "", "key: the phase name"),
                ("round", "", "key: the tick within the phase"),
                ("ms", "ms", "from sending the `Phase` to its last ack"),
            ),
        ),
        Table(
            "agent_messages",
            "one row per process and kind over the run",
            (
                Column("agent", "", "key: the process's agent id"),
                DEPLOY_MESSAGES.columns[1],
                *_COUNTS,
                *_LATENCY,
            ),
        ),
        Table(
            "refusals",
            "one row per process, reason and kind",
            _cols(
                ("agent", "", "key"),
                ("reason", "", "key: why the frame was refused"),
                ("kind", "", "key: the refused message kind"),
                ("count", "", "frames refused"),
            ),
        ),
        Table(
            "processes",
            "one row per agent process",
            _cols(
                ("agent", "", "key"),
                ("role", "", "`dso` or `prosumer`"),
                ("host", "", "where it ran"),
                ("incarnations", "", "times it was started"),
                ("pids", "", "its process ids"),
                ("ready_ms", "ms", "spawn to connected"),
                ("startup_cpu_s", "s", "CPU until connected"),
                ("run_cpu_s", "s", "CPU from then to the end"),
                ("status", "", "last exit status"),
                ("reason", "", "last exit reason"),
                ("torn_lines", "", "torn record lines"),
                ("resyncs", "", "times its relay connection dropped and it joined again"),
                ("lost_intervals", "", "intervals whose DSO messages it lost (stream gaps)"),
            ),
        ),
    )
}


#: The tables only ``p2pvar optimum`` writes besides a run's (``docs/optimum.md``).
OPTIMUM_TABLES: dict[str, Table] = {
    t.name: t
    for t in (
        Table(
            "optimum",
            "one row per prosumer and interval: the LP's dispatch, before the market plays it",
            _cols(
                ("interval", "", "key"),
                ("prosumer", "", "key: the prosumer's id"),
                ("battery_p_kw", "kW", "battery injection (+ discharge)"),
                ("pv_used_kw", "kW", "PV after curtailment"),
                ("p_kw", "kW", "net injection at the bus (PV + battery - load)"),
                ("q_inverter_kvar", "kvar", "inverter reactive power (+ injection)"),
                ("soc_kwh", "kWh", "battery state of charge after the interval"),
                ("import_violation_kw", "kW", "import above the envelope the LP could not avoid"),
            ),
        ),
        Table(
            "optimum_days",
            "one row per simulated day: its linear program",
            _cols(
                ("day", "", "key: the day's index in the run"),
                ("calendar_day", "", "the profile day (0..364)"),
                (
                    "lp_cost_eur",
                    "EUR",
                    "the LP's total prosumer bill of the day (its model of the settlement, "
                    "stored energy valued at the day's end)",
                ),
                ("p2p_kwh", "kWh", "P2P energy the LP counts on (all crossing energy)"),
                ("publish_s", "s", "wall time of the day's envelopes and Var prices"),
                ("solve_s", "s", "wall time of the LP (every cutting-plane round)"),
                ("variables", "", "LP variables"),
                ("constraints", "", "LP constraints (last round)"),
            ),
        ),
    )
}


def outcome_columns(table: Table) -> tuple[str, ...]:
    """The columns of ``table`` its rows' outcomes fill (``intervals`` less the bill totals)."""
    return tuple(c for c in table.column_names if c not in BILL_TOTAL_COLUMNS)


#: Field names per outcome dataclass (``dataclasses.fields`` is slow for a per-row call).
_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def outcome_row(outcome: Any) -> dict[str, Any]:
    """The table row of an agent's outcome (a dataclass whose fields are the columns)."""
    kind = type(outcome)
    names = _FIELD_NAMES.get(kind)
    if names is None:
        names = _FIELD_NAMES[kind] = tuple(f.name for f in dataclasses.fields(outcome))
    return {name: getattr(outcome, name) for name in names}


def markdown(table: Table) -> str:
    """The table's section of ``docs/outputs.md``: heading, what a row is, its columns."""
    lines = [
        f"## {table.name}.csv",
        "",
        f"{table.row[0].upper()}{table.row[1:]}.",
        "",
        "| column | unit | meaning |",
        "| --- | --- | --- |",
    ]
    lines += [f"| `{c.name}` | {c.unit} | {c.meaning} |" for c in table.columns]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print("\n".join(markdown(t) for t in TABLES.values()), end="")
