"""The tables of a sweep, from whatever runs have finished (:mod:`anonpriv.evaluation.tables` does the
statistics): per Table 1 ``table1.md|csv`` and ``tradeoff.png``, per Table 2 ``table2.md|csv``, in the
table's folder. A table with unfinished runs lists them under it; one with no finished run is not
written."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from anonpriv.evaluation.tables import (
    ResultRow,
    attribute_table,
    comparison_table,
    machines_note,
    plot_tradeoff,
    write_comparison_csv,
)
from anonpriv.sweep.plan import Plan, Row, Table

STATISTICS_NOTE = (
    "\nCells: mean ± standard deviation over seeds (each seed trains the anonymizer and the fresh models anew). "
    "Δ: the paired difference to raw on the same seeds, mean [95% t interval]; an interval that contains 0 "
    "does not separate the method from raw. Every seed's row is in the CSV.\n"
)
PARETO_NOTE = ("\nPareto front (means over seeds; a method is off the front only if another has both a lower "
               "worst-case cMAP and a higher top-1, each by more than one standard deviation): {}\n")


def collect(plan: Plan, table: Table) -> tuple[list[ResultRow], list[Row]]:
    """The finished rows of ``table`` (in its order) and the rows not finished yet."""
    rows, missing = [], []
    for row in table.rows:
        result = plan.job(row.job).result_file
        if not result.exists():
            missing.append(row)
            continue
        rows.append(ResultRow.from_results(row.name, json.loads(result.read_text()), group=row.group,
                                           params=dict(row.params), seed=row.seed))
    return rows, missing


def _not_finished(missing: list[Row]) -> str:
    return f"\nNot finished yet (not in the table): {', '.join(r.label for r in missing)}.\n" if missing else ""


def _table1_text(table: Table, rows: list[ResultRow], missing: list[Row]) -> str:
    methods = [r for r in rows if r.group == "method"]
    text = comparison_table(methods, title=table.title)
    curve = [r for r in rows if r.group == "sweep"]
    if curve:
        text += "\n" + comparison_table([r for r in rows if r.name in ("raw", "token_pruning")] + curve,
                                        title="Token pruning: lambda_priv x keep_ratio")
    front = plot_tradeoff(rows, table.folder / "tradeoff.png", title=table.plot_title)
    text += PARETO_NOTE.format(", ".join(front)) + STATISTICS_NOTE
    per_attribute = attribute_table(methods, title="Table 1, per attribute")
    return text + ("\n" + per_attribute if per_attribute else "") + _not_finished(missing) + machines_note(rows)


def write_reports(plan: Plan, command: str, log: Callable[[str], None] = print) -> dict[str, Path]:
    """Write every table with at least one finished run; returns ``{table name: its .md}``."""
    written = {}
    for table in plan.tables:
        rows, missing = collect(plan, table)
        if not rows:
            log(f"{table.name}: no finished run yet, not written")
            continue
        table.folder.mkdir(parents=True, exist_ok=True)
        if table.kind == "table1":
            text = _table1_text(table, rows, missing)
        else:
            text = comparison_table(rows, title=table.title) + STATISTICS_NOTE + _not_finished(missing)
            text += machines_note(rows)
        text += f"\nMade by `{command}`.\n"
        path = table.folder / f"{table.kind}.md"
        path.write_text(text)
        write_comparison_csv(rows, table.folder / f"{table.kind}.csv")
        written[table.name] = path
    return written
