"""Figures of runs, studies and training (PNG, matplotlib's non-interactive backend).

Modules by subject: :mod:`~analysis.figures.style` (saving, axes that show differences,
series merged when they coincide), :mod:`~analysis.figures.feeder` (voltage along the feeder,
network map), :mod:`~analysis.figures.market` (P2P prices and volumes, Var prices and
reactive power), :mod:`~analysis.figures.envelopes` (each prosumer's envelope and dispatch),
:mod:`~analysis.figures.training` (training curves over seeds). The comparison bars and
daily profiles of several runs are in :mod:`analysis.plots`.
"""
