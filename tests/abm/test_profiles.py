"""The packaged load/PV profiles: loading, ranges, resampling, the day split, bad files."""

from __future__ import annotations

import hashlib
import io
import itertools
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from abm.errors import AbmError, ConfigError
from abm.inputs.profiles import (
    DAYS,
    SUPPORTED_INTERVALS_MIN,
    TEST_DAYS,
    TRAIN_DAYS,
    ProfileDataError,
    check_day,
    load_profiles,
    packaged_profile_file,
    read_profiles,
)

NIGHT_HOURS = (0, 1, 2, 21, 22, 23)  # hours of the profile clock with no sun all year


@pytest.mark.parametrize("interval_min", SUPPORTED_INTERVALS_MIN)
def test_packaged_file_loads_with_day_shaped_read_only_arrays(interval_min: int) -> None:
    profiles = load_profiles(interval_min)
    steps = 24 * 60 // interval_min
    assert profiles.intervals_per_day == steps
    assert profiles.load_p_pu.shape == (DAYS, steps, len(profiles.load_names))
    assert profiles.pv_p_kw_per_kwp.shape == (DAYS, steps, len(profiles.pv_names))
    assert len(profiles.load_names) >= 4 and len(profiles.pv_names) >= 4
    assert not profiles.load_p_pu.flags.writeable
    with pytest.raises(ValueError):
        profiles.pv_p_kw_per_kwp[0, 0, 0] = 1.0


def test_provenance_names_simbench() -> None:
    source = load_profiles().source
    assert source["package"] == "simbench"
    assert source["dropped_day"] == "2016-02-29"
    assert [f"{n}_pload" for n in load_profiles().load_names] == source["load_columns"]


@pytest.mark.parametrize("interval_min", SUPPORTED_INTERVALS_MIN)
def test_load_is_normalised_to_an_annual_peak_of_one(interval_min: int) -> None:
    load = load_profiles(interval_min).load_p_pu
    np.testing.assert_allclose(load.max(axis=(0, 1)), 1.0, rtol=0, atol=1e-12)
    assert load.min() >= 0.0
    # the profiles are different households, not one profile copied
    flat = load.reshape(-1, load.shape[-1])
    assert np.corrcoef(flat.T)[np.triu_indices(flat.shape[1], 1)].max() < 0.9


def test_pv_is_per_kwp_and_zero_at_night() -> None:
    pv = load_profiles(60).pv_p_kw_per_kwp
    assert pv.min() >= 0.0 and pv.max() <= 1.0
    assert np.all(pv[:, NIGHT_HOURS, :] == 0.0)
    annual_kwh_per_kwp = pv.sum(axis=(0, 1))
    assert np.all((annual_kwh_per_kwp > 400) & (annual_kwh_per_kwp < 1300))
    june, december = pv[152:182].sum(axis=1).mean(), pv[334:365].sum(axis=1).mean()
    assert june > 2 * december


def test_coarser_intervals_average_the_15_minute_data() -> None:
    fine, hourly = load_profiles(15), load_profiles(60)
    pv_mean = fine.pv_p_kw_per_kwp.reshape(DAYS, 24, 4, -1).mean(axis=2)
    np.testing.assert_allclose(hourly.pv_p_kw_per_kwp, pv_mean, atol=1e-12)
    load_mean = fine.load_p_pu.reshape(DAYS, 24, 4, -1).mean(axis=2)
    np.testing.assert_allclose(hourly.load_p_pu, load_mean / load_mean.max(axis=(0, 1)))


def test_profile_indices_name_the_columns() -> None:
    profiles = load_profiles()
    assert profiles.load_index(profiles.load_names[2]) == 2
    assert profiles.pv_index(profiles.pv_names[-1]) == len(profiles.pv_names) - 1
    with pytest.raises(ConfigError, match=r"load_profile = 'H9-Z'"):
        profiles.load_index("H9-Z")
    with pytest.raises(ConfigError, match=r"pv_profile = 'PV99'"):
        profiles.pv_index("PV99")


def test_train_and_test_days_are_disjoint_and_cover_the_year() -> None:
    assert set(TRAIN_DAYS).isdisjoint(TEST_DAYS)
    assert sorted(TRAIN_DAYS + TEST_DAYS) == list(range(DAYS))
    assert (len(TRAIN_DAYS), len(TEST_DAYS)) == (292, 73)
    assert all(d % 5 == 4 for d in TEST_DAYS)  # every fifth day is held out
    assert not any(d % 5 == 4 for d in TRAIN_DAYS)
    months = np.cumsum([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])
    for start, end in itertools.pairwise(months):
        assert any(start <= d < end for d in TEST_DAYS)
        assert any(start <= d < end for d in TRAIN_DAYS)
    assert {d % 7 for d in TEST_DAYS} == set(range(7))


@pytest.mark.parametrize("day", [-1, 365, 2.0, True, "3"])
def test_bad_day_is_a_config_error(day: object) -> None:
    with pytest.raises(ConfigError, match=r"^day = "):
        check_day(day)  # type: ignore[arg-type]


@pytest.mark.parametrize("interval_min", [0, 5, 20, 45, 120])
def test_unsupported_interval_is_a_config_error(interval_min: int) -> None:
    with pytest.raises(ConfigError, match=rf"interval_min = {interval_min}"):
        load_profiles(interval_min)


def test_committed_file_matches_the_sha256_in_profiles_md() -> None:
    notes = packaged_profile_file().parent.joinpath("PROFILES.md").read_text()
    stated = re.search(r"sha256 of `profiles\.npz`: `([0-9a-f]{64})`", notes)
    assert stated is not None
    digest = hashlib.sha256(packaged_profile_file().read_bytes()).hexdigest()
    assert digest == stated.group(1)


def _packaged_arrays() -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(packaged_profile_file().read_bytes())) as npz:
        return {key: npz[key] for key in npz.files}


def _write(path: Path, arrays: dict[str, np.ndarray]) -> Path:
    np.savez(path, **arrays)
    return path


def _without(key: str) -> dict[str, np.ndarray]:
    arrays = _packaged_arrays()
    del arrays[key]
    return arrays


def _replaced(key: str, transform: Callable[[np.ndarray], np.ndarray]) -> dict[str, np.ndarray]:
    arrays = _packaged_arrays()
    arrays[key] = transform(arrays[key].copy())
    return arrays


def _with_nan(values: np.ndarray) -> np.ndarray:
    values[5, 0] = np.nan
    return values


BAD_CONTENTS = {
    "missing pv": lambda: _without("pv_p_kw_per_kwp"),
    "short year": lambda: _replaced("load_p_pu", lambda a: a[:-96]),
    "nan": lambda: _replaced("pv_p_kw_per_kwp", _with_nan),
    "peak not one": lambda: _replaced("load_p_pu", lambda a: a * 0.5),
    "negative pv": lambda: _replaced("pv_p_kw_per_kwp", lambda a: a - 0.1),
    "names mismatch": lambda: _replaced("pv_names", lambda a: a[:-1]),
    "duplicate names": lambda: _replaced("load_names", lambda a: np.array([a[0]] * a.size)),
    "bad interval": lambda: _replaced("interval_min", lambda a: np.array(7)),
}


@pytest.mark.parametrize("case", sorted(BAD_CONTENTS))
def test_inconsistent_file_is_one_line_error_naming_the_path(tmp_path: Path, case: str) -> None:
    path = _write(tmp_path / "bad.npz", BAD_CONTENTS[case]())
    with pytest.raises(ProfileDataError) as info:
        read_profiles(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize(
    "content",
    [b"", b"not a zip file at all", b"PK\x03\x04truncated"],
    ids=["empty", "garbage", "truncated-zip"],
)
def test_corrupt_file_is_one_line_error_naming_the_path(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "profiles.npz"
    path.write_bytes(content)
    with pytest.raises(AbmError) as info:
        read_profiles(path)
    assert isinstance(info.value, ProfileDataError)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_missing_file_is_an_abm_error_naming_the_path(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "profiles.npz"
    with pytest.raises(AbmError, match=re.escape(str(path))):
        read_profiles(path)


def test_a_file_round_trips_through_read_profiles(tmp_path: Path) -> None:
    path = _write(tmp_path / "copy.npz", _packaged_arrays())
    copy, packaged = read_profiles(path, 30), load_profiles(30)
    assert copy.load_names == packaged.load_names
    np.testing.assert_array_equal(copy.pv_p_kw_per_kwp, packaged.pv_p_kw_per_kwp)
