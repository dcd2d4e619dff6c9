"""Issue 15, item 2: the protocol's face rate (a pretrained face detector on the raw and the anonymized
test clips) in results.json, in Table 1 and its CSV only when measured, and in the faces sweep (configs/sweep/faces.yaml).

Tests that run the detector are marked ``needs_faces`` (skipped without the optional extra, see
conftest.py); the missing-extra error is tested with the extra hidden (monkeypatch), so it runs
everywhere. Everything runs on a few 112-px synthetic_faces clips: seconds, except the quick faces
sweep (two tiny runs, about a minute on busy cores).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch

from anonpriv.evaluation import ProtocolEvaluation
from anonpriv.evaluation.protocol import face_rates_per_video, merge_face_counts
from anonpriv.evaluation.tables import ResultRow, comparison_table, summarize, write_comparison_csv
from anonpriv.faces import INSTALL_HINT, FacesExtraMissing
from anonpriv.metrics import PrivacyUtilityMetrics
from anonpriv.metrics.callback import _extra_test_results

from anonpriv.sweep.config import load_sweep_config
from anonpriv.sweep.plan import build_plan
from sweep_files import SWEEPS, load_sweep, write_sweep


def _faces_datamodule():
    from anonpriv.data import VideoPrivacyDataModule
    from anonpriv.data.synthetic_faces import SyntheticFacesSource

    # seed 0: test clips 0, 2, 4 have face=1, clips 1, 3, 5 face=0
    source = SyntheticFacesSource(num_frames=4, num_train=4, num_val=2, num_test=6, seed=0)
    return VideoPrivacyDataModule(source, batch_size=3)


def _test_results(anonymizer: str, out: Path, **options) -> dict:
    dm = _faces_datamodule()
    model = ProtocolEvaluation(anonymizer=anonymizer, attackers=["frame_cnn_tiny"], num_actions=dm.num_actions,
                               num_privacy=dm.num_privacy, clip_shape=dm.clip_shape, privacy_names=dm.privacy_names,
                               **options)
    trainer = pl.Trainer(accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, callbacks=[PrivacyUtilityMetrics(results_dir=str(out))])
    trainer.test(model, datamodule=dm, verbose=False)  # fresh models untrained: only the face rate matters here
    return json.loads((out / "results.json").read_text())


# -- results.json -------------------------------------------------------------------------------------
@pytest.mark.needs_faces
def test_protocol_writes_face_rate_and_raw_reference_and_face_blur_hides_the_faces(tmp_path):
    raw = _test_results("raw", tmp_path / "raw", face_rate=True)
    blurred = _test_results("face_blur", tmp_path / "face_blur", face_rate=True,
                            anonymizer_kwargs={"threshold": 0.2, "margin": 0.2, "hold_frames": 3})
    for results in (raw, blurred):
        assert {"face_rate", "face_rate_raw", "face_rates"} <= set(results)
        details = results["face_rates"]["raw"]
        assert details["frames"] == 6 * 4 and details["videos"] == 6
        assert results["face_rate_raw"] == pytest.approx(details["frame_rate"])
        assert results["face_rate"] == pytest.approx(results["face_rates"]["anonymized"]["frame_rate"])
    # The raw clips: the detector fires on the three clips with face=1 (all their frames), not on the others.
    assert raw["face_rate_raw"] >= 0.45 and raw["face_rates"]["raw"]["videos_with_face"] == 3
    assert raw["face_rate"] == raw["face_rate_raw"]  # raw hides nothing
    assert blurred["face_rate_raw"] == raw["face_rate_raw"]  # the same raw test clips
    assert blurred["face_rate"] <= 0.1 * raw["face_rate_raw"]  # face_blur: far below
    assert blurred["face_rates"]["anonymized"]["video_rate"] <= 1 / 6


def test_face_rate_is_off_by_default_and_adds_nothing():
    model = ProtocolEvaluation(anonymizer="raw", attackers=["frame_cnn_tiny"])
    assert model.face_rate is False and model.extra_test_results() == {}
    assert _extra_test_results(model) == {}


# -- the missing extra ----------------------------------------------------------------------------------
def test_face_rate_without_the_extra_is_a_one_line_error_naming_it(monkeypatch, capsys, tmp_path):
    import anonpriv.faces

    monkeypatch.setattr(anonpriv.faces, "missing_face_modules", lambda: ["onnxruntime"])
    with pytest.raises(FacesExtraMissing) as error:
        ProtocolEvaluation(anonymizer="raw", attackers=["frame_cnn_tiny"], face_rate=True)
    message = str(error.value)
    assert INSTALL_HINT in message and "\n" not in message
    ProtocolEvaluation(anonymizer="raw", attackers=["frame_cnn_tiny"])  # off: the extra is not needed

    # The faces sweep refuses before any run, in one line (exit 2), instead of failing run after run.
    from anonpriv.sweep.cli import main

    out = tmp_path / "out"
    assert main(["--config", str(SWEEPS / "faces.yaml"), "--out", str(out), "--methods", "face_blur", "--seeds", "0"]) == 2
    message = capsys.readouterr().err.strip()
    assert INSTALL_HINT in message and "\n" not in message and message.startswith("anonpriv sweep: error:")
    assert not out.exists()


# -- counting per frame and per video, under DDP ------------------------------------------------------------
def test_counts_sum_per_video_and_sampler_padding_counts_once():
    # Clips (raw hits, raw frames, anonymized hits, anonymized frames): video a has two clips.
    clips = {0: ("a", (4, 4, 1, 4)), 1: ("a", (2, 4, 0, 4)), 2: ("b", (0, 4, 0, 4))}

    def rank(indices):
        return {"keys": [(0, i) for i in indices], "ids": [clips[i][0] for i in indices],
                "counts": [clips[i][1] for i in indices]}

    single = merge_face_counts([rank([0, 1, 2])])
    padded = merge_face_counts([rank([0, 2]), rank([1, 0])])  # DistributedSampler repeats clip 0 on rank 1
    assert padded == single
    raw, anonymized = face_rates_per_video(single, 0.5)
    assert raw.per_video == {"a": (6, 8), "b": (0, 4)} and anonymized.per_video == {"a": (1, 8), "b": (0, 4)}
    assert raw.frame_rate == pytest.approx(6 / 12) and raw.video_rate == pytest.approx(1 / 2)
    assert raw.mean_video_rate == pytest.approx((6 / 8 + 0) / 2)
    assert anonymized.frame_rate == pytest.approx(1 / 12)
    no_keys = {**rank([0]), "keys": None}
    with pytest.warns(UserWarning, match="counted twice"):
        assert len(merge_face_counts([no_keys, dict(no_keys)])) == 2


def test_callback_merges_a_methods_extra_results_and_refuses_its_own_keys():
    class Extra(torch.nn.Module):
        def __init__(self, extra):
            super().__init__()
            self.extra = extra

        def extra_test_results(self):
            return self.extra

    assert _extra_test_results(Extra({"face_rate": 0.25})) == {"face_rate": 0.25}
    with pytest.raises(ValueError, match="top1"):
        _extra_test_results(Extra({"top1": 1.0}))


# -- tables ----------------------------------------------------------------------------------------------
def _rows(name, top1, face=None, face_raw=None):
    return [ResultRow(name, t, 0.5, 0.5, worst_attacker="resnet18", seed=s,
                      face_rate=None if face is None else face[s],
                      face_rate_raw=None if face_raw is None else face_raw[s])
            for s, t in enumerate(top1)]


def test_table_shows_the_face_rate_column_only_when_measured(tmp_path):
    plain = _rows("raw", [0.9, 0.92]) + _rows("blur", [0.8, 0.82])
    text = comparison_table(plain)
    assert "face rate" not in text.lower()
    write_comparison_csv(plain, tmp_path / "plain.csv")
    header = next(csv.reader(open(tmp_path / "plain.csv")))
    assert "face_rate" not in header and "face_rate_raw" not in header

    measured = (_rows("raw", [0.9, 0.92], [0.50, 0.52], [0.50, 0.52])
                + _rows("face_blur", [0.85, 0.87], [0.01, 0.03], [0.50, 0.52]) + _rows("bdq", [0.8, 0.82]))
    text = comparison_table(measured)
    header_line = next(line for line in text.splitlines() if line.startswith("| Method"))
    assert "face rate (%) ↓ (mean ± std)" in header_line
    assert header_line.count("|") == next(line for line in text.splitlines() if line.startswith("|---")).count("|")
    face_blur = next(line for line in text.splitlines() if line.startswith("| face_blur |"))
    assert "| 2.0 ± 1.4 | resnet18 |" in face_blur  # mean 2%, std 1.41 points over the two seeds
    assert "| 51.0 ± 1.4 | resnet18 |" in next(line for line in text.splitlines() if line.startswith("| raw |"))
    assert "| n/a | resnet18 |" in next(line for line in text.splitlines() if line.startswith("| bdq |"))
    assert "on the raw test clips: 50.0% to 52.0%" in text
    summary = {s.name: s for s in summarize(measured)}
    assert summary["face_blur"].mean["face_rate"] == pytest.approx(0.02)
    assert "face_rate" not in summary["bdq"].mean and "face_rate" not in summary["face_blur"].delta

    write_comparison_csv(measured, tmp_path / "faces.csv")
    rows = list(csv.DictReader(open(tmp_path / "faces.csv")))
    assert [r["face_rate"] for r in rows if r["method"] == "face_blur"] == ["0.010000", "0.030000"]
    assert [r["face_rate_raw"] for r in rows if r["method"] == "face_blur"] == ["0.500000", "0.520000"]
    assert {r["face_rate"] for r in rows if r["method"] == "bdq"} == {""}


def test_result_rows_read_the_face_rate_from_results_json():
    results = {"top1": 0.9, "cmap": 0.5, "f1": 0.4, "face_rate": 0.1, "face_rate_raw": 0.5}
    row = ResultRow.from_results("x", results)
    assert (row.face_rate, row.face_rate_raw) == (0.1, 0.5)
    row = ResultRow.from_results("x", {"top1": 0.9, "cmap": 0.5, "f1": 0.4})
    assert row.face_rate is None and row.face_rate_raw is None


# -- the sweep's faces comparison ---------------------------------------------------------------------------
def _arg(job, option):
    return job.args[job.args.index(option) + 1]


def test_faces_plan_runs_every_method_on_the_faces_data_with_the_face_rate():
    config = load_sweep_config(SWEEPS / "faces.yaml")
    plan = build_plan(config)
    assert config.out == Path("results/faces")  # never results/table1.md
    assert [t.name for t in plan.tables] == ["Table 1 synthetic_faces"]  # no Table 2
    rows = plan.tables[0].rows
    assert list(dict.fromkeys(r.name for r in rows)) == ["raw", "blur", "blur_strong", "downsample", "face_blur", "bdq",
                                                         "spact", "token_pruning"]
    assert {r.seed for r in rows} == {0, 1, 2}
    for job in plan.jobs:
        assert _arg(job, "--data").endswith("synthetic_faces.yaml")
        assert _arg(job, "--data.source.init_args.num_frames") == "8"  # 8-frame clips; Table 1's counts and epochs
        # The action model pools 112-px frames 2x2, in the evaluation and in every anonymizer training.
        assert json.loads(_arg(job, "--model.init_args.utility_kwargs")) == {"input_pool": 2}
        assert _arg(job, "--trainer.max_epochs") == ("5" if job.kind == "train" else "6")
        if job.kind == "evaluate":
            assert _arg(job, "--model.init_args.face_rate") == "true"
    # The default plan is untouched.
    default = build_plan(load_sweep_config(SWEEPS / "synthetic.yaml"))
    for job in default.jobs:
        assert _arg(job, "--data").endswith("/synthetic.yaml") and "--model.init_args.face_rate" not in job.args
        assert "--model.init_args.utility_kwargs" not in job.args


@pytest.mark.needs_faces
def test_quick_faces_sweep_writes_a_table_with_the_face_rate_column(tmp_path):
    """configs/sweep/faces.yaml with raw and face_blur on a few 8-frame 112-px clips, one seed and epoch."""
    from anonpriv.sweep.cli import main

    config = load_sweep("faces")
    config["datasets"]["synthetic_faces"]["overrides"] |= {
        "source.init_args.num_train": 8, "source.init_args.num_val": 4, "source.init_args.num_test": 6,
        "batch_size": 4}
    config |= {"out": str(tmp_path / "out"), "seeds": [0], "launcher": {"name": "local", "jobs": 1}}
    config["methods"] = {k: v for k, v in config["methods"].items() if k in ("raw", "face_blur")}
    config["evaluation"]["epochs"] = 1
    assert main(["--config", str(write_sweep(tmp_path, config))]) == 0
    out = tmp_path / "out"
    text = (out / "table1.md").read_text()
    assert "face rate (%)" in text and "on the raw test clips" in text
    rows = {row["method"]: row for row in csv.DictReader(open(out / "table1.csv"))}
    assert float(rows["raw"]["face_rate"]) == pytest.approx(float(rows["raw"]["face_rate_raw"]))
    assert float(rows["raw"]["face_rate"]) > 0.3
    assert float(rows["face_blur"]["face_rate"]) < 0.1 * float(rows["raw"]["face_rate"])
    assert not (out / "table2.md").exists()
