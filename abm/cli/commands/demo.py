"""``p2pvar demo``: the whole system on the embedded default in under two minutes.

One held-out test day of ieee33, in-process, in all four market modes, played by the
committed EA-MATD3 checkpoint (``abm/data/checkpoints/ieee33-multi``), the rule policy and
the perfect-foresight optimum: the ``markets`` study at that size (its runs, comparison
table and plots) and the HTML report of it, written to ``--out``.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from abm.config import DaySet, Market, SimConfig
from abm.errors import ConfigError
from abm.study import markets
from abm.study.executor import RunSpec, run_dir_of
from abm.study.runs import default_workers, run_study

if TYPE_CHECKING:
    import pandas as pd

#: The committed checkpoint the demo's learned policy plays (see its README).
CHECKPOINT_DIR = Path(__file__).resolve().parents[2] / "data" / "checkpoints" / "ieee33-multi"
#: The study name recorded in the demo folder's ``study.json``.
NAME = "demo"
#: Where the report goes inside the demo folder.
REPORT_FOLDER = "report"
#: Held-out test days there are to choose from.
N_TEST_DAYS = 73


#: Label of the learned policy in the demo's tables.
LEARNED = "ea-matd3"
#: Columns of the comparison the demo prints (all of them are in ``comparison.csv``).
PRINTED_COLUMNS = {
    "prosumer_cost_eur": "prosumer cost, EUR",
    "welfare_dso_eur": "DSO net, EUR",
    "network_loss_kwh": "loss, kWh",
    "p2p_volume_kwh": "P2P, kWh",
    "var_volume_kvarh": "Var, kvarh",
    "voltage_violations": "violations",
    "share_of_optimum_savings": "share of optimum",
}


def demo_policies() -> dict[str, str]:
    """Label -> policy: the learned policy (the committed checkpoint), the rule policy and
    the perfect-foresight optimum."""
    return {
        LEARNED: f"checkpoint:{CHECKPOINT_DIR}",
        "rule": "rule",
        "optimum": "optimum",
    }


def demo_specs(test_day: int, seed: int) -> list[RunSpec]:
    """One run per policy and market mode on held-out test day ``test_day`` of ieee33."""
    base = SimConfig(network="ieee33", days=1, day_set=DaySet.TEST, first_day=test_day, seed=seed)
    return [
        RunSpec(
            f"{label}-{market}",
            dataclasses.replace(base, policy=policy, market=market),
            labels={"policy": label, "market": str(market)},
        )
        for label, policy in demo_policies().items()
        for market in Market
    ]


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``demo``."""
    parser = sub.add_parser(
        "demo",
        help="one held-out ieee33 day, four market modes, learned vs rule vs optimum, a report",
        description="Run one held-out test day of ieee33 in-process in all four market modes "
        "with the committed EA-MATD3 checkpoint, the rule policy and the perfect-foresight "
        "optimum; print the comparison table and write the runs, comparison.csv/.md, plots "
        "and OUT/report/report.html.",
    )
    parser.add_argument(
        "--out", type=Path, default=Path("p2pvar-demo"), help="output folder (default: p2pvar-demo)"
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="start afresh, removing an earlier demo's files"
    )
    parser.add_argument(
        "--day", type=int, default=0, help=f"held-out test day, 0-{N_TEST_DAYS - 1} (default: 0)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the runs")
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="local worker processes (default: min(2, CPUs))",
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.set_defaults(func=run_demo)


def run_demo(args: argparse.Namespace) -> int:
    """Run the demo's study, then write its report; print the wall time."""
    import pandas as pd

    from analysis.report import write_report

    if not 0 <= args.day < N_TEST_DAYS:
        raise ConfigError(f"--day {args.day}: must be a test day index in 0-{N_TEST_DAYS - 1}")
    if args.workers is not None and args.workers < 1:
        raise ConfigError(f"--workers {args.workers}: must be >= 1")
    start = time.perf_counter()
    specs = demo_specs(args.day, args.seed)
    study_args = argparse.Namespace(
        out=args.out,
        overwrite=args.overwrite,
        workers=args.workers or default_workers(),
        ray=None,
        no_progress=args.no_progress,
    )
    status = run_study(study_args, NAME, specs, _analyse)
    if status != 0:
        return status
    multi = [run_dir_of(args.out, s) for s in specs if s.labels["market"] == Market.MULTI]
    report = write_report(
        [args.out], args.out / REPORT_FOLDER, title="p2pvar demo", figures_for=multi
    )
    comparison = pd.read_csv(args.out / "comparison.csv", index_col=["policy", "market"])
    print(compact_table(comparison))
    print(f"full table: {args.out / 'comparison.md'}; report: {report}")
    print(f"demo finished in {time.perf_counter() - start:.1f} s")
    return 0


def compact_table(comparison: pd.DataFrame) -> str:
    """The columns of :data:`PRINTED_COLUMNS` as a markdown table (6 significant digits)."""
    from analysis.compare import to_markdown

    table = comparison[list(PRINTED_COLUMNS)].rename(columns=PRINTED_COLUMNS)
    return to_markdown(table.reset_index().set_index("policy"), digits=6)


def _analyse(out: Path, runs: Sequence[RunSpec]) -> list[Path]:
    """The ``markets`` study's comparison and plots; the report folder made ready."""
    outputs = markets.compare_markets(out, runs, echo=False)
    (out / REPORT_FOLDER).mkdir(exist_ok=True)
    return outputs
