"""Two-winding transformers as branches of a radial feeder (``docs/grid.md``).

A transformer is a branch of the feeder's tree like a line. Its series (short-circuit)
impedance is the branch's ``r_ohm``/``x_ohm``, in ohm at its low-voltage side (at the tap
position), its rated current at the low-voltage side the branch's ``i_max_ka``; the rest
is here: the winding voltages at the tap position, the phase shift, the magnetising
admittance and the rated current at the high-voltage side. The model is pandapower's
``trafo_model="t"``: half the series impedance on each side of the magnetising branch, an
ideal transformer at the high-voltage side with ratio
``N = (vn_hv_kv / vn_lv_kv) / (V_base,hv / V_base,lv) · exp(j shift_degree)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from dso.errors import NetworkError

S_BASE_MVA = 1.0
US_PER_S = 1e6
#: Tap changer types whose tap scales the winding voltage (no phase shift).
RATIO_TAP_TYPES = ("Ratio", "Symmetrical")


@dataclass(frozen=True, eq=False)
class Transformers:
    """The transformers among a feeder's branches, one entry per transformer.

    ``branch``: its branch index in the feeder; ``hv_bus``: the feeder bus at its
    high-voltage side (the other end of the branch is the low-voltage side).
    ``vn_hv_kv``/``vn_lv_kv``: winding voltages at the tap position. ``g_mag_us``,
    ``b_mag_us``: magnetising conductance (iron loss) and inductive susceptance (>= 0), in
    µS at the low-voltage side. ``i_max_hv_ka``: rated current at the high-voltage side.
    """

    branch: np.ndarray
    hv_bus: np.ndarray
    vn_hv_kv: np.ndarray
    vn_lv_kv: np.ndarray
    shift_degree: np.ndarray
    g_mag_us: np.ndarray
    b_mag_us: np.ndarray
    i_max_hv_ka: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.branch)
        for name in self.__dataclass_fields__:
            dtype = np.int64 if name in ("branch", "hv_bus") else float
            arr = np.array(getattr(self, name), dtype=dtype).reshape(-1)
            if len(arr) != n or not np.isfinite(arr).all():
                raise NetworkError(f"transformer field {name}: {n} finite values required")
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)
        if (
            (self.vn_hv_kv <= 0).any()
            or (self.vn_lv_kv <= 0).any()
            or (self.i_max_hv_ka <= 0).any()
        ):
            raise NetworkError("transformer voltages and ratings must be > 0")

    def __len__(self) -> int:
        return len(self.branch)

    @staticmethod
    def none() -> Transformers:
        """No transformer."""
        empty = np.zeros(0)
        return Transformers(*([empty] * 8))


@dataclass(frozen=True)
class TrafoRows:
    """Transformers read from a pandapower network (pandapower bus numbers), before they
    become branches of a feeder."""

    names: tuple[str, ...]
    hv_bus: np.ndarray
    lv_bus: np.ndarray
    r_ohm: np.ndarray
    x_ohm: np.ndarray
    i_max_lv_ka: np.ndarray
    values: dict[str, np.ndarray]  # the Transformers fields but branch and hv_bus

    @staticmethod
    def none() -> TrafoRows:
        """No transformer."""
        empty = np.zeros(0)
        fields = ("vn_hv_kv", "vn_lv_kv", "shift_degree", "g_mag_us", "b_mag_us", "i_max_hv_ka")
        ints = np.zeros(0, dtype=int)
        return TrafoRows((), ints, ints, empty, empty, empty, dict.fromkeys(fields, empty))


def _column(table: Any, col: str, default: Any) -> np.ndarray:
    if col not in table:
        return np.full(len(table), default, dtype=object)
    return table[col].to_numpy(dtype=object)


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _tap_factors(trafos: Any, names: tuple[str, ...], name: str) -> tuple[np.ndarray, np.ndarray]:
    """Winding voltage factors (hv, lv) of each transformer's tap position, as ``runpp``.

    A tap of type Ratio/Symmetrical scales its side's winding voltage by
    ``1 + (tap_pos - tap_neutral) · tap_step_percent / 100``; without a tap changer type
    pandapower ignores the tap, and so does this. Phase-shifting taps, a second tap changer
    and tap-dependent impedances are refused.
    """
    hv = np.ones(len(trafos))
    lv = np.ones(len(trafos))
    kinds = _column(trafos, "tap_changer_type", None)
    sides = _column(trafos, "tap_side", None)
    for col in ("tap_step_degree", "tap2_pos", "tap_dependency_table"):
        values = _column(trafos, col, None)
        for k, value in enumerate(values):
            if not _missing(value) and value not in (0, 0.0, False):
                raise NetworkError(
                    f"network {name}: transformer {names[k]!r} has {col} = {value!r} "
                    "(phase-shifting, second or tap-dependent tap changers are not supported)"
                )
    for col in ("leakage_resistance_ratio_hv", "leakage_reactance_ratio_hv"):
        for k, value in enumerate(_column(trafos, col, None)):
            if not _missing(value) and value != 0.5:
                raise NetworkError(
                    f"network {name}: transformer {names[k]!r} has {col} = {value!r} "
                    "(only the symmetric T model, 0.5, is supported)"
                )
    pos = _column(trafos, "tap_pos", np.nan)
    neutral = _column(trafos, "tap_neutral", np.nan)
    step = _column(trafos, "tap_step_percent", np.nan)
    for k, kind in enumerate(kinds):
        if _missing(kind) or _missing(pos[k]):
            continue
        if kind not in RATIO_TAP_TYPES:
            raise NetworkError(
                f"network {name}: transformer {names[k]!r} has tap_changer_type {kind!r} "
                f"(supported: {', '.join(RATIO_TAP_TYPES)})"
            )
        factor = 1.0 + (float(pos[k]) - float(neutral[k])) * float(step[k]) / 100.0
        if sides[k] == "hv":
            hv[k] = factor
        elif sides[k] == "lv":
            lv[k] = factor
        else:
            raise NetworkError(
                f"network {name}: transformer {names[k]!r} has tap_side {sides[k]!r}"
            )
        if not math.isfinite(factor) or factor <= 0:
            raise NetworkError(f"network {name}: transformer {names[k]!r} has an invalid tap")
    return hv, lv


def read_trafos(trafos: Any, names: tuple[str, ...], name: str) -> TrafoRows:
    """The in-service two-winding transformers of a pandapower ``trafo`` table.

    ``parallel`` multiplies the rating and the magnetising admittance and divides the
    series impedance; ``df`` derates the rating, as in pandapower's loading.
    """
    tap_hv, tap_lv = _tap_factors(trafos, names, name)

    def col(c: str) -> np.ndarray:
        return trafos[c].to_numpy(dtype=float)

    sn, parallel = col("sn_mva"), col("parallel")
    vn_hv, vn_lv = col("vn_hv_kv") * tap_hv, col("vn_lv_kv") * tap_lv
    vk, vkr = col("vk_percent") / 100.0, col("vkr_percent") / 100.0
    if (sn <= 0).any() or (vk <= 0).any() or (vkr < 0).any() or (vkr > vk).any():
        bad = int(np.flatnonzero((sn <= 0) | (vk <= 0) | (vkr < 0) | (vkr > vk))[0])
        raise NetworkError(
            f"network {name}: transformer {names[bad]!r} needs sn_mva > 0 and "
            f"0 <= vkr_percent <= vk_percent > 0"
        )
    z_ohm = vk * vn_lv**2 / sn / parallel
    r_ohm = vkr * vn_lv**2 / sn / parallel
    pfe_mw = col("pfe_kw") / 1000.0
    y_mva = col("i0_percent") / 100.0 * sn
    g_us = pfe_mw / vn_lv**2 * parallel * US_PER_S
    b_us = np.sqrt(np.maximum(y_mva**2 - pfe_mw**2, 0.0)) / vn_lv**2 * parallel * US_PER_S
    rating_mva = sn * parallel * col("df")
    return TrafoRows(
        names=names,
        hv_bus=trafos.hv_bus.to_numpy(int),
        lv_bus=trafos.lv_bus.to_numpy(int),
        r_ohm=r_ohm,
        x_ohm=np.sqrt(z_ohm**2 - r_ohm**2),
        i_max_lv_ka=rating_mva / (math.sqrt(3) * col("vn_lv_kv")),
        values={
            "vn_hv_kv": vn_hv,
            "vn_lv_kv": vn_lv,
            "shift_degree": col("shift_degree"),
            "g_mag_us": g_us,
            "b_mag_us": b_us,
            "i_max_hv_ka": rating_mva / (math.sqrt(3) * col("vn_hv_kv")),
        },
    )


def merge_parallel(rows: TrafoRows, hv: np.ndarray, lv: np.ndarray, name: str) -> TrafoRows:
    """``rows`` between the feeder buses ``hv``/``lv``. Identical transformers in parallel
    (same two buses, same parameters) become one branch named ``"A + B"``: exact, and its
    loading is each one's. Any other parallel pair closes a loop and is refused."""
    groups: dict[tuple[int, int], list[int]] = {}
    for k, ends in enumerate(zip(hv.tolist(), lv.tolist(), strict=True)):
        if ends[0] == ends[1]:
            raise NetworkError(
                f"network {name}: transformer {rows.names[k]!r} joins fused buses (both sides "
                "on one bus)"
            )
        groups.setdefault((min(ends), max(ends)), []).append(k)

    def params(k: int) -> np.ndarray:
        own = [rows.r_ohm[k], rows.x_ohm[k], rows.i_max_lv_ka[k], hv[k]]
        return np.array(own + [v[k] for v in rows.values.values()])

    for members in groups.values():
        for k in members[1:]:
            if not np.allclose(params(k), params(members[0]), rtol=1e-12, atol=0.0):
                raise NetworkError(
                    f"network {name} is meshed: transformer {rows.names[k]!r} is in parallel "
                    f"with {rows.names[members[0]]!r} but not identical (a radial feeder is "
                    "required)"
                )
    keep = np.array([m[0] for m in groups.values()], dtype=int)
    count = np.array([len(m) for m in groups.values()], dtype=float)
    scale = {"g_mag_us": count, "b_mag_us": count, "i_max_hv_ka": count}
    return TrafoRows(
        names=tuple(" + ".join(rows.names[k] for k in m) for m in groups.values()),
        hv_bus=hv[keep],
        lv_bus=lv[keep],
        r_ohm=rows.r_ohm[keep] / count,
        x_ohm=rows.x_ohm[keep] / count,
        i_max_lv_ka=rows.i_max_lv_ka[keep] * count,
        values={k: v[keep] * scale.get(k, 1.0) for k, v in rows.values.items()},
    )


def pi_model_pu(
    trafos: Transformers, z_ohm: np.ndarray, vn_hv_bus_kv: np.ndarray, vn_lv_bus_kv: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per transformer: the pi equivalent of its T model in per unit of its low-voltage bus,
    ``(z_series, y_hv, y_lv)``, and its ideal ratio ``N`` (complex, at the high-voltage
    side: ``V_hv = N V_internal``), as pandapower's ``_wye_delta``.

    ``z_ohm``: series impedance at the low-voltage side; ``vn_*_bus_kv``: base voltages of
    the buses at either side.
    """
    z_base = vn_lv_bus_kv**2 / S_BASE_MVA
    z = z_ohm / z_base
    y_mag = (trafos.g_mag_us - 1j * trafos.b_mag_us) / US_PER_S * z_base
    half = z / 2
    # wye (half, half, 1 / y_mag) to delta: series 2 half + half² y_mag, and at either
    # side y_mag / (2 + half y_mag) (0 without magnetising)
    z_series = 2 * half + half * half * y_mag
    y_side = y_mag / (2 + half * y_mag)
    ratio = (trafos.vn_hv_kv / trafos.vn_lv_kv) / (vn_hv_bus_kv / vn_lv_bus_kv)
    n = ratio * np.exp(1j * np.deg2rad(trafos.shift_degree))
    return z_series, y_side, y_side.copy(), n


def add_pandapower_trafos(
    net: Any,
    feeder_trafos: Transformers,
    lv_bus: np.ndarray,
    r_ohm: np.ndarray,
    x_ohm: np.ndarray,
    names: tuple[str, ...],
) -> None:
    """Create the transformers in a pandapower network, model for model (no tap: the
    winding voltages at the tap position, series impedance and magnetising branch)."""
    import pandapower as pp

    t = feeder_trafos
    for k in range(len(t)):
        sn = 1.0
        z_base = t.vn_lv_kv[k] ** 2 / sn
        vk = math.hypot(r_ohm[k], x_ohm[k]) / z_base * 100.0
        y = complex(t.g_mag_us[k], t.b_mag_us[k]) / US_PER_S * t.vn_lv_kv[k] ** 2  # MVA
        pp.create_transformer_from_parameters(
            net,
            int(t.hv_bus[k]),
            int(lv_bus[k]),
            sn_mva=sn,
            vn_hv_kv=float(t.vn_hv_kv[k]),
            vn_lv_kv=float(t.vn_lv_kv[k]),
            vkr_percent=float(r_ohm[k] / z_base * 100.0),
            vk_percent=float(vk),
            pfe_kw=float(y.real * 1000.0),
            i0_percent=float(abs(y) / sn * 100.0),
            shift_degree=float(t.shift_degree[k]),
            name=names[k],
        )
