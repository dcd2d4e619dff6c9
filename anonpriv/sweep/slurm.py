"""``launcher: slurm``: every run of the sweep a SLURM job, through submitit.

One job per (dataset, method, seed) run and kind: ``submitit`` pickles :func:`anonpriv.sweep.task.run_task`
with the job, ``sbatch`` queues it, and on the compute node it runs the job as every launcher does (its
output in ``<run>/logs/<kind>.log``; submitit's own files, named by job id, under ``folder``, default ``<out>/slurm``).
Runs that are ready together go in one job array (submitit's ``executor.batch()``). An evaluation of a
learned anonymizer waits for its training: by default it is queued at once with
``--dependency=afterok:<training's job>`` (and ``--kill-on-invalid-dep=yes``, so a failed training
cancels it); with ``dependencies: wait`` it is submitted once the training has finished.

The sweep then follows its jobs (``wait: true``) and writes the tables; stopped or with ``wait: false``
the jobs keep running, and rerunning the same command resumes: finished runs are kept, a job still
pending or running is followed (its id is in ``<run>/logs/<kind>.slurm.json``), a failed one is
submitted again (:mod:`anonpriv.sweep.cluster_jobs`).

Resources come from the launcher section: ``partition``, ``devices`` (GPUs per node of one run, one task
per GPU: Lightning's DDP over SLURM's tasks; 0: a CPU job), ``num_nodes``, ``cpus_per_task``,
``mem_gb``, ``hours``, ``sbatch`` (any other option), ``setup`` (shell lines before the run), and per
kind under ``train`` / ``evaluate``. ``devices`` and ``num_nodes`` are also every run's
``--trainer.devices`` / ``--trainer.num_nodes`` (:mod:`anonpriv.sweep.devices`).

submitit is the optional extra ``cluster``; its absence is a one-line error when a slurm sweep starts
(``--dry-run`` and ``--report-only`` need none).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from anonpriv.sweep.cluster_jobs import Record, is_active, slurm_states
from anonpriv.sweep.config import SweepConfig, SweepConfigError
from anonpriv.sweep.devices import run_size
from anonpriv.sweep.launchers import Execute, Launcher, Log, Outcome, _Schedule, positive, whole
from anonpriv.sweep.plan import Job
from anonpriv.sweep.task import RunFiles, run_task

INSTALL = "pip install 'anonpriv[cluster]'"
KINDS = ("train", "evaluate")
RESOURCES = {
    "partition": "the SLURM partition (--partition)",
    "cpus_per_task": "CPUs per task, i.e. per GPU (--cpus-per-task): the data workers and one",
    "mem_gb": "memory per node in GB (--mem)",
    "hours": "time limit of each job in hours (--time; default 24)",
    "sbatch": "any other sbatch options, e.g. {account: myproject, qos: normal, constraint: h100}",
}
DEFAULT_HOURS = 24


def require_submitit() -> None:
    """Stop in one line, naming the extra, when submitit is not installed."""
    try:
        import submitit  # noqa: F401
    except ImportError:
        raise SweepConfigError(f"launcher 'slurm' needs submitit, which is not installed: {INSTALL}") from None


def _resources(options: Mapping[str, Any], where: str = "") -> None:
    if "partition" in options and (not isinstance(options["partition"], str) or not options["partition"].strip()):
        raise ValueError(f"{where}partition={options['partition']!r} must be a partition name")
    if "cpus_per_task" in options:
        whole(options, "cpus_per_task", 1)
    for key in ("mem_gb", "hours"):
        if key in options:
            positive(options, key)
    sbatch = options.get("sbatch", {})
    if not isinstance(sbatch, Mapping) or not all(isinstance(k, str) and isinstance(v, (str, int, float, bool))
                                                  for k, v in sbatch.items()):
        raise ValueError(f"{where}sbatch={sbatch!r}: give a mapping of sbatch options without the dashes, "
                         "e.g. {account: myproject, qos: normal}")


def _cluster(executor: Any) -> str:
    """Which cluster a submitit executor submits to (``slurm``, ``local``, ``debug``)."""
    return getattr(executor, "cluster", None) or type(executor).name()


def _job_class(executor: Any) -> type:
    return getattr(executor, "_executor", executor).job_class


def _cancel(handle: Any) -> None:
    try:
        handle.cancel(check=False)  # scancel (a local process: an interrupt)
    except OSError:
        pass  # no scancel here: nothing of it is running here either


def default_executor(folder: Path) -> Any:
    """submitit's executor for SLURM; a one-line error where there is no SLURM."""
    import submitit

    try:
        return submitit.AutoExecutor(folder=folder, cluster="slurm")
    except RuntimeError as error:
        raise SweepConfigError(f"launcher 'slurm': no SLURM here ({error}): start the sweep on the cluster's "
                               "login node, or use launcher name: local") from None


class SlurmLauncher(Launcher):
    """The runs as SLURM jobs through submitit (the module's docstring says how)."""

    name = "slurm"
    options = {
        **RESOURCES,
        "devices": "GPUs per node of each run (--gpus-per-node, one task per GPU; Lightning's devices; "
                   "0: a CPU job; default 1)",
        "num_nodes": "nodes per run (--nodes; Lightning's num_nodes; default 1)",
        "setup": "shell lines run before each job, e.g. ['module load cuda/12.4']",
        "array_parallelism": "tasks of one job array running at once (default 256)",
        "dependencies": "afterok (default: an evaluation queued at once, after its training's job) or wait "
                        "(submitted once its training finished)",
        "wait": "true (default): follow the jobs to their end, then write the tables; false: submit and return",
        "poll_seconds": "seconds between checks of the jobs (default 60)",
        "folder": "submitit's folder of job scripts, pickles and its own logs (default <out>/slurm)",
        "train": "resources of the trainings alone (partition, cpus_per_task, mem_gb, hours, sbatch)",
        "evaluate": "resources of the evaluations alone (the same keys)",
    }

    def __init__(self, options: Mapping[str, Any] | None = None, out: Path = Path("."), sweep: str = "anonpriv",
                 executor_factory: Callable[[Path], Any] | None = None,
                 query: Callable[[Sequence[str]], dict[str, str]] | None = None) -> None:
        options = dict(options or {})
        self.validate(options)
        self.options_given = options
        self.devices, self.num_nodes = run_size(options)
        self.setup = list(options.get("setup", []))
        self.array_parallelism = options.get("array_parallelism")
        self.dependencies = options.get("dependencies", "afterok")
        self.wait = options.get("wait", True)
        self.poll_seconds = float(options.get("poll_seconds", 60))
        self.folder = Path(options["folder"]) if "folder" in options else Path(out) / "slurm"
        self.sweep = sweep
        self.executor_factory = executor_factory or default_executor
        self.query = query or slurm_states

    @classmethod
    def validate(cls, options: Mapping[str, Any]) -> None:
        super().validate(options)
        _resources(options)
        whole(options, "devices", 0)
        whole(options, "num_nodes", 1)
        whole(options, "array_parallelism", 1)
        positive(options, "poll_seconds")
        setup = options.get("setup", [])
        if not isinstance(setup, list) or not all(isinstance(line, str) for line in setup):
            raise ValueError(f"setup={setup!r}: give a list of shell lines, e.g. ['module load cuda/12.4']")
        if options.get("dependencies", "afterok") not in ("afterok", "wait"):
            raise ValueError(f"dependencies={options['dependencies']!r}: give afterok or wait")
        if not isinstance(options.get("wait", True), bool):
            raise ValueError(f"wait={options['wait']!r}: give true or false")
        if "folder" in options and (not isinstance(options["folder"], str) or not options["folder"].strip()):
            raise ValueError(f"folder={options['folder']!r}: give a folder the compute nodes can read")
        for kind in KINDS:
            if kind in options:
                section = options[kind]
                if not isinstance(section, Mapping):
                    raise ValueError(f"{kind}={section!r}: give a mapping of {', '.join(RESOURCES)}")
                unknown = [key for key in section if key not in RESOURCES]
                if unknown:
                    raise ValueError(f"{kind} has no option {unknown[0]!r}; its options: {', '.join(RESOURCES)}")
                _resources(section, f"{kind}.")

    @classmethod
    def from_options(cls, options: Mapping[str, Any], config: SweepConfig | None = None) -> SlurmLauncher:
        cls.validate(options)
        require_submitit()
        if config is None:
            return cls(options)
        return cls(options, out=config.out, sweep=config.path.stem)

    # -- what each job asks SLURM for --------------------------------------------------------------
    def parameters(self, kind: str, dependency: str | None = None) -> dict[str, Any]:
        """submitit's parameters (AutoExecutor's names) of a ``kind`` job, after ``dependency``."""
        resources = {**{k: v for k, v in self.options_given.items() if k in RESOURCES},
                     **self.options_given.get(kind, {})}
        hours = resources.get("hours", DEFAULT_HOURS)
        parameters: dict[str, Any] = {"name": f"{self.sweep}-{kind}", "timeout_min": max(1, math.ceil(hours * 60)),
                                      "nodes": self.num_nodes, "tasks_per_node": max(self.devices, 1)}
        if self.devices:
            parameters["gpus_per_node"] = self.devices
        if "cpus_per_task" in resources:
            parameters["cpus_per_task"] = resources["cpus_per_task"]
        if "mem_gb" in resources:
            parameters["mem_gb"] = resources["mem_gb"]
        if "partition" in resources:
            parameters["slurm_partition"] = resources["partition"]
        if self.array_parallelism:
            parameters["slurm_array_parallelism"] = self.array_parallelism
        if self.setup:
            parameters["slurm_setup"] = list(self.setup)
        extra = dict(resources.get("sbatch", {}))
        if dependency:
            extra.update({"dependency": dependency, "kill-on-invalid-dep": "yes"})
        if extra:
            parameters["slurm_additional_parameters"] = extra
        return parameters

    def executor(self, kind: str, dependency: str | None = None) -> Any:
        # One folder, every file named by its job id: SLURM does not create an output folder for a job.
        executor = self.executor_factory(self.folder)
        executor.update_parameters(**self.parameters(kind, dependency))
        return executor

    # -- running -----------------------------------------------------------------------------------
    def launch(self, jobs: Sequence[Job], execute: Execute, log: Log = print) -> Outcome:
        probe = self.executor("train")  # no SLURM here: one line now, before anything is submitted
        chain = self.dependencies == "afterok" and _cluster(probe) == "slurm"
        self._job_class = _job_class(probe)
        schedule = _Schedule(jobs, key=lambda job: job.priority)
        by_id = {job.id: job for job in jobs}
        handles: dict[str, Any] = {}
        self._follow_earlier(jobs, schedule, handles, log)
        try:
            while True:
                ready = []
                while (job := schedule.next(submitted=chain)) is not None:
                    ready.append(job)
                if ready:
                    self._submit(ready, schedule, handles, execute, log)
                if not self.wait or not schedule.running:
                    break
                time.sleep(self.poll_seconds)
                self._collect(by_id, schedule, handles, log)
        except KeyboardInterrupt:
            log(f"stopped following: the {len(schedule.running)} submitted job(s) keep running on the cluster; rerun the "
                "same command to follow them (scancel stops them)")
            raise
        outcome = schedule.outcome
        outcome.queued = [job_id for job_id in by_id if job_id in schedule.running or job_id in
                          {job.id for job in schedule.waiting}]
        return outcome

    def _handle(self, record: Record) -> Any:
        return self._job_class(folder=record.folder, job_id=record.job_id, tasks=list(range(record.tasks)))

    def _follow_earlier(self, jobs: Sequence[Job], schedule: _Schedule, handles: dict[str, Any], log: Log) -> None:
        """Jobs an earlier sweep submitted and SLURM still has pending or running are followed instead
        of submitted again (unless a job they wait for must be submitted again: then they are cancelled)."""
        records = {job.id: Record.read(RunFiles.of(job).record) for job in jobs}
        states = self.query([r.job_id for r in records.values() if r is not None]) if any(records.values()) else {}
        for job in sorted(jobs, key=lambda job: job.kind != "train"):  # a training before its evaluations
            record = records[job.id]
            if record is None:
                continue
            state = states.get(record.job_id)
            if not is_active(state):
                log(f"  {job.id}: slurm job {record.job_id} ({(state or 'unknown').lower()}) left no result: "
                    "submitting it again")
            elif all(dependency in handles for dependency in job.after):
                handles[job.id] = self._handle(record)
                schedule.start(job)
                log(f"  {job.id}: slurm job {record.job_id} is {state.lower()}: following it, not submitting it again")
            else:
                _cancel(self._handle(record))
                log(f"  {job.id}: cancelled slurm job {record.job_id}: the training it waits for is submitted again")

    def _submit(self, ready: list[Job], schedule: _Schedule, handles: dict[str, Any], execute: Execute, log: Log) -> None:
        """Submit the ready jobs, those they wait for first: one array per kind and dependency (an
        evaluation after the job of its training while that one is still in flight)."""
        remaining = list(ready)
        while remaining:
            now, later = [], []
            for job in remaining:
                refused = [d for d in job.after if d in schedule.outcome.failed or d in schedule.outcome.skipped]
                if refused:  # its training was refused by sbatch just now
                    schedule.skip(job, refused[0])
                elif all(d in handles or d not in schedule.running for d in job.after):
                    now.append(job)
                else:
                    later.append(job)
            groups: dict[tuple[str, str | None], list[Job]] = {}
            for job in now:
                waits_for = [handles[d].job_id for d in job.after if d in schedule.running]
                groups.setdefault((job.kind, "afterok:" + ":".join(waits_for) if waits_for else None), []).append(job)
            for (kind, dependency), group in sorted(groups.items(), key=lambda item: item[0][0] != "train"):
                self._submit_group(kind, dependency, group, schedule, handles, execute, log)
            remaining = later

    def _submit_group(self, kind: str, dependency: str | None, group: list[Job], schedule: _Schedule,
                      handles: dict[str, Any], execute: Execute, log: Log) -> None:
        for job in group:
            RunFiles.of(job).outcome.unlink(missing_ok=True)
        executor = self.executor(kind, dependency)
        try:
            with executor.batch():
                submitted = [executor.submit(run_task, job, execute, os.getcwd()) for job in group]
        except Exception as error:  # sbatch refused them (a partition, an option): each says why
            reason = next((line.strip() for line in str(error).splitlines() if line.strip()), type(error).__name__)
            for job in group:
                schedule.done(job, f"not submitted: {reason}")
            log(f"[FAILED] {len(group)} {kind} job(s) not submitted: {reason}")
            return
        for job, handle in zip(group, submitted):
            handles[job.id] = handle
            Record.now(handle.job_id, self.folder.absolute(), max(self.devices, 1) * self.num_nodes).write(
                RunFiles.of(job).record)
        ids = ", ".join(handle.job_id for handle in submitted)
        log(f"submitted {len(group)} {kind} job(s){' as one array' if len(group) > 1 else ''}: {ids}"
            f"{f' ({dependency})' if dependency else ''}")

    def _ended(self, handles: Mapping[str, Any]) -> set[str]:
        """The runs whose job has ended: submitit says so (a result pickle, sacct), or, where sacct knows
        nothing, squeue no longer lists it."""
        ended = {job_id for job_id, handle in handles.items() if handle.done()}
        unsure = {job_id: handle.job_id for job_id, handle in handles.items()
                  if job_id not in ended and str(handle.state).upper() == "UNKNOWN"}
        if unsure:
            states = self.query(list(unsure.values()))
            ended |= {job_id for job_id, cluster_id in unsure.items()
                      if cluster_id in states and not is_active(states[cluster_id])}
        return ended

    def _collect(self, by_id: Mapping[str, Job], schedule: _Schedule, handles: dict[str, Any], log: Log) -> None:
        running = {job_id: handles[job_id] for job_id in schedule.running}
        for job_id in sorted(self._ended(running), key=lambda job_id: by_id[job_id].kind != "train"):
            if job_id not in schedule.running:  # skipped: its training failed just now
                continue
            job, handle = by_id[job_id], handles[job_id]
            files = RunFiles.of(job)
            if job.done:
                schedule.done(job)
                log(f"[finished] {files.read_outcome().get('line', job.id)} (slurm job {handle.job_id})")
                continue
            error = files.read_outcome().get("error") or (
                f"slurm job {handle.job_id} ended ({str(handle.state).lower()}) without a result: see {files.log} "
                f"and submitit's {handle.task(0).paths.stderr}")
            schedule.done(job, error)
            log(f"[FAILED] {job.id}: {error}")
            for other in sorted(schedule.running):
                if job_id in by_id[other].after:
                    _cancel(handles[other])
                    schedule.skip(by_id[other], job_id)
                    log(f"  {other}: cancelled (it needed {job_id})")
