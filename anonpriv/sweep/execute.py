"""Running one job of the plan, in this process, through the ``anonpriv`` LightningCLI.

:func:`execute_job` is what every launcher calls (in this process or in a worker): a training writes
its checkpoint and then ``fit.done``; an evaluation trains the protocol's fresh models, tests them and
then writes ``result.json`` in one step (a result file only ever exists complete). Either starts over
from an empty folder, so an interrupted job leaves nothing that looks finished.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import sys
import time
import warnings
from collections.abc import Iterator

from anonpriv.sweep.plan import Job

# Warnings every in-process run would repeat and that say nothing about the results.
_EXPECTED_WARNINGS = (
    r".*isinstance\(treespec, LeafSpec\).*",
    r".*smaller than the logging interval.*",
    r".*module\(s\) in eval mode.*",  # the protocol's frozen anonymizer, on purpose
    r".*does not have many workers.*",
    r".*LightningCLI's args parameter is intended.*",
)


@contextlib.contextmanager
def _cli_call() -> Iterator[None]:
    """Run the CLI in-process as if from a clean command line (the sweep's own flags are not its)."""
    argv = sys.argv
    sys.argv = argv[:1]
    try:
        with warnings.catch_warnings():
            for pattern in _EXPECTED_WARNINGS:
                warnings.filterwarnings("ignore", message=pattern)
            yield
    finally:
        sys.argv = argv


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


def global_rank() -> int:
    """This process's rank in a run with several processes (DDP): torchrun's ``RANK``, SLURM's
    ``SLURM_PROCID``, or Lightning's own launch (``NODE_RANK``, ``LOCAL_RANK``); 0 alone. Only rank 0
    clears a run's folder and writes its marker and result (the others train alongside it)."""
    for variable in ("RANK", "SLURM_PROCID"):
        if os.environ.get(variable, "").isdigit():
            return int(os.environ[variable])
    node, local = (int(os.environ.get(v, "0") or 0) for v in ("NODE_RANK", "LOCAL_RANK"))
    return local if node == 0 else node * 1000 + local  # any non-zero number marks a rank other than 0


def execute_job(job: Job) -> str:
    """Run ``job``; returns its summary line."""
    if job.kind == "train":
        return _train(job)
    if job.kind == "evaluate":
        return _evaluate(job)
    raise ValueError(f"unknown job kind {job.kind!r} of {job.id}")


def _train(job: Job) -> str:
    from anonpriv.cli import AnonprivCLI

    main = global_rank() == 0
    if main:
        shutil.rmtree(job.folder, ignore_errors=True)  # an interrupted training starts over
    start = time.perf_counter()
    with _cli_call():
        AnonprivCLI(args=list(job.args))
    if not main:
        return f"{job.id}: rank {global_rank()} done"
    if not job.checkpoint.exists():
        raise RuntimeError(f"{job.id} finished without writing {job.checkpoint}: does the trainer config keep "
                           "last.ckpt (ModelCheckpoint with save_last: true)?")
    seconds = round(time.perf_counter() - start, 1)
    job.done_marker.write_text(json.dumps({"seconds": seconds, "machine": machine_record()}) + "\n")
    return f"{job.id}: trained in {seconds:.0f} s"


def _training_seconds(marker) -> float:
    """How long the training behind an evaluation took (0 when it is not recorded)."""
    try:
        return float(json.loads(marker.read_text()).get("seconds", 0.0))
    except (OSError, ValueError, AttributeError):
        return 0.0


def _evaluate(job: Job) -> str:
    from anonpriv.cli import AnonprivCLI

    main = global_rank() == 0
    if main:
        shutil.rmtree(job.folder / "evaluation", ignore_errors=True)
    start = time.perf_counter()
    with _cli_call():
        cli = AnonprivCLI(args=list(job.args))
        cli.trainer.test(cli.model, datamodule=cli.datamodule, verbose=False)
    if not main:  # rank 0 gathers every rank's predictions and writes the results
        return f"{job.id}: rank {global_rank()} done"
    results = json.loads((job.folder / "evaluation" / "results.json").read_text())
    train_seconds = _training_seconds(job.training / "fit.done") if job.training is not None else 0.0
    results["sweep"] = {**job.record, "train_seconds": train_seconds,
                        "evaluate_seconds": round(time.perf_counter() - start, 1), "machine": machine_record()}
    tmp = job.result_file.with_suffix(".tmp")
    tmp.write_text(json.dumps(results, indent=2, sort_keys=True))
    tmp.replace(job.result_file)
    return (f"{job.id}: top-1 {results['top1']:.3f}, worst cMAP {results['cmap']:.3f}, F1 {results['f1']:.3f} "
            f"({results['sweep']['evaluate_seconds']:.0f} s)")
