"""One short table of every method on several data regimes, side by side.

Each regime is a finished sweep's ``table1.csv`` (one row per method and seed). The table gives, per
method and regime, top-1 and worst-case cMAP as mean ± std over seeds, so a user can see at a glance
how the ranking of anonymizers changes with the data (the README's two-regime table is made this way):

    python -m anonpriv.evaluation.regimes \\
        --regime "motion-only=results/table1.csv" \\
        --regime "appearance-rich=results/appearance/table1.csv" \\
        --out results/regimes.md

Standard library only; the means and spreads are the sweep's own (:func:`anonpriv.evaluation.tables.summarize`).
Methods appear in the order they are first met; a method a regime did not run gets ``-`` in that
regime's cells.
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
from pathlib import Path
from typing import Sequence

from anonpriv.evaluation.tables import ResultRow, mean_std_text, summarize

METRICS = ("top1", "cmap")
REQUIRED_COLUMNS = ("method", "seed", "top1", "cmap")


class RegimeFileError(ValueError):
    """A regime's CSV is missing or is not a sweep's ``table1.csv``."""


def read_regime(path: Path) -> list[ResultRow]:
    """The rows of one ``table1.csv``, one per method and seed (scores as fractions; ``f1`` NaN where
    the file has no such column)."""
    if not path.is_file():
        raise RegimeFileError(f"{path}: no such file; run the sweep that writes it first "
                              f"(anonpriv sweep --config configs/sweep/<file>.yaml)")
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        if not reader.fieldnames:
            raise RegimeFileError(f"{path}: empty file; give the table1.csv written by anonpriv sweep")
        missing = [c for c in REQUIRED_COLUMNS if c not in reader.fieldnames]
        if missing:
            raise RegimeFileError(f"{path}: not a sweep's table1.csv (no column {', '.join(missing)}); "
                                  f"give the table1.csv written by anonpriv sweep")
        rows: list[ResultRow] = []
        seen: set[tuple[str, float]] = set()
        for line, row in enumerate(reader, start=2):
            values = {}
            for column in ("seed", *METRICS):
                try:
                    values[column] = float(row[column])
                except (TypeError, ValueError):
                    raise RegimeFileError(f"{path}, line {line}: column {column}: {row[column]!r} is not a number") from None
            if (row["method"], values["seed"]) in seen:  # summarize() refuses it too, without the line
                raise RegimeFileError(f"{path}, line {line}: a second row of {row['method']!r} for seed "
                                      f"{row['seed']}; each method has one row per seed")
            seen.add((row["method"], values["seed"]))
            rows.append(ResultRow(name=row["method"], top1=values["top1"], cmap=values["cmap"],
                                  f1=float(row.get("f1") or math.nan), seed=int(values["seed"])))
    if not rows:
        raise RegimeFileError(f"{path}: no rows; the sweep has not finished any run yet")
    return rows


def regime_table(regimes: Sequence[tuple[str, Sequence[ResultRow]]]) -> str:
    """The markdown table: one row per method, for each regime a top-1 and a worst-case cMAP column
    (%, mean ± std over seeds, as the sweep's own tables summarize them), then the seed counts."""
    summaries = [(name, {s.name: s for s in summarize(rows)}) for name, rows in regimes]
    methods = list(dict.fromkeys(method for _, by_name in summaries for method in by_name))
    header = ["Method"]
    for name, _ in regimes:
        header += [f"{name}: top-1 (%) ↑", f"{name}: worst-case cMAP (%) ↓"]
    header.append("seeds (" + " / ".join(name for name, _ in regimes) + ")")
    lines = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 2) + "---|"]
    for method in methods:
        cells, counts = [method], []
        for _, by_name in summaries:
            summary = by_name.get(method)
            if summary is None:
                cells += ["-", "-"]
                counts.append("-")
                continue
            cells += [mean_std_text(summary.mean[m], summary.std[m], 100, 1) for m in METRICS]
            counts.append(str(summary.n))
        cells.append(" / ".join(counts))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _parse_regime(text: str) -> tuple[str, Path]:
    name, sep, path = text.partition("=")
    if not sep or not name.strip() or not path.strip():
        raise argparse.ArgumentTypeError(f"expected NAME=PATH/table1.csv, got {text!r}")
    return name.strip(), Path(path.strip())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m anonpriv.evaluation.regimes", description=__doc__.split("\n\n")[0])
    parser.add_argument("--regime", action="append", type=_parse_regime, required=True,
                        help="NAME=PATH: a regime's name and its sweep's table1.csv (repeat, in column order)")
    parser.add_argument("--out", type=Path, default=None, help="write the table here (default: print it)")
    args = parser.parse_args(argv)
    try:
        regimes = [(name, read_regime(path)) for name, path in args.regime]
    except RegimeFileError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    sources = ", ".join(f"{name}: `{path}`" for name, path in args.regime)
    text = (regime_table(regimes) + f"\nMean ± std over seeds (the seeds of each regime in the last column). "
            f"Sources: {sources}.\n")
    if args.out is None:
        print(text, end="")
    else:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text, encoding="utf-8")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
