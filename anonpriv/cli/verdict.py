"""The result of ``anonpriv evaluate``, kept beside its run so that later runs can be judged against raw.

Each evaluation writes ``evaluation.json`` into its run folder (``runs/protocol_evaluation/version_N``):
the evaluated method, its top-1 and worst-case cMAP, the chance cMAP of the test labels, and the
fingerprint of its *setup* (:func:`setup_fingerprint`: the data and every protocol and training
setting, but not the anonymizer nor where the output goes). A later evaluation on the same setup finds
the newest kept ``raw`` result under the same run root (:func:`raw_reference`) and prints a two-line
verdict against it (:func:`verdict_lines`); on another setup (other data, other epochs, other
attackers) there is nothing to compare with, and it says how to get one. Torch-free.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from pathlib import Path

KEPT_FILE = "evaluation.json"

#: Settings that change where the output goes or how it is shown, not the numbers (dotted config keys;
#: a key below one of them is left out too). The anonymizer is what is compared.
NOT_PART_OF_THE_SETUP = (
    "config", "ckpt_path", "model.init_args.anonymizer", "model.init_args.anonymizer_kwargs",
    "trainer.logger", "trainer.callbacks", "trainer.default_root_dir", "trainer.enable_progress_bar",
    "trainer.enable_model_summary", "trainer.log_every_n_steps", "trainer.accelerator", "trainer.devices",
    "trainer.num_nodes", "trainer.strategy", "data.num_workers", "data.pin_memory", "metrics.results_dir",
)


def _flat(config: Mapping, prefix: str = "") -> dict[str, object]:
    flat: dict[str, object] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(_flat(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def setup_fingerprint(config: Mapping) -> str:
    """12 hex digits that two evaluations share when they ran on the same data with the same protocol
    and training settings (``config``: the fit's configuration as a nested dict)."""
    kept = {key: value for key, value in _flat(config).items()
            if not any(key == left_out or key.startswith(f"{left_out}.") for left_out in NOT_PART_OF_THE_SETUP)}
    text = json.dumps(kept, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


@dataclasses.dataclass(frozen=True)
class Evaluation:
    """What a verdict needs of one ``anonpriv evaluate`` run."""

    method: str  # the evaluated method's short name: raw, blur, token_pruning, ...
    anonymizer: str  # as given on the command line: a method name or a checkpoint path
    setup: str  # setup_fingerprint of its configuration
    top1: float
    cmap: float  # the worst-case attacker's
    chance_cmap: float  # the cMAP of guessing: the mean positive rate of the attributes scored
    worst_attacker: str
    num_videos: int
    results_file: str | None = None

    @classmethod
    def from_results(cls, results: Mapping, *, method: str, anonymizer: str, setup: str,
                     results_file: Path | None = None) -> Evaluation:
        """From the metrics callback's test results (what ``results.json`` holds)."""
        worst = results["worst_attacker"]
        scored = results["attackers"][worst]["per_attribute_ap"]
        rates = results["positive_rate"]
        chance = sum(rates[name] for name in scored) / len(scored) if scored else float("nan")
        return cls(method=method, anonymizer=anonymizer, setup=setup, top1=float(results["top1"]),
                   cmap=float(results["cmap"]), chance_cmap=float(chance), worst_attacker=str(worst),
                   num_videos=int(results["num_videos"]), results_file=str(results_file) if results_file else None)

    def keep(self, folder: Path) -> Path:
        """Write this evaluation to ``folder/evaluation.json``; returns the file."""
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / KEPT_FILE
        path.write_text(json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True) + "\n")
        return path

    @classmethod
    def read(cls, path: Path) -> Evaluation | None:
        """A kept evaluation, or ``None`` if the file is unreadable or of another shape."""
        try:
            return cls(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):
            return None


def raw_reference(root: Path, setup: str) -> Evaluation | None:
    """The newest kept evaluation of ``raw`` on ``setup`` below ``root`` (the run root), if any."""
    kept = sorted(root.rglob(KEPT_FILE), key=lambda path: path.stat().st_mtime, reverse=True) if root.is_dir() else []
    for path in kept:
        evaluation = Evaluation.read(path)
        if evaluation is not None and evaluation.method == "raw" and evaluation.setup == setup:
            return evaluation
    return None


def _percent(value: float) -> str:
    return f"{100 * value:.1f}%"


def _points(value: float) -> str:
    return f"{100 * value:+.1f}"


def result_line(evaluation: Evaluation) -> str:
    """``result: blur: top-1 91.2%, worst-case cMAP 62.0% (resnet18; chance 55.0%), 512 test videos``."""
    return (f"result: {evaluation.method}: top-1 {_percent(evaluation.top1)}, worst-case cMAP "
            f"{_percent(evaluation.cmap)} ({evaluation.worst_attacker}; chance {_percent(evaluation.chance_cmap)}), "
            f"{evaluation.num_videos} test videos")


def verdict_lines(evaluation: Evaluation, raw: Evaluation) -> list[str]:
    """Two lines judging ``evaluation`` against ``raw`` on the same setup: the numbers side by side,
    then what they mean (the share of raw's top-1 kept, and the share of the attackers' cMAP margin
    over chance taken away: a cMAP at chance leaks nothing an attacker can use)."""
    numbers = (f"verdict vs raw: top-1 {_percent(evaluation.top1)} (raw {_percent(raw.top1)}, "
               f"{_points(evaluation.top1 - raw.top1)} points), worst-case cMAP {_percent(evaluation.cmap)} "
               f"(raw {_percent(raw.cmap)}, {_points(evaluation.cmap - raw.cmap)} points)")
    if raw.top1 > 0:
        utility = f"{evaluation.method} keeps {evaluation.top1 / raw.top1:.0%} of raw's top-1"
    else:
        utility = f"raw's top-1 is 0%, so {evaluation.method} has no action accuracy to keep"
    raw_margin = raw.cmap - raw.chance_cmap
    margin = evaluation.cmap - evaluation.chance_cmap
    if raw_margin <= 0:
        privacy = "raw's attackers do no better than chance here, so there is no leakage to remove"
    elif margin < raw_margin:
        privacy = (f"removes {min(1.0, (raw_margin - margin) / raw_margin):.0%} of the attackers' cMAP margin "
                   f"over chance ({100 * raw_margin:.1f} -> {100 * max(margin, 0.0):.1f} points)")
    else:
        privacy = (f"does not reduce the attackers' cMAP margin over chance "
                   f"({100 * raw_margin:.1f} -> {100 * margin:.1f} points)")
    indent = " " * len("verdict vs raw: ")
    return [numbers, f"{indent}{utility} and {privacy}, on {evaluation.num_videos} test videos."]
