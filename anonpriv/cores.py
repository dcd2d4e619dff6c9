"""How many CPU cores this process may use (its affinity where the OS tells it). Imports nothing heavy."""

from __future__ import annotations

import os


def usable_cores() -> int:
    """Cores this process may run on: its CPU affinity (a SLURM job's or taskset's share), else every core."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
