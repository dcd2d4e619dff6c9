"""The comparison sweep's old command line, kept as a thin caller of ``anonpriv sweep``.

    .venv/bin/python benchmarks/sweep.py [FLAGS]            = anonpriv sweep --config configs/sweep/synthetic.yaml [FLAGS]
    .venv/bin/python benchmarks/sweep.py --faces [FLAGS]    = anonpriv sweep --config configs/sweep/faces.yaml [FLAGS]
    .venv/bin/python benchmarks/sweep.py --quick [FLAGS]    = anonpriv sweep --config configs/sweep/quick.yaml [FLAGS]

FLAGS are ``anonpriv sweep``'s own (``--seeds``, ``--methods``, ``--jobs``, ``--out``, ``--report-only``,
``--dry-run``; ``anonpriv sweep --help``). What the old ``--grid``, ``--no-novel``, ``--train-epochs`` and
``--eval-epochs`` chose is now written in the sweep file (methods with ``curve: true``, ``table2``,
``train.epochs``, ``evaluation.epochs``; anonpriv/sweep/config.py).
"""

from __future__ import annotations

import sys
from pathlib import Path

SWEEPS = Path(__file__).resolve().parents[1] / "configs" / "sweep"
MOVED = {"--grid": "methods with curve: true", "--no-novel": "table2", "--train-epochs": "train.epochs",
         "--eval-epochs": "evaluation.epochs"}


def translate(argv: list[str]) -> list[str]:
    """The ``anonpriv sweep`` arguments for the old ones."""
    faces, quick = "--faces" in argv, "--quick" in argv
    if faces and quick:
        raise SystemExit("sweep.py: --faces --quick has no sweep file of its own; for a smoke test of the faces "
                         "sweep use: anonpriv sweep --config configs/sweep/faces.yaml --seeds 0 --methods raw,face_blur")
    for flag, key in MOVED.items():
        if any(arg == flag or arg.startswith(flag + "=") for arg in argv):
            raise SystemExit(f"sweep.py: {flag} is now the sweep file's {key}: edit (a copy of) configs/sweep/*.yaml")
    name = "faces" if faces else "quick" if quick else "synthetic"
    config = SWEEPS / f"{name}.yaml"
    try:
        config = config.relative_to(Path.cwd())
    except ValueError:
        pass
    return ["--config", str(config), *[arg for arg in argv if arg not in ("--faces", "--quick")]]


def main(argv: list[str] | None = None) -> int:
    from anonpriv.sweep.cli import main as sweep_main

    return sweep_main(translate(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    raise SystemExit(main())
