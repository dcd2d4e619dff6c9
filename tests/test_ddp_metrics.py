"""The shared metrics callback's results: gathered across Lightning DDP ranks, DistributedSampler
padding dropped, one results file; and each attribute's positive rate beside its AP.

The end-to-end test runs ``anonpriv test`` of one checkpoint in one process and in two CPU processes
(``strategy: ddp``, gloo) on a test set of 7 clips, which DistributedSampler pads to 8, and asks
for the same numbers to 1e-6. About a minute on 2 shared cores, most of it process start-up.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from anonpriv.cli import AnonprivCLI
from anonpriv.metrics import PrivacyUtilityMetrics, positive_rates
from anonpriv.metrics.callback import merge_rank_payloads, write_results

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"
TINY_DATA = str(CONFIGS / "data" / "synthetic_tiny.yaml")
NAMES = ["a", "b"]


def test_results_report_each_attributes_positive_rate_over_videos(tmp_path):
    # 3 videos of 2 clips: "a" is present in 2 of them, "b" in none (excluded from AP, rate 0).
    cb = PrivacyUtilityMetrics()
    labels = {"v0": [1.0, 0.0], "v1": [1.0, 0.0], "v2": [0.0, 0.0]}
    for clip in range(2):
        batch = {"id": list(labels), "action": torch.tensor([0, 1, 0]), "privacy": torch.tensor(list(labels.values()))}
        outputs = {"action_logits": torch.randn(3, 2), "privacy_logits": torch.randn(3, 2)}
        cb._collect("test", outputs, batch)
    results = cb.compute("test", NAMES)
    assert results["num_videos"] == 3 and results["num_clips"] == 6
    assert results["positive_rate"] == pytest.approx({"a": 2 / 3, "b": 0.0})  # per video, not per clip
    assert results["excluded_attributes"] == ["b"]
    write_results(results, tmp_path)
    assert json.loads((tmp_path / "results.json").read_text())["positive_rate"] == pytest.approx({"a": 2 / 3, "b": 0.0})
    assert positive_rates(torch.tensor([[1, 0], [1, 1], [0, 0], [1, 0]]), NAMES) == {"a": 0.75, "b": 0.25}


def _payload(keys, ids, action_probs, actions, privacy, privacy_model):
    return {"keys": keys, "ids": ids, "action_probs": torch.tensor(action_probs), "actions": torch.tensor(actions),
            "privacy": torch.tensor(privacy), "privacy_probs": {"privacy_model": torch.tensor(privacy_model)}}


def test_merge_drops_sampler_padding_and_restores_dataset_order():
    # 5 clips of 2 videos (v0: clips 0-2, v1: clips 3-4), 2 ranks: DistributedSampler pads index 0
    # onto rank 1. Counting that copy twice would weigh v0's first clip double in v0's average.
    probs = [[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7], [0.1, 0.9]]
    privacy_model = [[0.9, 0.2], [0.1, 0.4], [0.5, 0.6], [0.7, 0.1], [0.3, 0.3]]
    ids = ["v0", "v0", "v0", "v1", "v1"]
    actions = [0, 0, 0, 1, 1]
    privacy = [[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]]

    def rank(indices):
        return _payload([(0, i) for i in indices], [ids[i] for i in indices], [probs[i] for i in indices],
                        [actions[i] for i in indices], [privacy[i] for i in indices], [privacy_model[i] for i in indices])

    merged = merge_rank_payloads([rank([0, 2, 4]), rank([1, 3, 0])])
    single = merge_rank_payloads([rank([0, 1, 2, 3, 4])])
    assert merged.ids == ids and single.ids == ids
    assert torch.equal(merged.action_probs[0], torch.tensor(probs))
    assert torch.equal(merged.privacy_probs["privacy_model"][0], torch.tensor(privacy_model))
    cb_merged, cb_single = PrivacyUtilityMetrics(), PrivacyUtilityMetrics()
    cb_merged._buffers["test"], cb_single._buffers["test"] = merged, single
    assert cb_merged.compute("test", NAMES) == cb_single.compute("test", NAMES)
    assert cb_merged.compute("test", NAMES)["num_clips"] == 5


def test_merge_without_sampler_indices_keeps_every_clip_and_warns():
    part = _payload(None, ["v0"], [[0.5, 0.5]], [0], [[1.0, 0.0]], [[0.4, 0.6]])
    with pytest.warns(UserWarning, match="counted twice"):
        merged = merge_rank_payloads([part, dict(part)])
    assert merged.ids == ["v0", "v0"]


def test_merge_of_ranks_that_saw_nothing_is_empty():
    empty = {"keys": [], "ids": [], "action_probs": None, "actions": None, "privacy": None, "privacy_probs": {}}
    merged = merge_rank_payloads([empty, dict(empty)])
    assert merged.ids == [] and PrivacyUtilityMetrics().compute("test", NAMES) == {}


def _common(tmp_path: Path, results: str) -> list[str]:
    return [
        "--config", str(CONFIGS / "raw.yaml"), "--data", TINY_DATA,
        "--data.source.init_args.num_test", "7",  # odd: DistributedSampler pads one clip onto rank 1
        "--data.eval_batch_size", "2",
        "--trainer.accelerator", "cpu",
        "--trainer.enable_progress_bar", "false",
        "--trainer.enable_model_summary", "false",
        "--trainer.logger.init_args.save_dir", str(tmp_path / "runs"),
        "--metrics.results_dir", str(tmp_path / results),
    ]


def test_two_process_ddp_test_equals_one_process(tmp_path):
    # A checkpoint with non-trivial predictions: raw's utility and privacy models after a few steps.
    AnonprivCLI(args=["fit", *_common(tmp_path, "fit"), "--trainer.max_steps", "3", "--trainer.limit_val_batches", "0"])
    checkpoint = next((tmp_path / "runs").glob("**/last.ckpt"))

    AnonprivCLI(args=["test", *_common(tmp_path, "one"), "--trainer.devices", "1", "--ckpt_path", str(checkpoint)])
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONHASHSEED="0")
    env.pop("MASTER_PORT", None)  # Lightning picks a free port
    run = subprocess.run(
        [sys.executable, "-m", "anonpriv", "test", *_common(tmp_path, "two"), "--trainer.devices", "2",
         "--trainer.strategy", "ddp", "--ckpt_path", str(checkpoint)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert "counted twice" not in run.stderr  # every clip was matched to its sampler index

    one = json.loads((tmp_path / "one" / "results.json").read_text())
    two = json.loads((tmp_path / "two" / "results.json").read_text())
    assert two["num_videos"] == one["num_videos"] == 7
    assert two["num_clips"] == one["num_clips"] == 7  # the padded copy is not counted
    for key in ("top1", "cmap", "f1"):
        assert two[key] == pytest.approx(one[key], abs=1e-6)
    for name, scores in one["attackers"].items():
        for attribute, ap in scores["per_attribute_ap"].items():
            assert two["attackers"][name]["per_attribute_ap"][attribute] == pytest.approx(ap, abs=1e-6)
        for attribute, f1 in scores["per_attribute_f1"].items():
            assert two["attackers"][name]["per_attribute_f1"][attribute] == pytest.approx(f1, abs=1e-6)
    assert two["positive_rate"] == pytest.approx(one["positive_rate"], abs=1e-12)
    # Written once, by global rank 0: exactly the two files, nothing per rank.
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == ["results.csv", "results.json"]


def test_gpu_ddp_trainer_config_parses(capsys):
    import yaml

    # Instantiating it needs GPUs; --print_config validates every key without instantiating.
    with pytest.raises(SystemExit) as exit_info:
        AnonprivCLI(args=["fit", "--config", str(CONFIGS / "raw.yaml"),
                          "--trainer", str(CONFIGS / "trainer" / "gpu_ddp.yaml"), "--print_config"])
    assert exit_info.value.code in (0, None)
    trainer = yaml.safe_load(capsys.readouterr().out)["trainer"]
    assert (trainer["accelerator"], trainer["devices"], trainer["num_nodes"]) == ("gpu", -1, 1)
    assert trainer["strategy"] == "ddp_find_unused_parameters_true" and trainer["sync_batchnorm"] is True
