"""What the cluster knows of the jobs a slurm sweep submitted: a record per run, and SLURM's word on it.

Every submitted job leaves a record beside the run's log, ``<run>/logs/<kind>.slurm.json`` (the SLURM
job id, submitit's folder, the task count, when). A rerun hands the launcher only the runs without a
result (``result.json`` / ``fit.done``), and asks SLURM about their records: ``sacct`` first, then
``squeue`` for the ids ``sacct`` does not know (accounting may be off, or slow to list a new job). A job
still pending or running is followed, not submitted twice; any other state (failed, cancelled, timed
out, completed without a result, or unknown to both commands) means the run is submitted again.

Nothing here imports submitit; the commands are run with a timeout, and a missing or failing command
simply knows nothing.
"""

from __future__ import annotations

import dataclasses
import getpass
import json
import re
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

#: SLURM job states in which a job may still run (or is running): it must not be submitted again.
ACTIVE = frozenset({"PENDING", "RUNNING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "CONFIGURING", "COMPLETING",
                    "SUSPENDED", "RESIZING", "SIGNALING", "STAGE_OUT", "STOPPED", "RESV_DEL_HOLD"})
#: What :func:`slurm_states` says of a job ``squeue`` answered about but does not list.
GONE = "GONE"

Run = Callable[..., subprocess.CompletedProcess]


@dataclasses.dataclass(frozen=True)
class Record:
    job_id: str  # "123" or "123_4" (an array's task)
    folder: str  # submitit's folder for it
    tasks: int
    submitted: str

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(dataclasses.asdict(self), indent=1) + "\n")
        tmp.replace(path)

    @classmethod
    def read(cls, path: Path) -> Record | None:
        """The record at ``path``; ``None`` when there is none (or it cannot be read: then nothing is
        known of an earlier job, and the run is submitted again)."""
        try:
            data = json.loads(path.read_text())
            return cls(str(data["job_id"]), str(data["folder"]), int(data.get("tasks", 1)), str(data.get("submitted", "")))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    @classmethod
    def now(cls, job_id: str, folder: str | Path, tasks: int) -> Record:
        return cls(str(job_id), str(folder), tasks, time.strftime("%Y-%m-%d %H:%M:%S"))


def is_active(state: str | None) -> bool:
    """Whether a job in ``state`` (as sacct or squeue print it; ``None``: unknown) may still run."""
    return state is not None and state.split()[0].rstrip("+").upper() in ACTIVE


_ARRAY = re.compile(r"^(?P<main>\d+)_\[(?P<ranges>[\d,\-]+)(?:%\d+)?\]$")


def expand(job_id: str) -> list[str]:
    """The ids a listed id stands for: ``123_[4-6,9%2]`` is ``123_4``, ``123_5``, ``123_6``, ``123_9``."""
    match = _ARRAY.match(job_id)
    if match is None:
        return [job_id]
    ids = []
    for part in match["ranges"].split(","):
        first, _, last = part.partition("-")
        ids += [f"{match['main']}_{index}" for index in range(int(first), int(last or first) + 1)]
    return ids


def _listing(output: str) -> dict[str, str]:
    """``id|STATE`` lines to ``{id: STATE}`` (array ranges expanded; the last line of an id wins)."""
    states = {}
    for line in output.splitlines():
        job_id, _, state = line.strip().partition("|")
        if job_id and state and "." not in job_id:
            for one in expand(job_id):
                states[one] = state.split()[0]
    return states


def _call(run: Run, command: list[str]) -> str | None:
    try:
        result = run(command, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout if result.returncode == 0 else None


def slurm_states(job_ids: Sequence[str], run: Run = subprocess.run) -> dict[str, str]:
    """SLURM's state of each of ``job_ids`` that sacct or squeue knows; :data:`GONE` for an id squeue
    answered about without listing (no longer queued); an id neither answered about is left out."""
    wanted = list(dict.fromkeys(job_ids))
    if not wanted:
        return {}
    states: dict[str, str] = {}
    mains = sorted({job_id.split("_")[0] for job_id in wanted})
    output = _call(run, ["sacct", "-n", "-P", "-X", "-o", "JobID,State", "-j", ",".join(mains)])
    if output is not None:
        listed = _listing(output)
        states.update({job_id: listed[job_id] for job_id in wanted if job_id in listed})
    rest = [job_id for job_id in wanted if job_id not in states]
    if rest:
        output = _call(run, ["squeue", "-h", "-r", "-u", getpass.getuser(), "-o", "%i|%T"])
        if output is not None:
            listed = _listing(output)
            states.update({job_id: listed.get(job_id, GONE) for job_id in rest})
    return states

