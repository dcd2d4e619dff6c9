import json
import math

import pytest
import torch

from anonpriv.metrics import PrivacyUtilityMetrics, action_top1, average_by_video, privacy_scores
from anonpriv.metrics.callback import write_results

NAMES = ["a", "b", "never"]
# Attribute a: ranking 1,0,1,0 -> AP = (1/1 + 2/3) / 2; attribute b: ranking 0,1 -> AP = 1/2.
PROBS = torch.tensor([[0.9, 0.2, 0.1], [0.8, 0.7, 0.2], [0.7, 0.4, 0.6], [0.6, 0.9, 0.1]])
TARGET = torch.tensor([[1, 0, 0], [0, 1, 0], [1, 0, 0], [0, 0, 0]])


def test_cmap_and_f1_against_hand_computed_values():
    scores = privacy_scores(PROBS, TARGET, NAMES)
    assert scores.per_attribute_ap["a"] == pytest.approx(5 / 6)
    assert scores.per_attribute_ap["b"] == pytest.approx(1 / 2)
    assert scores.cmap == pytest.approx((5 / 6 + 1 / 2) / 2)
    # At p > 0.5: a predicts 1,1,1,1 (TP 2, FP 2) -> F1 2/3; b predicts 0,1,0,1 (TP 1, FP 1) -> 2/3.
    assert scores.per_attribute_f1["a"] == pytest.approx(2 / 3)
    assert scores.per_attribute_f1["b"] == pytest.approx(2 / 3)
    assert scores.f1 == pytest.approx(2 / 3)
    # The attribute with no positive has no AP: it is excluded, not averaged in as 0.
    assert scores.excluded == ["never"] and "never" not in scores.per_attribute_ap


def test_f1_thresholds_probabilities_not_logits():
    probs = torch.tensor([[0.55], [0.55], [0.2]])
    target = torch.tensor([[1], [0], [0]])
    # 0.55 counts as present at probability 0.5; thresholding logits at 0.5 would not (0.55 < 0.62).
    assert privacy_scores(probs, target, ["x"]).f1 == pytest.approx(2 / 3)


def test_privacy_scores_rejects_logits():
    with pytest.raises(ValueError, match="probabilities"):
        privacy_scores(torch.tensor([[3.0]]), torch.tensor([[1]]), ["x"])


def test_top1_is_micro_accuracy():
    logits = torch.tensor([[2.0, 1.0, 0.0], [0.0, 3.0, 1.0], [0.0, 0.0, 1.0], [5.0, 0.0, 0.0]])
    assert action_top1(logits, torch.tensor([0, 1, 1, 1])) == pytest.approx(0.5)


def test_average_by_video_averages_clips_of_one_video():
    ids = ["v1", "v2", "v1", "v1"]
    probs = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0], [0.5, 0.5]])
    videos, (avg,) = average_by_video(ids, probs)
    assert videos == ["v1", "v2"]
    assert torch.allclose(avg, torch.tensor([[0.5, 0.5], [0.0, 1.0]]))


def _feed(cb, stage, privacy_logits, n_batches=2):
    torch.manual_seed(0)
    for b in range(n_batches):
        batch = {
            "id": [f"v{b}_{i}" for i in range(4)],
            "action": torch.tensor([0, 1, 2, 0]),
            "privacy": TARGET.float(),
        }
        outputs = {"action_logits": torch.eye(3)[[0, 1, 1, 0]] * 5, "privacy_logits": privacy_logits}
        cb._collect(stage, outputs, batch)


def test_callback_reports_worst_case_of_an_attacker_panel(tmp_path):
    cb = PrivacyUtilityMetrics(results_dir=str(tmp_path))
    logit = torch.logit(PROBS)
    panel = {"weak": torch.zeros_like(logit), "strong": logit}
    _feed(cb, "test", panel)
    results = cb.compute("test", NAMES)
    assert results["top1"] == pytest.approx(0.75)
    assert results["worst_attacker"] == "strong"
    assert results["cmap"] == pytest.approx(results["attackers"]["strong"]["cmap"])
    assert results["cmap"] > results["attackers"]["weak"]["cmap"]
    assert results["excluded_attributes"] == ["never"]
    write_results(results, tmp_path)
    saved = json.loads((tmp_path / "results.json").read_text())
    assert math.isclose(saved["cmap"], results["cmap"])
    rows = (tmp_path / "results.csv").read_text().strip().splitlines()
    assert len(rows) == 3 and rows[0].startswith("method,attacker,top1")


def test_callback_complains_about_a_step_that_returns_nothing_useful():
    cb = PrivacyUtilityMetrics()
    with pytest.raises(TypeError, match="action_logits"):
        cb._collect("val", None, {"id": [], "action": torch.tensor([]), "privacy": torch.tensor([])})
