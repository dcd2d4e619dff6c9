"""Checkpoints written while the privacy model was called ``budget`` load under the names now
(:mod:`anonpriv.methods.old_names`): weights under ``budget.*`` and the option ``budget_lr``.

A tiny old-style checkpoint is made from a freshly built method (no training) by writing its
``privacy_model.*`` weights under ``budget.*`` and its ``privacy_lr`` as ``budget_lr``, then read
back by every loader: the registry's, the evaluation protocol's (which nests the method) and
Lightning's own ``ckpt_path``.
"""

from __future__ import annotations

import lightning.pytorch as pl
import pytest
import torch

from anonpriv.data import SyntheticSource, VideoPrivacyDataModule
from anonpriv.evaluation import ProtocolEvaluation
from anonpriv.methods.registry import MethodAnonymizer, build_method, load_checkpoint_anonymizer, load_method
from anonpriv.methods.old_names import RENAMED_OPTIONS, RENAMED_SUBMODULES, current_options, current_state_dict_keys

LABELS = {"num_actions": 3, "num_privacy": 2, "clip_shape": [8, 32, 32]}


def _old_names(state_dict: dict, renamed: dict[str, str]) -> dict:
    """``state_dict`` with each submodule's entries under the old name ``renamed`` maps to it."""
    old = {new: old for old, new in renamed.items()}

    def key(name: str) -> str:
        head, _, rest = name.partition(".")
        return f"{old[head]}.{rest}" if head in old else name

    return {key(name): value for name, value in state_dict.items()}


def write_old_checkpoint(path, name: str = "bdq", privacy_lr: float = 0.002, labels: dict = LABELS) -> torch.nn.Module:
    """A checkpoint of ``name`` as the code wrote it before the rename; returns the method written."""
    torch.manual_seed(0)
    method = build_method(name, privacy_lr=privacy_lr, **labels)
    with torch.no_grad():
        for parameter in method.parameters():  # weights unlike a fresh build's, so loading them shows
            parameter.add_(0.01)
    hyper_parameters = {("budget_lr" if k == "privacy_lr" else k): v for k, v in method.hparams.items()}
    torch.save({"state_dict": _old_names(method.state_dict(), {"budget": "privacy_model"}),
                "hyper_parameters": hyper_parameters,
                "anonpriv_method": f"{type(method).__module__}.{type(method).__qualname__}",
                "pytorch-lightning_version": pl.__version__}, path)
    return method.eval()


def _assert_same_state(loaded: torch.nn.Module, written: torch.nn.Module) -> None:
    assert list(loaded.state_dict()) == list(written.state_dict())
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in written.state_dict().items())


def test_the_renames_are_the_budget_ones():
    assert RENAMED_OPTIONS == {"budget_lr": "privacy_lr"}
    assert RENAMED_SUBMODULES == {"budget": "privacy_model"}
    assert build_method("raw", **LABELS).privacy_model is not None
    assert not any(key.startswith("budget.") for key in build_method("bdq", **LABELS).state_dict())


def test_current_options_renames_in_order_and_refuses_both_names():
    assert list(current_options({"lr": 1.0, "budget_lr": 2.0, "weight_decay": 0.0})) == [
        "lr", "privacy_lr", "weight_decay"]
    assert current_options({"lr": 1.0, "budget_lr": 2.0})["privacy_lr"] == 2.0
    assert current_options({"privacy_lr": 3.0}) == {"privacy_lr": 3.0}
    with pytest.raises(ValueError, match="budget_lr"):
        current_options({"budget_lr": 1.0, "privacy_lr": 1.0})


def test_current_state_dict_keys_renames_under_the_prefix_only():
    state = {"anonymizer.w": 0, "budget.a.w": 1, "budget.b": 2, "budgetary.w": 3, "x.budget.w": 4}
    current_state_dict_keys(state)
    assert list(state.items()) == [("anonymizer.w", 0), ("privacy_model.a.w", 1), ("privacy_model.b", 2),
                                   ("budgetary.w", 3), ("x.budget.w", 4)]
    nested = {"budget.w": 0, "anonymizer.method.budget.w": 1}
    current_state_dict_keys(nested, "anonymizer.method.")
    assert nested == {"budget.w": 0, "anonymizer.method.privacy_model.w": 1}
    current = {"privacy_model.w": 0}
    current_state_dict_keys(current)
    assert current == {"privacy_model.w": 0}
    with pytest.raises(ValueError, match="privacy_model.w"):
        current_state_dict_keys({"budget.w": 0, "privacy_model.w": 1})


def test_an_old_checkpoint_loads_with_the_registry(tmp_path):
    path = tmp_path / "old.ckpt"
    written = write_old_checkpoint(path)
    method = load_method(path)
    _assert_same_state(method, written)
    assert method.hparams.privacy_lr == 0.002 and "budget_lr" not in method.hparams
    assert [phase.lr for phase in method.phases() if phase.name == "privacy_model"] == [0.002]

    anonymizer = load_checkpoint_anonymizer(path)  # torch alone; the old option is not refused
    assert isinstance(anonymizer, MethodAnonymizer)
    video = torch.rand(2, 3, *LABELS["clip_shape"], generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(anonymizer.anonymize(video), written.anonymize(video), rtol=0, atol=0)


def test_an_old_checkpoint_loads_into_the_protocol_and_an_old_protocol_state_loads(tmp_path):
    path = tmp_path / "old.ckpt"
    written = write_old_checkpoint(path)
    protocol = ProtocolEvaluation(anonymizer=str(path), attackers=["frame_cnn_tiny"], **LABELS)
    _assert_same_state(protocol.anonymizer.method, written)

    # The protocol's own state as it was written: its attacker panel under ``budget.*`` and the
    # frozen method's privacy model under ``anonymizer.method.budget.*``.
    with torch.no_grad():
        for parameter in protocol.attackers.parameters():
            parameter.add_(0.01)
    old_state = {key.replace("anonymizer.method.privacy_model.", "anonymizer.method.budget."): value
                 for key, value in _old_names(protocol.state_dict(), {"budget": "attackers"}).items()}
    assert any(k.startswith("budget.models.") for k in old_state)
    assert any(k.startswith("anonymizer.method.budget.") for k in old_state)
    torch.manual_seed(1)
    fresh = ProtocolEvaluation(anonymizer=str(path), attackers=["frame_cnn_tiny"], **LABELS)
    fresh.load_state_dict(old_state)
    _assert_same_state(fresh, protocol)
    assert any(k.startswith("budget.") for k in old_state)  # the caller's dict is left as it was


def test_an_old_checkpoint_loads_through_lightning_ckpt_path(tmp_path):
    source = SyntheticSource(num_frames=8, height=32, width=32, num_train=4, num_val=4, num_test=4, seed=5)
    dm = VideoPrivacyDataModule(source, batch_size=4)
    labels = {"num_actions": dm.num_actions, "num_privacy": dm.num_privacy, "clip_shape": dm.clip_shape}
    path = tmp_path / "old.ckpt"
    written = write_old_checkpoint(path, "raw", labels=labels)
    torch.manual_seed(1)
    method = build_method("raw", **labels)
    assert not torch.equal(next(method.privacy_model.parameters()), next(written.privacy_model.parameters()))
    trainer = pl.Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, accelerator="cpu")
    trainer.test(method, dm, ckpt_path=str(path), verbose=False)
    _assert_same_state(method, written)
