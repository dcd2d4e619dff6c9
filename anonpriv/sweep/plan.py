"""From a sweep config to jobs and tables.

A :class:`Job` is one ``anonpriv`` CLI call with everything it needs written out (its arguments, its
folder, the jobs it must wait for), so that any launcher can run it anywhere:

* ``train``: ``anonpriv fit`` of a learned method (``<run>/train``, finished when ``fit.done`` and its
  ``last.ckpt`` exist);
* ``evaluate``: ``anonpriv fit`` + ``test`` of the evaluation protocol on a frozen anonymizer (a
  training-free method by name, or a training's checkpoint, which makes the training a dependency);
  finished when ``<run>/result.json`` exists.

Folders (``<d>`` = ``<out>/<dataset folder>``, ``<t>`` = ``<out>/<transfer folder>``):

* Table 1 of a dataset: ``<d>/runs/<row>/seed<k>/`` (``train/`` and ``evaluation/`` inside);
* Table 2, ``novel``: ``<d>/runs/novel_<row>/seed<k>/``, its own training on the seen labels;
* Table 2, ``transfer``: ``<t>/runs/<row>/seed<k>/``, evaluation only: a learned row's anonymizer is
  the source dataset's Table 1 training of the same row and seed (one training serves both tables).

Rows are listed seed by seed (every row of seed 0, then seed 1, ...), the order the tables read them.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from anonpriv.sweep.config import DatasetSpec, MethodSpec, SweepConfig, Table2Spec

CHECKPOINT = Path("anonymizer") / "run" / "checkpoints" / "last.ckpt"  # below a training's folder


@dataclasses.dataclass(frozen=True)
class Job:
    """One CLI call of the sweep. ``after``: ids of the jobs whose output it needs."""

    id: str
    kind: str  # "train" or "evaluate"
    folder: Path  # train: the training's folder; evaluate: the run's folder (result.json, evaluation/)
    args: tuple[str, ...]
    after: tuple[str, ...] = ()
    record: Mapping[str, Any] = dataclasses.field(default_factory=dict)  # evaluate: result.json's "sweep" entry
    priority: tuple = ()  # lower runs first among ready jobs (the long and the headline ones early)
    training: Path | None = None  # evaluate: the folder of the training whose checkpoint it evaluates

    @property
    def run_folder(self) -> Path:
        """The (dataset, method, seed) folder the job belongs to: a training's parent (its ``train/`` is
        deleted when it starts over), an evaluation's own. Launchers keep their logs below it, in ``logs/``."""
        return self.folder.parent if self.kind == "train" else self.folder

    @property
    def checkpoint(self) -> Path:
        return self.folder / CHECKPOINT

    @property
    def done_marker(self) -> Path:
        return self.folder / "fit.done"

    @property
    def result_file(self) -> Path:
        return self.folder / "result.json"

    @property
    def done(self) -> bool:
        if self.kind == "train":
            return self.done_marker.exists() and self.checkpoint.exists()
        return self.result_file.exists()


@dataclasses.dataclass(frozen=True)
class Row:
    """One method and seed of a table: where its result is read from."""

    name: str
    group: str  # "method", or "sweep" for a point of the token-pruning trade-off curve
    params: Mapping[str, Any]
    seed: int
    job: str  # id of the evaluate job that writes it

    @property
    def label(self) -> str:
        return f"{self.name} (seed {self.seed})"


@dataclasses.dataclass
class Table:
    kind: str  # "table1" or "table2"
    name: str  # e.g. "Table 1 vp_ucf", "Table 2 vp_ucf -> vp_hmdb"
    folder: Path  # where <kind>.md, .csv (and Table 1's tradeoff.png) go
    title: str
    rows: list[Row]
    plot_title: str = "Privacy-utility trade-off"  # Table 1's tradeoff.png


@dataclasses.dataclass
class Plan:
    config: SweepConfig
    jobs: list[Job]  # every job, each after the jobs it needs
    tables: list[Table]

    def job(self, job_id: str) -> Job:
        return self._by_id[job_id]

    @functools.cached_property
    def _by_id(self) -> dict[str, Job]:
        return {job.id: job for job in self.jobs}

    def pending(self) -> list[Job]:
        """The jobs still to run: every unfinished evaluation, and the unfinished trainings one of them
        needs (a training whose evaluations have all finished is not redone). ``after`` keeps only
        pending jobs."""
        by_id = self._by_id
        evaluations = {job.id for job in self.jobs if job.kind == "evaluate" and not job.done}
        needed = {dep for job_id in evaluations for dep in by_id[job_id].after if not by_id[dep].done}
        ids = evaluations | needed
        pending = [job for job in self.jobs if job.id in ids]
        return [dataclasses.replace(job, after=tuple(d for d in job.after if d in ids)) for job in pending]

    def counts(self) -> dict[str, int]:
        return {kind: sum(job.kind == kind for job in self.jobs) for kind in ("train", "evaluate")}


# -- building -----------------------------------------------------------------------------------------
def cli_value(value: Any) -> str:
    """A config value as the CLI reads it: strings as they are (jsonargparse keeps quotes), the rest as JSON."""
    return value if isinstance(value, str) else json.dumps(value)


def override_args(prefix: str, overrides: Mapping[str, Any]) -> list[str]:
    args = []
    for key, value in overrides.items():
        args += [f"--{prefix}.{key}", cli_value(value)]
    return args


def quiet_trainer(folder: Path, name: str) -> list[str]:
    """No progress bars; the TensorBoard logs and checkpoints in ``folder/name/run``."""
    return ["--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false",
            "--trainer.logger.init_args.save_dir", str(folder), "--trainer.logger.init_args.name", name,
            "--trainer.logger.init_args.version", "run"]


def _rank(method: MethodSpec) -> int:
    """raw first (every delta is paired with it), then the headline method, then the rest."""
    return 0 if method.name == "raw" else 1 if method.method == "token_pruning" and not method.curve else 2


def _describe(selection: Mapping[str, Any]) -> str:
    return " and ".join(f"{key} {value!r}" for key, value in selection.items())


class _Builder:
    def __init__(self, config: SweepConfig) -> None:
        self.config = config
        self.jobs: dict[str, Job] = {}

    def scale(self, trainer: Path, overrides: Mapping[str, Any]) -> list[str]:
        """The launcher's GPUs per run and nodes per run, as trainer arguments (anonpriv.sweep.devices)."""
        from anonpriv.sweep.devices import trainer_args

        return trainer_args(self.config.launcher.options, trainer, overrides)

    def dataset_folder(self, dataset: DatasetSpec) -> Path:
        return self.config.out / dataset.folder

    def add(self, job: Job) -> Job:
        self.jobs.setdefault(job.id, job)
        return self.jobs[job.id]

    def training(self, dataset: DatasetSpec, method: MethodSpec, seed: int, prefix: str = "",
                 train_data: Mapping[str, Any] | None = None, stage: int = 0) -> Job:
        recipe = self.config.train
        folder = self.dataset_folder(dataset) / "runs" / f"{prefix}{method.name}" / f"seed{seed}" / "train"
        args = ["fit", "--model", str(method.config), "--data", str(dataset.data),
                *override_args("data", dataset.overrides), *override_args("data", train_data or {}),
                "--trainer", str(recipe.trainer), *override_args("trainer", recipe.trainer_overrides),
                *self.scale(recipe.trainer, recipe.trainer_overrides),
                "--seed_everything", str(seed), *quiet_trainer(folder, "anonymizer")]
        if recipe.epochs is not None:
            args += ["--trainer.max_epochs", str(recipe.epochs)]
        args += override_args("model.init_args", {**recipe.method_overrides, **method.overrides})
        cost = 3.0 if method.method == "token_pruning" else 1.5
        return self.add(Job(f"train {dataset.name}/{prefix}{method.name} seed {seed}", "train", folder, tuple(args),
                            priority=(stage, _rank(method), -cost, seed)))

    def evaluation(self, table: str, protocol: str, source: DatasetSpec, target: DatasetSpec, folder: Path,
                   method: MethodSpec, seed: int, training: Job | None, evaluate_data: Mapping[str, Any]) -> Job:
        spec = self.config.evaluation
        run = folder / "runs" / f"{'novel_' if protocol == 'novel' else ''}{method.name}" / f"seed{seed}"
        evaluation_dir = run / "evaluation"
        anonymizer = str(training.checkpoint) if training is not None else method.method
        args = ["fit", "--model", str(spec.config), "--data", str(target.data),
                *override_args("data", target.overrides), *override_args("data", evaluate_data),
                "--trainer", str(spec.trainer), *override_args("trainer", spec.trainer_overrides),
                *self.scale(spec.trainer, spec.trainer_overrides),
                "--model.init_args.anonymizer", anonymizer, "--seed_everything", str(seed)]
        if spec.epochs is not None:
            args += ["--trainer.max_epochs", str(spec.epochs)]
        args += ["--metrics.results_dir", str(evaluation_dir), *quiet_trainer(evaluation_dir, "protocol"),
                 *override_args("model.init_args", spec.overrides)]
        if training is None:
            options = method.options()
            if options:
                args += ["--model.init_args.anonymizer_kwargs", json.dumps(options)]
        record = {"name": method.name, "method": method.method, "table": table, "protocol": protocol,
                  "group": "sweep" if method.curve else "method", "model_args": [list(i) for i in method.overrides.items()],
                  "seed": seed, "dataset": target.name, "anonymizer_dataset": source.name}
        stage = 0 if table == "table1" else 1
        where = {"standard": f"Table 1 {target.name}", "novel": f"Table 2 novel {target.name}",
                 "transfer": f"Table 2 {source.name}->{target.name}"}[protocol]
        job_id = f"evaluate {where}/{method.name} seed {seed}"
        return self.add(Job(job_id, "evaluate", run, tuple(args), after=(training.id,) if training else (),
                            record=record, priority=(stage, _rank(method), -1.0 if stage == 0 else -0.5, seed),
                            training=training.folder if training else None))

    # -- tables -----------------------------------------------------------------------------------
    def table1(self, dataset: DatasetSpec) -> Table:
        rows = []
        for seed in self.config.seeds:
            for method in self.config.methods.values():
                training = self.training(dataset, method, seed) if method.train else None
                job = self.evaluation("table1", "standard", dataset, dataset, self.dataset_folder(dataset), method,
                                      seed, training, {})
                rows.append(Row(method.name, job.record["group"], dict(method.overrides), seed, job.id))
        title, plot_title = "Table 1: standard protocol (fresh models on the frozen anonymizer's output)", None
        if len(self.config.datasets) > 1:  # say which dataset
            title = f"Table 1, {dataset.title}: standard protocol (fresh models on the frozen anonymizer's output)"
            plot_title = f"Privacy-utility trade-off, {dataset.title}"
        table = Table("table1", f"Table 1 {dataset.name}", self.dataset_folder(dataset), title, rows)
        if plot_title:
            table.plot_title = plot_title
        return table

    def table2(self, entry: Table2Spec) -> Table:
        source, target = self.config.datasets[entry.source], self.config.datasets[entry.target]
        if entry.kind == "novel":
            folder = self.dataset_folder(source)
            title = entry.title or (f"Table 2: novel protocol (anonymizers trained on {_describe(entry.train_data)}; "
                                    f"fresh models on {_describe(entry.evaluate_data)})")
        else:
            folder = self.config.out / entry.folder
            title = entry.title or (f"Table 2: {source.title} → {target.title} (anonymizers trained on {source.title} "
                                    f"and frozen; fresh models trained and tested on {target.title})")
        rows = []
        for seed in self.config.seeds:
            for name in entry.methods:
                method = self.config.methods[name]
                training = None
                if method.train and entry.kind == "novel":
                    training = self.training(source, method, seed, "novel_", entry.train_data, stage=1)
                elif method.train:
                    training = self.training(source, method, seed)
                job = self.evaluation("table2", entry.kind, source, target, folder, method, seed, training,
                                      entry.evaluate_data)
                rows.append(Row(method.name, job.record["group"], dict(method.overrides), seed, job.id))
        return Table("table2", f"Table 2 {entry.name}", folder, title, rows)


def build_plan(config: SweepConfig) -> Plan:
    """Every job and table of ``config``; nothing is read from disk but the method configs."""
    builder = _Builder(config)
    tables = [builder.table1(config.datasets[name]) for name in config.table1]
    tables += [builder.table2(entry) for entry in config.table2]
    return Plan(config, list(builder.jobs.values()), tables)


def describe_plan(plan: Plan) -> list[str]:
    """The lines ``--dry-run`` prints: every job with its state, the counts per kind and per table."""
    counts = plan.counts()
    pending = {job.id for job in plan.pending()}
    lines = [f"{len(plan.jobs)} runs planned: {counts['train']} anonymizer trainings, {counts['evaluate']} evaluations "
             f"({len(plan.jobs) - len(pending)} finished or not needed, {len(pending)} to run)"]
    width = len(str(len(plan.jobs)))
    for number, job in enumerate(plan.jobs, start=1):
        status = "to run" if job.id in pending else "finished" if job.done else "not needed (its evaluations finished)"
        after = f" (after {', '.join(job.after)})" if job.after else ""
        lines.append(f"  [{number:>{width}}] {job.id}: {status}{after}")
    for table in plan.tables:
        seeds = len({row.seed for row in table.rows})
        lines.append(f"{table.name}: {len(table.rows)} evaluations ({len(table.rows) // max(seeds, 1)} methods x {seeds} "
                     f"seeds) -> {table.folder / (table.kind + '.md')}")
    return lines
