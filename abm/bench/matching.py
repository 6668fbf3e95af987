"""``p2pvar bench matching``: the batched auction matcher beside the scalar one in a loop."""

from __future__ import annotations

import argparse
import functools
from typing import Any

import numpy as np

from abm.bench.timing import calls_per_s
from abm.cli.commands.output import emit
from abm.errors import ConfigError

#: World counts of one batched call.
BATCH_SIZES = (1, 16, 64, 256)
#: Random books: share of prosumers without an order, quantity and price ranges.
ABSTAIN_SHARE = 0.2
QUANTITY_KWH = (0.0, 5.0)
PRICE_EUR_PER_KWH = (0.05, 0.30)
#: Seconds each figure is timed for (whole calls, at least one).
TIME_BUDGET_S = 0.5


def random_books(
    n_worlds: int, n_prosumers: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(is_bid, quantity_kwh, limit_price_eur_per_kwh)``, each ``(n_worlds, n_prosumers)``."""
    shape = (n_worlds, n_prosumers)
    quantity = rng.uniform(*QUANTITY_KWH, shape)
    quantity[rng.random(shape) < ABSTAIN_SHARE] = 0.0
    return rng.random(shape) < 0.5, quantity, rng.uniform(*PRICE_EUR_PER_KWH, shape)


def bench_matching(n_prosumers: int = 32, seed: int = 0) -> dict[str, Any]:
    """Order books matched per second: batched for each of ``BATCH_SIZES`` worlds, and the
    scalar matcher in a loop over the same books; checks that both give the same trades."""
    from agents.clearing.batch_matching import match_batch
    from agents.clearing.matching import Order, match_double_auction

    senders = [f"p{k:03d}" for k in range(n_prosumers)]
    side, q, price = random_books(max(BATCH_SIZES), n_prosumers, np.random.default_rng(seed))
    books = [
        tuple(
            [Order(senders[k], q[w, k], price[w, k]) for k in np.flatnonzero(q[w] > 0) if pick(k)]
            for pick in (lambda k, w=w: side[w, k], lambda k, w=w: not side[w, k])
        )
        for w in range(len(q))
    ]
    scalar = [match_double_auction(*book) for book in books]
    batch = match_batch(side, q, price, senders)
    result: dict[str, Any] = {
        "n_prosumers": n_prosumers,
        "identical": all(batch.matches(w, senders) == scalar[w] for w in range(len(q))),
        "trades_per_book": len(batch.world) / len(q),
        "scalar_fallback_worlds": batch.n_scalar_worlds,
    }
    rate = calls_per_s(
        lambda: [match_double_auction(*book) for book in books], TIME_BUDGET_S
    ) * len(books)
    result["books_per_s_scalar"] = rate
    for b in BATCH_SIZES:
        args = (side[:b], q[:b], price[:b], senders)
        result[f"books_per_s_batch_{b}"] = (
            calls_per_s(functools.partial(match_batch, *args), TIME_BUDGET_S) * b
        )
    best = max(result[f"books_per_s_batch_{b}"] for b in BATCH_SIZES)
    result["speedup_vs_scalar"] = best / rate
    return result


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``bench matching``."""
    parser = sub.add_parser(
        "matching",
        help="batched double-auction matching against the scalar matcher in a loop",
        description="Random order books (one order or none per prosumer) matched by the "
        f"batched matcher for {', '.join(map(str, BATCH_SIZES))} worlds per call and by the "
        "scalar matcher in a loop over the same books, in the same run; checks that both "
        "give identical trades.",
    )
    parser.add_argument("--prosumers", type=int, default=32, help="prosumers per world")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random books")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the benchmark and print its figures."""
    if args.prosumers < 1:
        raise ConfigError(f"prosumers must be >= 1, got {args.prosumers}")
    result = bench_matching(args.prosumers, args.seed)
    emit(result, args.json, title="matching benchmark (order books matched per second)")
    return 0
