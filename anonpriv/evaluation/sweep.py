"""The comparison sweep: every method through training and the honest protocol, then the tables.

Each run is what a user would type, executed in-process through :class:`~anonpriv.cli.AnonprivCLI`:

* trained methods (BDQ, SPAct, token pruning): ``anonpriv fit --config configs/<method>.yaml``;
* every method: ``anonpriv fit`` + ``test`` of ``configs/evaluate.yaml`` with the frozen anonymizer
  (a checkpoint, or the name of a training-free method), which trains a fresh action model and a
  panel of fresh attackers and writes their scores.

Every method runs once per seed (``SweepRun.seed`` seeds both the anonymizer's training and the
evaluation's fresh models). Runs write into ``<out>/runs/<name>/seed<k>/``; a run whose
``result.json`` exists is not redone, and a training whose ``fit.done`` marker exists is not
redone, so an interrupted sweep resumes where it stopped, per (method, seed). The tables and the
plot are rebuilt from the results: mean ± std over seeds (see :mod:`anonpriv.evaluation.tables`).

Runs are independent, so ``Sweep.run(runs, jobs=N)`` executes the unfinished ones in ``N`` worker
processes with one intra-op thread each (on small CPU models two one-thread processes get more
done than one two-thread process); the tables come out the same way either way.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import json
import multiprocessing
import os
import platform
import shutil
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from anonpriv.evaluation.tables import (
    ResultRow,
    attribute_table,
    comparison_table,
    machines_note,
    plot_tradeoff,
    write_comparison_csv,
)

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
TRAINED = {"bdq", "spact", "token_pruning"}

# The "novel" protocol (Table 2): anonymizers learn on these actions and attributes ...
SEEN_ACTIONS = ["wave_left", "wave_right", "kick_left", "march"]
SEEN_ATTRIBUTES = ["face", "skin_color", "gender"]
# ... and are evaluated by fresh models on these, which they never saw.
NOVEL_ACTIONS = ["wave_both", "kick_right", "cross_left", "cross_right"]
NOVEL_ATTRIBUTES = ["nudity", "relationship"]


STATISTICS_NOTE = (
    "\nCells: mean ± standard deviation over seeds (each seed trains the anonymizer and the fresh models anew). "
    "Δ: the paired difference to raw on the same seeds, mean [95% t interval]; an interval that contains 0 "
    "does not separate the method from raw. Every seed's row is in the CSV.\n"
)


@dataclasses.dataclass(frozen=True)
class SweepRun:
    """One row of a table or one point of the trade-off curve."""

    name: str
    method: str  # registered method name
    table: str = "table1"  # "table1" (standard protocol) or "table2" (novel protocol)
    group: str = "method"  # "method", or "sweep" for the token-pruning trade-off points
    model_args: tuple[tuple[str, object], ...] = ()  # overrides of the method's init_args
    seed: int = 0

    @property
    def params(self) -> dict:
        return dict(self.model_args)

    @property
    def key(self) -> tuple[str, int]:
        """What identifies a run (and its folder): the row's name and the seed."""
        return self.name, self.seed

    @property
    def label(self) -> str:
        return f"{self.name} (seed {self.seed})"


def default_runs(methods: Sequence[str], grid: Sequence[tuple[float, float]],
                 novel: Sequence[str] = (), seeds: Sequence[int] = (0,)) -> list[SweepRun]:
    """Table 1 for ``methods``, the token-pruning ``(lambda_priv, keep_ratio)`` grid, and Table 2
    (the novel protocol) for the methods in ``novel``; each once per seed, seed by seed (an
    interrupted sweep then holds whole seeds)."""
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be distinct and at least one, got {list(seeds)}")
    runs = []
    for seed in seeds:
        runs += [SweepRun(m, m, seed=seed) for m in methods]
        for lam, keep in grid:
            runs.append(SweepRun(f"token_pruning_l{lam}_k{keep}", "token_pruning", group="sweep",
                                 model_args=(("lambda_priv", lam), ("keep_ratio", keep)), seed=seed))
        runs += [SweepRun(f"novel_{m}", m, table="table2", seed=seed) for m in novel]
    return runs


@dataclasses.dataclass
class SweepSettings:
    out: Path
    data_config: Path = CONFIGS / "data" / "synthetic.yaml"
    data_args: tuple[str, ...] = ()  # extra --data.* overrides (the quick mode shrinks the data)
    train_args: tuple[str, ...] = ()  # extra arguments for every anonymizer training
    train_epochs: int | None = None  # one epoch budget for every learned anonymizer (None: each config's own)
    eval_epochs: int = 8
    eval_args: tuple[str, ...] = ()


def _quiet_trainer(out_dir: Path, name: str) -> list[str]:
    return [
        "--trainer.enable_progress_bar", "false",
        "--trainer.enable_model_summary", "false",
        "--trainer.logger.init_args.save_dir", str(out_dir),
        "--trainer.logger.init_args.name", name,
        "--trainer.logger.init_args.version", "run",
    ]


def _subset_args(actions: list[str], attributes: list[str]) -> list[str]:
    return ["--data.actions", json.dumps(actions), "--data.attributes", json.dumps(attributes)]


# Warnings every in-process run would repeat and that say nothing about the results.
_EXPECTED_WARNINGS = (
    r".*isinstance\(treespec, LeafSpec\).*",
    r".*smaller than the logging interval.*",
    r".*module\(s\) in eval mode.*",  # the protocol's frozen anonymizer, on purpose
    r".*does not have many workers.*",
)


@contextlib.contextmanager
def _cli_call() -> Iterator[None]:
    """Run AnonprivCLI in-process as if from a clean command line, without repeated noise."""
    argv = sys.argv
    sys.argv = argv[:1]  # the sweep's own flags are not the CLI's
    try:
        with warnings.catch_warnings():
            for pattern in _EXPECTED_WARNINGS:
                warnings.filterwarnings("ignore", message=pattern)
            yield
    finally:
        sys.argv = argv


def _expected_cost(run: SweepRun) -> float:
    """Rough relative cost of a run, to start the long ones first."""
    cost = 4 if run.method == "token_pruning" else 2 if run.method in TRAINED else 1
    return cost if run.table == "table1" else cost - 0.5  # the novel protocol uses half the classes


def _execution_order(run: SweepRun) -> tuple:
    """Table 1 (the headline) before Table 2; within a table raw first (every delta is paired with
    it), then the headline method, the other learned ones (longest first, so two processes pack
    well) and the training-free ones; seed by seed. An interrupted sweep then holds what matters."""
    priority = 0 if run.method == "raw" else 1 if run.method == "token_pruning" and run.group == "method" else 2
    return run.table != "table1", priority, -_expected_cost(run), run.seed


def machine_record() -> dict:
    """Where a run computes, so that a table can say on what its numbers were measured: the device
    Lightning's ``accelerator: auto`` picks here (the first CUDA device by name, else "MPS" or "CPU"),
    the CPU (which runs the data and the face detector in any case) and the torch build."""
    import torch

    if torch.cuda.is_available():
        device = torch.cuda.get_device_name(0)
    elif torch.backends.mps.is_available():
        device = "MPS"
    else:
        device = "CPU"
    return {"device": device, "cpu": f"{platform.machine()}, {os.cpu_count()} cores", "torch": torch.__version__}


def _execute_in_worker(settings: SweepSettings, run: SweepRun) -> str:
    """One run in a worker process of :meth:`Sweep.run`; returns its summary line."""
    import torch

    torch.set_num_threads(1)
    lines: list[str] = []
    Sweep(settings, log=lines.append).execute(run)
    return lines[-1] if lines else f"  {run.name}: done"


class Sweep:
    """Runs :class:`SweepRun` s (resuming), then writes ``table1``, ``table2`` and the plot."""

    def __init__(self, settings: SweepSettings, log: Callable[[str], None] = print) -> None:
        self.settings = settings
        self.log = log
        self.executed: list[str] = []  # names of runs that did work in this process (for tests)

    def run_dir(self, run: SweepRun) -> Path:
        return self.settings.out / "runs" / run.name / f"seed{run.seed}"

    def result_file(self, run: SweepRun) -> Path:
        """Where a finished run's results are; it exists only once the run is complete."""
        return self.run_dir(run) / "result.json"

    def saved_result(self, run: SweepRun) -> dict:
        return json.loads(self.result_file(run).read_text())

    # -- one run --------------------------------------------------------------------------------
    def train(self, run: SweepRun) -> Path:
        """``anonpriv fit`` of the method's config; returns its last checkpoint."""
        from anonpriv.cli import AnonprivCLI

        s = self.settings
        train_dir = self.run_dir(run) / "train"
        done = train_dir / "fit.done"
        checkpoint = train_dir / "anonymizer" / "run" / "checkpoints" / "last.ckpt"
        if done.exists() and checkpoint.exists():
            return checkpoint
        shutil.rmtree(train_dir, ignore_errors=True)  # an interrupted training starts over
        args = ["fit", "--config", str(CONFIGS / f"{run.method}.yaml"), "--data", str(s.data_config), *s.data_args,
                "--seed_everything", str(run.seed), *_quiet_trainer(train_dir, "anonymizer")]
        if s.train_epochs is not None:
            args += ["--trainer.max_epochs", str(s.train_epochs)]
        args += s.train_args
        for key, value in run.model_args:
            args += [f"--model.init_args.{key}", json.dumps(value)]
        if run.table == "table2":
            args += _subset_args(SEEN_ACTIONS, SEEN_ATTRIBUTES)
        with _cli_call():
            AnonprivCLI(args=args)
        done.write_text("done\n")
        return checkpoint

    def evaluate(self, run: SweepRun, anonymizer: str, anonymizer_kwargs: dict | None = None) -> dict:
        """Fresh action model + attacker panel on the frozen anonymizer; returns test results."""
        from anonpriv.cli import AnonprivCLI

        s = self.settings
        eval_dir = self.run_dir(run) / "evaluation"
        shutil.rmtree(eval_dir, ignore_errors=True)
        args = ["fit", "--config", str(CONFIGS / "evaluate.yaml"), "--data", str(s.data_config), *s.data_args,
                "--model.init_args.anonymizer", anonymizer, "--seed_everything", str(run.seed),
                "--trainer.max_epochs", str(s.eval_epochs), "--metrics.results_dir", str(eval_dir),
                *_quiet_trainer(eval_dir, "protocol"), *s.eval_args]
        if anonymizer_kwargs:
            args += ["--model.init_args.anonymizer_kwargs", json.dumps(anonymizer_kwargs)]
        if run.table == "table2":
            args += _subset_args(NOVEL_ACTIONS, NOVEL_ATTRIBUTES)
        with _cli_call():
            cli = AnonprivCLI(args=args)
            cli.trainer.test(cli.model, datamodule=cli.datamodule, verbose=False)
        return json.loads((eval_dir / "results.json").read_text())

    @staticmethod
    def training_free_options(run: SweepRun) -> dict:
        """A training-free method's options: its ``configs/method/<name>.yaml``, then the run's."""
        import yaml

        config = yaml.safe_load((CONFIGS / "method" / f"{run.method}.yaml").read_text()) or {}
        return {**(config.get("init_args") or {}), **run.params}

    def execute(self, run: SweepRun) -> dict:
        """The run's results, computing them only if no finished result exists."""
        result_file = self.result_file(run)
        if result_file.exists():
            self.log(f"  {run.label}: done earlier, kept ({result_file})")
            return self.saved_result(run)
        start = time.perf_counter()
        if run.method in TRAINED:
            anonymizer, options = str(self.train(run)), None
        else:
            anonymizer, options = run.method, self.training_free_options(run)
        trained = time.perf_counter()
        results = self.evaluate(run, anonymizer, options)
        results["sweep"] = {**dataclasses.asdict(run), "train_seconds": round(trained - start, 1),
                            "evaluate_seconds": round(time.perf_counter() - trained, 1), "machine": machine_record()}
        tmp = result_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(results, indent=2, sort_keys=True))
        tmp.replace(result_file)  # a result file only ever exists complete
        self.executed.append(run.key)
        self.log(f"  {run.label}: top-1 {results['top1']:.3f}, worst cMAP {results['cmap']:.3f}, "
                 f"F1 {results['f1']:.3f} ({results['sweep']['train_seconds']:.0f} s training, "
                 f"{results['sweep']['evaluate_seconds']:.0f} s evaluation)")
        return results

    # -- the whole sweep --------------------------------------------------------------------------
    def run(self, runs: Sequence[SweepRun], jobs: int = 1) -> dict[str, list[ResultRow]]:
        """Execute ``runs`` (the unfinished ones; ``jobs`` worker processes if above 1), then collect
        their rows in the order given."""
        if jobs < 1:
            raise ValueError(f"jobs={jobs} must be at least 1.")
        keys = [r.key for r in runs]
        if len(set(keys)) != len(keys):
            raise ValueError(f"runs must differ in name or seed (each has its own folder), got {keys}")
        total = time.perf_counter()
        pending = [r for r in runs if not self.result_file(r).exists()]
        if jobs > 1 and len(pending) > 1:
            self._run_parallel(pending, jobs)
        for i, run in enumerate(runs, start=1):
            if run.key not in self.executed:  # a worker process that did it has logged it already
                self.log(f"[{i}/{len(runs)}] {run.label} "
                         f"({'novel protocol' if run.table == 'table2' else 'standard protocol'})")
                self.execute(run)
        rows, _ = self.collect(runs)
        self.log(f"sweep finished in {time.perf_counter() - total:.0f} s")
        return rows

    def collect(self, runs: Sequence[SweepRun]) -> tuple[dict[str, list[ResultRow]], list[SweepRun]]:
        """The rows of the finished ``runs`` (nothing is executed) and the runs not finished yet."""
        rows: dict[str, list[ResultRow]] = {"table1": [], "table2": []}
        missing = []
        for run in runs:
            if not self.result_file(run).exists():
                missing.append(run)
                continue
            rows[run.table].append(ResultRow.from_results(run.name.removeprefix("novel_"), self.saved_result(run),
                                                          group=run.group, params=run.params, seed=run.seed))
        return rows, missing

    def _run_parallel(self, pending: Sequence[SweepRun], jobs: int) -> None:
        """Execute ``pending`` in ``jobs`` spawned processes, longest runs first so they pack well."""
        order = sorted(pending, key=_execution_order)
        self.log(f"running {len(order)} unfinished runs in {jobs} processes (one thread each)")
        context = multiprocessing.get_context("spawn")  # no forked copies of a threaded torch
        failures: list[str] = []
        with concurrent.futures.ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
            futures = {pool.submit(_execute_in_worker, self.settings, run): run for run in order}
            for done, future in enumerate(concurrent.futures.as_completed(futures), start=1):
                run = futures[future]
                try:
                    line = future.result()
                except Exception as error:  # the other runs go on: hours of work are not lost to one
                    failures.append(f"{run.label}: {str(error).strip().splitlines()[-1] if str(error).strip() else type(error).__name__}")
                    self.log(f"[{done}/{len(order)} FAILED] {failures[-1]}")
                    continue
                self.executed.append(run.key)
                self.log(f"[{done}/{len(order)} finished]{line}")
        if failures:
            raise RuntimeError(
                f"{len(failures)} sweep run(s) failed: " + "; ".join(failures) + ". Every other run finished and is "
                "kept: rerun the same command to retry the failed ones, or add --report-only for the tables so far."
            )

    def write_reports(self, rows: dict[str, list[ResultRow]], command: str,
                      missing: Sequence[SweepRun] = ()) -> dict[str, Path]:
        """Write the tables, the CSVs and the plot; ``missing`` runs (not finished) are listed under
        their table, so a partial report says what it lacks."""
        out = self.settings.out
        written = {}

        def not_finished(table: str) -> str:
            names = [run.label for run in missing if run.table == table]
            return f"\nNot finished yet (not in the table): {', '.join(names)}.\n" if names else ""

        table1 = rows["table1"]
        if table1:
            methods = [r for r in table1 if r.group == "method"]
            text = comparison_table(methods, title="Table 1: standard protocol (fresh models on the frozen anonymizer's output)")
            sweep_rows = [r for r in table1 if r.group == "sweep"]
            if sweep_rows:
                text += "\n" + comparison_table(
                    [r for r in table1 if r.name in ("raw", "token_pruning")] + sweep_rows,
                    title="Token pruning: lambda_priv x keep_ratio")
            front = plot_tradeoff(table1, out / "tradeoff.png")
            text += (f"\nPareto front (means over seeds; a method is off the front only if another has both a lower "
                     f"worst-case cMAP and a higher top-1, each by more than one standard deviation): {', '.join(front)}\n")
            text += STATISTICS_NOTE
            per_attribute = attribute_table(methods, title="Table 1, per attribute")
            text += ("\n" + per_attribute if per_attribute else "") + not_finished("table1") + machines_note(table1)
            text += f"\nMade by `{command}`.\n"
            (out / "table1.md").write_text(text)
            write_comparison_csv(table1, out / "table1.csv")
            written.update(table1=out / "table1.md", plot=out / "tradeoff.png")
        if rows["table2"]:
            text = comparison_table(
                rows["table2"],
                title=(f"Table 2: novel protocol (anonymizers trained on actions {SEEN_ACTIONS} and attributes "
                       f"{SEEN_ATTRIBUTES}; fresh models on actions {NOVEL_ACTIONS} and attributes {NOVEL_ATTRIBUTES})"),
            )
            text += STATISTICS_NOTE + not_finished("table2") + machines_note(rows["table2"]) + f"\nMade by `{command}`.\n"
            (out / "table2.md").write_text(text)
            write_comparison_csv(rows["table2"], out / "table2.csv")
            written["table2"] = out / "table2.md"
        return written
