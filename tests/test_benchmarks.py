"""The benchmark scripts run (``--quick``) and print their tables; timings are not checked."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # `benchmarks` is a folder of scripts, not an installed package
    sys.path.insert(0, str(REPO_ROOT))

BENCHMARKS = {
    "anonymize_throughput": ["| method | device | ms / batch | clips/s | frames/s |", "| token_pruning (config"],
    "token_pruning_speedup": ["| keep ratio | tubelets | ms / batch | speedup | GFLOPs / clip | FLOP ratio |",
                              "| 0.5 |", "tiny config, keep 0.5 per stage", "on the kept tubelets only"],
    "end_to_end_anonymize": ["| method | model input | frames | s / video | frames/s |", "| raw (decode + encode only)",
                             "| token_pruning, tiny config"],
    "token_pruning_localization": ["| variant | seed | moving region kept | private region kept |", "| default | 0 |",
                                   "| action CLS top-1 | attribute cMAP (CLS) |", "(chance 0.125)", "met by"],
    "training_speed": ["| step | before (s) | after (s) | speed-up |", "| protocol step (c3d_tiny + 3 attackers) |",
                       "| token-pruning training step |", "max |difference|"],
    "data_loading": ["| workers | first epoch clips/s | steady clips/s | steady frames/s |", "| 0 |", "| 1 |"],
}


@pytest.fixture(autouse=True)
def one_thread():
    """One intra-op thread: on a busy 2-core machine two threads mostly wait for each other."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("name", sorted(BENCHMARKS))
def test_benchmark_prints_and_writes_its_table(name, tmp_path, capsys):
    module = importlib.import_module(f"benchmarks.{name}")
    output = tmp_path / f"{name}.md"
    assert module.main(["--quick", "--output", str(output)]) == 0
    printed = capsys.readouterr().out
    written = output.read_text()
    assert "Machine:" in written
    for expected in BENCHMARKS[name]:
        assert expected in printed and expected in written, expected


def test_the_entry_point_runs_the_chosen_benchmarks(tmp_path, capsys):
    from benchmarks import run_all

    output = tmp_path / "all.md"
    assert run_all.main(["--quick", "--only", "anonymize_throughput", "--output", str(output)]) == 0
    written = output.read_text()
    assert "Anonymization throughput" in written and "All benchmarks took" in written
    assert "Token-pruning speedup" not in written
