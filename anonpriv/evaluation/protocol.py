"""The honest evaluation protocol (DESIGN.md section 2) as a method on the common base.

The adversarially trained budget model of a method has been fooled on purpose, so its score says
nothing. :class:`ProtocolEvaluation` instead

1. takes a trained anonymizer (a checkpoint from ``anonpriv fit``) or a training-free one (``raw``,
   ``blur``, ``downsample`` by name; a learnable method by name is refused, since it would be
   evaluated untrained) and freezes it;
2. trains a **fresh** action model on its output (``utility_model``), reporting top-1;
3. trains a **panel of fresh privacy attackers** of different architectures (``attackers``) on its
   output, reporting each one's cMAP / F1 and the worst case: the shared metrics callback reports
   the cMAP and F1 of the highest-cMAP attacker as ``cmap`` / ``f1`` (``worst_attacker``).

It runs through the same CLI, DataModule and callback as every method::

    anonpriv fit  --config configs/evaluate.yaml --model.init_args.anonymizer runs/bdq/version_0/checkpoints/last.ckpt
    anonpriv test --config configs/evaluate.yaml --model.init_args.anonymizer ... --ckpt_path last

For the "novel" protocol, point the DataModule at other actions and attributes (``data.actions``,
``data.attributes``) than the anonymizer was trained on.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from anonpriv.methods.base import AnonymizationMethod, LossTerms, Phase
from anonpriv.methods.registry import METHODS, build_method, load_method
from anonpriv.models import create_privacy_model

DEFAULT_ATTACKERS = ("frame_cnn_tiny", "resnet18", "vit_micro")


class FrozenAnonymizer(nn.Module):
    """A method's ``anonymize`` with every parameter frozen and the method kept in eval mode."""

    def __init__(self, method: AnonymizationMethod) -> None:
        super().__init__()
        self.method = method
        self.method.requires_grad_(False)
        self.method.eval()

    def train(self, mode: bool = True) -> FrozenAnonymizer:
        super().train(mode)
        self.method.eval()  # BatchNorm statistics and keep-ratio schedules stay as trained
        return self

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.method.anonymize(video)


class AttackerPanel(nn.Module):
    """Several privacy models trained side by side; returns ``{name: logits}``."""

    def __init__(self, names: list[str], num_attributes: int, kwargs: Mapping[str, dict] | None = None) -> None:
        super().__init__()
        if not names:
            raise ValueError("attackers=[]: the protocol needs at least one privacy attacker.")
        if len(set(names)) != len(names):
            raise ValueError(f"attackers {names} lists a model twice.")
        kwargs = dict(kwargs or {})
        unused = sorted(set(kwargs) - set(names))
        if unused:  # e.g. a config's options for an attacker that the command line took out of the panel
            warnings.warn(f"attacker_kwargs for {unused} are not used: those models are not in attackers {names}.")
        self.models = nn.ModuleDict({n: create_privacy_model(n, num_attributes, kwargs.get(n)) for n in names})

    def forward(self, video: torch.Tensor) -> dict[str, torch.Tensor]:
        return {name: model(video) for name, model in self.models.items()}


def trainable_parameter_count(method: AnonymizationMethod) -> int:
    """How many trainable numbers the method's anonymizer ``f_A`` holds (0: training-free)."""
    return sum(p.numel() for p in method.anonymizer.parameters() if p.requires_grad)


def resolve_anonymizer(source: str, kwargs: dict | None, **label_space) -> AnonymizationMethod:
    """A trained method from a checkpoint path, or a fresh training-free one by registered name.

    A method given by name is built fresh, so one whose anonymizer has trainable parameters (BDQ,
    SPAct, token pruning) would be evaluated untrained: it is refused, with the fix. Whether a
    method is training-free is read off the built anonymizer, not from a list of names.
    """
    if source in METHODS:
        method = build_method(source, **label_space, **(kwargs or {}))
        trainable = trainable_parameter_count(method)
        if trainable:
            raise ValueError(
                f"anonymizer={source!r} is a learnable method (its anonymizer has {trainable} trainable parameters) "
                f"and by name would be evaluated untrained: train it with `anonpriv fit --config configs/{source}.yaml` "
                "and pass its checkpoint, e.g. --model.init_args.anonymizer <run>/checkpoints/last.ckpt."
            )
        return method
    path = Path(source)
    if path.suffix == ".ckpt" or path.exists():
        if kwargs:
            raise ValueError("anonymizer_kwargs apply to a method built by name, not to a checkpoint.")
        return load_method(path)
    raise ValueError(
        f"anonymizer={source!r} is neither a registered method {sorted(METHODS)} nor a checkpoint file: "
        "pass the path of a .ckpt from `anonpriv fit`, or a training-free method name such as 'raw'."
    )


class ProtocolEvaluation(AnonymizationMethod):
    """Fresh action model + fresh attacker panel trained on a frozen anonymizer's output.

    Args:
        anonymizer: checkpoint path of a trained method, or a registered method name for a
            training-free one (``raw``, ``blur``, ``downsample``: any whose anonymizer has no
            trainable parameters). A learnable method by name is refused (it would be untrained).
        anonymizer_kwargs: options of a method built by name (e.g. ``{"sigma": 2.0}`` for blur).
        attackers: registered privacy models trained fresh, each on its own (at least three
            different architectures for the worst case).
        attacker_kwargs: options per attacker name.
        utility_model, utility_kwargs: the fresh action model.
        Everything else as :class:`~anonpriv.methods.AnonymizationMethod` (optimizer, lr, ...);
        its ``privacy_model`` and ``adversarial_*`` options play no part here (the attackers do).
    """

    def __init__(
        self,
        anonymizer: str = "raw",
        anonymizer_kwargs: dict | None = None,
        attackers: list[str] = DEFAULT_ATTACKERS,
        attacker_kwargs: dict[str, dict] | None = None,
        num_actions: int = 2,
        num_privacy: int = 1,
        clip_shape: list[int] | None = None,
        **kwargs,
    ) -> None:
        label_space = dict(num_actions=num_actions, num_privacy=num_privacy, clip_shape=clip_shape)
        method = resolve_anonymizer(anonymizer, anonymizer_kwargs, **label_space)
        super().__init__(anonymizer=FrozenAnonymizer(method), **label_space, **kwargs)
        self.budget = AttackerPanel(list(attackers), num_privacy, attacker_kwargs)
        self.evaluated_method = type(method).__name__

    def phases(self) -> list[Phase]:
        return [Phase("fresh_models", ("utility", "budget"), self.fresh_model_losses)]

    def fresh_model_losses(self, batch: Mapping, state: dict) -> LossTerms:
        video = self.anonymized(batch, state)["video"]
        terms: LossTerms = {"action": F.cross_entropy(self.utility(video), batch["action"])}
        target = batch["privacy"].float()
        for name, logits in self.budget(video).items():
            terms[f"privacy_{name}"] = F.binary_cross_entropy_with_logits(logits, target)
        return terms
