"""Running a plan: keep what is finished, check what would fail late, hand the rest to the launcher.

Resume is per (dataset, method, seed): an evaluation whose ``result.json`` exists is kept, and so is a
training whose ``fit.done`` and checkpoint exist (delete a run's folder to redo it). Before anything
runs, :func:`preflight` refuses, in one line, what would otherwise fail hours in: a data config still
holding a ``???`` placeholder, a training-free row whose method is not registered, and face detection
(``face_blur``, the protocol's ``face_rate``) without the ``faces`` extra.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from anonpriv.sweep.config import PLACEHOLDER, SweepConfig, SweepConfigError, read_yaml
from anonpriv.sweep.execute import execute_job
from anonpriv.sweep.launchers import Execute, Launcher, Outcome
from anonpriv.sweep.plan import Job, Plan


class SweepFailed(RuntimeError):
    """Some jobs failed; every other job finished and is kept."""


def _leaves(value: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield from _leaves(item, f"{prefix}{key}.")
    else:
        yield prefix.rstrip("."), value


def placeholders(data_config: Path, overrides: Mapping[str, Any]) -> list[str]:
    """Keys of a data config, after its overrides, that still hold the ``???`` placeholder."""
    values = dict(_leaves(read_yaml(data_config, "data config") or {}))
    values.update(overrides)
    return [key for key, value in values.items() if value == PLACEHOLDER]


def preflight(plan: Plan, jobs: list[Job]) -> None:
    """Refuse (:class:`SweepConfigError`, one line) what would fail after other jobs had run."""
    if not jobs:
        return
    config = plan.config
    used = dict.fromkeys(name for name in config.table1)
    for entry in config.table2:
        used.update(dict.fromkeys((entry.source, entry.target)))
    for name in used:
        dataset = config.datasets[name]
        missing = placeholders(dataset.data, dataset.overrides)
        if missing:
            raise SweepConfigError(
                f"{config.path}: datasets.{name}: {', '.join(missing)} still {'is' if len(missing) == 1 else 'are'} "
                f"the placeholder {PLACEHOLDER}: set {'it' if len(missing) == 1 else 'them'} under "
                f"datasets.{name}.overrides (e.g. {missing[0]}: /path/to/data)")
    evaluations = [job for job in jobs if job.kind == "evaluate"]
    by_name = {job.record["method"]: job.record["name"] for job in evaluations if job.training is None}
    if by_name:
        from anonpriv.methods.catalog import CATALOG  # torch-free

        for method, row in by_name.items():
            if method not in CATALOG:
                raise SweepConfigError(f"{config.path}: methods.{row}: {method!r} is not a registered method "
                                       f"(registered: {', '.join(CATALOG)}); a method that learns needs train: true")
    if "face_blur" in by_name or _measures_face_rate(config):
        from anonpriv.faces import FacesExtraMissing, require_faces

        try:
            require_faces()
        except FacesExtraMissing as error:
            raise SweepConfigError(f"{config.path}: {error}") from None


def _measures_face_rate(config: SweepConfig) -> bool:
    if "face_rate" in config.evaluation.overrides:
        return bool(config.evaluation.overrides["face_rate"])
    protocol = read_yaml(config.evaluation.config, "evaluation.config") or {}
    return bool((protocol.get("init_args") or {}).get("face_rate", False))


def run_plan(plan: Plan, launcher: Launcher, log: Callable[[str], None] = print,
             execute: Execute = execute_job) -> Outcome:
    """Run the plan's unfinished jobs with ``launcher``; finished ones are kept, each logged."""
    pending = plan.pending()
    finished = len(plan.jobs) - len(pending)
    if finished:
        log(f"{finished} of {len(plan.jobs)} jobs finished earlier, kept (delete a run's folder to redo it)")
    preflight(plan, pending)
    if not pending:
        return Outcome()
    return launcher.launch(pending, execute, log)


def failure_message(outcome: Outcome) -> str:
    """One line naming every failed job (and how many were skipped for it), with what to do next."""
    parts = [f"{job}: {error.rstrip('.')}" for job, error in outcome.failed.items()]
    skipped = f"; {len(outcome.skipped)} job(s) that needed them did not run" if outcome.skipped else ""
    return (f"{len(outcome.failed)} sweep job(s) failed: " + "; ".join(parts) + skipped + ". Every other job finished "
            "and is kept: rerun the same command to retry the failed ones; the tables hold what finished.")
