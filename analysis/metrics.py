"""Run-level metrics computed from the result tables alone."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd


def summarize(tables: Mapping[str, pd.DataFrame], duration_h: float) -> dict[str, float]:
    """The end-of-run summary: costs, loss, voltages, market volumes, messages."""
    iv = tables["intervals"]
    pr = tables["prosumers"]
    tr = tables["trades"]
    msgs = tables["messages"]
    n_intervals = max(len(iv), 1)
    return {
        "intervals": len(iv),
        "prosumer_cost_eur": float(pr["bill_eur"].sum()),
        "retail_eur": float(pr["retail_eur"].sum()),
        "var_revenue_eur": 0.0 - float(pr["var_eur"].sum()),  # 0.0 - x: no "-0" when x == 0
        "p2p_payments_sum_eur": float(pr["p2p_eur"].sum()),
        "network_loss_kwh": float(iv["loss_kw"].sum() * duration_h),
        "vmin_pu": float(iv["vmin_pu"].min()),
        "vmax_pu": float(iv["vmax_pu"].max()),
        "voltage_violations": int(iv["n_voltage_violations"].sum()),
        "envelope_violations": int(iv["envelope_violations"].sum()),
        "import_violation_kwh": float(pr["import_violation_kw"].sum() * duration_h),
        "p2p_volume_kwh": float(tr["quantity_kwh"].sum()) if len(tr) else 0.0,
        "p2p_trades": len(tr),
        "var_volume_kvarh": float(iv["var_service_kvarh"].sum()),
        "pv_curtailed_kwh": float((pr["pv_kw"] - pr["pv_used_kw"]).sum() * duration_h),
        "messages_per_interval": float(msgs["messages"].sum() / n_intervals) if len(msgs) else 0.0,
        "bytes_per_interval": float(msgs["bytes"].sum() / n_intervals) if len(msgs) else 0.0,
    }
