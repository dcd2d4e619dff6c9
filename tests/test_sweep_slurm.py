"""``launcher: slurm``: the sweep's runs as SLURM jobs through submitit, without a cluster.

* A tiny sweep runs to its tables through the slurm launcher with submitit's local executor in place of
  SLURM's (the same launcher code: arrays, records, following the jobs, train -> evaluate), including a
  training that fails on its first attempt and a rerun that resumes.
* The sbatch scripts a slurm sweep would submit (partition, GPUs, time, arrays, dependencies) are read
  from submitit's own SlurmExecutor, with ``sbatch`` replaced by ``echo``: nothing is submitted.
* A rerun follows the jobs SLURM still lists instead of submitting them twice.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import sys
from pathlib import Path

import pytest

from sweep_files import CONFIGS, SWEEPS, load_sweep, tiny_sweep, write_sweep

from anonpriv.sweep.cli import main
from anonpriv.sweep.cluster_jobs import Record, expand, is_active, slurm_states
from anonpriv.sweep.config import load_sweep_config
from anonpriv.sweep.execute import execute_job
from anonpriv.sweep.launchers import make_launcher
from anonpriv.sweep.plan import build_plan
from anonpriv.sweep.report import write_reports
from anonpriv.sweep.runner import run_plan
from anonpriv.sweep.task import RunFiles

# Tests that submit through submitit need the cluster extra (make installs it); the others do not.
needs_submitit = pytest.mark.skipif(importlib.util.find_spec("submitit") is None,
                                    reason="needs the cluster extra: pip install 'anonpriv[cluster]'")

TESTS = Path(__file__).resolve().parent
FAST_TRAINER = {"limit_train_batches": 1, "limit_val_batches": 0, "num_sanity_val_steps": 0, "log_every_n_steps": 1}
FLAKY = "ANONPRIV_TEST_FAILED_ONCE"


def learned_and_raw(*learned: str) -> dict:
    methods = {"raw": {"config": str(CONFIGS / "method" / "raw.yaml")}}
    methods |= {name: {"config": str(CONFIGS / "method" / f"{name}.yaml"), "train": True} for name in learned}
    return methods


def fails_once(job):
    """The sweep's own job runner, except that the first attempt at an evaluation of a learned
    anonymizer fails (as on a bad node)."""
    marker = Path(os.environ[FLAKY])
    if job.after and not marker.exists():
        marker.write_text(job.id)
        raise RuntimeError("lost the node\n(second line)")
    return execute_job(job)


def local_executor(folder):
    import submitit

    return submitit.AutoExecutor(folder=folder, cluster="local")


@needs_submitit
def test_a_tiny_sweep_runs_to_its_tables_on_submitits_local_executor_and_resumes_after_a_failure(tmp_path, monkeypatch):
    import anonpriv.sweep.slurm as slurm

    monkeypatch.setattr(slurm, "default_executor", local_executor)  # SLURM's executor swapped for the local one
    # The jobs' processes unpickle fails_once from this module.
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH")])))
    monkeypatch.setenv(FLAKY, str(tmp_path / "failed-once"))
    config = tiny_sweep(tmp_path / "out", methods=learned_and_raw("bdq"),
                        launcher={"name": "slurm", "devices": 0, "hours": 1, "poll_seconds": 0.2})
    for section in ("train", "evaluation"):
        config[section]["trainer_overrides"] = FAST_TRAINER
    sweep = load_sweep_config(write_sweep(tmp_path, config))

    def run(lines):
        plan = build_plan(sweep)
        launcher = make_launcher("slurm", sweep.launcher.options, sweep)
        launcher.query = lambda ids: {}  # no sacct or squeue here: SLURM knows nothing of the earlier jobs
        outcome = run_plan(plan, launcher, lines.append, execute=fails_once)
        write_reports(plan, "test", lines.append)
        return plan, outcome

    train, evaluate, raw = ("train synthetic/bdq seed 0", "evaluate Table 1 synthetic/bdq seed 0",
                            "evaluate Table 1 synthetic/raw seed 0")
    first = []
    plan, outcome = run(first)
    assert outcome.failed == {evaluate: "lost the node"}, first
    assert sorted(outcome.finished) == sorted([train, raw]) and not outcome.skipped
    # The evaluation was submitted once its training had finished (submitit's local executor has no
    # SLURM dependencies: the launcher holds it back itself).
    evaluation_start = RunFiles.of(plan.job(evaluate)).log.read_text().split("started ")[1][:19]
    training_end = RunFiles.of(plan.job(train)).log.read_text().split("finished ")[1][:19]
    assert evaluation_start >= training_end
    table = (tmp_path / "out" / "table1.md").read_text()
    assert "Not finished yet (not in the table): bdq (seed 0)" in table
    records = {job.id: Record.read(RunFiles.of(job).record) for job in plan.jobs}
    assert "raw seed 0: top-1" in json.loads(RunFiles.of(plan.job(raw)).outcome.read_text())["line"]

    second = []
    plan, outcome = run(second)
    assert not outcome.failed and outcome.finished == [evaluate], second
    assert second[0].startswith("2 of 3 jobs finished earlier, kept")  # the training and raw's evaluation
    assert any(f"{evaluate}: slurm job {records[evaluate].job_id} (unknown) left no result: submitting it again"
               in line for line in second), second
    assert all(Record.read(RunFiles.of(plan.job(job_id)).record) == records[job_id] for job_id in (train, raw))
    table = (tmp_path / "out" / "table1.md").read_text()
    assert "Not finished" not in table and "| bdq" in table
    log = RunFiles.of(plan.job(evaluate)).log.read_text()  # both attempts, in the run's folder
    assert log.count(f"== {evaluate}: started") == 2 and "RuntimeError: lost the node" in log
    assert list((tmp_path / "out" / "slurm").glob("*_log.out"))  # submitit's own files, under <out>/slurm


@pytest.fixture
def sbatch(monkeypatch):
    """submitit's SlurmExecutor where there is no SLURM: ``srun`` counts as found, and ``sbatch`` is
    ``echo``, which prints a job id. Returns the sbatch scripts in submission order."""
    pytest.importorskip("submitit", reason="needs the cluster extra: pip install 'anonpriv[cluster]'")
    from submitit.slurm import slurm as submitit_slurm

    scripts: list[str] = []

    def submission_command(self, path):
        scripts.append(Path(path).read_text())
        return ["echo", f"Submitted batch job {4200 + len(scripts)}"]

    monkeypatch.setattr(submitit_slurm.SlurmExecutor, "affinity", classmethod(lambda cls: 2))
    monkeypatch.setattr(submitit_slurm.SlurmExecutor, "_make_submission_command", submission_command)
    monkeypatch.setattr(submitit_slurm.SlurmJob, "_cancel_command", "true")  # no scancel here
    return scripts


def flags(script: str) -> dict[str, str]:
    return dict(re.findall(r"^#SBATCH --([\w-]+)(?:=(.*))?$", script, flags=re.M))


SLURM = {"name": "slurm", "partition": "gpu", "devices": 2, "cpus_per_task": 10, "mem_gb": 64, "hours": 12,
         "sbatch": {"account": "myproject"}, "setup": ["module load cuda"], "train": {"hours": 30}, "wait": False}


def submit(tmp_path, query=lambda ids: {}, **launcher):
    config = tiny_sweep(tmp_path / "out", methods=learned_and_raw("bdq", "spact") | {
        "blur": {"config": str(CONFIGS / "method" / "blur.yaml")}}, seeds=[0, 1], launcher=SLURM | launcher)
    sweep = load_sweep_config(write_sweep(tmp_path, config))
    plan = build_plan(sweep)
    lines = []
    launcher = make_launcher("slurm", sweep.launcher.options, sweep)
    launcher.query = query
    outcome = run_plan(plan, launcher, lines.append)
    return plan, outcome, lines


def script_of(sbatch: list[str], job_id: str) -> dict[str, str]:
    """The flags of the script that submitted ``job_id`` (``4203``, or ``4201_2`` of an array)."""
    return flags(sbatch[int(job_id.split("_")[0]) - 4201])


def test_the_sbatch_scripts_of_a_slurm_sweep_without_submitting(tmp_path, sbatch):
    plan, outcome, lines = submit(tmp_path)
    assert not outcome.finished and not outcome.failed and len(outcome.queued) == len(plan.jobs) == 12
    ids = {job.id: Record.read(RunFiles.of(job).record).job_id for job in plan.jobs}
    # The 4 trainings as one array, the 4 training-free evaluations as another, then each learned
    # evaluation on its own, after the job of its training.
    assert len(sbatch) == 6, lines
    for script in map(flags, sbatch):
        assert script["partition"] == "gpu" and script["account"] == "myproject"
        assert script["gpus-per-node"] == "2" and script["ntasks-per-node"] == "2" and script["nodes"] == "1"
        assert script["cpus-per-task"] == "10" and script["mem"] == "64GB"
    trainings = [job for job in plan.jobs if job.kind == "train"]
    free = [job for job in plan.jobs if job.kind == "evaluate" and not job.after]
    learned = [job for job in plan.jobs if job.after]
    for array, name, minutes in ((trainings, "sweep-train", "1800"), (free, "sweep-evaluate", "720")):
        assert len({ids[job.id].split("_")[0] for job in array}) == 1  # one array
        assert sorted(ids[job.id].split("_")[1] for job in array) == ["0", "1", "2", "3"]
        script = script_of(sbatch, ids[array[0].id])
        assert script["array"] == "0-3%4" and script["job-name"] == name and script["time"] == minutes
        assert "dependency" not in script
    for job in learned:  # each waits for exactly its own training's job
        script = script_of(sbatch, ids[job.id])
        assert "_" not in ids[job.id] and "array" not in script and script["time"] == "720"
        assert script["dependency"] == f"afterok:{ids[job.after[0]]}" and script["kill-on-invalid-dep"] == "yes"
    assert all("module load cuda" in script for script in sbatch)
    # Every run's trainer gets the two GPUs (DDP inside the run), as Lightning's devices.
    assert all(job.args[job.args.index("--trainer.devices") + 1] == "2" for job in plan.jobs)


def test_a_rerun_follows_jobs_still_queued_and_resubmits_failed_ones(tmp_path, sbatch):
    plan, _, _ = submit(tmp_path)
    records = {job.id: Record.read(RunFiles.of(job).record).job_id for job in plan.jobs}
    failed = records["train synthetic/bdq seed 0"]
    states = {job_id: "RUNNING" if "_" in job_id else "PENDING" for job_id in records.values()} | {failed: "FAILED"}
    before = len(sbatch)
    plan, outcome, lines = submit(tmp_path, query=lambda ids: {i: states[i] for i in ids})
    # Only the failed training goes again, and its evaluation (cancelled) after the new job.
    assert len(sbatch) == before + 2, lines
    new = Record.read(RunFiles.of(plan.job("train synthetic/bdq seed 0")).record).job_id
    assert new == str(4201 + before) and "array" not in script_of(sbatch, new)
    evaluation = Record.read(RunFiles.of(plan.job("evaluate Table 1 synthetic/bdq seed 0")).record).job_id
    assert script_of(sbatch, evaluation)["dependency"] == f"afterok:{new}"
    assert any("is running: following it, not submitting it again" in line for line in lines)
    assert any("is pending: following it" in line and "spact seed 1" in line for line in lines)
    assert any(f"cancelled slurm job {records['evaluate Table 1 synthetic/bdq seed 0']}" in line for line in lines)
    assert len(outcome.queued) == 12
    kept = {job.id: Record.read(RunFiles.of(job).record).job_id for job in plan.jobs}
    assert {k for k, v in kept.items() if v != records[k]} == {"train synthetic/bdq seed 0",
                                                               "evaluate Table 1 synthetic/bdq seed 0"}


def test_slurm_states_ask_sacct_then_squeue():
    calls = []

    def run(command, **_):
        calls.append(command[0])
        out = {"sacct": "77_1|RUNNING\n77_[2-3%1]|PENDING\n80|CANCELLED by 0\n",
               "squeue": "81|PENDING\n"}[command[0]]
        return type("Done", (), {"returncode": 0, "stdout": out})()

    states = slurm_states(["77_1", "77_3", "80", "81", "82"], run=run)
    assert states == {"77_1": "RUNNING", "77_3": "PENDING", "80": "CANCELLED", "81": "PENDING", "82": "GONE"}
    assert calls == ["sacct", "squeue"]
    assert [is_active(states[i]) for i in ("77_1", "77_3", "80", "81", "82")] == [True, True, False, True, False]
    assert slurm_states(["5"], run=lambda *a, **k: (_ for _ in ()).throw(FileNotFoundError("sacct"))) == {}
    assert expand("9_[0-2,5]") == ["9_0", "9_1", "9_2", "9_5"]


def test_without_submitit_a_slurm_sweep_is_one_line_naming_the_extra(tmp_path, capsys, monkeypatch):
    path = write_sweep(tmp_path, tiny_sweep(tmp_path / "out", launcher={"name": "slurm", "partition": "gpu"}))
    monkeypatch.setitem(sys.modules, "submitit", None)
    assert main(["--config", str(path), "--dry-run"]) == 0  # planning needs no submitit
    capsys.readouterr()
    assert main(["--config", str(path)]) == 2
    error = capsys.readouterr().err.strip()
    assert error == "anonpriv sweep: error: launcher 'slurm' needs submitit, which is not installed: " \
                    "pip install 'anonpriv[cluster]'"


@needs_submitit
def test_without_slurm_a_slurm_sweep_is_one_line_before_anything_runs(tmp_path, capsys, monkeypatch):
    from submitit.slurm import slurm as submitit_slurm

    monkeypatch.setattr(submitit_slurm.SlurmExecutor, "affinity", classmethod(lambda cls: -1))
    path = write_sweep(tmp_path, tiny_sweep(tmp_path / "out", launcher={"name": "slurm"}))
    assert main(["--config", str(path)]) == 2
    error = capsys.readouterr().err.strip()
    assert "\n" not in error and "launcher 'slurm': no SLURM here" in error and "use launcher name: local" in error
    assert not (tmp_path / "out" / "runs").exists()


@pytest.mark.parametrize("launcher, expected", [
    ({"hours": 0}, "hours=0 must be a positive number"),
    ({"devices": -1}, "devices=-1 must be a whole number of at least 0"),
    ({"dependencies": "after"}, "dependencies='after': give afterok or wait"),
    ({"train": {"gpus": 2}}, "train has no option 'gpus'; its options: partition, cpus_per_task"),
    ({"sbatch": ["--account=x"]}, "sbatch=['--account=x']: give a mapping of sbatch options without the dashes"),
    ({"partiton": "gpu"}, "launcher 'slurm' has no option 'partiton'"),
])
def test_bad_slurm_options_are_one_line(launcher, expected, tmp_path, capsys):
    path = write_sweep(tmp_path, tiny_sweep(tmp_path / "out", launcher={"name": "slurm", **launcher}))
    assert main(["--config", str(path), "--dry-run"]) == 2
    error = capsys.readouterr().err.strip()
    assert "\n" not in error and expected in error, error


@needs_submitit
def test_the_commented_slurm_block_of_the_paper_sweep_is_a_valid_launcher(tmp_path):
    """configs/sweep/paper.yaml carries its SLURM launcher as a comment: uncommented, it plans the same
    runs, each with the GPUs it asks for."""
    import yaml

    block = re.search(r"^# launcher:\n((?:#  .*\n)+)", (SWEEPS / "paper.yaml").read_text(), flags=re.M)
    assert block, "paper.yaml has no commented '# launcher:' block"
    launcher = yaml.safe_load("\n".join(["launcher:"] + [line[1:] for line in block.group(1).splitlines()]))["launcher"]
    assert launcher["name"] == "slurm"
    config = load_sweep("paper") | {"launcher": launcher}
    sweep = load_sweep_config(write_sweep(tmp_path, config))
    plan = build_plan(sweep)
    assert len(plan.jobs) == 132
    parameters = make_launcher("slurm", sweep.launcher.options, sweep).parameters("train")
    assert parameters["gpus_per_node"] == launcher["devices"] and parameters["slurm_partition"] == launcher["partition"]
    assert parameters["timeout_min"] == launcher["train"]["hours"] * 60


def test_in_a_ddp_run_only_rank_zero_clears_the_run_and_writes_its_outcome(tmp_path, monkeypatch):
    """Every task of a multi-GPU SLURM job runs the job (Lightning joins them into one DDP run): the
    others neither delete rank 0's files nor write the outcome, and log to their own file."""
    import anonpriv.cli
    from anonpriv.sweep.task import run_task

    class StubCLI:  # the training itself, left out
        def __init__(self, args):
            pass

    monkeypatch.setitem(vars(anonpriv.cli), "AnonprivCLI", StubCLI)  # (not getattr: that would build the real one)
    plan = build_plan(load_sweep_config(write_sweep(tmp_path, tiny_sweep(tmp_path / "out", methods=learned_and_raw("bdq")))))
    job = plan.job("train synthetic/bdq seed 0")
    files = RunFiles.of(job)
    job.folder.mkdir(parents=True)
    (job.folder / "written-by-rank-0").write_text("")
    monkeypatch.setenv("SLURM_PROCID", "1")
    assert run_task(job) == f"{job.id}: rank 1 done"
    assert (job.folder / "written-by-rank-0").exists() and not files.outcome.exists()
    assert f"== {job.id}: started" in (files.folder / "train.rank1.log").read_text()
    monkeypatch.setenv("SLURM_PROCID", "0")
    with pytest.raises(RuntimeError, match="finished without writing"):
        run_task(job)
    assert not (job.folder / "written-by-rank-0").exists()  # rank 0 starts the training over
    assert json.loads(files.outcome.read_text())["error"].startswith(f"{job.id} finished without writing")
    assert "Traceback" in files.log.read_text()
