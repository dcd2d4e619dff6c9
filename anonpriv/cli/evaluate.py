"""``anonpriv evaluate CKPT_OR_NAME``: the evaluation protocol's fit and test in one command.

``CKPT_OR_NAME`` is what the protocol's ``anonymizer`` takes (:class:`~anonpriv.evaluation.ProtocolEvaluation`):
the checkpoint of a trained method (``runs/bdq/version_0/checkpoints/last.ckpt``) or the name of a
training-free one (``raw``, ``blur``, ``downsample``, ...). Every other option is LightningCLI's, as for
``anonpriv fit``; without ``--config`` the protocol's ``configs/evaluate.yaml`` is read. The command
fits the fresh action model and attackers on the frozen anonymizer's output, tests them in the same
process (the fitted weights are the ones tested; the run folder holds the checkpoint and the results),
prints the result and keeps it (:mod:`anonpriv.cli.verdict`); when raw's result on the same setup is
at hand (``anonpriv evaluate raw`` with the same options made one), it ends with a verdict against raw.
"""

from __future__ import annotations

import sys
from pathlib import Path

from anonpriv.cli.noise import harmless_noise_silenced
from anonpriv.cli.verdict import (
    Evaluation,
    raw_reference,
    result_line,
    setup_fingerprint,
    verdict_lines,
)

#: The protocol's configuration, read when no ``--config`` is given.
DEFAULT_CONFIG = Path(__file__).resolve().parents[2] / "configs" / "evaluate.yaml"

USAGE = f"""usage: anonpriv evaluate CKPT_OR_NAME [-c/--config FILE] [--data FILE] [OPTIONS of anonpriv fit ...]

The honest evaluation protocol in one command: freeze the anonymizer CKPT_OR_NAME (a checkpoint of
`anonpriv fit`, or a training-free method: raw, blur, downsample, ...), train a fresh action model and
fresh attackers on its output, test them, and print top-1 and the worst-case cMAP. The result is kept
beside the run (evaluation.json); once `anonpriv evaluate raw` has run with the same options, every
evaluation ends with a two-line verdict against raw.

Without --config, {DEFAULT_CONFIG} is read. The other options are those of
`anonpriv fit --help` (e.g. --data configs/data/synthetic_faces.yaml, --trainer.max_epochs 3)."""


def evaluate(args: list[str]) -> None:
    """``anonpriv evaluate`` with ``args`` (after the subcommand)."""
    if args and args[0] in ("-h", "--help"):
        print(USAGE)
        raise SystemExit(0)
    if not args or args[0].startswith("-"):
        print(f"{USAGE.splitlines()[0]}\nanonpriv evaluate: error: give the checkpoint or the method name to "
              "evaluate first.", file=sys.stderr)
        raise SystemExit(2)
    source, options = args[0], list(args[1:])
    given_config = any(a in ("-c", "--config") or a.startswith("--config=") for a in options)
    if not given_config and not DEFAULT_CONFIG.is_file():  # an install without the repository's configs/
        print(f"anonpriv evaluate: error: no --config given and the protocol's default {DEFAULT_CONFIG} is not "
              "here (an installed package has no configs/); pass --config with the repository's "
              "configs/evaluate.yaml or your own protocol config.", file=sys.stderr)
        raise SystemExit(2)
    config = [] if given_config else ["--config", str(DEFAULT_CONFIG)]
    from anonpriv.cli.lightning import AnonprivCLI, run_root  # Lightning: only once the arguments make sense
    from anonpriv.methods.catalog import short_name
    from anonpriv.metrics import PrivacyUtilityMetrics

    cli = AnonprivCLI(args=["fit", *config, *options, "--model.init_args.anonymizer", source])
    trainer = cli.trainer
    with harmless_noise_silenced():
        trainer.test(cli.model, datamodule=cli.datamodule)
    if not trainer.is_global_zero:
        return
    metrics = next(c for c in trainer.callbacks if isinstance(c, PrivacyUtilityMetrics))
    results_dir = metrics.results_dir or (trainer.log_dir if trainer.loggers else None)
    results_file = Path(results_dir) / "results.json" if results_dir else None
    evaluation = Evaluation.from_results(
        metrics.last_results["test"], method=short_name(cli.model.evaluated_method), anonymizer=source,
        setup=setup_fingerprint(cli.config["fit"].as_dict()),
        results_file=results_file if results_file is not None and results_file.is_file() else None)
    root = run_root(trainer)
    raw = raw_reference(root, evaluation.setup)
    evaluation.keep(Path(trainer.log_dir))
    print(result_line(evaluation) + (f" -> {evaluation.results_file}" if evaluation.results_file else ""))
    if evaluation.method == "raw":
        print(f"kept as raw's result for this setup under {root}: later `anonpriv evaluate` runs with the same "
              "options end with a verdict against it.")
    elif raw is None:
        print(f"no raw result for this setup under {root}: run `anonpriv evaluate raw` with the same options "
              "for a verdict against raw.")
    else:
        print("\n".join(verdict_lines(evaluation, raw)))
