"""The learners' micro-benchmark runs and reports its figures (no speed is asserted)."""

from __future__ import annotations

from abm.bench.learners import bench_train


def test_bench_train_reports_rates_and_ratios() -> None:
    figures = bench_train(n_agents=4, n_bus=5, teams=3, worlds_per_team=2, min_time_s=0.01)
    for key in ("updates_per_s", "speedup_update_vs_loop", "speedup_inference_vs_loop"):
        assert figures[key] > 0.0
    assert figures["speedup_update_vs_loop"] == (
        figures["updates_per_s"] / figures["updates_per_s_loop"]
    )
