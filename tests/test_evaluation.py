"""The honest protocol, the Pareto front, and the resumable sweep."""

import csv
import json

import lightning.pytorch as pl
import pytest
import torch
from torch import nn

from anonpriv.data import SyntheticSource, VideoPrivacyDataModule
from anonpriv.evaluation import FrozenAnonymizer, ProtocolEvaluation
from anonpriv.evaluation.tables import ResultRow, comparison_table, pareto_front
from anonpriv.methods import build_method
from anonpriv.metrics import PrivacyUtilityMetrics
from sweep_files import CONFIGS, tiny_sweep, write_sweep


def _trainer(epochs=1, callbacks=()):
    return pl.Trainer(max_epochs=epochs, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                      enable_model_summary=False, num_sanity_val_steps=0, callbacks=list(callbacks))


def _tiny_dm(**source):
    args = dict(num_frames=8, height=32, width=32, num_train=32, num_val=8, num_test=16, seed=5)
    args.update(source)
    return VideoPrivacyDataModule(SyntheticSource(**args), batch_size=8)


def test_protocol_trains_fresh_models_not_the_methods_own(tmp_path):
    dm = _tiny_dm()
    label_space = dict(num_actions=dm.num_actions, num_privacy=dm.num_privacy, clip_shape=dm.clip_shape)
    method = build_method("bdq", **label_space)
    trainer = _trainer()
    trainer.fit(method, dm)  # the method's own utility and privacy models are now trained
    checkpoint = tmp_path / "bdq.ckpt"
    trainer.save_checkpoint(checkpoint)

    protocol = ProtocolEvaluation(anonymizer=str(checkpoint), attackers=["frame_cnn_tiny"],
                                  utility_model="c3d_tiny", **label_space)
    frozen = protocol.anonymizer.method
    # Fresh initialisation: no trained state in the new models (BatchNorm has never seen a batch) ...
    for model in (protocol.utility, protocol.attackers):
        for name, buffer in model.named_buffers():
            if name.endswith("num_batches_tracked"):
                assert buffer.item() == 0, name
            elif name.endswith("running_mean"):
                assert torch.equal(buffer, torch.zeros_like(buffer)), name
    assert frozen.privacy_model.image_model.features[0][1].num_batches_tracked.item() > 0  # the method's own has
    # ... and not the method's own (adversarially trained) weights.
    assert not torch.equal(protocol.utility.head[1].weight, frozen.utility.head[1].weight)
    assert not torch.equal(protocol.attackers.models["frame_cnn_tiny"].image_model.head.weight,
                           frozen.privacy_model.image_model.head.weight)

    anonymizer_before = {k: v.clone() for k, v in frozen.state_dict().items()}
    utility_before = protocol.utility.head[1].weight.clone()
    _trainer().fit(protocol, dm)
    # The anonymizer is frozen (BDQ has no BatchNorm; BN statistics and the keep ratio of a frozen
    # anonymizer with BatchNorm: test_protocol_columns.py).
    for key, value in frozen.state_dict().items():
        assert torch.equal(value, anonymizer_before[key]), key
    assert not torch.equal(protocol.utility.head[1].weight, utility_before)  # the fresh model learned


class _MaskEverything(nn.Module):
    def forward(self, video):
        return torch.zeros_like(video)


def test_raw_leaks_clearly_more_than_masking_everything():
    dm = _tiny_dm(num_train=384, num_val=8, num_test=192, seed=2)
    label_space = dict(num_actions=dm.num_actions, num_privacy=dm.num_privacy, clip_shape=dm.clip_shape,
                       privacy_names=dm.privacy_names)
    scores = {}
    for name in ("raw", "mask_everything"):
        pl.seed_everything(0)
        protocol = ProtocolEvaluation(anonymizer="raw", attackers=["frame_cnn_tiny", "vit_micro"],
                                      attacker_kwargs={"vit_micro": {"frame_stride": 4}}, lr=2e-3, **label_space)
        if name == "mask_everything":
            method = build_method("raw", **label_space)
            method.anonymizer = _MaskEverything()
            protocol.anonymizer = FrozenAnonymizer(method)
        metrics = PrivacyUtilityMetrics()
        trainer = _trainer(epochs=4, callbacks=[metrics])
        trainer.fit(protocol, dm)
        trainer.test(protocol, dm, verbose=False)
        scores[name] = metrics.last_results["test"]
    print({k: (round(v["top1"], 3), round(v["cmap"], 3)) for k, v in scores.items()})
    assert scores["raw"]["cmap"] > scores["mask_everything"]["cmap"] + 0.2
    assert set(scores["raw"]["attackers"]) == {"frame_cnn_tiny", "vit_micro"}


def test_bad_anonymizer_source_names_the_fix():
    with pytest.raises(ValueError, match="neither a registered method"):
        ProtocolEvaluation(anonymizer="no_such_method", num_actions=2, num_privacy=1)
    with pytest.raises(ValueError, match="at least one privacy attacker"):
        ProtocolEvaluation(anonymizer="raw", attackers=[], num_actions=2, num_privacy=1)


def test_pareto_front_on_hand_made_points():
    # (leak, utility): lower leak and higher utility are better.
    points = [(0.80, 0.90), (0.60, 0.85), (0.70, 0.80), (0.50, 0.50), (0.60, 0.60), (0.90, 0.90)]
    # (0.70, 0.80) is dominated by (0.60, 0.85); (0.60, 0.60) by (0.60, 0.85); (0.90, 0.90) by (0.80, 0.90).
    assert pareto_front(points) == [3, 1, 0]
    assert pareto_front([(0.5, 0.5)]) == [0]
    assert pareto_front([(0.5, 0.5), (0.5, 0.5)]) == [0, 1]  # equal points do not dominate each other


def test_comparison_table_reports_deltas_against_raw():
    rows = [ResultRow("raw", 0.8, 0.9, 0.7), ResultRow("x", 0.7, 0.6, 0.5)]
    text = comparison_table(rows)
    assert "| x | 1 | 70.00 | -10.00 | 60.00 | -30.00 | 0.500 | -0.200 |" in text


def _sweep(folder, config, *flags):
    """``anonpriv sweep`` on ``config`` (written into ``folder``); returns the lines it logged."""
    from anonpriv.sweep.cli import parse_args, run

    lines = []
    assert run(parse_args(["--config", str(write_sweep(folder, config)), *flags]), log=lines.append) == 0
    return lines


def test_quick_sweep_writes_tables_and_resumes_without_redoing_finished_runs(tmp_path):
    token_pruning = str(CONFIGS / "method" / "token_pruning.yaml")
    config = tiny_sweep(tmp_path / "out", methods={
        "raw": {"config": str(CONFIGS / "method" / "raw.yaml")},
        "token_pruning": {"config": token_pruning, "train": True},
        "token_pruning_l2.0_k0.5": {"config": token_pruning, "train": True, "curve": True,
                                    "overrides": {"lambda_priv": 2.0, "keep_ratio": 0.5}},
    }, table2=[{"kind": "novel", "dataset": "synthetic", "methods": ["raw"],
                "seen": {"actions": ["wave_left", "wave_right", "kick_left", "march"]},
                "novel": {"actions": ["wave_both", "kick_right", "cross_left", "cross_right"]}}])
    config["evaluation"]["overrides"]["attackers"] = ["frame_cnn_tiny", "vit_micro"]
    out = tmp_path / "out"
    log = _sweep(tmp_path, config)
    assert sum(line.startswith("[") for line in log) == 6  # 4 evaluations, 2 trainings
    table1 = (out / "table1.md").read_text()
    assert table1.count("**Table 1, per attribute**") == 1
    comparison, per_attribute = table1.split("**Table 1, per attribute**")
    assert comparison.count("| token_pruning") == 3  # its Table 1 row, and the curve table's two
    assert per_attribute.count("| token_pruning |") == 1 and "| raw |" in per_attribute  # methods only
    assert "| raw |" in (out / "table2.md").read_text()
    assert (out / "tradeoff.png").stat().st_size > 1000
    assert (out / "table1.csv").read_text().splitlines()[0].startswith("method,group,seed,keep_ratio,lambda_priv")

    # Interrupt: the token-pruning run lost its result mid-evaluation, its training had finished.
    results = {p: p.stat().st_mtime_ns for p in out.glob("runs/*/seed0/result.json")}
    assert len(results) == 4
    run_dir = out / "runs" / "token_pruning" / "seed0"
    (run_dir / "result.json").unlink()
    checkpoint = run_dir / "train" / "anonymizer" / "run" / "checkpoints" / "last.ckpt"
    checkpoint_time = checkpoint.stat().st_mtime_ns
    log = _sweep(tmp_path, config)
    assert [line for line in log if line.startswith("[")] == ["[1/1] evaluate Table 1 synthetic/token_pruning seed 0"]
    assert checkpoint.stat().st_mtime_ns == checkpoint_time  # the finished training was not redone
    for path, mtime in results.items():
        if path.parent != run_dir:
            assert path.stat().st_mtime_ns == mtime
    result = json.loads((run_dir / "result.json").read_text())
    assert result["sweep"]["seed"] == 0 and result["sweep"]["method"] == "token_pruning"
    assert result["sweep"]["train_seconds"] > 0  # read from the kept training's fit.done


def test_parallel_sweep_matches_one_run_at_a_time(tmp_path):
    methods = {name: {"config": str(CONFIGS / "method" / f"{name}.yaml")} for name in ("raw", "downsample")}
    parallel = _sweep(tmp_path / "parallel", tiny_sweep(tmp_path / "parallel" / "out", methods=methods), "--jobs", "2")
    assert sum("finished]" in line for line in parallel) == 2

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # what each worker process uses
    try:
        _sweep(tmp_path / "serial", tiny_sweep(tmp_path / "serial" / "out", methods=methods))
    finally:
        torch.set_num_threads(threads)
    rows = {}
    for name in ("parallel", "serial"):
        with open(tmp_path / name / "out" / "table1.csv") as fh:
            rows[name] = [(r["method"], r["top1"], r["cmap"], r["f1"]) for r in csv.DictReader(fh)]
    assert [r[0] for r in rows["parallel"]] == ["raw", "downsample"]  # the order asked for, not finishing order
    assert rows["parallel"] == rows["serial"]

    again = _sweep(tmp_path / "parallel", tiny_sweep(tmp_path / "parallel" / "out", methods=methods), "--jobs", "2")
    assert not any(line.startswith("[") for line in again)  # finished runs are kept, in parallel mode too
