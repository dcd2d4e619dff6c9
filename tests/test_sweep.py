"""``anonpriv sweep``: every sweep file parses and plans its runs, the file's errors are one line naming the
key, the launcher keeps dependencies, and report-only over the committed runs gives the committed tables.

All of it runs nothing through Lightning (fake jobs, stored results): seconds. The runs themselves are
exercised by tests/test_evaluation.py, tests/test_seed_statistics.py and tests/test_sweep_paper.py.
"""

from __future__ import annotations

import re
import shutil

import pytest

from sweep_files import CONFIGS, REPO, SWEEPS, load_sweep, tiny_sweep, write_sweep

from anonpriv.sweep.cli import main
from anonpriv.sweep.config import load_sweep_config
from anonpriv.sweep.launchers import LocalLauncher
from anonpriv.sweep.plan import build_plan

# What each committed sweep file plans: (anonymizer trainings, evaluations).
EXPECTED = {
    "synthetic": (18, 36),  # Table 1: 8 rows x 3 seeds, 3 learned x 3; Table 2 (novel): 4 x 3, 3 x 3 of its own
    "faces": (9, 24),  # 8 rows x 3 seeds, 3 learned x 3
    "quick": (12, 22),  # 7 rows x 2 seeds + 4 x 2 novel; 3 x 2 + 3 x 2
    "paper": (27, 105),  # 9 rows x 3 datasets x 3 seeds + 4 x 2 directions x 3; 3 learned x 3 datasets x 3
    "appearance_calibration": (0, 15),  # 5 training-free rows x 3 seeds
    "appearance": (18, 48),  # 8 rows x 3 seeds + 4 x 2 directions x 3; 3 learned x 2 datasets x 3
}


@pytest.mark.parametrize("path", sorted(SWEEPS.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_sweep_file_parses_and_dry_run_lists_every_run_with_the_count(path, tmp_path, capsys):
    assert main(["--config", str(path), "--dry-run", "--out", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    plan = build_plan(load_sweep_config(path).select(out=tmp_path))
    counts = plan.counts()
    total = len(plan.jobs)
    assert lines[0] == (f"{total} runs planned: {counts['train']} anonymizer trainings, {counts['evaluate']} "
                        f"evaluations (0 finished or not needed, {total} to run)")
    listed = [line for line in lines if re.match(r"\s+\[\s*\d+\] (train|evaluate) ", line)]
    assert len(listed) == total and listed[-1].lstrip().startswith(f"[{total}]")
    assert all(job.id in line for job, line in zip(plan.jobs, listed))
    if path.stem in EXPECTED:
        assert (counts["train"], counts["evaluate"]) == EXPECTED[path.stem]
    for table in plan.tables:  # and the count of every table
        assert any(line.startswith(f"{table.name}: {len(table.rows)} evaluations") for line in lines)
    assert not list(tmp_path.iterdir())  # nothing written


def test_paper_sweep_runs_table1_on_three_datasets_and_table2_both_ways():
    plan = build_plan(load_sweep_config(SWEEPS / "paper.yaml"))
    assert [t.name for t in plan.tables] == ["Table 1 vp_ucf", "Table 1 vp_hmdb", "Table 1 pa_hmdb51",
                                             "Table 2 vp_ucf -> vp_hmdb", "Table 2 vp_hmdb -> vp_ucf"]
    rows = ["raw", "downsample", "downsample_4x", "blackening", "blur_strong", "spact", "bdq", "face_blur", "token_pruning"]
    for table in plan.tables[:3]:
        assert list(dict.fromkeys(r.name for r in table.rows)) == rows and {r.seed for r in table.rows} == {0, 1, 2}
    # A transfer evaluates the source's Table 1 anonymizer on the target's clips: no training of its own.
    job = plan.job("evaluate Table 2 vp_ucf->vp_hmdb/token_pruning seed 1")
    assert job.after == ("train vp_ucf/token_pruning seed 1",)
    assert job.args[job.args.index("--model.init_args.anonymizer") + 1] == str(plan.job(job.after[0]).checkpoint)
    assert job.args[job.args.index("--data") + 1].endswith("hmdb51.yaml")
    train = plan.job(job.after[0])
    assert train.args[train.args.index("--model") + 1].endswith("token_pruning_paper.yaml")
    assert train.args[train.args.index("--data") + 1].endswith("ucf101.yaml")
    # The paper's StrongBlur kernel, the paper's evaluation, 50 epochs of it, 80 of training, a GPU.
    blur = plan.job("evaluate Table 1 vp_hmdb/blur_strong seed 0")
    assert '"kernel_size": 13, "sigma": 10.0' in blur.args[blur.args.index("--model.init_args.anonymizer_kwargs") + 1]
    assert blur.args[blur.args.index("--model") + 1].endswith("evaluation/paper.yaml")
    assert blur.args[blur.args.index("--trainer.max_epochs") + 1] == "50"
    assert train.args[train.args.index("--trainer.max_epochs") + 1] == "80"
    assert all(j.args[j.args.index("--trainer") + 1].endswith("trainer/gpu.yaml") for j in plan.jobs)


def test_placeholders_stop_the_sweep_before_any_run(tmp_path, capsys):
    assert main(["--config", str(SWEEPS / "paper.yaml"), "--out", str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err.strip()
    assert "\n" not in error and error.startswith("anonpriv sweep: error: ")
    assert "datasets.vp_ucf: source.init_args.root, source.init_args.privacy_labels still are the placeholder ???" in error
    assert not (tmp_path / "out").exists()


def _break(config: dict, change) -> dict:
    change(config)
    return config


BAD = {
    "unknown key": (lambda c: c.update(seed=[0]), "top level: unknown key 'seed': did you mean 'seeds'?"),
    "missing file": (lambda c: c["methods"]["raw"].update(config="no/such.yaml"),
                     "methods.raw.config: no/such.yaml does not exist"),
    "train without recipe": (lambda c: (c.pop("train"), c["methods"].update(bdq={"config": str(CONFIGS / "method" / "bdq.yaml"), "train": True})),
                             "methods.bdq: train: true needs the top-level train section"),
    "seeds": (lambda c: c.update(seeds=[0, 0]), "seeds: give distinct integer seeds"),
    "prefixed override": (lambda c: c["datasets"]["synthetic"].update(overrides={"data.batch_size": 2}),
                          "datasets.synthetic.overrides: key 'data.batch_size': leave out the 'data.' prefix"),
    "unknown target": (lambda c: c.update(table2=[{"kind": "transfer", "source": "synthetic", "target": "hmdb"}]),
                       "table2[0].target: unknown dataset 'hmdb'"),
    "unknown kind": (lambda c: c.update(table2=[{"kind": "cross"}]), "table2[0].kind: give kind: transfer"),
    "launcher": (lambda c: c.update(launcher={"name": "slrum"}), "launcher: unknown launcher 'slrum': did you mean 'slurm'?"),
    "launcher option": (lambda c: c.update(launcher={"name": "local", "jobz": 2}),
                        "launcher: launcher 'local' has no option 'jobz'; its options: jobs"),
    "jobs": (lambda c: c.update(launcher={"name": "local", "jobs": 0}), "launcher: jobs=0 must be a whole number"),
    "folders": (lambda c: c["datasets"].update(other={"data": c["datasets"]["synthetic"]["data"], "folder": "."}),
                "datasets.other: writes into folder '.' like datasets.synthetic"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_bad_sweep_file_is_one_line_naming_the_key_and_the_fix(case, tmp_path, capsys):
    change, expected = BAD[case]
    path = write_sweep(tmp_path, _break(tiny_sweep(tmp_path / "out"), change))
    assert main(["--config", str(path), "--dry-run"]) == 2
    error = capsys.readouterr().err.strip()
    assert "\n" not in error and error.startswith(f"anonpriv sweep: error: {path}: "), error
    assert expected in error, error


def test_a_sweep_naming_a_renamed_option_or_a_moved_class_path_is_refused_before_any_run(tmp_path, capsys):
    """The sweep builds its runs' Lightning CLIs itself, so it makes the CLI's check for stale names:
    an override in the sweep file and a method config it points at are both read."""
    config = tiny_sweep(tmp_path / "out")
    config["methods"]["bdq"] = {"config": str(CONFIGS / "method" / "bdq.yaml"), "train": True,
                                "overrides": {"budget_lr": 0.001}}
    path = write_sweep(tmp_path, config)
    assert main(["--config", str(path), "--dry-run"]) == 2
    error = capsys.readouterr().err.strip()
    assert "\n" not in error and "'budget_lr'" in error and "'privacy_lr'" in error, error
    assert str(path) in error, error  # the sweep file is named as the place to fix

    old_method = tmp_path / "old_bdq.yaml"  # a method config kept from before the baselines moved
    old_method.write_text("class_path: baselines.BDQBaseline\n")
    path = write_sweep(tmp_path, tiny_sweep(tmp_path / "out", methods={"bdq": {"config": str(old_method), "train": True}}))
    assert main(["--config", str(path), "--dry-run"]) == 2
    error = capsys.readouterr().err.strip()
    assert str(old_method) in error and "'anonpriv.baselines.bdq.BDQBaseline'" in error, error


@pytest.mark.parametrize("flags, expected", [
    (["--jobs", "0"], "--jobs 0: jobs=0 must be a whole number"),
    (["--methods", "raw,bqd"], "--methods raw,bqd: unknown method 'bqd'"),
    (["--seeds", "0,x"], "--seeds '0,x': give a comma-separated list"),
])
def test_bad_command_line_selections_are_one_line(flags, expected, tmp_path, capsys):
    path = write_sweep(tmp_path, tiny_sweep(tmp_path / "out"))
    assert main(["--config", str(path), "--dry-run", *flags]) == 2
    error = capsys.readouterr().err.strip()
    assert "\n" not in error and expected in error, error


def test_methods_and_seeds_select_rows_of_every_table():
    plan = build_plan(load_sweep_config(SWEEPS / "synthetic.yaml").select(methods=["raw", "bdq"], seeds=[1]))
    assert [[(r.name, r.seed) for r in t.rows] for t in plan.tables] == [[("raw", 1), ("bdq", 1)]] * 2
    assert plan.counts() == {"train": 2, "evaluate": 4}


def test_launcher_runs_what_a_job_needs_first_and_skips_what_a_failure_blocks(tmp_path):
    methods = {n: {"config": str(CONFIGS / "method" / f"{n}.yaml"), "train": n != "raw"} for n in ("raw", "bdq", "spact")}
    plan = build_plan(load_sweep_config(write_sweep(tmp_path, tiny_sweep(tmp_path / "out", methods=methods,
                                                                         seeds=[0, 1]))))
    ran = []

    def execute(job):
        ran.append(job.id)
        if job.id == "train synthetic/bdq seed 1":
            raise RuntimeError("out of memory\nsecond line")
        return "ok"

    outcome = LocalLauncher(jobs=1).launch(plan.pending(), execute, log=lambda _: None)
    assert outcome.failed == {"train synthetic/bdq seed 1": "out of memory"}
    assert outcome.skipped == {"evaluate Table 1 synthetic/bdq seed 1": "train synthetic/bdq seed 1"}
    assert len(outcome.finished) == len(plan.jobs) - 2 and "evaluate Table 1 synthetic/bdq seed 1" not in ran
    for job in plan.jobs:  # every evaluation after its training
        for dependency in job.after:
            if job.id in ran:
                assert ran.index(dependency) < ran.index(job.id)
    with pytest.raises(RuntimeError, match="out of memory"):  # --debug: the error itself
        LocalLauncher(jobs=1, raise_errors=True).launch(plan.pending(), execute, log=lambda _: None)


def test_finished_evaluations_keep_their_training_from_being_redone(tmp_path):
    methods = {n: {"config": str(CONFIGS / "method" / f"{n}.yaml"), "train": n != "raw"} for n in ("raw", "bdq")}
    plan = build_plan(load_sweep_config(write_sweep(tmp_path, tiny_sweep(tmp_path / "out", methods=methods))))
    evaluation = plan.job("evaluate Table 1 synthetic/bdq seed 0")
    assert [j.id for j in plan.pending()] == [j.id for j in plan.jobs]
    evaluation.result_file.parent.mkdir(parents=True)
    evaluation.result_file.write_text("{}")
    assert [j.id for j in plan.pending()] == ["evaluate Table 1 synthetic/raw seed 0"]  # no checkpoint needed


@pytest.mark.parametrize("name, folder, tables", [
    ("synthetic", "results", ("table1.md", "table2.md", "table1.csv", "table2.csv")),
    ("faces", "results/faces", ("table1.md", "table1.csv")),
])
def test_report_only_over_the_committed_runs_gives_the_committed_tables(name, folder, tables, tmp_path, capsys,
                                                                       monkeypatch):
    committed = REPO / folder
    shutil.copytree(committed / "runs", tmp_path / "runs")
    monkeypatch.chdir(REPO)  # the tables name the sweep file relative to the repository, as `make sweep` runs it
    assert main(["--config", f"configs/sweep/{name}.yaml", "--report-only", "--out", str(tmp_path)]) == 0
    for table in tables:
        assert (tmp_path / table).read_text() == (committed / table).read_text(), table


def test_clip_check_names_both_shapes_and_passes_an_anonymizer_that_takes_any_size():
    import torch

    from anonpriv.evaluation.clip_check import check_accepts_clips

    class Fixed:  # a ViT-like anonymizer: one clip size only
        clip_shape = [8, 32, 32]

        def anonymize(self, video):
            if list(video.shape[2:]) != self.clip_shape:
                raise ValueError(f"clip {tuple(video.shape[2:])} given to a model built for (8, 32, 32).\nmore")
            return video

    class Convolutional(Fixed):
        def anonymize(self, video):
            return torch.nn.functional.avg_pool3d(video, 1)

    check_accepts_clips(Fixed(), [8, 32, 32], "'a.ckpt'")  # same size: nothing to check
    check_accepts_clips(Convolutional(), [4, 16, 16], "'b.ckpt'")
    with pytest.raises(ValueError) as error:
        check_accepts_clips(Fixed(), [4, 32, 32], "'a.ckpt'")
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith("the anonymizer 'a.ckpt' was trained on clips of 8 x 32 x 32 (frames x height x width) "
                              "and does not accept this data's clips of 4 x 32 x 32 (clip (4, 32, 32) given to")
    assert "num_frames" in message


def test_the_paper_sweep_file_names_every_data_key_it_sets():
    """The paper's data overrides exist on the sources (a typo would only fail at the first run)."""
    import inspect

    from anonpriv.data import HMDB51Source, UCF101Source, VideoPrivacyDataModule
    from anonpriv.data.hmdb51 import PAHMDB51Source
    from anonpriv.data.video_dataset import VideoFolderSource

    sources = {"vp_ucf": UCF101Source, "vp_hmdb": HMDB51Source, "pa_hmdb51": PAHMDB51Source}
    for name, dataset in load_sweep("paper")["datasets"].items():
        accepted = set(inspect.signature(sources[name]).parameters) | set(inspect.signature(VideoFolderSource).parameters)
        for key in dataset["overrides"]:
            if key.startswith("source.init_args."):
                assert key.removeprefix("source.init_args.") in accepted, (name, key)
            else:
                assert key in inspect.signature(VideoPrivacyDataModule).parameters, (name, key)
