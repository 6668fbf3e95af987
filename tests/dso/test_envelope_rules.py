"""The static and no-limit envelope rules (:func:`dso.doe.fixed_envelopes`)."""

from __future__ import annotations

import numpy as np
import pytest

from dso.doe import EnvelopeRule, fixed_envelopes
from dso.errors import InvalidInput

MAX_EXPORT = np.array([10.0, 2.0, 0.0])
MAX_IMPORT = np.array([5.0, 6.0, 7.0])
KVA = np.array([12.0, 3.0, 0.0])


def test_static_cap_limits_export_only() -> None:
    env = fixed_envelopes(MAX_EXPORT, MAX_IMPORT, np.array([4.0, 4.0, 4.0]), KVA)
    assert env.export_kw.tolist() == [4.0, 2.0, 0.0]
    assert env.import_kw.tolist() == MAX_IMPORT.tolist()
    assert env.q_max_kvar.tolist() == KVA.tolist() and env.q_min_kvar.tolist() == [-12, -3, 0]
    assert env.export_binding == ("static export cap", "physical maximum", "physical maximum")
    assert env.fairness == EnvelopeRule.STATIC and env.n_power_flows == 0


def test_no_limit_and_no_var_market() -> None:
    env = fixed_envelopes(MAX_EXPORT, MAX_IMPORT, None, None)
    assert env.export_kw.tolist() == MAX_EXPORT.tolist()
    assert not env.q_max_kvar.any() and not env.q_min_kvar.any()
    assert env.fairness == EnvelopeRule.NONE
    assert set(env.q_max_binding) == {"no reactive range asked"}


@pytest.mark.parametrize(
    ("cap", "match"),
    [(np.array([1.0, -1.0, 0.0]), "export_cap_kw must be >= 0"), (np.ones(2), "shape")],
)
def test_bad_caps_are_refused(cap: np.ndarray, match: str) -> None:
    with pytest.raises(InvalidInput, match=match):
        fixed_envelopes(MAX_EXPORT, MAX_IMPORT, cap, KVA)
