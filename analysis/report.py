"""A self-contained HTML report of finished runs, studies and training runs.

Figures are embedded as base64 PNG (and kept as files in ``figures/``); every table shown is
also written as CSV in ``tables/``. A run folder is one holding ``config.json`` and
``summary.json``; any other folder is searched for run folders, training logs
(``metrics.csv``), and its own top-level CSV tables and PNG figures (a study's).
"""

from __future__ import annotations

import base64
import html
import json
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from analysis.compare import COMPARISON_COLUMNS, read_run
from analysis.figures.envelopes import plot_envelopes
from analysis.figures.feeder import plot_network_map, plot_voltage_profile, voltage_by_bus
from analysis.figures.market import plot_p2p_market, plot_var_by_bus
from analysis.figures.training import plot_training_curves
from analysis.metrics import summarize
from analysis.plots import plot_comparison, plot_daily_profiles
from analysis.tables import TABLES
from dso.errors import DsoError
from dso.layout import bus_coordinates
from dso.networks import load_network

#: Files that make a folder a run folder.
RUN_MARKERS = ("config.json", "summary.json")
#: What the report writes into its folder.
REPORT_FILE = "report.html"
TABLES_FOLDER = "tables"
FIGURES_FOLDER = "figures"
#: Config fields shown for each run in the runs table.
RUN_FIELDS = ("network", "market", "policy", "protocol", "days", "seed")
#: Training metrics drawn (``metrics.csv`` columns).
TRAINING_METRICS = ("episode_return", "val_cost")


def is_run_folder(path: Path) -> bool:
    """Whether ``path`` holds a run's ``config.json`` and ``summary.json``."""
    return all((Path(path) / name).is_file() for name in RUN_MARKERS)


def find_runs(folder: Path) -> list[Path]:
    """``folder`` itself when it is a run folder, else the run folders below it (sorted)."""
    folder = Path(folder)
    if is_run_folder(folder):
        return [folder]
    return sorted({p.parent for p in folder.rglob(RUN_MARKERS[1]) if is_run_folder(p.parent)})


def find_training_logs(folder: Path) -> list[Path]:
    """The training runs' ``metrics.csv`` files in or below ``folder`` (sorted)."""
    return sorted(Path(folder).rglob("metrics.csv"))


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "run"


@dataclass
class _Writer:
    """The report's folder and its HTML body, filled section by section."""

    out: Path
    body: list[str] = field(default_factory=list)
    names: set[str] = field(default_factory=set)

    def unique(self, stem: str) -> str:
        stem, n = _slug(stem), 1
        name = stem
        while name in self.names:
            n += 1
            name = f"{stem}_{n}"
        self.names.add(name)
        return name

    def heading(self, text: str, level: int = 2) -> None:
        self.body.append(f"<h{level}>{html.escape(text)}</h{level}>")

    def text(self, text: str) -> None:
        self.body.append(f"<p>{html.escape(text)}</p>")

    def table(self, frame: pd.DataFrame, name: str, caption: str, index: bool = True) -> Path:
        """Render ``frame`` and write it as ``tables/<name>.csv``."""
        path = self.out / TABLES_FOLDER / f"{self.unique(name)}.csv"
        frame.to_csv(path, index=index)
        rendered = frame.to_html(
            index=index, border=0, classes="data", na_rep="", float_format=_cell
        )
        self.body.append(
            f'<figure class="table"><figcaption>{html.escape(caption)} '
            f"(<code>{TABLES_FOLDER}/{path.name}</code>)</figcaption>{rendered}</figure>"
        )
        return path

    def figure(self, png: Path, caption: str) -> None:
        """Embed ``png`` as base64."""
        data = base64.b64encode(png.read_bytes()).decode("ascii")
        self.body.append(
            f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{html.escape(caption)} (<code>{FIGURES_FOLDER}/{png.name}</code>)"
            "</figcaption></figure>"
        )

    def png(self, stem: str) -> Path:
        return self.out / FIGURES_FOLDER / f"{self.unique(stem)}.png"


def _cell(value: float) -> str:
    return f"{value:,.6g}"


def _label(folder: Path, root: Path, several_inputs: bool) -> str:
    """A folder's path from its input folder (from the one above it with several inputs)."""
    if folder == root:
        return folder.name
    return str(folder.relative_to(root.parent if several_inputs else root))


def _run_row(run: Path) -> dict[str, object]:
    config = json.loads((run / "config.json").read_text())
    settings = config.get("config", {})
    tables, duration_h = read_run(run)
    summary = summarize(tables, duration_h)
    return {
        **{name: settings.get(name, "") for name in RUN_FIELDS},
        **{col: summary[col] for col in COMPARISON_COLUMNS},
    }


def write_report(
    inputs: Sequence[Path],
    out: Path,
    *,
    run_figures: int = 12,
    title: str = "p2pvar report",
    figures_for: Collection[Path] | None = None,
) -> Path:
    """Write ``out/report.html`` (with ``tables/`` and ``figures/``) of ``inputs``.

    Each input is a run folder or a folder searched for runs and training logs. The first
    ``run_figures`` runs (of ``figures_for`` when given) get their own figures; every run is
    in the tables. Returns the HTML file's path. ``out`` must exist (checked by the caller).
    """
    out = Path(out)
    for folder in (TABLES_FOLDER, FIGURES_FOLDER):
        (out / folder).mkdir(exist_ok=True)
    writer = _Writer(out)
    several = len(inputs) > 1
    runs: dict[str, Path] = {}
    for root in inputs:
        for run in find_runs(Path(root)):
            label = _label(run, Path(root), several)
            while label in runs:  # the same folder name given twice
                label += "'"
            runs[label] = run
    writer.text(
        f"Generated {datetime.now(UTC):%Y-%m-%d %H:%M} UTC from "
        + ", ".join(str(p) for p in inputs)
        + f": {len(runs)} run(s)."
    )
    if runs:
        _runs_section(writer, runs)
    for root in inputs:
        if not is_run_folder(Path(root)):
            _study_section(writer, Path(root))
    logs = {root: find_training_logs(Path(root)) for root in inputs}
    if any(logs.values()):
        _training_section(writer, logs)
    chosen = {Path(p).resolve() for p in figures_for} if figures_for is not None else None
    drawn = [(k, v) for k, v in runs.items() if chosen is None or v.resolve() in chosen]
    for label, run in drawn[:run_figures]:
        _run_section(writer, label, run)
    left_out = len(runs) - len(drawn[:run_figures])
    if left_out:
        writer.text(f"Figures of {left_out} more run(s) left out; they are in the tables above.")
    path = out / REPORT_FILE
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(_page(title, writer.body))
    tmp.replace(path)
    return path


def _runs_section(writer: _Writer, runs: dict[str, Path]) -> None:
    writer.heading("Runs")
    frame = pd.DataFrame.from_dict({k: _run_row(v) for k, v in runs.items()}, orient="index")
    frame.index.name = "run"
    writer.table(frame, "runs", "settings and summary of every run (units in the column names)")
    if len(runs) > 1:
        bars = plot_comparison(frame, writer.png("comparison"))
        writer.figure(bars, "cost, welfare by actor, loss and market volumes per run")
        profiles = plot_daily_profiles(runs, writer.png("daily_profiles"))
        writer.figure(profiles, "mean hourly profiles per run")


def _study_section(writer: _Writer, root: Path) -> None:
    """A study folder's own tables (CSV) and figures (PNG) at its top level."""
    csvs = sorted(p for p in root.glob("*.csv") if p.stem not in TABLES)
    pngs = sorted(root.glob("*.png"))
    if not csvs and not pngs:
        return
    writer.heading(f"Study {root.name}")
    for csv in csvs:
        writer.table(pd.read_csv(csv), f"{root.name}_{csv.stem}", f"{root.name}/{csv.name}", False)
    for png in pngs:
        copy = writer.png(f"{root.name}_{png.stem}")
        copy.write_bytes(png.read_bytes())
        writer.figure(copy, f"{root.name}/{png.name}")


def _training_section(writer: _Writer, logs: dict[Path, list[Path]]) -> None:
    """Training curves per learner (a folder of seeds, or one run), and their final values."""
    groups: dict[str, list[Path]] = {}
    names: dict[Path, str] = {}
    for root, files in logs.items():
        for file in files:
            group = file.parent.parent if file.parent != root else root
            groups.setdefault(_label(group, root, len(logs) > 1), []).append(file)
            names[file] = _label(file.parent, root, len(logs) > 1)
    writer.heading("Training")
    curves = plot_training_curves(groups, writer.png("training_curves"), TRAINING_METRICS)
    writer.figure(curves, "training curves: mean over seeds and one standard deviation")
    rows = {}
    for label, files in groups.items():
        for file in files:
            metrics = pd.read_csv(file)
            last = {
                m: metrics[m].dropna().iloc[-1]
                for m in TRAINING_METRICS
                if m in metrics and metrics[m].notna().any()
            }
            rows[names[file]] = {"learner": label, "iterations": len(metrics), **last}
    frame = pd.DataFrame.from_dict(rows, orient="index")
    frame.index.name = "training run"
    writer.table(frame, "training", "last logged value of each training run")


def _run_section(writer: _Writer, label: str, run: Path) -> None:
    tables, duration_h = read_run(run)
    config = json.loads((run / "config.json").read_text()).get("config", {})
    writer.heading(f"Run {label}")
    writer.text(", ".join(f"{k} {config[k]}" for k in RUN_FIELDS if k in config))
    stem = _slug(label)
    voltage = plot_voltage_profile(tables["buses"], writer.png(f"{stem}_voltage"))
    writer.figure(voltage, f"{label}: voltage along the feeder")
    _network_map(writer, label, tables, config.get("network", ""))
    p2p = plot_p2p_market(tables, duration_h, writer.png(f"{stem}_p2p"))
    writer.figure(p2p, f"{label}: P2P prices and volumes against the tariffs")
    var = plot_var_by_bus(tables["prosumers"], duration_h, writer.png(f"{stem}_var"))
    writer.figure(var, f"{label}: Var price and reactive power by bus")
    envelopes = plot_envelopes(tables["prosumers"], duration_h, writer.png(f"{stem}_envelopes"))
    writer.figure(envelopes, f"{label}: each prosumer's envelope and dispatch")


def _network_map(
    writer: _Writer, label: str, tables: dict[str, pd.DataFrame], network: str
) -> None:
    """The feeder map coloured by each bus's lowest voltage, or a line saying why not."""
    try:
        feeder = load_network(network)
        coordinates = bus_coordinates(network)
    except DsoError as exc:
        writer.text(f"{label}: network map left out: {exc}")
        return
    vm = voltage_by_bus(tables["buses"])["min"].reindex(range(feeder.n_bus)).to_numpy()
    buses = tables["prosumers"]["bus"].unique()
    png = plot_network_map(
        feeder, vm, writer.png(f"{_slug(label)}_map"), coordinates, highlight=buses
    )
    writer.figure(png, f"{label}: the feeder coloured by each bus's lowest voltage")


STYLE = """
body { font-family: sans-serif; max-width: 1100px; margin: 2em auto; color: #222; }
table.data { border-collapse: collapse; font-size: 12px; margin: 0.5em 0; }
table.data th, table.data td { padding: 2px 6px; border-bottom: 1px solid #ddd; text-align: right; }
figure { margin: 1em 0; overflow-x: auto; }
figure img { max-width: 100%; }
figcaption { font-size: 13px; color: #555; }
"""


def _page(title: str, body: list[str]) -> str:
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head>\n<body>\n"
        f"<h1>{html.escape(title)}</h1>\n" + "\n".join(body) + "\n</body></html>\n"
    )
