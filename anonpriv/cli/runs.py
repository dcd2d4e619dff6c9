"""Where the runs of the ``anonpriv`` commands land: ``runs/<method>/version_N``.

A TensorBoard logger configured with ``name: auto`` is named after the method
(:func:`method_short_name`), and ``--ckpt_path last`` picks the newest ``last.ckpt`` under that
folder (:func:`newest_last_checkpoint`). Torch-free: the sweep plans its run folders with it.
"""

from __future__ import annotations

import re
from pathlib import Path


def method_short_name(class_path: str) -> str:
    """``baselines.RawBaseline`` -> ``raw``; ``anonpriv.methods.TokenPruningMethod`` -> ``token_pruning``."""
    name = class_path.rsplit(".", 1)[-1]
    name = re.sub(r"(Baseline|Method)$", "", name) or name
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


def newest_last_checkpoint(run_root: Path) -> Path:
    """The most recent ``last.ckpt`` below ``run_root`` (``runs/<method>``)."""
    candidates = sorted(run_root.glob("**/last.ckpt"), key=lambda p: p.stat().st_mtime)
    if not candidates:
        raise FileNotFoundError(
            f"--ckpt_path last: no last.ckpt under {str(run_root)!r}. Run `anonpriv fit` with the same "
            "config first, or pass the path of a checkpoint."
        )
    return candidates[-1]
