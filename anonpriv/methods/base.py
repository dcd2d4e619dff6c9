"""The common base of every anonymization method: anonymizer, utility model, privacy model and the minimax step.

A method is a LightningModule composed of three plain ``nn.Module`` components (the names are those
of docs/glossary.md; formulas write them ``f_A``, ``f_T``, ``f_B``):

* ``anonymizer`` (``f_A``): raw clip (B, C, T, H, W) in [0, 1] -> anonymized clip, given by the
  subclass;
* ``utility`` (``f_T``, the utility model): action model trained on the anonymized clip, built by
  registered name;
* ``privacy_model`` (``f_B``): the method's own multi-label privacy model, trained adversarially on
  the anonymized clip, built by registered name. The evaluation protocol's attackers are not it.

Training is a sequence of :class:`Phase` s per batch, each with its own optimizer (manual
optimization). The default minimax has two:

1. ``anonymizer``: updates ``f_A`` and ``f_T`` on ``CE(f_T(f_A(x)), y)`` plus
   ``adversarial_weight`` times an adversarial privacy term through the frozen privacy model, plus
   any method-specific terms (:meth:`extra_anonymizer_losses`);
2. ``privacy_model``: updates the privacy model on ``BCE(f_B(f_A(x).detach()), privacy)``.

Subclasses change the minimax by overriding :meth:`phases` (e.g. SPAct adds a self-supervised
branch) and the anonymizer by overriding :meth:`anonymizer_outputs`; an anonymizer that reads more of
the batch than its clip (blackening: the synthetic renderer's person mask) overrides
:meth:`batch_anonymizer_outputs`, through which training, validation, test and predict anonymize.
Validation and test steps return what :class:`~anonpriv.metrics.PrivacyUtilityMetrics` reads.

Checkpoints written while the privacy model was called ``budget`` (state-dict keys ``budget.*``,
option ``budget_lr``) load under the names above (:mod:`anonpriv.methods.old_names`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable, Mapping
from typing import Literal

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from torch import nn

from anonpriv.methods.old_names import RENAMED_SUBMODULES, current_state_dict_keys
from anonpriv.models import create_privacy_model, create_utility_model

LossTerms = dict[str, torch.Tensor]


@dataclasses.dataclass
class Phase:
    """One optimisation step of the minimax.

    ``modules`` names the submodules whose parameters this phase's optimizer updates (every other
    parameter is frozen during it); ``loss(batch, state)`` returns named loss terms, summed for the
    backward pass and logged one by one. ``state`` is shared by the phases of one training step.
    """

    name: str
    modules: tuple[str, ...]
    loss: Callable[[Mapping, dict], LossTerms]
    lr: float | None = None


# The fix named by every "batch too small" error: the DataModule option and the batch size.
SMALL_BATCH_FIX = (
    "keep data.drop_last true (the default), which drops the incomplete last training batch, and make "
    "data.batch_size and the training set at least that large"
)


def small_batch_error(who: str, size: int, needed: int, reason: str) -> ValueError:
    """The one-line error for a training batch of ``size`` clips where ``needed`` are required."""
    return ValueError(f"{who} cannot train on a batch of {size} clip{'s' if size != 1 else ''}: {reason} "
                      f"(at least {needed} clips). Fix: {SMALL_BATCH_FIX}.")


def binary_entropy_from_logits(logits: torch.Tensor) -> torch.Tensor:
    """Mean binary entropy (nats) of independent Bernoulli predictions given by ``logits``."""
    p = torch.sigmoid(logits)
    return (F.softplus(logits) - p * logits).mean()


class AnonymizationMethod(pl.LightningModule):
    """Base class of anonymization methods; :class:`~anonpriv.baselines.raw.RawBaseline` is the simplest one.

    Args:
        anonymizer: the ``f_A`` module, supplied by the subclass (not a config value).
        num_actions, num_privacy: label-space sizes, linked from the DataModule by the CLI.
        action_names, privacy_names: label names, linked from the DataModule by the CLI.
        clip_shape: ``[T, H, W]`` of the training clips, linked from the DataModule by the CLI
            (methods with position embeddings size themselves from it).
        utility_model, utility_kwargs: registered action model (``anonpriv.models``) and its options.
        privacy_model, privacy_kwargs: registered name of the privacy model and its options.
        adversarial_loss: the privacy term the anonymizer phase adds: ``none``, ``entropy``
            (maximise the privacy model's uncertainty) or ``neg_bce`` (maximise its loss).
        adversarial_weight: weight of that term.
        optimizer: ``adamw``, ``adam`` or ``sgd`` (momentum 0.9).
        lr: learning rate of every phase unless a phase sets its own.
        privacy_lr: learning rate of the privacy-model phase (defaults to ``lr``).
        anonymizer_lr: learning rate of ``f_A``'s own parameters wherever a phase trains them
            (defaults to the phase's). A pretrained anonymizer (token pruning's backbone) is
            fine-tuned gently while the fresh ``f_T`` beside it learns at ``lr``.
        weight_decay: decoupled weight decay; never applied to biases and normalisation weights.
        warmup_epochs: linear warm-up length, then ``schedule`` (stepped every batch).
        schedule: ``cosine`` decay to zero at the end of training, or ``constant``.
        grad_clip: clip each phase's gradient norm to this value (``None``: no clipping).

    Attributes:
        min_train_batch_size: the fewest clips a training batch may hold (batch-level losses such
            as SPAct's NT-Xent raise it); a smaller batch is refused with an error naming the fix.
    """

    min_train_batch_size: int = 1

    #: Submodules a checkpoint written earlier names otherwise: old name -> name now (read on load).
    renamed_submodules: Mapping[str, str] = RENAMED_SUBMODULES

    def __init__(
        self,
        anonymizer: nn.Module,
        num_actions: int = 2,
        num_privacy: int = 1,
        action_names: list[str] | None = None,
        privacy_names: list[str] | None = None,
        clip_shape: list[int] | None = None,
        utility_model: str = "c3d_tiny",
        utility_kwargs: dict | None = None,
        privacy_model: str = "frame_cnn_tiny",
        privacy_kwargs: dict | None = None,
        adversarial_loss: Literal["none", "entropy", "neg_bce"] = "none",
        adversarial_weight: float = 0.0,
        optimizer: Literal["adamw", "adam", "sgd"] = "adamw",
        lr: float = 1e-3,
        privacy_lr: float | None = None,
        anonymizer_lr: float | None = None,
        weight_decay: float = 1e-4,
        warmup_epochs: float = 0.0,
        schedule: Literal["cosine", "constant"] = "cosine",
        grad_clip: float | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["anonymizer"])
        self.automatic_optimization = False
        self.register_load_state_dict_pre_hook(_read_renamed_submodules)
        if adversarial_loss not in ("none", "entropy", "neg_bce"):
            raise ValueError(f"adversarial_loss={adversarial_loss!r}: use 'none', 'entropy' or 'neg_bce'.")
        for name, value in (("lr", lr), ("privacy_lr", privacy_lr), ("anonymizer_lr", anonymizer_lr)):
            if value is not None and value <= 0:
                raise ValueError(f"{name}={value} must be positive.")
        self.num_actions = num_actions
        self.num_privacy = num_privacy
        self.action_names = list(action_names) if action_names else [f"action_{i}" for i in range(num_actions)]
        self.privacy_names = list(privacy_names) if privacy_names else [f"attribute_{i}" for i in range(num_privacy)]
        if len(self.action_names) != num_actions or len(self.privacy_names) != num_privacy:
            raise ValueError(
                f"{len(self.action_names)} action names for {num_actions} actions or "
                f"{len(self.privacy_names)} attribute names for {num_privacy} attributes"
            )
        if clip_shape is not None and (len(clip_shape) != 3 or min(clip_shape) < 1):
            raise ValueError(f"clip_shape={clip_shape} must be [T, H, W] with positive sizes.")
        self.clip_shape = list(clip_shape) if clip_shape is not None else None
        self.anonymizer = anonymizer
        self.utility = create_utility_model(utility_model, num_actions, utility_kwargs)
        self.privacy_model = create_privacy_model(privacy_model, num_privacy, privacy_kwargs)

    # -- the anonymizer -----------------------------------------------------------------------
    def anonymizer_outputs(self, video: torch.Tensor) -> dict[str, torch.Tensor]:
        """Run ``f_A``. The result holds at least ``video``, the anonymized clip the downstream
        models see; methods add whatever their losses or visualisations need."""
        return {"video": self.anonymizer(video)}

    def anonymize(self, video: torch.Tensor) -> torch.Tensor:
        """The anonymized clip for a raw clip (B, C, T, H, W) in [0, 1]."""
        return self.anonymizer_outputs(video)["video"]

    def batch_anonymizer_outputs(self, batch: Mapping) -> dict[str, torch.Tensor]:
        """``f_A`` on a whole batch: :meth:`anonymizer_outputs` of ``batch["video"]``. A method whose
        anonymizer also reads other keys of the batch overrides this (blackening reads the synthetic
        source's ``person_region``); training, evaluation, predict and the protocol go through it, while
        :meth:`anonymize` (a clip alone, as ``anonpriv anonymize`` has it) does without those keys."""
        return self.anonymizer_outputs(batch["video"])

    @property
    def training_progress(self) -> float:
        """Fraction of training done, in [0, 1] (0 outside ``fit``)."""
        trainer = self._trainer
        if trainer is None or not trainer.training:
            return 0.0
        total = trainer.estimated_stepping_batches
        if not total or math.isinf(total):
            return 0.0
        return min(1.0, self._train_step_count / float(total))

    # -- the minimax ----------------------------------------------------------------------------
    def phases(self) -> list[Phase]:
        """The optimisation phases of one training step, in order."""
        return [
            Phase("anonymizer", ("anonymizer", "utility"), self.anonymizer_losses),
            Phase("privacy_model", ("privacy_model",), self.privacy_model_losses, lr=self.hparams.privacy_lr),
        ]

    def anonymized(self, batch: Mapping, state: dict) -> dict[str, torch.Tensor]:
        """``f_A`` on the batch, computed once per training step and shared by the phases."""
        if "anonymized" not in state:
            state["anonymized"] = self.batch_anonymizer_outputs(batch)
        return state["anonymized"]

    def anonymizer_losses(self, batch: Mapping, state: dict) -> LossTerms:
        out = self.anonymized(batch, state)
        terms: LossTerms = {"action": F.cross_entropy(self.utility(out["video"]), batch["action"])}
        kind, weight = self.hparams.adversarial_loss, self.hparams.adversarial_weight
        if kind != "none" and weight > 0:
            privacy_logits = self.privacy_model(out["video"])
            if kind == "entropy":
                terms["privacy_adversarial"] = -weight * binary_entropy_from_logits(privacy_logits)
            else:
                terms["privacy_adversarial"] = -weight * F.binary_cross_entropy_with_logits(
                    privacy_logits, batch["privacy"].float()
                )
        terms.update(self.extra_anonymizer_losses(batch, out))
        return terms

    def extra_anonymizer_losses(self, batch: Mapping, out: dict[str, torch.Tensor]) -> LossTerms:
        """Method-specific terms added to the anonymizer phase (none by default)."""
        return {}

    def privacy_model_losses(self, batch: Mapping, state: dict) -> LossTerms:
        video = self.anonymized(batch, state)["video"].detach()
        return {"privacy": F.binary_cross_entropy_with_logits(self.privacy_model(video), batch["privacy"].float())}

    def _phase_parameters(self, phase: Phase) -> list[nn.Parameter]:
        params: dict[int, nn.Parameter] = {}
        for name in phase.modules:
            module = getattr(self, name)
            if isinstance(module, nn.Parameter):
                params[id(module)] = module
            else:
                params.update((id(p), p) for p in module.parameters() if p.requires_grad)
        return list(params.values())

    def _active_phases(self) -> list[Phase]:
        """The phases that have parameters to train (raw's identity anonymizer has none)."""
        if not hasattr(self, "_phase_cache"):
            self._phase_cache = [p for p in self.phases() if self._phase_parameters(p)]
        return self._phase_cache

    def _phase_loss(self, phase: Phase, batch: Mapping, state: dict) -> LossTerms:
        """``phase.loss``, with BatchNorm's failure on a batch of one turned into an error naming the fix."""
        try:
            return phase.loss(batch, state)
        except ValueError as error:
            if "more than 1 value per channel" not in str(error):
                raise
            raise small_batch_error(
                type(self).__name__, len(batch["action"]), 2,
                f"a BatchNorm layer of its {phase.name} phase has a single value per channel in training mode",
            ) from error

    def training_step(self, batch: Mapping, batch_idx: int) -> None:
        size = len(batch["action"])
        if size < self.min_train_batch_size:
            raise small_batch_error(type(self).__name__, size, self.min_train_batch_size,
                                    "its training losses compare the clips of a batch with each other")
        optimizers = self.optimizers()
        optimizers = optimizers if isinstance(optimizers, list) else [optimizers]
        state: dict = {}
        logs = {}
        for phase, opt in zip(self._active_phases(), optimizers):
            self.toggle_optimizer(opt)
            terms = self._phase_loss(phase, batch, state)
            loss = torch.stack(list(terms.values())).sum()
            opt.zero_grad(set_to_none=True)
            self.manual_backward(loss)
            if self.hparams.grad_clip:
                self.clip_gradients(opt, gradient_clip_val=self.hparams.grad_clip, gradient_clip_algorithm="norm")
            opt.step()
            self.untoggle_optimizer(opt)
            logs[f"train/{phase.name}_loss"] = loss.detach()
            logs.update({f"train/{phase.name}/{k}": v.detach() for k, v in terms.items()})
        schedulers = self.lr_schedulers()
        for scheduler in schedulers if isinstance(schedulers, list) else [schedulers]:
            if scheduler is not None:
                scheduler.step()
        self._train_step_count += 1
        self.log_dict(logs, prog_bar=False, on_step=True, on_epoch=True, batch_size=len(batch["action"]))
        self.log("loss", logs[f"train/{self._active_phases()[0].name}_loss"], prog_bar=True, on_step=True,
                 on_epoch=False, batch_size=len(batch["action"]))

    def on_fit_start(self) -> None:
        self._train_step_count = self.trainer.global_step // max(1, len(self._active_phases()))

    _train_step_count = 0

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["anonpriv_method"] = f"{type(self).__module__}.{type(self).__qualname__}"

    # -- evaluation -----------------------------------------------------------------------------
    def evaluation_outputs(self, batch: Mapping) -> dict[str, torch.Tensor]:
        """What the metrics callback reads: utility and privacy model logits on the anonymized clip."""
        anonymized = self.batch_anonymizer_outputs(batch)["video"]
        return {"action_logits": self.utility(anonymized), "privacy_logits": self.privacy_model(anonymized)}

    def _evaluation_step(self, batch: Mapping, stage: str) -> dict[str, torch.Tensor]:
        outputs = self.evaluation_outputs(batch)
        self.log(f"{stage}/action_loss", F.cross_entropy(outputs["action_logits"], batch["action"]),
                 batch_size=len(batch["action"]))
        return outputs

    def validation_step(self, batch: Mapping, batch_idx: int) -> dict[str, torch.Tensor]:
        return self._evaluation_step(batch, "val")

    def test_step(self, batch: Mapping, batch_idx: int) -> dict[str, torch.Tensor]:
        return self._evaluation_step(batch, "test")

    def predict_step(self, batch: Mapping, batch_idx: int) -> dict:
        return {"id": batch["id"], "video": self.batch_anonymizer_outputs(batch)["video"]}

    # -- optimisation ---------------------------------------------------------------------------
    def _param_groups(self, params: Iterable[nn.Parameter]) -> list[dict]:
        decay, no_decay = [], []
        for p in params:
            (no_decay if p.ndim <= 1 else decay).append(p)  # biases, norms, scalars: no decay
        groups = [{"params": decay, "weight_decay": self.hparams.weight_decay}]
        if no_decay:
            groups.append({"params": no_decay, "weight_decay": 0.0})
        return groups

    def _make_optimizer(self, params: list[nn.Parameter], lr: float) -> torch.optim.Optimizer:
        own_lr = self.hparams.get("anonymizer_lr")
        if own_lr is None:
            groups = self._param_groups(params)
        else:  # f_A's parameters at their own rate, the rest of the phase at lr
            mine = {id(p) for p in self.anonymizer.parameters()}
            groups = [dict(g, lr=own_lr) for g in self._param_groups([p for p in params if id(p) in mine])]
            groups += self._param_groups([p for p in params if id(p) not in mine])
            groups = [g for g in groups if g["params"]]
        name = self.hparams.optimizer
        if name == "adamw":
            return torch.optim.AdamW(groups, lr=lr)
        if name == "adam":
            return torch.optim.Adam(groups, lr=lr)
        if name == "sgd":
            return torch.optim.SGD(groups, lr=lr, momentum=0.9)
        raise ValueError(f"optimizer={name!r}: use 'adamw', 'adam' or 'sgd'.")

    def _lr_factor(self, step: int) -> float:
        trainer = self.trainer
        total = trainer.estimated_stepping_batches if trainer is not None else 0
        if not total or math.isinf(total):
            return 1.0
        steps_per_epoch = total / max(1, trainer.max_epochs or 1)
        warmup = self.hparams.warmup_epochs * steps_per_epoch
        if warmup > 0 and step < warmup:
            return (step + 1) / warmup
        if self.hparams.schedule == "constant":
            return 1.0
        progress = min(1.0, (step - warmup) / max(1.0, total - warmup))
        return 0.5 * (1.0 + math.cos(math.pi * progress))

    def configure_optimizers(self):
        optimizers, schedulers = [], []
        for phase in self._active_phases():
            opt = self._make_optimizer(self._phase_parameters(phase), phase.lr or self.hparams.lr)
            optimizers.append(opt)
            schedulers.append(torch.optim.lr_scheduler.LambdaLR(opt, self._lr_factor))
        if not optimizers:
            raise RuntimeError(f"{type(self).__name__} has no trainable parameters in any phase.")
        return optimizers, schedulers


def _read_renamed_submodules(method: AnonymizationMethod, state_dict: dict, prefix: str, *args) -> None:
    """Load pre-hook of every method: entries of a checkpoint written under an old submodule name
    (``budget.*``) are read as the submodule's name now (:mod:`anonpriv.methods.old_names`)."""
    current_state_dict_keys(state_dict, prefix, method.renamed_submodules)
