"""One sweep run in a process of its own: what a GPU slot of the ``local`` launcher starts
(``python -m anonpriv.sweep.task``, :func:`run_in_process`) and what a SLURM job runs (:func:`run_task`,
pickled by submitit).

Below the run's folder (:attr:`~anonpriv.sweep.plan.Job.run_folder`), ``logs/`` holds per job kind:

* ``<kind>.log``: the run's output (every attempt appended, each under a header line); the other
  processes of a DDP run write ``<kind>.rank<r>.log``;
* ``<kind>.outcome.json``: ``{"line": ...}`` or ``{"error": ...}`` (one line), written by global rank 0
  when the run ends; the launcher reads it once the process or the cluster job has ended (the result
  itself is the run's ``result.json`` or ``fit.done``, as for every launcher).

Lightning's DDP starts ranks 1.. by running this module again with the same environment, so the task
file travels in an environment variable (:data:`TASK_ENV`), not as an argument.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import pickle
import socket
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from anonpriv.sweep.execute import execute_job, global_rank
from anonpriv.sweep.plan import Job

TASK_ENV = "ANONPRIV_SWEEP_TASK"


class RunFailed(RuntimeError):
    """A run in its own process failed; the message is its one-line error."""


@dataclasses.dataclass(frozen=True)
class RunFiles:
    """Where a job's logs, outcome and launcher records go: ``<run folder>/logs/<kind>.*``."""

    folder: Path
    kind: str

    @classmethod
    def of(cls, job: Job) -> RunFiles:
        return cls(job.run_folder / "logs", job.kind)

    @property
    def log(self) -> Path:
        return self.folder / f"{self.kind}.log"

    def rank_log(self, rank: int) -> Path:
        return self.log if rank == 0 else self.folder / f"{self.kind}.rank{rank}.log"

    @property
    def outcome(self) -> Path:
        return self.folder / f"{self.kind}.outcome.json"

    @property
    def task(self) -> Path:
        return self.folder / f"{self.kind}.task.pkl"

    @property
    def record(self) -> Path:
        """The SLURM launcher's record of the job it submitted (anonpriv.sweep.cluster_jobs)."""
        return self.folder / f"{self.kind}.slurm.json"

    def write_outcome(self, **outcome: str) -> None:
        tmp = self.outcome.with_suffix(".tmp")
        tmp.write_text(json.dumps(outcome) + "\n")
        tmp.replace(self.outcome)

    def read_outcome(self) -> dict:
        try:
            return json.loads(self.outcome.read_text())
        except (OSError, ValueError):
            return {}


@contextlib.contextmanager
def _output_to(path: Path) -> Iterator[None]:
    """This process's output appended to ``path``: file descriptors 1 and 2 (the run's subprocesses,
    C libraries, loggers holding the old streams) and ``sys.stdout`` / ``sys.stderr`` (where something
    had replaced them); all restored afterwards."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    streams = sys.stdout, sys.stderr
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    sys.stdout = sys.stderr = text = open(os.dup(fd), "w", buffering=1)
    try:
        yield
    finally:
        text.flush()
        sys.stdout, sys.stderr = streams
        text.close()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for descriptor in (fd, *saved):
            os.close(descriptor)


def _header(job: Job) -> str:
    where = [f"host {socket.gethostname()}", f"pid {os.getpid()}"]
    if os.environ.get("SLURM_JOB_ID"):
        array = os.environ.get("SLURM_ARRAY_JOB_ID")
        job_id = f"{array}_{os.environ['SLURM_ARRAY_TASK_ID']}" if array else os.environ["SLURM_JOB_ID"]
        where.append(f"slurm job {job_id}")
    if "CUDA_VISIBLE_DEVICES" in os.environ:
        where.append(f"CUDA_VISIBLE_DEVICES={os.environ['CUDA_VISIBLE_DEVICES']}")
    return f"== {job.id}: started {time.strftime('%Y-%m-%d %H:%M:%S')} ({', '.join(where)}) =="


def run_task(job: Job, execute: Callable[[Job], str] = execute_job, cwd: str | None = None,
             redirect: bool = True) -> str:
    """Run ``job`` here, its output appended to its log (``redirect``), its outcome written for the
    launcher; an error is recorded in one line and raised again (so a cluster job fails with it)."""
    from anonpriv.sweep.launchers import one_line

    if cwd is not None:
        os.chdir(cwd)  # the sweep's paths are relative to where it was started
    files = RunFiles.of(job)
    files.folder.mkdir(parents=True, exist_ok=True)
    rank = global_rank()
    if rank == 0:
        files.outcome.unlink(missing_ok=True)
    with _output_to(files.rank_log(rank)) if redirect else contextlib.nullcontext():
        print(_header(job), flush=True)
        try:
            line = execute(job)
        except BaseException as error:
            traceback.print_exc()
            if rank == 0:
                files.write_outcome(error=one_line(error))
            raise
        print(f"== {job.id}: finished {time.strftime('%Y-%m-%d %H:%M:%S')}: {line} ==", flush=True)
    if rank == 0:
        files.write_outcome(line=line)
    return line


def run_in_process(job: Job, execute: Callable[[Job], str], devices: Sequence[str], threads: int | None = None) -> str:
    """Run ``job`` in a new Python process that sees only ``devices`` (``CUDA_VISIBLE_DEVICES``), its
    output in the run's log; returns its summary line or raises :class:`RunFailed` with its error."""
    files = RunFiles.of(job)
    files.folder.mkdir(parents=True, exist_ok=True)
    files.outcome.unlink(missing_ok=True)
    with open(files.task, "wb") as handle:
        pickle.dump((job, execute, os.getcwd()), handle)
    env = dict(os.environ, CUDA_VISIBLE_DEVICES=",".join(devices), **{TASK_ENV: str(files.task.resolve())})
    # The parent's import path, as multiprocessing's spawn passes it: ``execute`` may live outside the package.
    env["PYTHONPATH"] = os.pathsep.join(path for path in sys.path if path)
    if threads is not None and "OMP_NUM_THREADS" not in os.environ:
        env["OMP_NUM_THREADS"] = str(threads)
    try:
        with open(files.log, "a") as log:
            code = subprocess.call([sys.executable, "-m", "anonpriv.sweep.task"], env=env, stdout=log,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    finally:
        files.task.unlink(missing_ok=True)
    outcome = files.read_outcome()
    if code == 0 and "line" in outcome:
        return outcome["line"]
    raise RunFailed(outcome.get("error") or f"its process ended with exit status {code} and no result "
                                             f"(its output: {files.log})")


def main() -> int:
    """``python -m anonpriv.sweep.task``: the run named by :data:`TASK_ENV` (a GPU slot's process, or a
    DDP rank Lightning started from it)."""
    with open(os.environ[TASK_ENV], "rb") as handle:
        job, execute, cwd = pickle.load(handle)
    try:
        run_task(job, execute, cwd, redirect=global_rank() != 0)
    except Exception:
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
