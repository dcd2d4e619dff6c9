"""What every benchmark script shares: timing, FLOP counting, markdown tables, the machine line
and the command-line options.

Rules the scripts follow: everything is measured side by side in one run (the machine is noisy,
so ratios within a run mean more than absolute numbers across runs), inference runs under
``torch.inference_mode()``, every timed call is warmed up first and the median of the repeats is
reported.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode, sdpa_flop_count

REPO_ROOT = Path(__file__).resolve().parents[1]


# -- command line ----------------------------------------------------------------------------------
def benchmark_parser(description: str, repeats: int = 5) -> argparse.ArgumentParser:
    """The options every benchmark takes: ``--quick``, ``--output``, ``--repeats``, ``--devices``."""
    parser = argparse.ArgumentParser(description=description,
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="tiny sizes and one repeat: checks that the script runs, numbers mean little")
    parser.add_argument("--output", type=Path, help="also write the markdown table(s) to this file")
    parser.add_argument("--repeats", type=int, default=repeats, help="timed repeats per measurement (median reported)")
    parser.add_argument("--devices", nargs="+", default=None,
                        help="devices to measure on (default: cpu, plus cuda when available)")
    return parser


def default_devices(requested: Sequence[str] | None) -> list[str]:
    if requested:
        return list(requested)
    return ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def emit(text: str, output: Path | None) -> None:
    """Print ``text`` and, with ``output``, write it there too."""
    print(text, flush=True)
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text + "\n")


# -- timing ------------------------------------------------------------------------------------------
def synchronize(device: str | torch.device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


@dataclasses.dataclass(frozen=True)
class Timing:
    """Median and spread of the repeats of one measurement, in seconds."""

    median: float
    low: float
    high: float
    repeats: int


def time_call(fn: Callable[[], object], repeats: int = 5, warmup: int = 1,
              device: str | torch.device = "cpu") -> Timing:
    """Wall time of ``fn()``: ``warmup`` untimed calls, then ``repeats`` timed ones (the device is
    synchronised around each, so GPU work is counted)."""
    for _ in range(warmup):
        fn()
    synchronize(device)
    times = []
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        fn()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return Timing(statistics.median(times), min(times), max(times), len(times))


def time_calls_interleaved(calls: dict[str, Callable[[], object]], repeats: int = 5, warmup: int = 1,
                           device: str | torch.device = "cpu") -> dict[str, Timing]:
    """:func:`time_call` for several calls in round-robin order (one of each per round), so a load
    change on a shared machine hits every variant alike and their ratios stay fair."""
    for fn in calls.values():
        for _ in range(warmup):
            fn()
    synchronize(device)
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(max(1, repeats)):
        for name, fn in calls.items():
            start = time.perf_counter()
            fn()
            synchronize(device)
            times[name].append(time.perf_counter() - start)
    return {name: Timing(statistics.median(t), min(t), max(t), len(t)) for name, t in times.items()}


# -- FLOPs --------------------------------------------------------------------------------------------
# PyTorch's counter knows the CUDA attention kernels; on CPU, scaled_dot_product_attention runs this
# one, which the counter would otherwise skip (attention is the part pruning saves most on).
def _cpu_attention_flops(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
    return sdpa_flop_count(query_shape, key_shape, value_shape)


_EXTRA_FLOP_FORMULAS = {}
if hasattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu"):
    _EXTRA_FLOP_FORMULAS[torch.ops.aten._scaled_dot_product_flash_attention_for_cpu] = _cpu_attention_flops


def count_flops(fn: Callable[[], object]) -> int:
    """FLOPs of one call of ``fn`` (matrix products, convolutions and attention; a multiply-add
    counts as 2 FLOPs, so MACs are half of this). Element-wise ops are not counted."""
    counter = FlopCounterMode(display=False, custom_mapping=_EXTRA_FLOP_FORMULAS)
    with counter:
        fn()
    return counter.get_total_flops()


# -- tables -------------------------------------------------------------------------------------------
def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A GitHub markdown table; floats are printed as given (format them before)."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def fmt(value: float, digits: int = 1) -> str:
    """A number with ``digits`` decimals and thousands separators."""
    return f"{value:,.{digits}f}"


# -- the machine -------------------------------------------------------------------------------------
def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def load_average() -> str:
    try:
        return "{:.2f} {:.2f} {:.2f}".format(*os.getloadavg())
    except OSError:
        return "n/a"


def machine_line() -> str:
    """One line naming the machine, thread count, library versions and the current load."""
    gpu = f", GPU {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ", no GPU"
    return (f"{cpu_model()}, {os.cpu_count()} logical CPUs{gpu}; torch {torch.__version__} "
            f"({torch.get_num_threads()} intra-op threads), Python {platform.python_version()}; "
            f"load average {load_average()}")
