"""One metrics Callback for every method: top-1, cMAP, F1 on val and test, results file on test.

A method's ``validation_step`` / ``test_step`` returns a mapping with

* ``action_logits`` (B, K): the utility model's output on the anonymized clip, and
* ``privacy_logits`` (B, P), a method's own privacy model's (reported as ``privacy_model``), or a
  mapping ``{attacker_name: (B, P)}`` for a panel of attackers.

The callback reads labels and ids from the batch, averages probabilities over the clips of one
video, and logs ``{stage}/top1``, ``{stage}/cmap`` and ``{stage}/f1`` (fractions in [0, 1]). With a
panel it also logs ``{stage}/cmap/<attacker>`` and ``{stage}/f1/<attacker>``, and the headline
``cmap`` / ``f1`` are both those of one attacker, the one with the *highest* cMAP (the worst case
for the anonymizer), named ``worst_attacker``. On test it writes ``results.json`` and
``results.csv`` (one row per attacker, the worst one marked); ``results.json`` also holds each
attribute's ``positive_rate`` among the evaluated videos.

Multi-GPU / multi-node (Lightning DDP): cMAP and per-video averaging do not decompose over shards,
so at the end of an epoch every rank's predictions, labels and video ids are gathered
(``all_gather_object``) and the metrics are computed on the whole set, identically on every rank;
the clips ``DistributedSampler`` repeats to give every rank as many batches are dropped (each
collected clip is matched to its dataset index through the rank's sampler), and the merged set is
put back in dataset order, so N processes give what one process gives. Only global rank 0 writes
the results files.

Method-provided results: a LightningModule may define ``extra_test_results() -> dict``; at the end of
the test epoch the callback calls it on every process (so it may run collectives: under DDP the
method gathers its own numbers there, as :class:`~anonpriv.evaluation.ProtocolEvaluation` does for
its face rate) and merges what it returns into the test results (``results.json``, and
:attr:`PrivacyUtilityMetrics.last_results`); its numeric top-level entries are also logged as
``test/<key>``. The values must be JSON-serialisable and must not reuse the callback's own keys.
"""

from __future__ import annotations

import csv
import json
import math
import warnings
from collections.abc import Mapping
from pathlib import Path

import lightning.pytorch as pl
import torch

from anonpriv.metrics.functional import action_top1, average_by_video, positive_rates, privacy_scores


class _Buffer:
    def __init__(self) -> None:
        self.ids: list[str] = []
        self.action_probs: list[torch.Tensor] = []
        self.privacy_probs: dict[str, list[torch.Tensor]] = {}
        self.actions: list[torch.Tensor] = []
        self.privacy: list[torch.Tensor] = []
        self.batches: list[tuple[int, int]] = []  # (dataloader_idx, clips) of each collected batch, in order
        self.gathered = False


class PrivacyUtilityMetrics(pl.Callback):
    """Computes and logs the protocol's metrics for whichever method is being run.

    Args:
        results_dir: where ``results.json`` / ``results.csv`` go on test; defaults to the
            logger's run folder (``trainer.log_dir``). Without either, nothing is written and the
            results stay in :attr:`last_results`.
        threshold: probability above which an attribute counts as predicted (F1).
    """

    def __init__(self, results_dir: str | None = None, threshold: float = 0.5) -> None:
        super().__init__()
        if not 0.0 < threshold < 1.0:
            raise ValueError(f"threshold={threshold} must lie strictly between 0 and 1.")
        self.results_dir = results_dir
        self.threshold = threshold
        self._buffers: dict[str, _Buffer] = {}
        self.last_results: dict[str, dict] = {}

    # -- collection -------------------------------------------------------------------------
    def _reset(self, stage: str) -> None:
        self._buffers[stage] = _Buffer()

    def _collect(self, stage: str, outputs, batch: Mapping, dataloader_idx: int = 0) -> None:
        if not isinstance(outputs, Mapping) or "action_logits" not in outputs or "privacy_logits" not in outputs:
            raise TypeError(
                f"{stage}_step must return a dict with 'action_logits' and 'privacy_logits' for "
                "PrivacyUtilityMetrics; got "
                f"{type(outputs).__name__ if not isinstance(outputs, Mapping) else sorted(outputs)}."
            )
        buf = self._buffers.setdefault(stage, _Buffer())
        buf.ids.extend(str(i) for i in batch["id"])
        buf.action_probs.append(outputs["action_logits"].detach().float().softmax(-1).cpu())
        privacy = outputs["privacy_logits"]
        panel = privacy if isinstance(privacy, Mapping) else {"privacy_model": privacy}
        for name, logits in panel.items():
            buf.privacy_probs.setdefault(name, []).append(logits.detach().float().sigmoid().cpu())
        buf.actions.append(batch["action"].detach().cpu())
        buf.privacy.append(batch["privacy"].detach().float().cpu())
        buf.batches.append((dataloader_idx, len(batch["id"])))

    # -- multi-process (DDP) ------------------------------------------------------------------
    def _gather(self, trainer: pl.Trainer, stage: str) -> None:
        """Replace this rank's buffer by every rank's clips, padding duplicates dropped, in dataset
        order. A no-op in a single process."""
        if trainer is None or trainer.world_size <= 1:
            return
        if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
            return
        buf = self._buffers.setdefault(stage, _Buffer())
        if buf.gathered:
            return
        payload = {
            "keys": _sample_keys(trainer, stage, buf),
            "ids": buf.ids,
            "action_probs": _cat(buf.action_probs),
            "actions": _cat(buf.actions),
            "privacy": _cat(buf.privacy),
            "privacy_probs": {name: _cat(chunks) for name, chunks in buf.privacy_probs.items()},
        }
        parts: list = [None] * torch.distributed.get_world_size()
        torch.distributed.all_gather_object(parts, payload)
        self._buffers[stage] = merge_rank_payloads(parts)

    # -- computation ------------------------------------------------------------------------
    def compute(self, stage: str, privacy_names: list[str]) -> dict:
        """The metrics of everything collected for ``stage`` since its epoch started."""
        buf = self._buffers.get(stage)
        if buf is None or not buf.ids:
            return {}
        names = list(buf.privacy_probs)
        per_clip = [torch.cat(buf.action_probs), torch.cat(buf.actions), torch.cat(buf.privacy)]
        per_clip += [torch.cat(buf.privacy_probs[n]) for n in names]
        videos, averaged = average_by_video(buf.ids, *per_clip)
        action_probs, actions, privacy = averaged[:3]
        results: dict = {
            "num_videos": len(videos),
            "num_clips": len(buf.ids),
            "top1": action_top1(action_probs, actions.long()),
            "positive_rate": positive_rates(privacy, privacy_names),
            "attackers": {},
        }
        for name, probs in zip(names, averaged[3:]):
            results["attackers"][name] = privacy_scores(probs, privacy, privacy_names, self.threshold).as_dict()
        # The headline is ONE attacker's: the one with the highest cMAP, and its own F1 (the highest
        # F1 of another attacker would make a row mix two attackers). Every attacker's scores stay
        # under "attackers".
        worst = max(results["attackers"], key=lambda n: _nan_low(results["attackers"][n]["cmap"]))
        results["cmap"] = results["attackers"][worst]["cmap"]
        results["f1"] = results["attackers"][worst]["f1"]
        results["worst_attacker"] = worst
        results["excluded_attributes"] = results["attackers"][worst]["excluded"]
        return results

    def _log(self, stage: str, pl_module: pl.LightningModule, results: dict) -> None:
        if not results:
            return
        metrics = {f"{stage}/top1": results["top1"], f"{stage}/cmap": results["cmap"], f"{stage}/f1": results["f1"]}
        if len(results["attackers"]) > 1:
            for name, scores in results["attackers"].items():
                metrics[f"{stage}/cmap/{name}"] = scores["cmap"]
                metrics[f"{stage}/f1/{name}"] = scores["f1"]
        # Every rank holds the same gathered numbers; syncing them (a mean of equal values) changes
        # nothing and keeps Lightning from warning about unsynced epoch-level logs under DDP.
        trainer = pl_module._trainer
        pl_module.log_dict(metrics, prog_bar=False, sync_dist=bool(trainer is not None and trainer.world_size > 1))

    def _privacy_names(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> list[str]:
        names = getattr(pl_module, "privacy_names", None) or getattr(trainer.datamodule, "privacy_names", None)
        if names is None:
            raise AttributeError("PrivacyUtilityMetrics needs privacy_names on the model or the DataModule.")
        return list(names)

    # -- hooks ------------------------------------------------------------------------------
    def on_validation_epoch_start(self, trainer, pl_module) -> None:
        self._reset("val")

    def on_test_epoch_start(self, trainer, pl_module) -> None:
        self._reset("test")

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        self._collect("val", outputs, batch, dataloader_idx)

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        self._collect("test", outputs, batch, dataloader_idx)

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        self._gather(trainer, "val")
        results = self.compute("val", self._privacy_names(trainer, pl_module))
        self._log("val", pl_module, results)
        self.last_results["val"] = results

    def on_test_epoch_end(self, trainer, pl_module) -> None:
        self._gather(trainer, "test")
        results = self.compute("test", self._privacy_names(trainer, pl_module))
        self._log("test", pl_module, results)
        extra = _extra_test_results(pl_module)  # on every rank: the method may gather across ranks in it
        if results and extra:
            results.update(extra)
            numbers = {f"test/{k}": float(v) for k, v in extra.items()
                       if isinstance(v, (int, float)) and not isinstance(v, bool)}
            if numbers:
                pl_module.log_dict(numbers, prog_bar=False, sync_dist=trainer.world_size > 1)
        results["method"] = type(pl_module).__name__
        self.last_results["test"] = results
        out_dir = self.results_dir or (trainer.log_dir if trainer.loggers else None)
        if out_dir and trainer.is_global_zero:
            write_results(results, Path(out_dir))


def _extra_test_results(pl_module: pl.LightningModule) -> dict:
    """The method's ``extra_test_results()`` (empty if it has none), checked not to overwrite the
    callback's own results."""
    hook = getattr(pl_module, "extra_test_results", None)
    if hook is None:
        return {}
    extra = dict(hook() or {})
    clash = sorted(set(extra) & _OWN_RESULT_KEYS)
    if clash:
        raise ValueError(f"{type(pl_module).__name__}.extra_test_results() returned {clash}, which the metrics "
                         "callback reports itself: give them other names.")
    return extra


_OWN_RESULT_KEYS = {"num_videos", "num_clips", "top1", "positive_rate", "attackers", "cmap", "f1", "worst_attacker",
                    "excluded_attributes", "method"}


def merge_rank_payloads(parts: list[dict]) -> _Buffer:
    """One buffer from every rank's collected clips (``PrivacyUtilityMetrics._gather``'s payloads).

    Each payload holds ``keys`` (the ``(dataloader_idx, dataset index)`` of every clip, or ``None``),
    ``ids``, and the per-clip tensors. With keys on every rank, a clip seen on two ranks (the
    padding ``DistributedSampler`` adds so every rank gets as many batches) is kept once, and the
    clips come out in dataset order, as one process collects them. Without keys (or if a key names
    two different videos) the clips are concatenated as they are, with a warning.
    """
    merged = _Buffer()
    merged.gathered = True
    parts = [p for p in parts if p["ids"]]
    if not parts:
        return merged
    rows = [(part, row) for part in parts for row in range(len(part["ids"]))]
    if all(part["keys"] is not None for part in parts):
        chosen: dict[tuple[int, int], tuple[dict, int]] = {}
        consistent = True
        for part, row in rows:
            key = tuple(part["keys"][row])
            if key in chosen:
                first, first_row = chosen[key]
                consistent &= first["ids"][first_row] == part["ids"][row]
            else:
                chosen[key] = (part, row)
        if consistent:
            rows = [chosen[key] for key in sorted(chosen)]  # dataset order, each clip once
        else:
            _warn_no_dedup("the same sampler index held different video ids on two ranks")
    else:
        _warn_no_dedup("the evaluation sampler's indices could not be matched to the collected clips")
    merged.ids = [part["ids"][row] for part, row in rows]
    for field in ("action_probs", "actions", "privacy"):
        getattr(merged, field).append(torch.stack([part[field][row] for part, row in rows]))
    for name in parts[0]["privacy_probs"]:
        merged.privacy_probs[name] = [torch.stack([part["privacy_probs"][name][row] for part, row in rows])]
    return merged


def _cat(chunks: list[torch.Tensor]) -> torch.Tensor | None:
    return torch.cat(chunks) if chunks else None


def _warn_no_dedup(reason: str) -> None:
    warnings.warn(f"PrivacyUtilityMetrics: {reason}, so the clips DistributedSampler repeats to even out the "
                  "ranks are counted twice; metrics may differ slightly from a single-process run.", stacklevel=2)


def _loader_indices(loader) -> list[int] | None:
    """The dataset indices ``loader`` yields on this rank, in order (its batch sampler or sampler,
    which Lightning replaced by a ``DistributedSampler`` under DDP), or ``None`` if unknowable."""
    try:
        batch_sampler = getattr(loader, "batch_sampler", None)
        if batch_sampler is not None:
            return [int(i) for batch in batch_sampler for i in batch]
        sampler = getattr(loader, "sampler", None)
        return [int(i) for i in sampler] if sampler is not None else None
    except (TypeError, ValueError):
        return None


def _sample_keys(trainer: pl.Trainer, stage: str, buf: _Buffer) -> list[tuple[int, int]] | None:
    """``(dataloader_idx, dataset index)`` of every collected clip, from the samplers this rank's
    loaders used (evaluation samplers are deterministic), or ``None`` if they cannot be matched."""
    loaders = trainer.val_dataloaders if stage == "val" else trainer.test_dataloaders
    if loaders is None:
        return None
    loaders = list(loaders.values()) if isinstance(loaders, Mapping) else (
        list(loaders) if isinstance(loaders, (list, tuple)) else [loaders])
    indices: dict[int, list[int] | None] = {}
    used: dict[int, int] = {}
    keys: list[tuple[int, int]] = []
    for loader_idx, count in buf.batches:
        if loader_idx >= len(loaders):
            return None
        if loader_idx not in indices:
            indices[loader_idx] = _loader_indices(loaders[loader_idx])
        available, start = indices[loader_idx], used.get(loader_idx, 0)
        if available is None or start + count > len(available):
            return None
        keys.extend((loader_idx, i) for i in available[start:start + count])
        used[loader_idx] = start + count
    return keys


def _nan_low(value: float) -> float:
    return -math.inf if value is None or math.isnan(value) else value


def write_results(results: dict, out_dir: Path) -> None:
    """``results.json`` (everything) and ``results.csv`` (one row per attacker, ``worst`` = 1 for the
    attacker whose cMAP and F1 are the headline) in ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "results.json").write_text(json.dumps(results, indent=2, sort_keys=True))
    with open(out_dir / "results.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["method", "attacker", "top1", "cmap", "f1", "num_videos", "excluded_attributes", "worst"])
        for name, scores in results["attackers"].items():
            writer.writerow([
                results.get("method", ""), name, f"{results['top1']:.6f}", f"{scores['cmap']:.6f}",
                f"{scores['f1']:.6f}", results["num_videos"], ";".join(scores["excluded"]),
                int(name == results.get("worst_attacker")),
            ])
