"""Grid core: feeders, radial AC power flow, loss sensitivities, envelopes, Var prices.

Modules: :mod:`dso.networks` (``Feeder``, ``load_network``), :mod:`dso.powerflow`
(``RadialPowerFlow``), :mod:`dso.sensitivity` (``loss_sensitivities``), :mod:`dso.doe`
(``compute_envelopes``), :mod:`dso.var_price` (``var_prices``, ``var_payment_eur``). Formulas
and sign conventions: ``docs/grid.md``. Only ``dso/`` imports pandapower.
"""
