"""Which input videos ``anonpriv anonymize`` writes, and to which files.

A video file gives one job; a folder gives one per video under it (searched recursively;
sub-folders are mirrored under ``--output``). Every request that cannot be met is refused before
anything is written: an input that does not exist, an output that would overwrite its input or sit
among the inputs, and inputs that would share an output (:class:`OutputCollision`).

The file names around an output ``clip.mp4``:

* ``.clip.incomplete.mp4`` (:func:`incomplete_name`): where it is written until complete, so a file
  at the output path is always finished;
* ``clip.masks.npz`` (:data:`MASK_SUFFIX`): the kept-tubelet masks, with ``--save-masks``;
* ``clip.truncated.mp4`` (:func:`truncated_name`): the frames of an input that ends early, with
  ``--allow-truncated`` (never counted as done, so a rerun does it again);
* ``clip.anonpriv.json``: the record a rerun resumes by (:mod:`anonpriv.anonymize.records`).

This module imports no torch.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from anonpriv.anonymize.errors import AnonymizeError
from anonpriv.anonymize.records import Request, ResumeState, resume_state
from anonpriv.data.video_io import VIDEO_SUFFIXES, is_video_file

MASK_SUFFIX = ".masks.npz"
TRUNCATED_TAG = ".truncated"


@dataclasses.dataclass(frozen=True)
class Job:
    """One input video and where its outputs go."""

    source: Path
    output: Path
    masks: Path | None

    def resume(self, request: Request) -> ResumeState:
        """``todo``, ``done`` or ``conflict`` for a rerun with ``request``
        (:func:`~anonpriv.anonymize.records.resume_state`); with ``--save-masks`` a missing mask
        file makes a done output ``todo`` again."""
        state = resume_state(self.source, self.output, request)
        if state.kind == "done" and self.masks is not None and not self.masks.is_file():
            return ResumeState("todo")
        return state


def incomplete_name(path: Path) -> Path:
    """Where ``path`` is written before it is complete (same suffix, so the format is kept)."""
    return path.with_name(f".{path.stem}.incomplete{path.suffix}")


def truncated_name(path: Path) -> Path:
    """Where ``--allow-truncated`` keeps the partial output of an input that ends early."""
    return path.with_name(f"{path.stem}{TRUNCATED_TAG}{path.suffix}")


def plan_jobs(input_path: Path, output: Path, suffix: str, save_masks: bool) -> list[Job]:
    """The jobs for a video file or for every video under a folder (outputs mirror sub-folders;
    files under ``output`` itself are never taken as inputs when ``output`` lies inside the input
    folder). Raises :class:`AnonymizeError` for a request that cannot be met, and
    :class:`OutputCollision` when inputs would share an output (before anything is written)."""
    if not suffix.startswith("."):
        suffix = "." + suffix
    if input_path.is_file():
        target = output if output.suffix.lower() in VIDEO_SUFFIXES else output / (input_path.stem + suffix)
        sources = [(input_path, target)]
    elif input_path.is_dir():
        if output.is_file():
            raise AnonymizeError(f"--output {str(output)!r} is a file, but the input {str(input_path)!r} is a folder: "
                                 "give an output folder (new or existing).")
        input_resolved, output_resolved = input_path.resolve(), output.resolve()
        if output_resolved == input_resolved:
            raise AnonymizeError(f"--output {str(output)!r} is the input folder: outputs would mix with the inputs "
                                 "(and be taken as inputs on a rerun); choose another --output.")
        output_inside_input = input_resolved in output_resolved.parents
        sources = []
        for path in sorted(input_path.rglob("*")):
            if not (path.is_file() and is_video_file(path)) or path.name.startswith("."):
                continue
            if output_inside_input and output_resolved in path.resolve().parents:
                continue  # an earlier run's outputs
            sources.append((path, output / path.relative_to(input_path).with_suffix(suffix)))
        if not sources:
            raise AnonymizeError(f"no video files ({', '.join(VIDEO_SUFFIXES)}) under {str(input_path)!r}.")
    else:
        raise AnonymizeError(f"input {str(input_path)!r} does not exist: give a video file or a folder of videos.")
    jobs = []
    for source, target in sources:
        if target.resolve() == source.resolve():
            raise AnonymizeError(f"output {str(target)!r} would overwrite its input: choose another --output.")
        masks = target.with_name(target.stem + MASK_SUFFIX) if save_masks else None
        jobs.append(Job(source, target, masks))
    by_output: dict[Path, list[Job]] = {}
    for job in jobs:
        by_output.setdefault(job.output.resolve(), []).append(job)
    inputs = {job.source.resolve() for job in jobs}
    collisions = {path: group for path, group in by_output.items() if len(group) > 1 or path in inputs}
    if collisions:
        raise OutputCollision(jobs, collisions)
    return jobs


class OutputCollision(AnonymizeError):
    """Inputs that would be written to the same output (``clip.avi`` and ``clip.mp4`` both give
    ``clip.mp4``), or an output that is also an input. ``jobs`` are all planned jobs, ``reasons``
    maps each job involved to why it cannot be written; nothing has been written."""

    FIX = "rename one input or anonymize them into different --output folders"

    def __init__(self, jobs: list[Job], collisions: dict[Path, list[Job]]) -> None:
        self.jobs = jobs
        self.reasons: dict[Job, str] = {}
        groups = []
        for group in collisions.values():
            output = group[0].output
            for job in group:
                others = [str(other.source) for other in group if other is not job]
                self.reasons[job] = (f"same output {str(output)!r} as {', '.join(others)}" if others else
                                     f"its output {str(output)!r} is also an input") + f"; {self.FIX}"
            groups.append(" + ".join(str(job.source) for job in group) + f" -> {output}")
        super().__init__(f"{len(self.reasons)} input(s) would overwrite each other's output (an output is named "
                         f"after its input's stem): {'; '.join(groups)}. Nothing was written: {self.FIX} "
                         "(with --on-error skip the other videos are written and these are listed as failed).")
