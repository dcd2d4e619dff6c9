"""``anonpriv sweep --config <a file of configs/sweep/>``: Tables 1 and 2 and the trade-off plots from one file.

    anonpriv sweep --config configs/sweep/synthetic.yaml              # run (resumes), then write the tables
    anonpriv sweep --config configs/sweep/paper.yaml --dry-run        # every planned run and the count
    anonpriv sweep --config configs/sweep/synthetic.yaml --report-only   # tables from the finished runs
    anonpriv sweep --config configs/sweep/synthetic.yaml --seeds 0 --methods raw,bdq --jobs 1

A problem with the file or the command line is one line, ``anonpriv sweep: error: ...`` (exit 2);
failed runs are named at the end (exit 1) after every other run finished and the tables were written.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path

from anonpriv.sweep.config import SweepConfigError, load_sweep_config
from anonpriv.sweep.runner import SweepFailed

DESCRIPTION = """Run a comparison sweep: train every learned anonymizer, evaluate every method with the honest
protocol (fresh models on its frozen output), once per seed, on every dataset of the sweep file, then
write Table 1 per dataset (mean ± std over seeds, paired deltas to raw with 95% intervals, the
trade-off plot) and each Table 2 (cross-dataset transfer or the novel split). Finished runs are kept:
rerunning the same command resumes. The sweep files are under configs/sweep/ (synthetic.yaml, the
CPU default; faces.yaml; quick.yaml, a smoke test; paper.yaml, the paper's tables on real data)."""


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="anonpriv sweep", description=DESCRIPTION)
    parser.add_argument("--config", "-c", required=True, type=Path, help="the sweep file (configs/sweep/*.yaml)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--dry-run", action="store_true", help="list every planned run with the count; run nothing")
    mode.add_argument("--report-only", action="store_true",
                      help="run nothing: write the tables from the runs finished so far, listing the others")
    parser.add_argument("--jobs", type=int, default=None, help="runs at once (the launcher's jobs; default: the file's)")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: the file's out)")
    parser.add_argument("--seeds", default=None, help="comma-separated seeds instead of the file's, e.g. 0")
    parser.add_argument("--methods", default=None, help="comma-separated rows of the file to run, e.g. raw,bdq")
    parser.add_argument("--debug", action="store_true", help="tracebacks instead of one-line errors")
    return parser.parse_args(argv)


def _items(text: str, option: str, kind=str) -> list:
    try:
        return [kind(item.strip()) for item in text.split(",") if item.strip()]
    except ValueError:
        raise SweepConfigError(f"{option} {text!r}: give a comma-separated list, e.g. {'0,1,2' if kind is int else 'raw,bdq'}") from None


def command_line(args: argparse.Namespace) -> str:
    """The command the tables say they were made by: the file and what selects rows (not where they
    were written or how many ran at once)."""
    config = args.config
    try:
        config = config.resolve().relative_to(Path.cwd().resolve())
    except ValueError:
        pass
    parts = ["anonpriv", "sweep", "--config", str(config)]
    for option, value in (("--seeds", args.seeds), ("--methods", args.methods)):
        if value is not None:
            parts += [option, value]
    return " ".join(map(shlex.quote, parts))


def stale_name_error(sweep_file: Path, plan) -> str | None:
    """The CLI's check for a moved class path or a renamed option (anonpriv/cli/errors.py) over the
    sweep file (its overrides) and every config file its runs name, each file read once: the sweep
    builds its runs' Lightning CLIs itself, so without this a sweep file or method config naming
    ``budget_lr`` would only fail inside each run's log."""
    from anonpriv.cli.errors import moved_class_path_error

    files = [str(sweep_file), *(arg for job in plan.jobs for arg in job.args if arg.endswith((".yaml", ".yml")))]
    for path in dict.fromkeys(files):
        message = moved_class_path_error(["--config", path])
        if message:
            return message
    return None


def run(args: argparse.Namespace, log=print) -> int:
    from anonpriv.sweep.plan import build_plan, describe_plan

    config = load_sweep_config(args.config).select(
        methods=_items(args.methods, "--methods") if args.methods is not None else None,
        seeds=_items(args.seeds, "--seeds", int) if args.seeds is not None else None,
        out=args.out, jobs=args.jobs)
    plan = build_plan(config)
    stale = None if args.report_only else stale_name_error(args.config, plan)  # report-only runs nothing
    if stale:
        raise SweepConfigError(stale)
    if args.dry_run:
        from anonpriv.sweep.runner import placeholders

        for line in describe_plan(plan):
            log(line)
        for dataset in config.datasets.values():
            missing = placeholders(dataset.data, dataset.overrides)
            if missing:
                log(f"to set before running: datasets.{dataset.name}: {', '.join(missing)} (placeholder ???)")
        return 0
    command = command_line(args)
    outcome = None
    if args.report_only:
        finished = sum(job.done for job in plan.jobs if job.kind == "evaluate")
        log(f"{finished} of {plan.counts()['evaluate']} evaluations finished; tables from those")
    else:
        from anonpriv.sweep.launchers import make_launcher
        from anonpriv.sweep.runner import run_plan

        launcher = make_launcher(config.launcher.name, config.launcher.options, config)
        if args.debug and hasattr(launcher, "raise_errors"):
            launcher.raise_errors = True
        outcome = run_plan(plan, launcher, log)
    from anonpriv.sweep.report import write_reports

    for name, path in write_reports(plan, command, log).items():
        log(f"{name}: {os.path.relpath(path)}")
    if outcome is not None and outcome.queued:
        log(f"{len(outcome.queued)} run(s) still queued or running on the cluster (each job's id: <run>/logs/*.slurm.json): "
            "rerun the same command to follow them and resume; --report-only writes the tables of what finished")
    if outcome is not None and outcome.failed:
        from anonpriv.sweep.runner import failure_message

        raise SweepFailed(failure_message(outcome))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        return run(args)
    except SweepConfigError as error:
        if args.debug:
            raise
        print(f"anonpriv sweep: error: {error}", file=sys.stderr)
        return 2
    except SweepFailed as error:
        if args.debug:
            raise
        print(f"anonpriv sweep: error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
