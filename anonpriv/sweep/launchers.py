"""Launchers: how the sweep's unfinished jobs run.

A launcher is a small object built from the sweep file's ``launcher`` mapping (``name`` and its own
options). :meth:`Launcher.launch` receives the jobs that are ready to be planned (each with ``after``,
the ids of the jobs in the same list it must wait for: a training before the evaluations of its
checkpoint) and a function that runs one job; it runs every job whose dependencies succeeded, never one
whose dependency failed, and says what happened to each. It does not decide what is finished (the
runner hands it only unfinished jobs) nor write tables.

* ``local`` (:class:`LocalLauncher`, here): this machine; one process, ``jobs`` worker processes, or,
  when the runs ask for a GPU, one run per GPU (or per group of ``devices`` GPUs), each in a process
  of its own pinned with ``CUDA_VISIBLE_DEVICES``; a run waits for a free GPU.
* ``slurm`` (:class:`anonpriv.sweep.slurm.SlurmLauncher`): one SLURM job per run through submitit.

A new launcher is a subclass with its own options, registered in :data:`LAUNCHERS`.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import importlib
import multiprocessing
import os
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from anonpriv.sweep.plan import Job

if TYPE_CHECKING:
    from anonpriv.sweep.config import SweepConfig

Execute = Callable[[Job], str]
Log = Callable[[str], None]


@dataclasses.dataclass
class Outcome:
    finished: list[str] = dataclasses.field(default_factory=list)  # job ids that succeeded
    failed: dict[str, str] = dataclasses.field(default_factory=dict)  # job id -> its error, one line
    skipped: dict[str, str] = dataclasses.field(default_factory=dict)  # job id -> the failed job it needed
    queued: list[str] = dataclasses.field(default_factory=list)  # job ids left queued or running (a cluster's)


def one_line(error: BaseException) -> str:
    """An error's own sentence (jsonargparse wraps the errors of objects it builds in a report of the
    whole config; :func:`anonpriv.cli.own_message` takes the sentence back out), or its type."""
    from anonpriv.cli import own_message  # torch-free

    text = own_message(str(error)).strip()
    return text.splitlines()[0] if text else type(error).__name__


class _Schedule:
    """Which job runs next: the first by ``key`` whose dependencies all succeeded (with ``submitted``,
    also those whose dependencies are still running: a cluster holds them back itself); a job whose
    dependency failed (or was skipped) is skipped, naming it."""

    def __init__(self, jobs: Sequence[Job], key: Callable[[Job], Any]) -> None:
        ids = {job.id for job in jobs}
        for job in jobs:
            missing = [d for d in job.after if d not in ids]
            if missing:
                raise ValueError(f"{job.id} waits for {missing[0]!r}, which is not among the jobs handed over")
        self.waiting = sorted(jobs, key=key)
        self.outcome = Outcome()
        self.running: set[str] = set()

    def _state(self, job_id: str) -> str:
        o = self.outcome
        if job_id in o.finished:
            return "ok"
        if job_id in o.failed or job_id in o.skipped:
            return "bad"
        return "running" if job_id in self.running else "open"

    def next(self, submitted: bool = False) -> Job | None:
        while True:
            changed = False
            for job in list(self.waiting):
                bad = [d for d in job.after if self._state(d) == "bad"]
                if bad:
                    self.waiting.remove(job)
                    self.outcome.skipped[job.id] = bad[0]
                    changed = True
            if not changed:
                break
        ready = ("ok", "running") if submitted else ("ok",)
        for job in self.waiting:
            if all(self._state(d) in ready for d in job.after):
                self.start(job)
                return job
        return None

    def start(self, job: Job) -> None:
        """``job`` runs (taken out of the waiting ones, as :meth:`next` does; a cluster job found running)."""
        self.waiting.remove(job)
        self.running.add(job.id)

    def done(self, job: Job, error: str | None = None) -> None:
        self.running.discard(job.id)
        if error is None:
            self.outcome.finished.append(job.id)
        else:
            self.outcome.failed[job.id] = error

    def skip(self, job: Job, because: str) -> None:
        """A running job that will not run after all: ``because`` (a job it needs) failed."""
        self.running.discard(job.id)
        self.outcome.skipped[job.id] = because

    @property
    def empty(self) -> bool:
        return not self.waiting and not self.running


# -- option checks, shared by the launchers -------------------------------------------------------------
def whole(options: Mapping[str, Any], key: str, least: int) -> None:
    value = options.get(key, least)
    if not isinstance(value, int) or isinstance(value, bool) or value < least:
        raise ValueError(f"{key}={value!r} must be a whole number of at least {least}")


def positive(options: Mapping[str, Any], key: str) -> None:
    value = options.get(key, 1)
    if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"{key}={value!r} must be a positive number")


class Launcher:
    """Base of the launchers: options are validated from the sweep file; :meth:`launch` runs jobs."""

    name: ClassVar[str]
    options: ClassVar[dict[str, str]] = {}  # option -> what it is (for the error naming the known ones)

    @classmethod
    def option_names(cls) -> tuple[str, ...]:
        return tuple(cls.options)

    @classmethod
    def validate(cls, options: Mapping[str, Any]) -> None:
        """Raise ``ValueError`` (one line, naming the option) for options this launcher cannot take."""
        for key in options:
            if key not in cls.options:
                known = ", ".join(f"{k} ({v})" for k, v in cls.options.items()) or "none"
                raise ValueError(f"launcher {cls.name!r} has no option {key!r}; its options: {known}")

    @classmethod
    def from_options(cls, options: Mapping[str, Any], config: SweepConfig | None = None) -> Launcher:
        """The launcher with the sweep file's ``options``; ``config``, the sweep, where it matters."""
        cls.validate(options)
        return cls(**options)

    def launch(self, jobs: Sequence[Job], execute: Execute, log: Log = print) -> Outcome:
        raise NotImplementedError


class LocalLauncher(Launcher):
    """Runs the jobs on this machine: with ``jobs: 1`` one after the other in this process (in the
    plan's order: seed by seed, so an interrupted sweep holds whole seeds), with ``jobs: N`` in N
    spawned worker processes with one intra-op thread each (on small CPU models two one-thread
    processes get more done than one two-thread process), the long and headline jobs first.

    On GPUs (``gpus`` listed, or, by default, every visible GPU when the runs' trainer asks for a GPU:
    ``accelerator: gpu``): one run per group of ``devices`` GPUs at a time, each in a new process that
    sees only its group (``CUDA_VISIBLE_DEVICES``), its output in ``<run>/logs/<kind>.log``; a run waits
    for a free group, an evaluation for its training. ``jobs`` then caps how many run at once.

    ``raise_errors`` (``--debug``; one process only) lets a job's error through with its traceback
    instead of recording it and going on with the jobs that do not need it.
    """

    name = "local"
    options = {
        "jobs": "runs at once; without GPUs each in its own process with one thread, 1: in this process",
        "gpus": "the GPUs to run on, e.g. [0, 1, 2, 3] (default: every visible one when the trainer asks for a GPU; "
                "[]: none pinned)",
        "devices": "GPUs per run (DDP inside the run when above 1; default 1)",
        "num_nodes": "nodes per run: 1 on this machine (the slurm launcher runs on several)",
    }

    def __init__(self, jobs: int | None = None, gpus: Sequence[int | str] | None = None, devices: int = 1,
                 num_nodes: int = 1, raise_errors: bool = False, gpu_trainer: bool = False) -> None:
        self.jobs = jobs
        self.gpus = None if gpus is None else [str(gpu) for gpu in gpus]
        self.devices = devices
        self.raise_errors = raise_errors
        self.gpu_trainer = gpu_trainer

    @classmethod
    def validate(cls, options: Mapping[str, Any]) -> None:
        super().validate(options)
        whole(options, "jobs", 1)
        whole(options, "devices", 1)
        whole(options, "num_nodes", 1)
        if options.get("num_nodes", 1) != 1:
            raise ValueError(f"num_nodes={options['num_nodes']}: launcher 'local' runs on this machine only; "
                             "use name: slurm for runs over several nodes")
        gpus = options.get("gpus", [])
        if not isinstance(gpus, list) or not all(isinstance(g, (int, str)) and not isinstance(g, bool) for g in gpus) \
                or len(set(map(str, gpus))) != len(gpus):
            raise ValueError(f"gpus={gpus!r}: give a list of distinct GPU indices (or UUIDs), e.g. [0, 1, 2, 3]")

    @classmethod
    def from_options(cls, options: Mapping[str, Any], config: SweepConfig | None = None) -> LocalLauncher:
        cls.validate(options)
        if config is None:
            return cls(**options)
        from anonpriv.sweep.devices import uses_gpu_trainer

        return cls(**options, gpu_trainer=uses_gpu_trainer(config))

    def launch(self, jobs: Sequence[Job], execute: Execute, log: Log = print) -> Outcome:
        groups = self._gpu_groups()
        if groups and jobs:
            return self._on_gpus(jobs, execute, log, groups)
        if self.devices > 1 and jobs:  # DDP inside a run restarts its process: that needs a process per run
            from anonpriv.sweep.config import SweepConfigError

            raise SweepConfigError(f"launcher: devices: {self.devices} GPUs per run, but no GPU to run on here: "
                                   "list them under gpus (e.g. gpus: [0, 1]), or use devices: 1")
        jobs_at_once = self.jobs or 1
        if jobs_at_once == 1 or len(jobs) <= 1:
            return self._in_process(jobs, execute, log)
        return self._in_workers(jobs, execute, log, jobs_at_once)

    def _gpu_groups(self) -> list[tuple[str, ...]]:
        """The GPU groups runs are pinned to (none: the runs are not pinned, as on CPU)."""
        from anonpriv.sweep.devices import device_groups, visible_gpus

        gpus = self.gpus
        if gpus is None:
            gpus = visible_gpus() if self.gpu_trainer else []
            if not gpus:  # no GPU here: the runs go unpinned and Lightning names the missing GPU in each
                return []
        if not gpus:
            return []
        try:
            groups = device_groups(gpus, self.devices)
        except ValueError as error:
            from anonpriv.sweep.config import SweepConfigError

            raise SweepConfigError(f"launcher: {error}") from None
        return groups[:self.jobs] if self.jobs else groups

    def _in_process(self, jobs: Sequence[Job], execute: Execute, log: Log) -> Outcome:
        order = {job.id: i for i, job in enumerate(jobs)}
        schedule = _Schedule(jobs, key=lambda job: order[job.id])
        number = 0
        while (job := schedule.next()) is not None:
            number += 1
            log(f"[{number}/{len(jobs)}] {job.id}")
            try:
                line = execute(job)
            except Exception as error:
                if self.raise_errors:
                    raise
                schedule.done(job, one_line(error))
                log(f"[{number}/{len(jobs)} FAILED] {job.id}: {one_line(error)}")
                continue
            schedule.done(job)
            log(f"  {line}")
        return schedule.outcome

    def _in_workers(self, jobs: Sequence[Job], execute: Execute, log: Log, workers: int) -> Outcome:
        log(f"running {len(jobs)} jobs in {workers} processes (one thread each)")
        context = multiprocessing.get_context("spawn")  # no forked copies of a threaded torch
        with concurrent.futures.ProcessPoolExecutor(max_workers=workers, mp_context=context,
                                                    initializer=_one_thread) as pool:
            return _in_slots(jobs, list(range(workers)), lambda job, _: pool.submit(execute, job), pool, log)

    def _on_gpus(self, jobs: Sequence[Job], execute: Execute, log: Log, groups: list[tuple[str, ...]]) -> Outcome:
        from anonpriv.sweep.task import run_in_process

        threads = max(1, (os.cpu_count() or 1) // len(groups))
        log(f"running {len(jobs)} jobs on {len(groups)} GPU slot(s) ({'; '.join(','.join(g) for g in groups)}): "
            f"one process per run, CUDA_VISIBLE_DEVICES pinned; each run's output in its logs/ folder")

        with concurrent.futures.ThreadPoolExecutor(max_workers=len(groups)) as pool:
            def start(job: Job, group: tuple[str, ...]) -> concurrent.futures.Future:
                log(f"  started {job.id} on GPU {','.join(group)}")
                return pool.submit(run_in_process, job, execute, group, threads)

            return _in_slots(jobs, groups, start, pool, log)


def _in_slots(jobs: Sequence[Job], slots: list, start: Callable[[Job, Any], concurrent.futures.Future],
              pool: concurrent.futures.Executor, log: Log) -> Outcome:
    """Run ``jobs`` over ``slots`` (worker places, GPU groups): a ready job takes a free slot, in
    priority order (the long and headline jobs first), and gives it back when it ends."""
    schedule = _Schedule(jobs, key=lambda job: job.priority)
    free = list(slots)
    running: dict[concurrent.futures.Future, tuple[Job, Any]] = {}
    number = 0
    try:
        while not schedule.empty:
            while free and (job := schedule.next()) is not None:
                slot = free.pop(0)
                running[start(job, slot)] = (job, slot)
            if not running:
                break
            finished, _ = concurrent.futures.wait(running, return_when=concurrent.futures.FIRST_COMPLETED)
            for future in finished:
                job, slot = running.pop(future)
                free.append(slot)
                number += 1
                try:
                    line = future.result()
                except Exception as error:  # the others go on: hours of work are not lost to one
                    schedule.done(job, one_line(error))
                    log(f"[{number}/{len(jobs)} FAILED] {job.id}: {one_line(error)}")
                    continue
                schedule.done(job)
                log(f"[{number}/{len(jobs)} finished] {line}")
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    return schedule.outcome


def _one_thread() -> None:
    import torch

    torch.set_num_threads(1)


#: Launchers by the name the sweep file's ``launcher.name`` gives: the class, or ``"module:Class"`` for one
#: imported when first asked for (the slurm launcher's module imports this one).
LAUNCHERS: dict[str, type[Launcher] | str] = {LocalLauncher.name: LocalLauncher,
                                              "slurm": "anonpriv.sweep.slurm:SlurmLauncher"}


def launcher_class(name: str) -> type[Launcher]:
    """The launcher class named ``name`` (a ``KeyError`` for an unknown one)."""
    entry = LAUNCHERS[name]
    if isinstance(entry, str):
        module, _, attribute = entry.partition(":")
        entry = LAUNCHERS[name] = getattr(importlib.import_module(module), attribute)
    return entry


def make_launcher(name: str, options: Mapping[str, Any], config: SweepConfig | None = None) -> Launcher:
    """The launcher ``name`` with the sweep file's ``options`` (validated there already)."""
    return launcher_class(name).from_options(options, config)
