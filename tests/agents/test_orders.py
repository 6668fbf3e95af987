"""Order formation: side-relative limit price, minimum quantity, array shapes."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from agents.orders import MIN_ORDER_KWH, SIDE_BUY, SIDE_NONE, SIDE_SELL, Orders, form_orders
from agents.policy import Action, Observation

RETAIL, FEED_IN = 0.30, 0.05
unit = st.floats(-1.0, 1.0)


def orders_of(p_kw, limit_kw, trade, price, retail, feed_in, duration_h, charge=0.0) -> Orders:
    """:func:`form_orders` with the envelope ``[-limit_kw, limit_kw]`` and these tariffs."""
    obs = Observation(
        *([0.0] * 8),
        export_kw=limit_kw,
        import_kw=limit_kw,
        q_min_kvar=0.0,
        q_max_kvar=0.0,
        var_price_eur_per_kvarh=0.0,
        retail_eur_per_kwh=retail,
        feed_in_eur_per_kwh=feed_in,
        last_price_eur_per_kwh=0.0,
        last_vm_pu=1.0,
        p2p_market=True,
        var_market=False,
    )
    return form_orders(p_kw, Action(0.0, trade, price, 0.0), obs, duration_h, charge)


@given(p_kw=st.floats(-50.0, 50.0), trade=unit, price=unit, charge=st.sampled_from([0.0, 0.03]))
def test_price_means_the_same_on_either_side(
    p_kw: float, trade: float, price: float, charge: float
) -> None:
    """Mirrored positions with the same action ask the same share of the spread."""
    sell = orders_of(abs(p_kw), 40.0, trade, price, RETAIL, FEED_IN, 1.0, charge)
    buy = orders_of(-abs(p_kw), 40.0, trade, price, RETAIL, FEED_IN, 1.0, charge)
    assert float(sell.quantity_kwh) == float(buy.quantity_kwh)
    if float(sell.quantity_kwh) > 0:
        assert (int(sell.side), int(buy.side)) == (SIDE_SELL, SIDE_BUY)
        assert float(sell.quantity_kwh) >= MIN_ORDER_KWH
        markup_sell = float(sell.limit_price_eur_per_kwh) - (FEED_IN + charge / 2)
        markup_buy = (RETAIL - charge / 2) - float(buy.limit_price_eur_per_kwh)
        assert np.isclose(markup_sell, markup_buy)
        assert np.isclose(markup_sell, (price + 1) / 2 * (RETAIL - FEED_IN - charge))
    else:
        assert int(sell.side) == int(buy.side) == SIDE_NONE


def test_truthful_price_is_the_sides_outside_option_and_dust_is_not_sent() -> None:
    dust = 0.5 * MIN_ORDER_KWH
    p_kw = np.array([10.0, -10.0, dust, -dust, 0.0, 2 * MIN_ORDER_KWH])
    orders = orders_of(p_kw, 40.0, 1.0, -1.0, RETAIL, FEED_IN, 1.0)
    assert orders.side.tolist() == [SIDE_SELL, SIDE_BUY, SIDE_NONE, SIDE_NONE, SIDE_NONE, SIDE_SELL]
    assert orders.quantity_kwh.tolist() == [10.0, 10.0, 0.0, 0.0, 0.0, 2 * MIN_ORDER_KWH]
    assert orders.limit_price_eur_per_kwh[[0, 5]].tolist() == [FEED_IN, FEED_IN]
    assert np.isclose(orders.limit_price_eur_per_kwh[1], RETAIL)


def test_truthful_orders_net_of_the_network_charge_and_none_across_a_too_small_spread() -> None:
    sell, buy = (orders_of(p, 40.0, 1.0, -1.0, RETAIL, FEED_IN, 1.0, 0.04) for p in (5, -5))
    assert float(sell.limit_price_eur_per_kwh) == pytest.approx(FEED_IN + 0.02)  # half each
    assert float(buy.limit_price_eur_per_kwh) == pytest.approx(RETAIL - 0.02)
    # A charge above the spread: the seller's floor is above the buyer's cap, whatever markup.
    for price in (-1.0, 0.0, 1.0):
        ask = orders_of(5.0, 40.0, 1.0, price, RETAIL, FEED_IN, 1.0, 0.5)
        bid = orders_of(-5.0, 40.0, 1.0, price, RETAIL, FEED_IN, 1.0, 0.5)
        assert float(ask.limit_price_eur_per_kwh) > float(bid.limit_price_eur_per_kwh) >= 0.0


def test_batch_of_worlds_broadcasts() -> None:
    """A leading world axis with per-world tariffs: (B, N) in, (B, N) out."""
    rng = np.random.default_rng(0)
    p_kw = rng.uniform(-20, 20, (3, 5))
    retail = np.array([[0.1], [0.2], [0.3]])
    orders = orders_of(p_kw, 15.0, 0.0, -1.0, retail, FEED_IN, 0.5)
    assert orders.side.shape == orders.quantity_kwh.shape == (3, 5)
    for b in range(3):
        row = orders_of(p_kw[b], 15.0, 0.0, -1.0, retail[b, 0], FEED_IN, 0.5)
        limit = orders.limit_price_eur_per_kwh[b]
        np.testing.assert_array_equal(row.limit_price_eur_per_kwh, limit)
        np.testing.assert_array_equal(row.quantity_kwh, orders.quantity_kwh[b])
