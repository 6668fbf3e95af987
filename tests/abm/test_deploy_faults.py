"""Failures during a deployment: hung, killed, crashed and restarted processes; bad messages."""

from __future__ import annotations

import json
import signal

import pandas as pd
import pytest
import zmq

from abm.config import SimConfig
from abm.deploy.errors import RunIncomplete
from abm.deploy.faults import Fault
from abm.deploy.launcher import Deployment, deploy, prepare
from abm.deploy.lifecycle import EXIT_CRASH, EXIT_DSO_LOST
from abm.deploy.spec import DeployOptions
from abm.sim.simulation import run_simulation
from messaging.codec import encode
from messaging.messages import PROTOCOL_VERSION, Bid, Schedule
from messaging.zmq_transport import ZmqTransport
from tests.helpers import TOL, assert_conserved

#: Each test starts one OS process per agent (deploy): long.
pytestmark = pytest.mark.slow

RESULT_TABLES = ("intervals", "prosumers", "trades", "buses")
FAST = DeployOptions(phase_deadline_ms=1500, dso_silence_ms=4000)
#: Prosumers of the ieee33 scenario deployed here (``ieee33_with``: nine processes, not 33).
N_PROSUMERS = 8


def _first_intervals(tables: dict[str, pd.DataFrame], n: int) -> dict[str, pd.DataFrame]:
    return {
        name: tables[name][tables[name]["interval"] < n].reset_index(drop=True)
        for name in RESULT_TABLES
    }


def _inject_bad_messages(endpoints) -> None:
    """A rogue agent sends duplicated, replayed, late, forged and malformed messages."""
    with ZmqTransport("rogue", endpoints) as rogue:
        late = Bid("rogue", 0, 5, 1.0, 0.1)  # interval 0 is long over
        rogue.publish(late)
        rogue.publish(late)  # duplicate
        rogue.publish(Bid("rogue", 0, 3, 1.0, 0.1))  # replay of an older seq
        rogue.send("dso", Schedule("rogue", 1000, 9, 1.0, 0.0, 0.0))  # not a prosumer
    context = zmq.Context.instance()
    raw = context.socket(zmq.DEALER)
    raw.routing_id = b"rogue2"
    raw.linger = 500
    raw.connect(endpoints.upstream)
    raw.send_multipart([b"*", b"junk"])  # malformed: shorter than a header
    unknown_kind = PROTOCOL_VERSION.to_bytes(2, "big") + b" not a frame"
    raw.send_multipart([b"*", unknown_kind])  # this version, an unknown kind
    raw.send_multipart([b"*", encode(Bid("p01", 0, 10**6, 1.0, 0.1))])  # forged sender
    raw.close()


def test_hung_killed_restarted_and_crashed_prosumers(tmp_path, ieee33_with):
    """p05 hangs at interval 3 (absent), is killed and restarted (rejoins); p08 crashes."""
    config = SimConfig(days=3, scenario=str(ieee33_with(N_PROSUMERS)))
    faults = {
        "p05": Fault(3, "orders", "hang"),
        "p08": Fault(30, "confirm", "crash"),
    }
    prepared = prepare(config, FAST, tmp_path / "dep", faults=faults)
    with Deployment(prepared) as d:
        d.start()
        d.wait_for(6, timeout_s=120)
        _inject_bad_messages(prepared.spec.relay)
        assert d.kill("p05", signal.SIGKILL) == -signal.SIGKILL
        d.spawn("p05")
        d.wait()
    result = d.collect()
    tables = result.tables
    n = 72
    assert result.complete and result.status["last_completed_interval"] == n - 1
    intervals = tables["intervals"].set_index("interval")["absent_prosumers"]
    pr = tables["prosumers"]
    p05 = set(pr.loc[pr["prosumer"] == "p05", "interval"])
    p08 = set(pr.loc[pr["prosumer"] == "p08", "interval"])
    # p05: present before its hang, absent while hung and killed, back after its restart.
    back = min(t for t in p05 if t > 3)
    assert p05 == set(range(3)) | set(range(back, n))
    # p08: present until it crashed in interval 30, absent from then on.
    assert p08 == set(range(30))
    expected_absent = [int(3 <= t < back) + int(t >= 30) for t in range(n)]
    assert intervals.tolist() == expected_absent
    timing = tables["timing"].set_index("interval")["marked_absent"]
    assert timing[3] == "p05:orders" and timing[30] == "p08:confirm"
    # No trade involves an absent prosumer; every trade is settled on both sides.
    tr = tables["trades"]
    for pid, present in (("p05", p05), ("p08", p08)):
        mine = tr[(tr["buyer"] == pid) | (tr["seller"] == pid)]
        assert set(mine["interval"]) <= present
    assert_conserved(tables)
    assert (tables["timing"]["p2p_imbalance_kwh"].abs() < TOL).all()
    # Before the first failure the results are those of the in-process backend.
    expected = run_simulation(config, progress=False).tables
    got, want = _first_intervals(tables, 3), _first_intervals(expected, 3)
    for name in RESULT_TABLES:
        pd.testing.assert_frame_equal(got[name], want[name], check_exact=True, obj=name)
    # Processes: p05 ran twice, p08 crashed, the others closed cleanly.
    codes = result.status["exit_codes"]
    assert codes["p05"] == [-signal.SIGKILL, 0] and codes["p08"] == [EXIT_CRASH]
    procs = tables["processes"].set_index("agent")
    assert procs.loc["p05", "incarnations"] == 2
    # Every bad message was refused and counted by the receivers: the DSO and every prosumer
    # but the hung p05, less at most two.
    refusals = tables["refusals"]
    by_reason = refusals.groupby("reason")["count"].sum()
    reasons = ("DuplicateMessage", "LateMessage", "MalformedFrame", "UnknownKind", "SenderMismatch")
    for reason in reasons:
        assert by_reason[reason] >= N_PROSUMERS - 2, reason
    dso_refused = set(refusals.loc[refusals["agent"] == "dso", "reason"])
    assert "UnknownSender" in dso_refused


def test_buyer_death_in_bilateral_clearing_then_dso_death(tmp_path, ieee33_with):
    """A buyer dies after its request was accepted (no half-settled trade); later the DSO dies.

    Bilateral sellers commit when they accept; the DSO marks the dead buyer absent at the
    phase deadline and broadcasts ``Absent``, so the seller voids the sale before its
    schedule: no one-sided P2P energy (``p2p_imbalance_kwh`` 0). When the DSO dies the
    prosumers stop by themselves and the completed intervals stay readable.
    """
    config = SimConfig(protocol="bilateral", scenario=str(ieee33_with(N_PROSUMERS)))
    run_simulation(config, tmp_path / "sim", progress=False)
    read = {name: pd.read_csv(tmp_path / "sim" / f"{name}.csv") for name in RESULT_TABLES}
    first = read["trades"].iloc[0]  # the first trade of the run: its buyer dies there
    t, buyer = int(first["interval"]), str(first["buyer"])
    faults = {buyer: Fault(t, "confirm", "crash"), "dso": Fault(t + 3, "orders", "crash")}
    options = DeployOptions(phase_deadline_ms=1500, dso_silence_ms=3000)
    with pytest.raises(RunIncomplete, match=f"after interval {t + 2} of 24"):
        deploy(config, options, tmp_path / "dep", faults=faults)
    out = tmp_path / "dep"
    status = json.loads((out / "status.json").read_text())
    assert status["last_completed_interval"] == t + 2 and not status["complete"]
    codes = status["exit_codes"]
    assert codes.pop("dso") == [EXIT_CRASH] and codes.pop(buyer) == [EXIT_CRASH]
    assert all(c == [EXIT_DSO_LOST] for c in codes.values())
    procs = pd.read_csv(out / "processes.csv").set_index("agent")
    assert procs.drop(index=["dso", buyer])["reason"].str.startswith("no message from").all()
    # Completed intervals are written and readable; before the buyer died they equal the
    # in-process run.
    got = {name: pd.read_csv(out / f"{name}.csv") for name in RESULT_TABLES}
    for name in RESULT_TABLES:
        assert got[name]["interval"].max() == t + 2
        pd.testing.assert_frame_equal(
            _first_intervals(got, t)[name], _first_intervals(read, t)[name],
            check_exact=True, obj=name,
        )  # fmt: skip
    timing = pd.read_csv(out / "timing.csv").set_index("interval")
    assert timing.loc[t, "marked_absent"] == f"{buyer}:confirm"
    assert (timing["p2p_imbalance_kwh"].abs() < TOL).all()
    # The dead buyer's trade is gone on every side; every trade is in both parties' rows.
    trades = got["trades"]
    assert not ((trades["interval"] == t) & (trades["buyer"] == buyer)).any()
    assert buyer not in set(got["prosumers"].loc[got["prosumers"]["interval"] == t, "prosumer"])
    assert_conserved(got)


def test_lost_messages_are_detected_and_the_prosumer_rejoins(tmp_path, ieee33_with):
    """p07 loses every message for 2.5 s from interval 3's orders phase on (as under overload):
    the DSO marks it absent and its ``Leave`` is lost too. At the next ``open`` it sees, p07
    detects the gap in the DSO's stream, records the intervals hit and joins again; the DSO
    re-admits it, and the market stays consistent. Five days: the intervals p07 misses after
    the deadline run fast without it (about 20 in the rest of the drop at 50 ms each with 32
    prosumers, several times as many with 8), and p07 must be back before the end."""
    config = SimConfig(days=5, scenario=str(ieee33_with(N_PROSUMERS)))
    faults = {"p07": Fault(3, "orders", "drop", 2500)}
    result = deploy(config, FAST, tmp_path / "dep", faults=faults)
    tables = result.tables
    n = 120
    assert result.complete and result.status["last_completed_interval"] == n - 1
    pr = tables["prosumers"]
    p07 = set(pr.loc[pr["prosumer"] == "p07", "interval"])
    back = min(t for t in p07 if t > 3)
    assert p07 == set(range(3)) | set(range(back, n)) and back < n - 1
    procs = tables["processes"].set_index("agent")
    lost = [int(t) for t in str(procs.loc["p07", "lost_intervals"]).split()]
    assert lost[0] == 3 and lost == sorted(lost) and max(lost) < back
    others = procs.drop(index="p07")["lost_intervals"].fillna("").astype(str)
    assert (others.str.strip() == "").all()
    assert procs.loc["p07", "incarnations"] == 1
    assert_conserved(tables)
    timing = tables["timing"].set_index("interval")["marked_absent"]
    assert timing[3] == "p07:orders"
