"""The local launcher on several GPUs: one run per GPU (or per group of ``devices`` GPUs), pinned with
CUDA_VISIBLE_DEVICES, a run waiting for a free GPU and an evaluation for its training; and the launcher's
``devices`` / ``num_nodes`` reaching every run's trainer.

No GPU is needed: the GPUs are a list of names, and the runs are stand-ins that note what they saw.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from sweep_files import CONFIGS, tiny_sweep, write_sweep

from anonpriv.sweep.cli import main
from anonpriv.sweep.config import SweepConfigError, load_sweep_config
from anonpriv.sweep.launchers import LocalLauncher, make_launcher
from anonpriv.sweep.plan import build_plan

FAKE_GPUS = ["0", "1", "2", "3"]


def record_devices(job):
    """A stand-in run (in its own process): notes the GPUs it sees and when it ran."""
    start = time.time()
    time.sleep(0.6)
    note = job.run_folder / f"stub-{job.kind}.json"
    note.write_text(json.dumps({"devices": os.environ.get("CUDA_VISIBLE_DEVICES"), "start": start, "end": time.time()}))
    print("stand-in run on", os.environ.get("CUDA_VISIBLE_DEVICES"))
    return f"{job.id}: stand-in"


def fail_one(job):
    if job.id == "train synthetic/bdq seed 1":
        raise RuntimeError("CUDA out of memory\nmore")
    return record_devices(job)


def six_runs(tmp_path: Path, **launcher) -> list:
    """raw and bdq, seeds 0 and 1: two trainings and four evaluations (two after a training)."""
    methods = {"raw": {"config": str(CONFIGS / "method" / "raw.yaml")},
               "bdq": {"config": str(CONFIGS / "method" / "bdq.yaml"), "train": True}}
    config = tiny_sweep(tmp_path / "out", methods=methods, seeds=[0, 1], launcher={"name": "local", **launcher})
    return build_plan(load_sweep_config(write_sweep(tmp_path, config)))


@pytest.mark.parametrize("devices", [1, 2])
def test_each_run_gets_its_own_gpus_and_no_gpu_runs_two_at_once(devices, tmp_path):
    plan = six_runs(tmp_path)
    jobs = plan.pending()
    assert len(jobs) == 6
    lines = []
    outcome = LocalLauncher(gpus=FAKE_GPUS, devices=devices).launch(jobs, record_devices, lines.append)
    assert sorted(outcome.finished) == sorted(job.id for job in jobs) and not outcome.failed, (outcome, lines)
    runs = {job.id: json.loads((job.run_folder / f"stub-{job.kind}.json").read_text()) for job in jobs}
    groups = {",".join(FAKE_GPUS[i:i + devices]) for i in range(0, 4, devices)}
    for job_id, run in runs.items():
        assert run["devices"] in groups, (job_id, run)  # exactly one group: one GPU, or two for DDP
    for group in groups:  # no GPU holds two runs at once
        spans = sorted((run["start"], run["end"]) for run in runs.values() if run["devices"] == group)
        assert all(end <= next_start for (_, end), (next_start, _) in zip(spans, spans[1:])), (group, spans)
    for job in jobs:  # every evaluation after its training
        for dependency in job.after:
            assert runs[job.id]["start"] >= runs[dependency]["end"]
    # Several GPUs were used side by side (four, or two groups of two, for six runs).
    starts = sorted(run["start"] for run in runs.values())
    at_once = max(sum(run["start"] <= t < run["end"] for run in runs.values()) for t in starts)
    assert at_once >= 2
    # Each run's output is in its folder, with the GPUs it was given.
    log = (plan.job("train synthetic/bdq seed 0").run_folder / "logs" / "train.log").read_text()
    assert "== train synthetic/bdq seed 0: started" in log and "stand-in run on" in log
    assert "CUDA_VISIBLE_DEVICES=" in log
    assert any("GPU slot(s)" in line for line in lines)


def test_a_failed_run_frees_its_gpu_and_blocks_only_its_evaluation(tmp_path):
    plan = six_runs(tmp_path)
    outcome = LocalLauncher(gpus=FAKE_GPUS).launch(plan.pending(), fail_one, lambda _: None)
    assert outcome.failed == {"train synthetic/bdq seed 1": "CUDA out of memory"}
    assert outcome.skipped == {"evaluate Table 1 synthetic/bdq seed 1": "train synthetic/bdq seed 1"}
    assert len(outcome.finished) == 4
    assert "Traceback" in (plan.job("train synthetic/bdq seed 1").run_folder / "logs" / "train.log").read_text()


def test_gpus_default_to_every_visible_one_when_the_trainer_asks_for_a_gpu(tmp_path, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5,GPU-7f2c")
    gpu = str(CONFIGS / "trainer" / "gpu.yaml")
    config = tiny_sweep(tmp_path / "out")
    config["evaluation"]["trainer"] = gpu
    on_gpu = load_sweep_config(write_sweep(tmp_path, config))
    launcher = make_launcher("local", {}, on_gpu)
    assert launcher._gpu_groups() == [("3",), ("5",), ("GPU-7f2c",)]
    assert make_launcher("local", {"jobs": 2}, on_gpu)._gpu_groups() == [("3",), ("5",)]  # jobs caps them
    assert make_launcher("local", {"gpus": []}, on_gpu)._gpu_groups() == []  # [] pins nothing
    assert make_launcher("local", {"devices": 2}, on_gpu)._gpu_groups() == [("3", "5")]
    with pytest.raises(SweepConfigError, match=r"launcher: devices: 4 GPUs per run, but only 3 GPU\(s\)"):
        make_launcher("local", {"devices": 4}, on_gpu)._gpu_groups()
    # CPU runs (trainer accelerator auto) are not pinned: --jobs runs as before.
    on_cpu = load_sweep_config(write_sweep(tmp_path, tiny_sweep(tmp_path / "out"), "cpu.yaml"))
    assert make_launcher("local", {"jobs": 2}, on_cpu)._gpu_groups() == []
    with pytest.raises(SweepConfigError, match="devices: 2 GPUs per run, but no GPU to run on here: list them"):
        make_launcher("local", {"devices": 2}, on_cpu).launch(build_plan(on_cpu).pending(), record_devices)


def test_devices_and_num_nodes_reach_every_runs_trainer(tmp_path):
    methods = {"raw": {"config": str(CONFIGS / "method" / "raw.yaml")},
               "bdq": {"config": str(CONFIGS / "method" / "bdq.yaml"), "train": True}}
    config = tiny_sweep(tmp_path / "out", methods=methods, launcher={"name": "local", "devices": 2})
    plan = build_plan(load_sweep_config(write_sweep(tmp_path, config)))
    for job in plan.jobs:
        args = list(job.args)
        assert args[args.index("--trainer.devices") + 1] == "2"
        assert args[args.index("--trainer.strategy") + 1] == "ddp_find_unused_parameters_true"
        assert "--trainer.num_nodes" not in args
    # One device, nothing said: the trainer config decides, as before.
    plan = build_plan(load_sweep_config(write_sweep(tmp_path, tiny_sweep(tmp_path / "out", methods=methods))))
    assert not any("--trainer.devices" in job.args or "--trainer.strategy" in job.args for job in plan.jobs)


@pytest.mark.parametrize("launcher, expected", [
    ({"name": "local", "num_nodes": 2}, "num_nodes=2: launcher 'local' runs on this machine only; use name: slurm"),
    ({"name": "local", "gpus": "0,1"}, "gpus='0,1': give a list of distinct GPU indices"),
    ({"name": "local", "devices": 0}, "devices=0 must be a whole number of at least 1"),
])
def test_bad_gpu_options_are_one_line(launcher, expected, tmp_path, capsys):
    path = write_sweep(tmp_path, tiny_sweep(tmp_path / "out", launcher=launcher))
    assert main(["--config", str(path), "--dry-run"]) == 2
    error = capsys.readouterr().err.strip()
    assert "\n" not in error and expected in error, error
