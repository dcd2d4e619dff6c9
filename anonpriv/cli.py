"""The ``anonpriv`` command: LightningCLI ``fit | validate | test | predict`` for every method.

Three more subcommands have their own entry points: ``anonpriv anonymize`` (video files in, anonymized
video files out; :mod:`anonpriv.anonymize`), ``anonpriv pretrain`` (``fit`` of the token-pruning
method's dual-CLS ViT on its CLS tasks, exporting the weights; :mod:`anonpriv.cli_pretrain`) and
``anonpriv sweep`` (every method of a sweep file trained and evaluated, then the tables;
:mod:`anonpriv.sweep`).

Three conveniences on top of LightningCLI:

* a configuration error (a bad value, a missing dataset or label file, ``--ckpt_path last`` with
  nothing to load) is printed as ``anonpriv fit: error: <message>`` alone, exit status 2, like
  LightningCLI's own errors for unknown options; ``--debug`` (or ``ANONPRIV_DEBUG=1``) shows the
  traceback instead;

* a TensorBoard logger configured with ``name: auto`` is named after the method
  (``baselines.RawBaseline`` -> ``raw``), so every method's runs land in ``runs/<method>/version_N``;
* ``--ckpt_path last`` picks the newest ``last.ckpt`` under that folder, so ``anonpriv test`` can
  follow ``anonpriv fit`` without copying paths around.

Importing this module is cheap: Lightning, the DataModule and the methods are imported when a
Lightning subcommand runs (or :class:`AnonprivCLI` is first used), so ``anonpriv anonymize`` and
``anonpriv --help`` never import them (nor does ``anonpriv sweep`` until a run starts).
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

#: The subcommands of ``anonpriv`` and their one-line summaries (``anonpriv --help``).
SUBCOMMANDS = {
    "fit": "train a method (LightningCLI: --config, --model, --data, --trainer ...)",
    "validate": "one evaluation epoch over the validation set (LightningCLI)",
    "test": "one evaluation epoch over the test set (LightningCLI; --ckpt_path last picks the newest run)",
    "predict": "run inference on the data (LightningCLI)",
    "pretrain": "pretrain the token-pruning method's dual-CLS ViT and export its weights",
    "anonymize": "write anonymized copies of video files with a trained or a training-free method",
    "sweep": "train and evaluate every method of a sweep file (configs/sweep/), then write Tables 1 and 2",
}


def method_short_name(class_path: str) -> str:
    """``baselines.RawBaseline`` -> ``raw``; ``anonpriv.methods.TokenPruningMethod`` -> ``token_pruning``."""
    name = class_path.rsplit(".", 1)[-1]
    name = re.sub(r"(Baseline|Method)$", "", name) or name
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


#: Errors raised while the configuration is turned into objects: the user's to fix, not a bug.
CONFIGURATION_ERRORS = (ValueError, TypeError, KeyError, FileNotFoundError, NotADirectoryError, PermissionError)


def _mark_configuration_error(error: BaseException) -> None:
    error.anonpriv_configuration_error = True


def newest_last_checkpoint(run_root: Path) -> Path:
    """The most recent ``last.ckpt`` below ``run_root`` (``runs/<method>``)."""
    candidates = sorted(run_root.glob("**/last.ckpt"), key=lambda p: p.stat().st_mtime)
    if not candidates:
        raise FileNotFoundError(
            f"--ckpt_path last: no last.ckpt under {str(run_root)!r}. Run `anonpriv fit` with the same "
            "config first, or pass the path of a checkpoint."
        )
    return candidates[-1]


def add_shared_arguments(parser, model_key: str) -> None:
    """The shared metrics callback, and the label space and clip shape linked from the DataModule
    into the model's ``model_key`` (``model.init_args`` for a class_path model, else ``model``)."""
    from anonpriv.metrics import PrivacyUtilityMetrics

    parser.add_lightning_class_args(PrivacyUtilityMetrics, "metrics")
    for name in ("num_actions", "num_privacy", "action_names", "privacy_names", "clip_shape"):
        parser.link_arguments(f"data.{name}", f"{model_key}.{name}", apply_on="instantiate")


class MarksConfigurationErrors:
    """LightningCLI mixin: an error while the configuration is turned into objects is the user's to
    fix, so :func:`main` prints it as one line (exit 2) instead of a traceback."""

    def instantiate_classes(self) -> None:
        try:
            super().instantiate_classes()
        except CONFIGURATION_ERRORS as error:
            _mark_configuration_error(error)
            raise


def _anonpriv_cli() -> type:
    """:class:`AnonprivCLI`, defined on the first call (a LightningCLI subclass: importing Lightning
    is the cost)."""
    if "AnonprivCLI" in globals():
        return globals()["AnonprivCLI"]
    from lightning.pytorch.cli import LightningCLI
    from lightning.pytorch.loggers import TensorBoardLogger

    from anonpriv.data import VideoPrivacyDataModule
    from anonpriv.methods import AnonymizationMethod

    class AnonprivCLI(MarksConfigurationErrors, LightningCLI):
        """LightningCLI with the shared DataModule, the shared metrics callback and label-space links.

        Any subclass of :class:`AnonymizationMethod` is chosen with ``model.class_path``.
        """

        def __init__(self, *args, **kwargs) -> None:
            kwargs.setdefault("subclass_mode_model", True)
            kwargs.setdefault("save_config_kwargs", {"overwrite": True})
            kwargs.setdefault("auto_configure_optimizers", False)
            kwargs.setdefault("seed_everything_default", 0)
            super().__init__(AnonymizationMethod, VideoPrivacyDataModule, *args, **kwargs)

        def add_arguments_to_parser(self, parser) -> None:
            add_shared_arguments(parser, "model.init_args")

        def before_instantiate_classes(self) -> None:
            config = self.config[self.subcommand] if self.subcommand else self.config
            logger = config.trainer.get("logger")
            init_args = getattr(logger, "init_args", None) if logger is not None and not isinstance(logger, bool) else None
            if init_args is not None and init_args.get("name") == "auto":
                init_args.name = method_short_name(config.model.class_path)

        def _resolve_last_checkpoint(self) -> None:
            try:
                self._resolve_last_checkpoint_path()
            except CONFIGURATION_ERRORS as error:
                _mark_configuration_error(error)
                raise

        def _resolve_last_checkpoint_path(self) -> None:
            config = self.config_init[self.subcommand]
            if config.get("ckpt_path") != "last":
                return
            logger = self.trainer.logger
            if isinstance(logger, TensorBoardLogger):
                run_root = Path(logger.root_dir)
            else:
                run_root = Path(self.trainer.default_root_dir)
            config["ckpt_path"] = str(newest_last_checkpoint(run_root))
            print(f"anonpriv: --ckpt_path last -> {config['ckpt_path']}", file=sys.stderr)

        def before_fit(self) -> None:
            self._resolve_last_checkpoint()

        def before_validate(self) -> None:
            self._resolve_last_checkpoint()

        def before_test(self) -> None:
            self._resolve_last_checkpoint()

        def before_predict(self) -> None:
            self._resolve_last_checkpoint()

    AnonprivCLI.__module__, AnonprivCLI.__qualname__ = __name__, "AnonprivCLI"
    globals()["AnonprivCLI"] = AnonprivCLI
    return AnonprivCLI


def __getattr__(name: str):
    """``AnonprivCLI`` is defined on first use (PEP 562), so that importing this module for
    ``anonpriv anonymize`` or ``anonpriv --help`` does not import Lightning."""
    if name == "AnonprivCLI":
        return _anonpriv_cli()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _own_message(message: str) -> str:
    """jsonargparse reports an error raised while building a model given by ``class_path`` as "Does not
    validate against any of the Union subtypes", with the real message among its ``- `` entries and
    the whole config after them; keep only the real message."""
    if not message.startswith("Does not validate against any of the Union subtypes"):
        return message
    entries = [line.strip()[2:] for line in message.splitlines() if line.strip().startswith("- ")]
    own = [e for e in entries if not e.startswith("Expected a <class")]
    return own[0] if own else message


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


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help"):  # answered here: no need to import Lightning
        if args:
            print(overview())
            raise SystemExit(0)
        print(overview().split("\n\n")[0] + "\nanonpriv: error: give a subcommand "
              f"({', '.join(SUBCOMMANDS)}); `anonpriv --help` describes them.", file=sys.stderr)
        raise SystemExit(2)
    if args[0] == "anonymize":  # its own parser: anonymize video files (anonpriv/anonymize.py)
        from anonpriv.anonymize import main as anonymize_main

        raise SystemExit(anonymize_main(list(args[1:])))
    if args[0] == "sweep":  # its own parser: the comparison sweep (anonpriv/sweep/)
        from anonpriv.sweep.cli import main as sweep_main

        raise SystemExit(sweep_main(list(args[1:])))
    debug = "--debug" in args or bool(os.environ.get("ANONPRIV_DEBUG"))
    clean = [a for a in args if a != "--debug"]
    if argv is None:  # LightningCLI reads sys.argv itself
        sys.argv = sys.argv[:1] + clean
    try:
        if clean and clean[0] == "pretrain":  # fit of the dual-CLS ViT pretraining (anonpriv/cli_pretrain.py)
            from anonpriv.cli_pretrain import PretrainCLI

            PretrainCLI(args=["fit", *clean[1:]])
        else:
            _anonpriv_cli()(args=None if argv is None else clean)
    except CONFIGURATION_ERRORS as error:
        if debug or not getattr(error, "anonpriv_configuration_error", False):
            raise
        command = next((a for a in args if not a.startswith("-")), "")
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        print(f"anonpriv {command}: error: {_own_message(str(message))}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
