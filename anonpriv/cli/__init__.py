"""The ``anonpriv`` command: a dispatcher that imports nothing heavy, and the subcommands behind it.

* ``fit | validate | test | predict``: LightningCLI for every method (:mod:`anonpriv.cli.lightning`);
* ``evaluate CKPT_OR_NAME``: the evaluation protocol's fit and test in one command, ending with a
  verdict against raw (:mod:`anonpriv.cli.evaluate`, :mod:`anonpriv.cli.verdict`);
* ``pretrain``: ``fit`` of the token-pruning method's dual-CLS ViT, exporting its weights
  (:class:`anonpriv.cli.lightning.PretrainCLI`);
* ``anonymize``: video files in, anonymized video files out (:mod:`anonpriv.anonymize`);
* ``sweep``: every method of a sweep file trained and evaluated, then the tables (:mod:`anonpriv.sweep`).

A configuration error of a Lightning subcommand is printed as ``anonpriv fit: error: <message>``
alone, exit status 2 (:mod:`anonpriv.cli.errors`); ``--debug`` (or ``ANONPRIV_DEBUG=1``) shows the
traceback instead. Lightning is imported only when a Lightning subcommand runs, so ``anonpriv --help``
and ``anonpriv anonymize`` never import it (nor does ``anonpriv sweep`` until a run starts);
:class:`AnonprivCLI` and :class:`PretrainCLI` are imported from :mod:`anonpriv.cli.lightning` on first
use (PEP 562).
"""

from __future__ import annotations

import os
import sys

from anonpriv.cli.errors import (
    CONFIGURATION_ERRORS,
    is_configuration_error,
    moved_class_path_error,
    one_line_message,
    own_message,
)
from anonpriv.lazy_exports import lazy_exports

__all__ = ["SUBCOMMANDS", "AnonprivCLI", "PretrainCLI", "main", "overview", "own_message"]

# The Lightning CLIs (importing them imports Lightning): public name -> the submodule that defines it.
__getattr__, __dir__ = lazy_exports(__name__, globals(), {
    "AnonprivCLI": "lightning",
    "PretrainCLI": "lightning",
})

#: The subcommands of ``anonpriv`` and their one-line summaries (``anonpriv --help``).
SUBCOMMANDS = {
    "fit": "train a method (LightningCLI: --config, --model, --data, --trainer ...)",
    "validate": "one evaluation epoch over the validation set (LightningCLI)",
    "test": "one evaluation epoch over the test set (LightningCLI; --ckpt_path last picks the newest run)",
    "predict": "run inference on the data (LightningCLI)",
    "evaluate": "the honest protocol on a checkpoint or a training-free method, with a verdict against raw",
    "pretrain": "pretrain the token-pruning method's dual-CLS ViT and export its weights",
    "anonymize": "write anonymized copies of video files with a trained or a training-free method",
    "sweep": "train and evaluate every method of a sweep file (configs/sweep/), then write Tables 1 and 2",
}


def overview() -> str:
    """What ``anonpriv --help`` prints: the subcommands, each with its own ``--help``."""
    width = max(map(len, SUBCOMMANDS))
    lines = [f"usage: anonpriv {{{','.join(SUBCOMMANDS)}}} ...", "",
             "Privacy-preserving video action recognition: train, evaluate and apply anonymizers.", "",
             "subcommands (`anonpriv SUBCOMMAND --help` lists each one's options):"]
    lines += [f"  {name:<{width}}  {summary}" for name, summary in SUBCOMMANDS.items()]
    lines += ["", "The Lightning subcommands also take -c/--config FILE and --print_config before the subcommand;",
              "--debug (or ANONPRIV_DEBUG=1) shows tracebacks instead of one-line errors."]
    return "\n".join(lines)


def _run_lightning(args: list[str]) -> None:
    """A Lightning subcommand (``args`` as after ``anonpriv``, ``--debug`` taken out)."""
    command = args[0] if args else ""
    if command == "pretrain":
        from anonpriv.cli.lightning import PretrainCLI

        PretrainCLI(args=["fit", *args[1:]])
    elif command == "evaluate":
        from anonpriv.cli.evaluate import evaluate

        evaluate(args[1:])
    else:
        from anonpriv.cli.lightning import AnonprivCLI

        AnonprivCLI(args=args)


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):  # answered here: no need to import Lightning
        if args:
            print(overview())
            raise SystemExit(0)
        print(overview().split("\n\n")[0] + "\nanonpriv: error: give a subcommand "
              f"({', '.join(SUBCOMMANDS)}); `anonpriv --help` describes them.", file=sys.stderr)
        raise SystemExit(2)
    if args[0] == "anonymize":  # its own parser: anonymize video files (anonpriv/anonymize/)
        from anonpriv.anonymize import main as anonymize_main

        raise SystemExit(anonymize_main(args[1:]))
    if args[0] == "sweep":  # its own parser: the comparison sweep (anonpriv/sweep/)
        from anonpriv.sweep.cli import main as sweep_main

        raise SystemExit(sweep_main(args[1:]))
    debug = "--debug" in args or bool(os.environ.get("ANONPRIV_DEBUG"))
    if (moved := moved_class_path_error(args)) is not None:
        print(f"anonpriv {args[0]}: error: {moved}", file=sys.stderr)
        raise SystemExit(2)
    try:
        _run_lightning([a for a in args if a != "--debug"])
    except CONFIGURATION_ERRORS as error:
        if debug or not is_configuration_error(error):
            raise
        command = next((a for a in args if not a.startswith("-")), "")
        print(f"anonpriv {command}: error: {one_line_message(error)}", file=sys.stderr)
        raise SystemExit(2) from None
