"""Derive the compact household load and PV profile file ``abm/data/profiles.npz`` from SimBench.

The project never depends on ``simbench`` (about 380 MB installed); this script runs once in a
throwaway virtual environment and its output is committed. To regenerate::

    python3 -m venv /tmp/sbvenv
    /tmp/sbvenv/bin/pip install simbench==1.6.3
    /tmp/sbvenv/bin/python scripts/prepare_profiles.py            # writes abm/data/profiles.npz

then update the sha256 and the figures this script prints in ``abm/data/PROFILES.md``.

What it takes from SimBench's scenario-0 ("today") profile tables (year 2016, 15-minute
steps, 96 rows per day):

* load: the five residential profiles ``H0-A``, ``H0-B``, ``H0-C``, ``H0-G``, ``H0-L`` (active
  power ``*_pload``), the household profiles SimBench assigns to its low-voltage loads;
* PV: the eight photovoltaic profiles ``PV1`` .. ``PV8`` (relative to the rated power of the
  generator, i.e. kW per kWp).

What it does to them: drops 29 February (2016 is a leap year; the project uses 365 days),
rescales each load profile to an annual 15-minute peak of exactly 1.0 and stores everything as
float32 15-minute series. SimBench's time labels are local time with daylight-saving jumps
but every day has 96 rows, so rows are indexed by position (day ``d`` is rows ``96 d`` to
``96 d + 95``). The zip archive is written with fixed timestamps, so the same inputs give the
same bytes (and the same sha256).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import sys
import zipfile
from importlib import metadata
from pathlib import Path

import numpy as np

LOAD_PROFILES = ("H0-A", "H0-B", "H0-C", "H0-G", "H0-L")
PV_PROFILES = tuple(f"PV{i}" for i in range(1, 9))
SIMBENCH_SCENARIO = 0  # SimBench scenario 0: today's grid (profiles are shared by all three)
SOURCE_YEAR = 2016
LEAP_DAY_INDEX = 59  # 0-based day of 29 February 2016 (31 + 28 days before it)
STEPS_PER_DAY = 96  # 15-minute resolution
INTERVAL_MIN = 15
DAYS_OUT = 365
ZIP_DATE_TIME = (1980, 1, 1, 0, 0, 0)  # fixed member timestamps: reproducible bytes
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "abm" / "data" / "profiles.npz"


def _drop_leap_day(values: np.ndarray) -> np.ndarray:
    """Remove the 96 rows of 29 February from a (366 * 96, n) array."""
    start = LEAP_DAY_INDEX * STEPS_PER_DAY
    return np.delete(values, np.s_[start : start + STEPS_PER_DAY], axis=0)


def extract() -> dict[str, np.ndarray]:
    """Read SimBench's profiles and return the arrays to store (keys of the npz file)."""
    import simbench  # only in the throwaway environment, never a project dependency

    tables = simbench.get_all_simbench_profiles(SIMBENCH_SCENARIO)
    load = tables["load"][[f"{name}_pload" for name in LOAD_PROFILES]].to_numpy(np.float64)
    pv = tables["renewables"][list(PV_PROFILES)].to_numpy(np.float64)
    rows_in = 366 * STEPS_PER_DAY
    if load.shape[0] != rows_in or pv.shape[0] != rows_in:
        sys.exit(f"expected {rows_in} rows (leap year 2016), got {load.shape[0]} and {pv.shape[0]}")
    load = _drop_leap_day(load)
    pv = _drop_leap_day(pv)
    if load.min() < 0 or pv.min() < 0:
        sys.exit("negative values in the source profiles; refusing to write")
    load = load / load.max(axis=0)
    source = {
        "package": "simbench",
        "package_version": metadata.version("simbench"),
        "scenario": SIMBENCH_SCENARIO,
        "year": SOURCE_YEAR,
        "dropped_day": f"{SOURCE_YEAR}-02-29",
        "load_columns": [f"{name}_pload" for name in LOAD_PROFILES],
        "pv_columns": list(PV_PROFILES),
        "licence": "ODbL-1.0 (database), DbCL-1.0 (contents)",
        "script": "scripts/prepare_profiles.py",
    }
    return {
        "interval_min": np.array(INTERVAL_MIN, dtype=np.int64),
        "load_names": np.array(LOAD_PROFILES),
        "pv_names": np.array(PV_PROFILES),
        "load_p_pu": load.astype(np.float32),
        "pv_p_kw_per_kwp": pv.astype(np.float32),
        "source_json": np.array(json.dumps(source, sort_keys=True)),
    }


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> bytes:
    """Write ``arrays`` as a deflated ``.npz`` with fixed member timestamps; return the bytes."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for key in sorted(arrays):
            info = zipfile.ZipInfo(f"{key}.npy", date_time=ZIP_DATE_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            member = io.BytesIO()
            np.lib.format.write_array(member, np.array(arrays[key], order="C"), allow_pickle=False)
            archive.writestr(info, member.getvalue())
    data = buf.getvalue()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return data


def summary(arrays: dict[str, np.ndarray]) -> list[str]:
    """Figures for PROFILES.md: full-load hours (kWh per kW of peak or per kWp), maxima, mean."""
    hours = STEPS_PER_DAY // 4 * DAYS_OUT
    lines = []
    for key, names in (("load_p_pu", "load_names"), ("pv_p_kw_per_kwp", "pv_names")):
        values = arrays[key].astype(np.float64)
        hourly = values.reshape(hours, 4, -1).mean(axis=1)
        for j, name in enumerate(arrays[names]):
            lines.append(
                f"{key} {name}: full-load hours {values[:, j].sum() * INTERVAL_MIN / 60:.1f} h/a, "
                f"15-min max {values[:, j].max():.4f}, hourly max {hourly[:, j].max():.4f}, "
                f"mean {values[:, j].mean():.4f}"
            )
    return lines


def main() -> int:
    """Command line: extract, write, print the sha256 and summary figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output .npz path")
    args = parser.parse_args()
    arrays = extract()
    data = write_npz(args.out, arrays)
    print(f"wrote {args.out} ({len(data)} bytes)")
    print(f"sha256 {hashlib.sha256(data).hexdigest()}")
    print(f"source {arrays['source_json']}")
    for line in summary(arrays):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
