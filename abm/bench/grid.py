"""``p2pvar bench grid``: speed of the grid core, with pandapower measured in the same run."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from abm.bench.timing import interleaved_median_s, median_s
from abm.cli.args import add_config_args, config_from_args
from abm.cli.commands.output import emit
from abm.errors import ConfigError
from dso.blas import single_blas_thread

#: Calls per timed repetition of the fast single-scenario figures (median per call).
CALLS_PER_REPEAT = 50
#: Random operating points compared with pandapower for ``max_abs_dv_pu``.
ACCURACY_SCENARIOS = 5
#: The prosumer case of the envelope figures (``abm.bench.synthetic_cases.prosumer_case``).
DOE_CASE = {"passive_share": 0.5, "pv_ratio": 4.0, "import_ratio": 2.0}
#: Inverter rating per kWp of PV in the reactive envelope figure (the scenario default).
DOE_INVERTER_KVA_PER_KWP = 1.1


@dataclass(frozen=True)
class BenchGridConfig:
    """What ``p2pvar bench grid`` measures."""

    network: str = field(
        default="ieee33",
        metadata={"help": "built-in network (ieee33, swiss161) or a pandapower JSON file"},
    )
    batch: int = field(default=20000, metadata={"help": "scenarios in the batched power flow"})
    repeats: int = field(default=10, metadata={"help": "timed repetitions per figure (median)"})
    seed: int = field(default=0, metadata={"help": "seed of the random operating points"})

    def __post_init__(self) -> None:
        if self.batch < 1:
            raise ConfigError(f"batch must be >= 1, got {self.batch}")
        if self.repeats < 1:
            raise ConfigError(f"repeats must be >= 1, got {self.repeats}")


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``bench grid``."""
    parser = sub.add_parser(
        "grid",
        help="power flow, envelope and sensitivity speed against pandapower runpp",
        description="Median timings of the radial power flow (single and batched), the "
        "envelopes of all prosumers (one per loaded bus; "
        + ", ".join(f"{k}={v}" for k, v in DOE_CASE.items())
        + "), the same with reactive ranges (inverters of "
        + f"{DOE_INVERTER_KVA_PER_KWP} kVA/kWp), the loss sensitivities and the per-interval "
        "path (envelopes + sensitivities + power flow), with pandapower's runpp timed and "
        "compared in the same run.",
    )
    add_config_args(parser, BenchGridConfig)
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(func=run)


def plain_zbus_fixed_point(
    z: np.ndarray, v_nl: np.ndarray, s_pu: np.ndarray, tol_pu: float, max_iter: int
) -> np.ndarray:
    """The baseline of the batched solve: ``V <- V_nl + conj(S / V) @ Z^T`` over the batch.

    Plain numpy on ``(B, m)`` arrays, stopped when no voltage moves by ``tol_pu`` (the
    solver's criterion); no outputs beyond the voltages. BLAS threads as the caller set them.
    """
    v = np.broadcast_to(v_nl, s_pu.shape)
    z_t = z.T
    for _ in range(max_iter):
        v_new = v_nl + np.conj(s_pu / v) @ z_t
        step = np.abs(v_new - v).max()
        v = v_new
        if step < tol_pu:
            break
    return v


def _one_blas_thread(fn: Callable[[], object]) -> Callable[[], object]:
    def limited() -> object:
        with single_blas_thread():
            return fn()

    return limited


def bench_grid(config: BenchGridConfig) -> dict[str, Any]:
    """Measure every figure of the grid benchmark."""
    from abm.bench.synthetic_cases import prosumer_case, random_injections
    from dso.doe import compute_envelopes
    from dso.networks import load_network
    from dso.powerflow import RadialPowerFlow
    from dso.reference import PandapowerReference
    from dso.sensitivity import loss_sensitivities

    feeder = load_network(config.network)
    pf = RadialPowerFlow(feeder)
    ref = PandapowerReference(feeder)
    rng = np.random.default_rng(config.seed)
    p, q = feeder.base_injection()
    reps = config.repeats
    pf_s = median_s(lambda: pf.solve(p, q), reps, CALLS_PER_REPEAT)
    ref.solve(p, q)  # loads of the pandapower network at the base case
    runpp_s = median_s(ref.runpp_default, reps)
    p_batch, q_batch = random_injections(feeder, config.batch, rng)
    # the plain baseline over all non-slack buses with one BLAS thread (as the solver) and
    # with numpy's default threads, and over the buses with an injection only (the solver's
    # own reduction: a stricter baseline where some buses have none)
    s_ns = pf.injections_pu(p_batch, q_batch)[0][:, pf.non_slack]
    cols = np.flatnonzero(np.any(s_ns != 0, axis=0))
    tol, max_iter = pf.tol_pu, pf.max_iter
    s_inj, z_inj, v_nl_inj = s_ns[:, cols], pf.z[np.ix_(cols, cols)], pf.v_nl[cols]
    batch_s, plain_s, plain_threads_s, plain_inj_s = interleaved_median_s(
        [
            lambda: pf.solve(p_batch, q_batch),
            _one_blas_thread(lambda: plain_zbus_fixed_point(pf.z, pf.v_nl, s_ns, tol, max_iter)),
            lambda: plain_zbus_fixed_point(pf.z, pf.v_nl, s_ns, tol, max_iter),
            _one_blas_thread(lambda: plain_zbus_fixed_point(z_inj, v_nl_inj, s_inj, tol, max_iter)),
        ],
        reps,
    )
    case = prosumer_case(feeder, **DOE_CASE)
    doe_args = (case.prosumer_bus, case.p_other_kw, case.q_other_kvar)
    maxima = (case.max_export_kw, case.max_import_kw)

    def envelopes() -> Any:
        return compute_envelopes(pf, *doe_args, *maxima)

    doe_s = median_s(envelopes, reps)
    kva = DOE_INVERTER_KVA_PER_KWP * case.pv_kwp

    def reactive_envelopes() -> Any:
        return compute_envelopes(pf, *doe_args, *maxima, inverter_kva=kva)

    doe_pq_s = median_s(reactive_envelopes, reps)
    env_pq = reactive_envelopes()
    p_int = case.p_other_kw.copy()
    np.add.at(p_int, case.prosumer_bus, case.max_export_kw / 2)
    lsf_s = median_s(lambda: loss_sensitivities(pf, p_int, case.q_other_kvar), reps, 10)

    def interval() -> None:
        envelopes()
        loss_sensitivities(pf, p_int, case.q_other_kvar)
        pf.solve(p_int, case.q_other_kvar)

    interval_s = median_s(interval, reps)
    p_acc, q_acc = random_injections(feeder, ACCURACY_SCENARIOS, rng)
    p_acc, q_acc = np.vstack([p, p_acc]), np.vstack([q, q_acc])
    ours = pf.solve(p_acc, q_acc).vm_pu
    dv = max(np.abs(ours[i] - ref.solve(p_acc[i], q_acc[i]).vm_pu).max() for i in range(len(p_acc)))
    env = envelopes()
    return {
        "network": feeder.name,
        "n_buses": feeder.n_bus,
        "pf_us": pf_s * 1e6,
        "runpp_us": runpp_s * 1e6,
        "speedup_vs_runpp": runpp_s / pf_s,
        "batch_size": config.batch,
        "batch_pf_per_s": config.batch / batch_s,
        "batch_pf_per_s_plain_numpy": config.batch / plain_s,
        "batch_speedup_vs_plain_numpy": plain_s / batch_s,
        "batch_pf_per_s_plain_numpy_default_threads": config.batch / plain_threads_s,
        "batch_speedup_vs_plain_numpy_default_threads": plain_threads_s / batch_s,
        "batch_pf_per_s_plain_numpy_injection_buses": config.batch / plain_inj_s,
        "batch_speedup_vs_plain_numpy_injection_buses": plain_inj_s / batch_s,
        "n_prosumers": len(case.prosumer_bus),
        "doe_ms": doe_s * 1e3,
        "doe_power_flows": env.n_power_flows,
        "doe_binding_export": sorted(set(env.export_binding)),
        "doe_binding_import": sorted(set(env.import_binding)),
        "doe_pq_ms": doe_pq_s * 1e3,
        "doe_pq_over_doe": doe_pq_s / doe_s,
        "doe_pq_power_flows": env_pq.n_power_flows,
        "doe_binding_q_max": sorted(set(env_pq.q_max_binding)),
        "doe_binding_q_min": sorted(set(env_pq.q_min_binding)),
        "lsf_ms": lsf_s * 1e3,
        "interval_ms": interval_s * 1e3,
        "intervals_per_s": 1.0 / interval_s,
        "max_abs_dv_pu": float(dv),
    }


def run(args: argparse.Namespace) -> int:
    """Run the benchmark and print its figures."""
    config = config_from_args(BenchGridConfig, args)
    result = bench_grid(config)
    title = (
        f"grid benchmark ({result['network']}; medians of {config.repeats} repeats; "
        f"pandapower runpp with default settings as the baseline)"
    )
    emit(result, args.json, title=title)
    return 0
