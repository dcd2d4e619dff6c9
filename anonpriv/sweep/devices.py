"""How many GPUs a sweep run takes, and which ones there are.

The launcher section of a sweep file may say ``devices`` (GPUs per node of one run, DDP inside the run
when above 1) and ``num_nodes`` (nodes per run). Both go to every run's Lightning trainer
(``--trainer.devices``, ``--trainer.num_nodes``, and the DDP strategy the minimax needs when a run has
more than one process), and to the launcher that gives them out (one GPU group per run on this
machine, ``--gpus-per-node`` / ``--nodes`` / ``--ntasks-per-node`` on SLURM).

Nothing here imports torch but :func:`visible_gpus`, which only runs when a sweep starts.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from anonpriv.sweep.config import SweepConfig, read_yaml

#: Lightning strategy of a run with several processes: each minimax step has phases that train only
#: some modules, which plain ``ddp`` rejects (configs/trainer/gpu_ddp.yaml says the same).
DDP_STRATEGY = "ddp_find_unused_parameters_true"
GPU_ACCELERATORS = ("gpu", "cuda")


def run_size(options: Mapping[str, Any]) -> tuple[int, int]:
    """``(devices, num_nodes)`` of one run from the launcher's options (default one device, one node)."""
    return int(options.get("devices", 1)), int(options.get("num_nodes", 1))


def trainer_args(options: Mapping[str, Any], trainer: Path, trainer_overrides: Mapping[str, Any]) -> list[str]:
    """The trainer arguments that give a run the launcher's ``devices`` and ``num_nodes`` (only those the
    launcher section sets), and the DDP strategy when a run has several processes and its trainer
    config names none."""
    args = []
    devices, nodes = run_size(options)
    if "devices" in options and devices >= 1:
        args += ["--trainer.devices", str(devices)]
    if "num_nodes" in options:
        args += ["--trainer.num_nodes", str(nodes)]
    if max(devices, 1) * nodes > 1 and "strategy" not in trainer_overrides:
        if "strategy" not in (read_yaml(trainer, "trainer config") or {}):
            args += ["--trainer.strategy", DDP_STRATEGY]
    return args


def _accelerator(trainer: Path, overrides: Mapping[str, Any]) -> str:
    if "accelerator" in overrides:
        return str(overrides["accelerator"])
    return str((read_yaml(trainer, "trainer config") or {}).get("accelerator", "auto"))


def uses_gpu_trainer(config: SweepConfig) -> bool:
    """Whether the sweep's runs ask their trainer for a GPU (``accelerator: gpu`` or ``cuda``, in the
    trainer config or its overrides). ``auto`` does not count: those runs are the CPU configs', which
    are not pinned (several may share one GPU, as ``--jobs 16`` on one H200 does)."""
    trainers = [(config.evaluation.trainer, config.evaluation.trainer_overrides)]
    if config.train is not None and any(method.train for method in config.methods.values()):
        trainers.append((config.train.trainer, config.train.trainer_overrides))
    return any(_accelerator(trainer, overrides).lower() in GPU_ACCELERATORS for trainer, overrides in trainers)


def visible_gpus() -> list[str]:
    """The GPUs this process may use, as ``CUDA_VISIBLE_DEVICES`` names them (indices or UUIDs): that
    variable's entries when it is set, else every GPU torch counts."""
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        names = [name.strip() for name in listed.split(",") if name.strip()]
        return [] if names[:1] == ["-1"] else names
    import torch

    return [str(index) for index in range(torch.cuda.device_count())]


def device_groups(gpus: Sequence[str], per_run: int) -> list[tuple[str, ...]]:
    """``gpus`` cut into groups of ``per_run``, one per run at a time (a remainder smaller than a
    group stays unused); a :class:`ValueError` naming the fix when there is not even one group."""
    if len(gpus) < per_run:
        raise ValueError(f"devices: {per_run} GPUs per run, but only {len(gpus)} GPU(s) to run on "
                         f"({', '.join(gpus) or 'none'}): lower devices, or list more under gpus")
    return [tuple(gpus[i:i + per_run]) for i in range(0, len(gpus) - len(gpus) % per_run, per_run)]
