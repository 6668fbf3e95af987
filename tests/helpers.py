"""Shared test helpers: the clearing markets (a hypothesis strategy, a four-peer market, a
runner), the conservation invariant of the result tables and the CLI run in-process."""

from __future__ import annotations

import itertools
import signal
import subprocess
from collections.abc import Callable, Collection
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest
from hypothesis import strategies as st

from agents.clearing import LocalRouter, make_protocol
from agents.clearing.protocol import ClearedTrade
from messaging.messages import Bid, Envelope, Error, Offer

#: Tolerance of the money and energy invariants (EUR, kWh).
TOL = 1e-9


def assert_conserved(
    tables: dict[str, pd.DataFrame], intervals: Collection[int] | None = None
) -> None:
    """Every trade settled on both sides (in ``intervals``, default all): the P2P payments
    sum to zero per interval, and each party's row holds its traded energy."""
    pr, tr = tables["prosumers"], tables["trades"]
    if intervals is not None:
        pr = pr[pr["interval"].isin(intervals)]
        tr = tr[tr["interval"].isin(intervals)]
    assert np.allclose(pr.groupby("interval")["p2p_eur"].sum().to_numpy(), 0.0, atol=TOL)
    rows = pr.set_index(["interval", "prosumer"])
    for side, column in (("buyer", "p2p_bought_kwh"), ("seller", "p2p_sold_kwh")):
        for key, kwh in tr.groupby(["interval", side])["quantity_kwh"].sum().items():
            assert rows.loc[key, column] == pytest.approx(kwh, abs=TOL)


PROTOCOLS = ("auction", "bilateral")
INTERVAL = 5
#: A hand-made four-peer market (two buyers, two sellers) used by several test files.
FOUR_PEER_ENVELOPES = {p: Envelope(p, 5.0, 5.0) for p in ("a", "b", "c", "d")}
FOUR_PEER_ORDERS = {
    "a": Bid("a", INTERVAL, 0, 2.0, 0.30),
    "b": Bid("b", INTERVAL, 0, 2.0, 0.25),
    "c": Offer("c", INTERVAL, 0, 3.0, 0.10),
    "d": Offer("d", INTERVAL, 0, 3.0, 0.20),
}


@dataclass(frozen=True)
class Market:
    """One interval's inputs: public envelopes, each peer's order (or none), duration."""

    envelopes: dict[str, Envelope]
    orders: dict[str, Bid | Offer]
    duration_h: float


def seq_counter(start: int = 1) -> Callable[[], int]:
    """A ``next_seq`` source; orders built by :func:`markets` use seq 0."""
    counter = itertools.count(start)
    return lambda: next(counter)


def make_peers(name: str, market: Market, **options) -> dict[str, object]:
    """One protocol instance per prosumer of ``market``."""
    return {p: make_protocol(name, p, seq_counter(), **options) for p in market.envelopes}


def run_market(name: str, market: Market, drop=None, **options):
    """Run one interval; return (router, peers, final trades by peer)."""
    peers = make_peers(name, market, **options)
    router = LocalRouter(peers, drop=drop)
    finals = router.run(INTERVAL, market.orders, market.envelopes, market.duration_h)
    return router, peers, finals


PRICES = st.one_of(
    st.sampled_from([0.05, 0.1, 0.15, 0.2, 0.3]),  # a small set makes ties frequent
    st.floats(min_value=0.0, max_value=0.5, allow_nan=False),
)
LIMITS_KW = st.floats(min_value=0.0, max_value=10.0, allow_nan=False)
SIDES = st.sampled_from(["buy", "sell", "buy", "sell", "none"])


@st.composite
def markets(draw: st.DrawFn, min_peers: int = 2, max_peers: int = 10) -> Market:
    """Random envelopes and valid orders (inside each sender's envelope) of honest peers."""
    n = draw(st.integers(min_value=min_peers, max_value=max_peers))
    duration_h = draw(st.sampled_from([0.25, 0.5, 1.0]))
    envelopes, orders = {}, {}
    for k in range(n):
        peer = f"p{k:02d}"
        env = Envelope(peer, draw(LIMITS_KW), draw(LIMITS_KW))
        envelopes[peer] = env
        side = draw(SIDES)
        if side == "none":
            continue
        cls, limit_kw = (Bid, env.import_kw) if side == "buy" else (Offer, env.export_kw)
        limit_kwh = limit_kw * duration_h
        quantity = draw(
            st.one_of(st.just(limit_kwh), st.floats(min_value=0.0, max_value=limit_kwh))
        )
        orders[peer] = cls(peer, INTERVAL, 0, quantity, draw(PRICES))
    return Market(envelopes, orders, duration_h)


def payment_eur(trade: ClearedTrade, peer: str) -> float:
    """What ``peer`` pays for ``trade`` (cost positive): buyer +q*p, seller -q*p, else 0."""
    amount = trade.quantity_kwh * trade.price_eur_per_kwh
    if peer == trade.buyer:
        return amount
    return -amount if peer == trade.seller else 0.0


def agreed_trades(finals: dict[str, list[ClearedTrade]]) -> list[ClearedTrade]:
    """Trades both the buyer and the seller report identically, in trade-id order."""
    reported = {(peer, t) for peer, trades in finals.items() for t in trades}
    agreed = {t for peer, t in reported if peer == t.buyer and (t.seller, t) in reported}
    return sorted(agreed, key=lambda t: t.trade_id)


def all_trades(finals: dict[str, list[ClearedTrade]]) -> list[ClearedTrade]:
    """Every distinct final trade reported by any peer."""
    return sorted({t for trades in finals.values() for t in trades}, key=lambda t: t.trade_id)


def protocol_messages(router: LocalRouter) -> list:
    """The sent messages that are not ``Error`` replies."""
    return [s for s in router.sent if not isinstance(s[2], Error)]


def default_sigint() -> None:
    """``preexec_fn`` of a child the test stops with SIGINT: Python installs its Ctrl-C
    handler only when SIGINT is not ignored at start, and a shell's background job (a CI
    runner, ``nohup``) starts with it ignored."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def p2pvar_here(capsys: pytest.CaptureFixture[str], *args: str) -> subprocess.CompletedProcess:
    """``p2pvar ARGS`` run in this process (no interpreter start-up): its exit status (argparse's
    own refusals included) and what it printed, as a finished subprocess would give them.
    The signal handlers a command installs (``agent``) are put back."""
    from abm.cli.main import main

    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    capsys.readouterr()
    try:
        code = main(list(args))
    except SystemExit as exc:  # argparse refusing an argument
        code = exc.code
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess(["p2pvar", *args], code, out, err)
