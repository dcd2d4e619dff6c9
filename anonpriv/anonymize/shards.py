"""``anonpriv anonymize --shard K/N``: split a dataset's videos over N jobs (a SLURM array, N machines)
so that every video is written by exactly one of them.

A video's shard depends on its own path alone: shard ``1 + (h mod N)`` where ``h`` is a SHA-1 of its
path relative to the input folder. The split is the same on every machine and every call, no two
shards ever write the same output, their union is every input, and a video added to the folder later
moves no other video to another shard. Collisions between inputs are checked on the whole list before
it is split, so every shard refuses the same pairs.

This module imports neither torch nor PyAV.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from pathlib import PurePath

_SHARD = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


class ShardError(ValueError):
    """A ``--shard`` value that is not ``K/N`` with ``1 <= K <= N``; the message names the fix."""


def parse_shard(text: str) -> tuple[int, int]:
    """``"3/8"`` -> ``(3, 8)``; anything else raises :class:`ShardError` (one line)."""
    match = _SHARD.match(text or "")
    if not match:
        raise ShardError(f"--shard {text!r}: write K/N, this job's shard K of N (1-based), e.g. --shard 1/8 "
                         "(in a SLURM array: --shard $((SLURM_ARRAY_TASK_ID + 1))/$SLURM_ARRAY_TASK_COUNT).")
    k, n = int(match.group(1)), int(match.group(2))
    if n < 1 or not 1 <= k <= n:
        raise ShardError(f"--shard {text}: K must lie between 1 and N (here N={n}: --shard 1/{max(n, 1)} to "
                         f"--shard {max(n, 1)}/{max(n, 1)}).")
    return k, n


def shard_of(relative_path: str | PurePath, count: int) -> int:
    """The 1-based shard of a video among ``count``, from its path relative to the input folder."""
    key = PurePath(relative_path).as_posix().encode()
    return 1 + int.from_bytes(hashlib.sha1(key).digest()[:8], "big") % count


def in_shard(relative_paths: Sequence[str | PurePath], shard: int, count: int) -> list[bool]:
    """For each path, whether it belongs to ``shard`` of ``count``."""
    return [shard_of(path, count) == shard for path in relative_paths]
