"""The honest evaluation protocol (docs/protocol.md#why-fresh-models) as a method on the common base.

The privacy model a method trained adversarially has been fooled on purpose, so its score says
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

With ``face_rate: true`` (off by default; needs the optional extra ``pip install 'anonpriv[faces]'``)
the test also runs a pretrained face detector (CenterFace, :mod:`anonpriv.faces`), an attacker nobody
tuned against, on every test clip as the DataModule serves it (its own resolution, never resized for
the detector) and on the frozen anonymizer's output for it, and ``results.json`` gains

* ``face_rate``: the share of the anonymized test frames in which it finds a face, and
  ``face_rate_raw``: the same on the raw clips (the reference: how many faces there were to hide);
* ``face_rates``: for both, the counts, the share of frames (``frame_rate``), the share of videos with
  a face in at least one frame (``video_rate``) and the mean over videos of each one's share of
  frames (``mean_video_rate``); the clips of one video count as one video.

Run it on data whose faces a detector can find: ``configs/evaluate.yaml`` with
``--data configs/data/synthetic_faces.yaml --model.init_args.face_rate true`` (``anonpriv sweep --config
configs/sweep/faces.yaml`` runs every method that way); on the 64-px default no detector fires on raw clips either.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from anonpriv.evaluation.clip_check import check_accepts_clips
from anonpriv.faces import DEFAULT_THRESHOLD as FACE_RATE_THRESHOLD  # imports nothing of the optional extra
from anonpriv.methods.base import AnonymizationMethod, LossTerms, Phase
from anonpriv.methods.catalog import CATALOG
from anonpriv.methods.registry import build_method, load_method
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

    def anonymize_batch(self, batch: Mapping) -> torch.Tensor:
        """The anonymized clips of a batch, with whatever else of the batch the method reads (the
        synthetic person mask for blackening: ``batch_anonymizer_outputs``)."""
        with torch.no_grad():
            return self.method.batch_anonymizer_outputs(batch)["video"]


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
    if source in CATALOG:
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
        f"anonymizer={source!r} is neither a registered method {sorted(CATALOG)} nor a checkpoint file: "
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
        face_rate: on test, also measure how often a pretrained face detector finds a face in the raw
            and in the anonymized clips (``face_rate`` / ``face_rate_raw`` in ``results.json``; see
            the module's docstring). Needs the optional extra ``faces``; without it, building the
            protocol with ``face_rate=True`` raises a one-line error naming ``pip install 'anonpriv[faces]'``.
        face_threshold: the detector's heat for a face (0.5, the face-rate metric's default).
        Everything else as :class:`~anonpriv.methods.AnonymizationMethod` (optimizer, lr, ...);
        its ``privacy_model``, ``privacy_lr`` and ``adversarial_*`` options play no part here (the
        attackers do).

    Attributes:
        attackers: the :class:`AttackerPanel`, in place of the base's privacy model.
    """

    #: Checkpoints written when the attacker panel was called ``budget`` load under its name now.
    renamed_submodules: Mapping[str, str] = {"budget": "attackers"}

    def __init__(
        self,
        anonymizer: str = "raw",
        anonymizer_kwargs: dict | None = None,
        attackers: list[str] = DEFAULT_ATTACKERS,
        attacker_kwargs: dict[str, dict] | None = None,
        num_actions: int = 2,
        num_privacy: int = 1,
        clip_shape: list[int] | None = None,
        face_rate: bool = False,
        face_threshold: float = FACE_RATE_THRESHOLD,
        **kwargs,
    ) -> None:
        if face_rate:
            if not 0.0 < face_threshold < 1.0:
                raise ValueError(f"face_threshold={face_threshold} must lie strictly between 0 and 1 "
                                 "(the detector's heat).")
            from anonpriv.faces import require_faces

            require_faces()  # before anything is built: the one-line error naming the extra
        label_space = dict(num_actions=num_actions, num_privacy=num_privacy, clip_shape=clip_shape)
        method = resolve_anonymizer(anonymizer, anonymizer_kwargs, **label_space)
        if anonymizer not in CATALOG:  # a checkpoint: it may come from clips of another size (cross-dataset)
            check_accepts_clips(method, clip_shape, repr(anonymizer))
        super().__init__(anonymizer=FrozenAnonymizer(method), **label_space, **kwargs)
        # The attackers take the place of the base's privacy model, which the base has built: its
        # initial weights come from the random stream before the attackers' do, and the committed
        # results' seeds rely on that order.
        del self.privacy_model
        self.attackers = AttackerPanel(list(attackers), num_privacy, attacker_kwargs)
        self.evaluated_method = type(method).__name__
        self.face_rate = bool(face_rate)
        self.face_threshold = float(face_threshold)
        self._face_counts = FaceCounts()

    def phases(self) -> list[Phase]:
        return [Phase("fresh_models", ("utility", "attackers"), self.fresh_model_losses)]

    def batch_anonymizer_outputs(self, batch: Mapping) -> dict[str, torch.Tensor]:
        return {"video": self.anonymizer.anonymize_batch(batch)}

    def fresh_model_losses(self, batch: Mapping, state: dict) -> LossTerms:
        video = self.anonymized(batch, state)["video"]
        terms: LossTerms = {"action": F.cross_entropy(self.utility(video), batch["action"])}
        target = batch["privacy"].float()
        for name, logits in self.attackers(video).items():
            terms[f"privacy_{name}"] = F.binary_cross_entropy_with_logits(logits, target)
        return terms

    def evaluation_outputs(self, batch: Mapping) -> dict[str, torch.Tensor]:
        """What the metrics callback reads: the fresh action model's logits and each attacker's."""
        anonymized = self.batch_anonymizer_outputs(batch)["video"]
        return {"action_logits": self.utility(anonymized), "privacy_logits": self.attackers(anonymized)}

    # -- face rate (on test, with face_rate=True) ---------------------------------------------------
    def on_test_epoch_start(self) -> None:
        self._face_counts = FaceCounts()

    def test_step(self, batch: Mapping, batch_idx: int, dataloader_idx: int = 0) -> dict[str, torch.Tensor]:
        if not self.face_rate:
            return super().test_step(batch, batch_idx)
        raw = batch["video"]
        anonymized = self.batch_anonymizer_outputs(batch)["video"]
        outputs = {"action_logits": self.utility(anonymized), "privacy_logits": self.attackers(anonymized)}
        self.log("test/action_loss", F.cross_entropy(outputs["action_logits"], batch["action"]),
                 batch_size=len(batch["action"]))
        from anonpriv.metrics.face_rate import face_flags

        self._face_counts.add(batch["id"], face_flags(raw, self.face_threshold),
                              face_flags(anonymized, self.face_threshold), dataloader_idx)
        return outputs

    def extra_test_results(self) -> dict:
        """What the metrics callback adds to the test results (``results.json``): with ``face_rate``
        on, ``face_rate`` / ``face_rate_raw`` (shares of frames with a face, anonymized and raw) and
        their details under ``face_rates``; nothing otherwise.

        Called by :class:`~anonpriv.metrics.PrivacyUtilityMetrics` at the end of the test epoch on
        every process. Under DDP each rank holds the counts of its own clips: they are gathered here
        (``all_gather_object``, a collective every rank joins), the clips ``DistributedSampler``
        repeats to even out the ranks are dropped by their dataset index (as the callback drops
        them), and the per-video counts are summed, so N processes report what one process reports.
        """
        if not self.face_rate:
            return {}
        rows = self._face_counts.gathered(self._trainer)
        if not rows:
            return {}
        raw, anonymized = face_rates_per_video(rows, self.face_threshold)

        def summary(rate) -> dict:
            details = rate.as_dict()
            details.pop("per_video")  # hundreds of ids; the shares and counts are what the tables read
            return details

        return {"face_rate": anonymized.frame_rate, "face_rate_raw": raw.frame_rate,
                "face_rates": {"anonymized": summary(anonymized), "raw": summary(raw)}}


class FaceCounts:
    """Per-clip face counts of the test clips one process saw: video id, frames with a face in the
    raw and in the anonymized clip and their frame counts, and ``(dataloader_idx, clips)`` per batch
    (to find each clip's dataset index under DDP)."""

    def __init__(self) -> None:
        self.ids: list[str] = []
        self.counts: list[tuple[int, int, int, int]] = []  # raw hits, raw frames, anonymized hits, frames
        self.batches: list[tuple[int, int]] = []

    def add(self, ids: Sequence, raw_flags: torch.Tensor, anonymized_flags: torch.Tensor,
            dataloader_idx: int = 0) -> None:
        if not len(ids) == len(raw_flags) == len(anonymized_flags):
            raise ValueError(f"{len(ids)} ids for {len(raw_flags)} raw and {len(anonymized_flags)} anonymized clips")
        self.ids.extend(str(i) for i in ids)
        for raw, anonymized in zip(raw_flags, anonymized_flags):
            self.counts.append((int(raw.sum()), int(raw.numel()), int(anonymized.sum()), int(anonymized.numel())))
        self.batches.append((dataloader_idx, len(ids)))

    def gathered(self, trainer) -> list[tuple[str, tuple[int, int, int, int]]]:
        """``(video id, counts)`` of every clip of every process, each clip once (this process's own
        in a single process)."""
        if trainer is None or trainer.world_size <= 1 or not (
                torch.distributed.is_available() and torch.distributed.is_initialized()):
            return list(zip(self.ids, self.counts))
        from anonpriv.metrics.callback import _sample_keys  # the callback's own clip -> dataset index matching

        payload = {"keys": _sample_keys(trainer, "test", self), "ids": self.ids, "counts": self.counts}
        parts: list = [None] * torch.distributed.get_world_size()
        torch.distributed.all_gather_object(parts, payload)
        return merge_face_counts(parts)


def merge_face_counts(parts: Sequence[Mapping]) -> list[tuple[str, tuple[int, int, int, int]]]:
    """Every rank's ``{"keys", "ids", "counts"}`` as one list of clips: with dataset keys on every
    rank, a clip seen twice (DistributedSampler's padding) is kept once, in dataset order; without
    them every clip is kept, with a warning (the few padded clips then count twice)."""
    parts = [p for p in parts if p["ids"]]
    rows = [(part, i) for part in parts for i in range(len(part["ids"]))]
    if rows and all(part["keys"] is not None for part in parts):
        chosen: dict[tuple, tuple] = {}
        for part, i in rows:
            chosen.setdefault(tuple(part["keys"][i]), (part, i))
        rows = [chosen[key] for key in sorted(chosen)]
    elif rows:
        warnings.warn("ProtocolEvaluation face rate: the test sampler's indices could not be matched to the clips, so "
                      "the clips DistributedSampler repeats to even out the ranks are counted twice.", stacklevel=2)
    return [(part["ids"][i], tuple(part["counts"][i])) for part, i in rows]


def face_rates_per_video(rows: Sequence[tuple[str, Sequence[int]]], threshold: float):
    """``(raw, anonymized)`` :class:`~anonpriv.metrics.face_rate.FaceRate` s of per-clip counts
    ``(video id, (raw hits, raw frames, anonymized hits, anonymized frames))``; a video's clips are
    summed."""
    from anonpriv.metrics.face_rate import FaceRate

    per_video: dict[str, list[int]] = {}
    for video, counts in rows:
        total = per_video.setdefault(video, [0, 0, 0, 0])
        for k, value in enumerate(counts):
            total[k] += int(value)
    raw = FaceRate(threshold, {v: (c[0], c[1]) for v, c in per_video.items()})
    anonymized = FaceRate(threshold, {v: (c[2], c[3]) for v, c in per_video.items()})
    return raw, anonymized
