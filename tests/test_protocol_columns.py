"""Issue 13, items 2 and 3: the headline privacy columns come from one attacker, and the protocol
refuses what it cannot evaluate honestly (a learnable method by name) while keeping a trained
anonymizer with BatchNorm frozen, statistics and keep ratio included."""

import csv
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
from torch import nn

from anonpriv.cli import main
from anonpriv.data import SyntheticSource, VideoPrivacyDataModule
from anonpriv.evaluation import ProtocolEvaluation, resolve_anonymizer
from anonpriv.evaluation.tables import ResultRow, comparison_table, write_comparison_csv
from anonpriv.methods import CATALOG, AnonymizationMethod, MethodSpec
from anonpriv.methods.token_pruning import TokenPruningMethod
from anonpriv.metrics import PrivacyUtilityMetrics
from anonpriv.metrics.callback import write_results

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


# -- item 2: one attacker behind cMAP and F1 ----------------------------------------------------------

# One attribute over six videos, two positives. Attacker "a" ranks them perfectly but never says
# "present" (AP 1, F1 0); attacker "b" says "present" for everyone (AP 1/3, F1 0.5). So "a" has the
# highest cMAP and "b" the highest F1.
TARGET = torch.tensor([[1.0], [1.0], [0.0], [0.0], [0.0], [0.0]])
PROBS = {"a": torch.tensor([[0.4], [0.4], [0.1], [0.1], [0.1], [0.1]]), "b": torch.full((6, 1), 0.9)}


def _panel_results(tmp_path=None):
    cb = PrivacyUtilityMetrics()
    batch = {"id": [f"v{i}" for i in range(6)], "action": torch.tensor([0, 1, 0, 1, 0, 1]), "privacy": TARGET}
    outputs = {"action_logits": torch.eye(2)[[0, 1, 0, 1, 0, 1]] * 5,
               "privacy_logits": {name: torch.logit(p) for name, p in PROBS.items()}}
    cb._collect("test", outputs, batch)
    return cb.compute("test", ["face"])


def test_headline_f1_is_the_worst_cmap_attackers_own():
    results = _panel_results()
    a, b = results["attackers"]["a"], results["attackers"]["b"]
    assert a["cmap"] == pytest.approx(1.0) and b["cmap"] == pytest.approx(1 / 3)
    assert a["f1"] == pytest.approx(0.0) and b["f1"] == pytest.approx(0.5)  # b has the highest F1 ...
    assert results["worst_attacker"] == "a"
    assert results["cmap"] == pytest.approx(a["cmap"])
    assert results["f1"] == pytest.approx(a["f1"])  # ... but the headline F1 is a's, not b's


def test_results_files_and_sweep_csv_keep_every_attacker_and_name_the_worst(tmp_path):
    results = _panel_results()
    results["method"] = "X"
    write_results(results, tmp_path)
    with open(tmp_path / "results.csv") as fh:
        per_attacker = {row["attacker"]: row for row in csv.DictReader(fh)}
    assert per_attacker["a"]["worst"] == "1" and per_attacker["b"]["worst"] == "0"
    assert float(per_attacker["b"]["f1"]) == pytest.approx(0.5)

    raw = dict(results, top1=0.5)
    rows = [ResultRow.from_results("raw", raw), ResultRow.from_results("x", results)]
    write_comparison_csv(rows, tmp_path / "table.csv")
    with open(tmp_path / "table.csv") as fh:
        x = [row for row in csv.DictReader(fh) if row["method"] == "x"][0]
    assert x["worst_attacker"] == "a"
    assert float(x["cmap"]) == pytest.approx(1.0) and float(x["f1"]) == pytest.approx(0.0)
    assert float(x["cmap_b"]) == pytest.approx(1 / 3) and float(x["f1_b"]) == pytest.approx(0.5)
    assert float(x["f1_a"]) == pytest.approx(0.0)
    assert "| x | 1 | 100.00 | +50.00 | 100.00 | +0.00 | 0.000 | +0.000 | a |" in comparison_table(rows)


def test_results_written_with_a_mixed_headline_read_as_one_attacker():
    # results.json of the old callback (kept by a resumed sweep): F1 was the highest over attackers.
    old = dict(_panel_results(), f1=0.5)
    row = ResultRow.from_results("x", old)
    assert (row.cmap, row.f1, row.worst_attacker) == (pytest.approx(1.0), pytest.approx(0.0), "a")


# -- item 3: what the protocol refuses and accepts by name --------------------------------------------

LABELS = dict(num_actions=3, num_privacy=2, clip_shape=[8, 32, 32])


@pytest.mark.parametrize("name", ["bdq", "spact", "token_pruning"])
def test_a_learnable_method_by_name_is_refused_with_the_fix(name):
    with pytest.raises(ValueError, match=r"learnable method .*pass its checkpoint") as info:
        ProtocolEvaluation(anonymizer=name, attackers=["frame_cnn_tiny"], **LABELS)
    assert "\n" not in str(info.value) and f"configs/{name}.yaml" in str(info.value)


@pytest.mark.parametrize("name, kwargs", [("raw", None), ("blur", {"sigma": 2.0}), ("downsample", {"factor": 2})])
def test_training_free_methods_by_name_stay_accepted(name, kwargs):
    protocol = ProtocolEvaluation(anonymizer=name, anonymizer_kwargs=kwargs, attackers=["frame_cnn_tiny"], **LABELS)
    assert protocol.evaluated_method == type(resolve_anonymizer(name, kwargs, **LABELS)).__name__


class _FixedConvMethod(AnonymizationMethod):
    """A registered method whose anonymizer has parameters, none of them trainable."""

    def __init__(self, **kwargs):
        conv = nn.Conv3d(3, 3, 1)
        conv.requires_grad_(False)
        super().__init__(anonymizer=conv, **kwargs)


class _LearnableScaleMethod(AnonymizationMethod):
    """A registered method whose anonymizer has one trainable number."""

    def __init__(self, **kwargs):
        super().__init__(anonymizer=_Scale(), **kwargs)


class _Scale(nn.Module):
    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))

    def forward(self, video):
        return video * self.scale


def test_refusal_is_decided_by_the_anonymizers_trainable_parameters(monkeypatch):
    for name, cls in (("fixed_conv", _FixedConvMethod), ("learnable_scale", _LearnableScaleMethod)):
        monkeypatch.setitem(CATALOG, name, MethodSpec(name, f"{__name__}.{cls.__name__}", "torch.nn.Identity"))
    assert ProtocolEvaluation(anonymizer="fixed_conv", attackers=["frame_cnn_tiny"], **LABELS)
    with pytest.raises(ValueError, match="1 trainable parameters"):
        ProtocolEvaluation(anonymizer="learnable_scale", attackers=["frame_cnn_tiny"], **LABELS)


def test_cli_refuses_token_pruning_by_name_with_the_fix(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--config", str(CONFIGS / "evaluate.yaml"), "--data", str(CONFIGS / "data" / "synthetic_tiny.yaml"),
              "--model.init_args.anonymizer", "token_pruning", "--trainer.enable_progress_bar", "false",
              "--trainer.logger.init_args.save_dir", str(tmp_path)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    # jsonargparse wraps a model's init error in its "Union subtypes" report; the CLI unwraps it, so
    # the error is one line with the fix, and there is no traceback.
    errors = [line for line in err.splitlines() if line.startswith("anonpriv fit: error:")]
    assert len(errors) == 1 and "Union subtypes" not in err, err
    assert "anonymizer='token_pruning' is a learnable method" in errors[0]
    assert "pass its checkpoint" in errors[0] and "configs/token_pruning.yaml" in errors[0], err
    assert "Traceback" not in err


# -- item 3: a trained anonymizer with BatchNorm stays frozen -----------------------------------------

def _trainer():
    return pl.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                      enable_model_summary=False, num_sanity_val_steps=0)


def _kept_fraction(out: dict) -> float:
    return out["tubelet_mask"].float().mean().item()


def test_frozen_token_pruning_keeps_its_batchnorm_statistics_and_keep_ratio(tmp_path):
    source = SyntheticSource(num_frames=8, height=32, width=32, num_train=32, num_val=8, num_test=8, seed=5)
    dm = VideoPrivacyDataModule(source, batch_size=8)
    label_space = dict(num_actions=dm.num_actions, num_privacy=dm.num_privacy, clip_shape=dm.clip_shape)
    method = TokenPruningMethod(stem="conv", tubelet=[2, 4, 4], embed_dim=32, depth=2, num_heads=2, prune_blocks=[2],
                                keep_ratio=0.5, pretrained_file=None, attention_map_clips=0, **label_space)
    trainer = _trainer()
    trainer.fit(method, dm)
    checkpoint = tmp_path / "token_pruning.ckpt"
    trainer.save_checkpoint(checkpoint)

    protocol = ProtocolEvaluation(anonymizer=str(checkpoint), attackers=["frame_cnn_tiny"], utility_model="c3d_tiny",
                                  **label_space)
    frozen = protocol.anonymizer.method
    norms = [m for m in frozen.anonymizer.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    assert norms and all(m.num_batches_tracked.item() > 0 for m in norms)  # trained BN statistics to keep
    before = {k: v.clone() for k, v in frozen.state_dict().items()}
    anonymizer_keys = {k for k in before if k.startswith("anonymizer.")}
    assert any(k.endswith("running_mean") for k in anonymizer_keys) and any(k.endswith("running_var") for k in anonymizer_keys)

    dm.setup("test")
    video = next(iter(dm.test_dataloader()))["video"]
    with torch.no_grad():
        kept_before = _kept_fraction(frozen.anonymizer_outputs(video))
    assert kept_before == pytest.approx(0.5)  # keep_ratio 0.5 of 4 x 8 x 8 tubelets

    seen = []  # kept fraction of every clip batch the fresh models are trained and validated on
    handle = frozen.anonymizer.register_forward_hook(lambda module, args, out: seen.append(_kept_fraction(out)))
    utility_before = protocol.utility.head[1].weight.clone()
    # Lightning >= 2.2 keeps each module's mode through fit; older versions (and any user code) call
    # .train() on the whole model, which must not put the frozen anonymizer back into training mode.
    protocol.train()
    _trainer().fit(protocol, dm)
    handle.remove()

    assert not torch.equal(protocol.utility.head[1].weight, utility_before)  # the fresh model did train
    for key, value in frozen.state_dict().items():  # parameters and every BN buffer, untouched
        assert torch.equal(value, before[key]), key
    assert seen and all(f == pytest.approx(kept_before) for f in seen), seen
    with torch.no_grad():
        assert _kept_fraction(frozen.anonymizer_outputs(video)) == pytest.approx(kept_before)
