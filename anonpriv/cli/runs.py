"""Where the runs of the ``anonpriv`` commands land: ``runs/<method>/version_N``.

A TensorBoard logger configured with ``name: auto`` is named after the method (its catalog name,
:func:`anonpriv.methods.catalog.short_name`), and ``--ckpt_path last`` picks the newest
``last.ckpt`` under that folder (:func:`newest_last_checkpoint`). Torch-free.
"""

from __future__ import annotations

from pathlib import Path



def newest_last_checkpoint(run_root: Path) -> Path:
    """The most recent ``last.ckpt`` below ``run_root`` (``runs/<method>``)."""
    candidates = sorted(run_root.glob("**/last.ckpt"), key=lambda p: p.stat().st_mtime)
    if not candidates:
        raise FileNotFoundError(
            f"--ckpt_path last: no last.ckpt under {str(run_root)!r}. Run `anonpriv fit` with the same "
            "config first, or pass the path of a checkpoint."
        )
    return candidates[-1]
