"""Run-level metrics computed from the result tables alone, and the interval totals of the
prosumers' bills."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from analysis.tables import BILL_TOTAL_COLUMNS
from dso.outcome import dso_net_eur


def with_bill_totals(intervals: pd.DataFrame, prosumers: pd.DataFrame) -> pd.DataFrame:
    """``intervals`` with the interval sums of the prosumers' bills (:data:`BILL_TOTAL_COLUMNS`).

    The prosumers own their bills (only they know their final trades), so the money the
    retailer and the DSO receive is summed from the ``prosumers`` rows:
    ``retail_paid_eur`` (retail amounts), ``p2p_network_charge_eur`` (network charges) and
    ``dso_net_eur = loss_saved_eur + p2p_network_charge_eur - var_paid_eur``.
    """
    # float first: an empty prosumers table (nobody took part) has object columns
    sums = prosumers.astype({"retail_eur": float, "network_eur": float})
    sums = sums.groupby("interval")[["retail_eur", "network_eur"]].sum()
    out = intervals.drop(columns=[c for c in BILL_TOTAL_COLUMNS if c in intervals.columns])
    by_interval = sums.reindex(out["interval"], fill_value=0.0).to_numpy(dtype=float)
    out["retail_paid_eur"] = by_interval[:, 0] + 0.0
    out["p2p_network_charge_eur"] = by_interval[:, 1] + 0.0
    out["dso_net_eur"] = dso_net_eur(
        out["loss_saved_eur"], out["p2p_network_charge_eur"], out["var_paid_eur"]
    )
    return out


def summarize(tables: Mapping[str, pd.DataFrame], duration_h: float) -> dict[str, float]:
    """The end-of-run summary: costs, loss, voltages, market volumes, messages."""
    iv = tables["intervals"]
    pr = tables["prosumers"]
    tr = tables["trades"]
    msgs = tables["messages"]
    n_intervals = max(len(iv), 1)
    prosumers = 0.0 - float(pr["bill_eur"].sum())  # 0.0 - x: no "-0" when x == 0
    dso = float(iv["dso_net_eur"].sum())
    retailer = float(pr["retail_eur"].sum())
    return {
        "intervals": len(iv),
        "prosumer_cost_eur": float(pr["bill_eur"].sum()),
        "retail_eur": float(pr["retail_eur"].sum()),
        "var_revenue_eur": 0.0 - float(pr["var_eur"].sum()),
        "network_charge_eur": float(pr["network_eur"].sum()),
        "storage_eur": float(pr["storage_eur"].sum()),
        "p2p_payments_sum_eur": float(pr["p2p_eur"].sum()),
        "welfare_prosumers_eur": prosumers,
        "welfare_dso_eur": dso,
        "welfare_retailer_eur": retailer,
        "welfare_total_eur": prosumers + dso + retailer,
        "dso_net_min_interval_eur": float(iv["dso_net_eur"].min()) if len(iv) else 0.0,
        "loss_saved_kwh": float(iv["loss_saved_kw"].sum() * duration_h),
        "network_loss_kwh": float(iv["loss_kw"].sum() * duration_h),
        "vmin_pu": float(iv["vmin_pu"].min()),
        "vmax_pu": float(iv["vmax_pu"].max()),
        "voltage_violations": int(iv["n_voltage_violations"].sum()),
        "envelope_violations": int(iv["envelope_violations"].sum()),
        "import_violation_kwh": float(pr["import_violation_kw"].sum() * duration_h),
        "policy_fallbacks": int(pr["policy_fallback"].fillna("").astype(str).ne("").sum()),
        "p2p_volume_kwh": float(tr["quantity_kwh"].sum()) if len(tr) else 0.0,
        "p2p_trades": len(tr),
        "var_volume_kvarh": float(iv["var_service_kvarh"].sum()),
        "pv_curtailed_kwh": float((pr["pv_kw"] - pr["pv_used_kw"]).sum() * duration_h),
        "messages_per_interval": float(msgs["messages"].sum() / n_intervals) if len(msgs) else 0.0,
        "bytes_per_interval": float(msgs["bytes"].sum() / n_intervals) if len(msgs) else 0.0,
    }
