"""Merge the processes' records into the result tables of ``p2pvar simulate`` and more.

The same tables as the in-process backend, in the same row order (intervals; prosumers by
interval then scenario order; trades by interval then seller in scenario order; buses),
plus the deployment's own: ``messages`` (per interval and kind over every process, with
received bytes, refusals and latency quantiles; interval -1 is start-up traffic before a
process's first interval), ``timing`` (per interval: wall time split into DSO compute, DSO
sending, waiting, and the prosumers' compute), ``phases`` (per interval and clock tick:
from sending the ``Phase`` to the last ack), ``agent_messages`` (per process and kind over
the run), ``refusals`` (per process, reason and kind) and ``processes``.

Only intervals the DSO completed (recorded after settling) are merged; a prosumer row
counts only if the DSO settled that prosumer as present. A prosumer that died after its
``Schedule`` and before its ``Settlement`` has no ``row`` record: its ``scheduled`` record,
completed with the figures the DSO sent it (:func:`completed_row`), stands in. When the DSO
died, its last recorded interval counts only if every prosumer it settled has its row.

Every merged interval is checked against the market invariants (:func:`interval_problem`):
a row for every prosumer the DSO settled, the P2P payments summing to zero, every trade
matching its buyer's and seller's rows, no P2P energy settled one-sided. An interval that
fails them (a prosumer died during the ``schedule`` phase, after its peers sent their
schedules) cannot be completed from the records: ``timing.complete`` is false there and
``timing.incomplete_reason`` says why.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pandas as pd

from abm.deploy.errors import DeployError
from abm.deploy.records import RecordFile, histogram_from_dict, read_records
from abm.deploy.spec import DSO_ID
from agents.settlement import BILL_PARTS, Bill
from analysis.metrics import with_bill_totals
from analysis.tables import DEPLOY_MESSAGES, DEPLOY_TABLES, TABLES, Table
from messaging.counters import LATENCY_QUANTILES, NS_PER_US, LatencyHistogram

#: The latency columns of the deploy's message tables, after the counts.
LATENCY_COLUMNS = tuple(c for c in DEPLOY_MESSAGES.column_names if c.startswith("latency_us_"))
COUNT_COLUMNS = DEPLOY_MESSAGES.column_names[2 : -len(LATENCY_COLUMNS)]
#: Tolerance of the money and energy invariants (EUR, kWh).
INVARIANT_TOL = 1e-9


@dataclass
class Merged:
    """Merged tables and what the DSO's records say about the run's end."""

    tables: dict[str, pd.DataFrame]
    last_completed: int
    dso_final: dict[str, Any] | None
    #: Prosumers the DSO settled as present, per merged interval.
    present: dict[int, set[str]]


class _Totals:
    """Message counts and a latency histogram of one group."""

    def __init__(self) -> None:
        self.counts = dict.fromkeys(COUNT_COLUMNS, 0)
        self.latency = LatencyHistogram()

    def add(self, kind_row: dict[str, Any]) -> None:
        c = self.counts
        c["messages"] += kind_row["sent"]
        c["deliveries"] += kind_row["recv"]
        c["frames"] += kind_row["frames"]
        c["bytes"] += kind_row["bytes_sent"]
        c["bytes_recv"] += kind_row["bytes_recv"]
        c["rejected"] += kind_row["rejected"]
        self.latency.merge(histogram_from_dict(kind_row["latency"]))

    def row(self) -> dict[str, Any]:
        hist = self.latency
        out: dict[str, Any] = dict(self.counts)
        for q, name in zip(LATENCY_QUANTILES, LATENCY_COLUMNS, strict=False):
            value = hist.quantile_ns(q)
            out[name] = None if value is None else value / NS_PER_US
        out["latency_us_max"] = hist.max_ns / NS_PER_US if hist.count else None
        return out


def _frame(rows: list[dict[str, Any]], table: Table) -> pd.DataFrame:
    return pd.DataFrame.from_records(rows, columns=list(table.column_names))


def merge_records(records_dir: Path, prosumer_ids: Sequence[str]) -> Merged:
    """Tables of a run from the records under ``records_dir`` (see the module docstring).

    Raises :class:`DeployError` naming the folder when a record lacks a field or holds a
    value of the wrong type (records edited or written by another version).
    """
    try:
        return _merge(Path(records_dir), prosumer_ids)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        what = f"field {exc}" if isinstance(exc, KeyError) else f"{type(exc).__name__}: {exc}"
        raise DeployError(
            f"records in {records_dir}: a record is missing a field or is malformed ({what})"
        ) from None


def _merge(records_dir: Path, prosumer_ids: Sequence[str]) -> Merged:
    files = {a: read_records(records_dir / f"{a}.jsonl") for a in (DSO_ID, *prosumer_ids)}
    dso_records = files[DSO_ID].records
    by_interval = {r["interval"]: r for r in dso_records if r["type"] == "interval"}
    dso_final = next((r for r in reversed(dso_records) if r["type"] == "final"), None)
    _drop_unsettled_last(by_interval, files, dso_final)
    last = max(by_interval, default=-1)
    present = {t: set(r["present"]) for t, r in by_interval.items()}
    index = {pid: i for i, pid in enumerate(prosumer_ids)}

    intervals, buses, timing = [], [], []
    for t in sorted(by_interval):
        rec = by_interval[t]
        intervals.append(rec["row"])
        buses += [{"interval": t, "bus": b, "vm_pu": v} for b, v in enumerate(rec["vm_pu"])]
    rows, trades = [], []
    compute: dict[int, list[float]] = defaultdict(list)
    send: dict[int, list[float]] = defaultdict(list)
    messages: dict[tuple[int, str], _Totals] = defaultdict(_Totals)
    per_agent: dict[tuple[str, str], _Totals] = defaultdict(_Totals)
    refusals: dict[tuple[str, str, str], int] = defaultdict(int)
    processes = []
    booked: dict[tuple[int, str], dict[str, Any]] = {}
    scheduled: dict[tuple[int, str], dict[str, Any]] = {}
    for agent, rf in files.items():
        for rec in rf.records:
            kind = rec.get("type")
            t = cast("int", rec.get("interval"))  # None on records of no interval
            if kind in ("row", "scheduled") and t in present and agent in present[t]:
                (booked if kind == "row" else scheduled)[(t, agent)] = rec
            elif kind == "messages":
                for k in rec["kinds"]:
                    messages[(t, k["kind"])].add(k)
                    per_agent[(agent, k["kind"])].add(k)
                for reason, msg_kind, n in rec["refused"]:
                    refusals[(agent, reason, msg_kind)] += n
        processes.append(_process_row(agent, rf.records, rf.torn_lines))
    for (t, agent), rec in scheduled.items():
        if (t, agent) not in booked:  # it died between its Schedule and its Settlement
            booked[(t, agent)] = completed_row(rec, by_interval[t]["settlements"][agent])
    for (t, agent), rec in booked.items():
        rows.append((t, index[agent], rec["row"]))
        trades += [(t, index[tr["seller"]], n, tr) for n, tr in enumerate(rec["trades"])]
        compute[t].append(rec["compute_ms"])
        send[t].append(rec["send_ms"])
    rows.sort(key=lambda x: (x[0], x[1]))
    prosumers = _frame([r for _, _, r in rows], TABLES["prosumers"])
    trades.sort(key=lambda x: (x[0], x[1], x[2]))
    rows_by_t: dict[int, list[dict[str, Any]]] = defaultdict(list)
    trades_by_t: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for t, _, row in rows:
        rows_by_t[t].append(row)
    for t, *_, tr in trades:
        trades_by_t[t].append(tr)
    first_ns = min((r["timing"]["start_ns"] for r in by_interval.values()), default=0)
    for t in sorted(by_interval):
        rec = by_interval[t]
        problem = interval_problem(rec, rows_by_t[t], trades_by_t[t])
        timing.append(_timing_row(t, rec, compute[t], send[t], first_ns, problem))
    tables = {
        "intervals": with_bill_totals(_frame(intervals, TABLES["intervals"]), prosumers),
        "prosumers": prosumers,
        "trades": _frame([tr for *_, tr in trades], TABLES["trades"]),
        "buses": _frame(buses, TABLES["buses"]),
        "messages": _frame(
            [{"interval": t, "kind": k, **v.row()} for (t, k), v in sorted(messages.items())],
            DEPLOY_MESSAGES,
        ),
        "timing": _frame(timing, DEPLOY_TABLES["timing"]),
        "phases": _frame(
            [
                dict(zip(DEPLOY_TABLES["phases"].column_names, (t, *tick), strict=True))
                for t in sorted(by_interval)
                for tick in by_interval[t]["timing"]["phases"]
            ],
            DEPLOY_TABLES["phases"],
        ),
        "agent_messages": _frame(
            [{"agent": a, "kind": k, **v.row()} for (a, k), v in sorted(per_agent.items())],
            DEPLOY_TABLES["agent_messages"],
        ),
        "refusals": _frame(
            [
                {"agent": a, "reason": r, "kind": k, "count": n}
                for (a, r, k), n in sorted(refusals.items())
            ],
            DEPLOY_TABLES["refusals"],
        ),
        "processes": _frame(processes, DEPLOY_TABLES["processes"]),
    }
    return Merged(tables, last, dso_final, present)


def completed_row(scheduled: dict[str, Any], settlement: list[float]) -> dict[str, Any]:
    """The ``row`` record of a prosumer that died after its ``Schedule``, before its
    ``Settlement``: its ``scheduled`` record (booked with a zero Var amount and voltage)
    with the ``settlement`` the DSO sent it (Var amount, meter voltage) and the bill they give.
    """
    row = dict(scheduled["row"])
    row["var_eur"], row["vm_pu"] = settlement
    row["bill_eur"] = float(Bill(**{part: row[part] for part in BILL_PARTS}).bill_eur)
    return {**scheduled, "type": "row", "row": row}


def _drop_unsettled_last(
    by_interval: dict[int, dict[str, Any]],
    files: dict[str, RecordFile],
    dso_final: dict[str, Any] | None,
) -> None:
    """Without a final DSO record (it died), its last interval counts only if fully settled.

    The DSO records an interval after handing its settlements to the transport; dying right
    after, some may never have left. Such an interval is left out of the tables, so every
    merged interval has a row for each prosumer the DSO settled.
    """
    if dso_final is not None or not by_interval:
        return
    last = max(by_interval)
    settled = {
        agent
        for agent, rf in files.items()
        for r in rf.records
        if r.get("type") == "row" and r.get("interval") == last
    }
    if not set(by_interval[last]["present"]) <= settled:
        del by_interval[last]


def interval_problem(
    rec: dict[str, Any], rows: list[dict[str, Any]], trades: list[dict[str, Any]]
) -> str:
    """Why one merged interval breaks the market invariants ("" when it keeps them).

    ``rec`` is the DSO's interval record, ``rows`` the prosumer rows merged for it and
    ``trades`` its trades (each reported once, by its seller).
    """
    missing = sorted(set(rec["present"]) - {r["prosumer"] for r in rows})
    if missing:
        return f"no row from {' '.join(missing)} (settled by the DSO; the process died)"
    if abs(rec["p2p_imbalance_kwh"]) > INVARIANT_TOL:
        return f"P2P energy settled one-sided ({rec['p2p_imbalance_kwh']:.6g} kWh)"
    if abs(sum(r["p2p_eur"] for r in rows)) > INVARIANT_TOL * max(1, len(rows)):
        return f"P2P payments sum to {sum(r['p2p_eur'] for r in rows):.6g} EUR, not 0"
    bought: dict[str, float] = defaultdict(float)
    sold: dict[str, float] = defaultdict(float)
    for tr in trades:
        bought[tr["buyer"]] += tr["quantity_kwh"]
        sold[tr["seller"]] += tr["quantity_kwh"]
    for r in rows:
        pid = r["prosumer"]
        if (
            abs(bought.pop(pid, 0.0) - r["p2p_bought_kwh"]) > INVARIANT_TOL
            or abs(sold.pop(pid, 0.0) - r["p2p_sold_kwh"]) > INVARIANT_TOL
        ):
            return f"trades of {pid} do not match its row"
    orphans = sorted(set(bought) | set(sold))
    if orphans:
        return f"trades with {' '.join(orphans)}, who has no row"
    return ""


def _timing_row(
    t: int,
    rec: dict[str, Any],
    compute: list[float],
    send: list[float],
    first_ns: int,
    problem: str,
) -> dict[str, Any]:
    timing = rec["timing"]
    return {
        "interval": t,
        "start_ms": (timing["start_ns"] - first_ns) / 1e6,
        "wall_ms": timing["wall_ms"],
        "dso_compute_ms": timing["dso_compute_ms"],
        "dso_send_ms": timing["dso_send_ms"],
        "wait_ms": timing["wait_ms"],
        "agent_compute_ms_max": max(compute, default=0.0),
        "agent_compute_ms_sum": sum(compute),
        "agent_send_ms_max": max(send, default=0.0),
        "n_present": len(rec["present"]),
        "marked_absent": " ".join(f"{p}:{phase}" for p, phase in rec["marked_absent"]),
        "p2p_imbalance_kwh": rec["p2p_imbalance_kwh"],
        "complete": not problem,
        "incomplete_reason": problem,
    }


def _run_cpu_s(records: list[dict[str, Any]]) -> float | None:
    """CPU seconds between each incarnation's start and final records, summed."""
    total, start = None, None
    for r in records:
        if r.get("type") == "start":
            start = r["cpu_s"]
        elif r.get("type") == "final" and start is not None and "cpu_s" in r:
            total = (total or 0.0) + r["cpu_s"] - start
            start = None
    return total


def _process_row(agent: str, records: list[dict[str, Any]], torn: int) -> dict[str, Any]:
    starts = [r for r in records if r.get("type") == "start"]
    finals = [r for r in records if r.get("type") == "final"]
    last_final = finals[-1] if finals else {}
    return {
        "agent": agent,
        "role": starts[0]["role"] if starts else "",
        "host": starts[0]["host"] if starts else "",
        "incarnations": len(starts),
        "pids": " ".join(str(r["pid"]) for r in starts),
        "ready_ms": starts[0]["ready_ms"] if starts else None,
        "startup_cpu_s": starts[0]["cpu_s"] if starts else None,
        "run_cpu_s": _run_cpu_s(records),
        "status": last_final.get("status"),
        "reason": last_final.get("reason", ""),
        "torn_lines": torn,
        "resyncs": sum(r.get("resyncs", 0) for r in finals),
        "lost_intervals": " ".join(
            str(t) for r in records if r.get("type") == "gap" for t in r["lost_intervals"]
        ),
    }
