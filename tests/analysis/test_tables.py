"""The result tables' schema (``analysis/tables.py``) against the agents' outcomes and the docs."""

import dataclasses
from pathlib import Path

import pytest

from agents.outcome import ProsumerOutcome, TradeOutcome
from analysis.tables import (
    BILL_TOTAL_COLUMNS,
    DEPLOY_TABLES,
    OPTIMUM_TABLES,
    TABLES,
    markdown,
    outcome_columns,
    outcome_row,
)
from dso.outcome import IntervalOutcome

DOCS = Path(__file__).resolve().parents[2] / "docs"


@pytest.mark.parametrize(
    ("table", "outcome"),
    [("intervals", IntervalOutcome), ("prosumers", ProsumerOutcome), ("trades", TradeOutcome)],
)
def test_outcome_fields_are_the_table_columns(table: str, outcome: type) -> None:
    fields = tuple(f.name for f in dataclasses.fields(outcome))
    assert fields == outcome_columns(TABLES[table])


def test_bill_totals_end_the_intervals_table() -> None:
    names = TABLES["intervals"].column_names
    assert names[-len(BILL_TOTAL_COLUMNS) :] == BILL_TOTAL_COLUMNS


def test_outcome_row_is_keyed_by_column() -> None:
    trade = TradeOutcome(3, "p01", "p02", 1.5, 0.2, "seller")
    row = outcome_row(trade)
    assert list(row) == list(TABLES["trades"].column_names)
    assert row["quantity_kwh"] == 1.5 and row["reported_by"] == "seller"


@pytest.mark.parametrize("name", list(TABLES))
def test_outputs_doc_holds_the_generated_section(name: str) -> None:
    doc = (DOCS / "outputs.md").read_text()
    assert markdown(TABLES[name]) in doc, f"regenerate with python -m analysis.tables: {name}"


@pytest.mark.parametrize("name", list(OPTIMUM_TABLES))
def test_optimum_doc_holds_the_generated_section(name: str) -> None:
    doc = (DOCS / "optimum.md").read_text()
    assert markdown(OPTIMUM_TABLES[name]) in doc, f"regenerate from analysis.tables: {name}"


def test_every_column_named_once_with_a_unit_matching_its_name() -> None:
    suffix_units = {  # longest first
        "_eur_per_kwh": "EUR/kWh",
        "_eur_per_kvarh": "EUR/kvarh",
        "_kvarh": "kvarh",
        "_kwh": "kWh",
        "_kvar": "kvar",
        "_kw": "kW",
        "_pu": "pu",
        "_eur": "EUR",
        "_ms": "ms",
    }
    for table in (*TABLES.values(), *DEPLOY_TABLES.values(), *OPTIMUM_TABLES.values()):
        names = table.column_names
        assert len(set(names)) == len(names), table.name
        for col in table.columns:
            assert col.meaning, (table.name, col.name)
            unit = next((u for s, u in suffix_units.items() if col.name.endswith(s)), None)
            if unit is not None:
                assert col.unit == unit, (table.name, col.name)
