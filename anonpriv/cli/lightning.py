"""The two LightningCLIs of ``anonpriv``: :class:`AnonprivCLI` (``fit | validate | test | predict`` of
every method, and the evaluation protocol) and :class:`PretrainCLI` (``anonpriv pretrain``).

Both build the shared DataModule (:class:`~anonpriv.data.VideoPrivacyDataModule`), add the shared
metrics callback and link the label space and clip shape from the DataModule into the model
(:func:`add_shared_arguments`), mark configuration errors for a one-line report
(:class:`MarksConfigurationErrors`, :mod:`anonpriv.cli.errors`) and silence Lightning's harmless
noise while they run (:class:`SilencesHarmlessNoise`, :mod:`anonpriv.cli.noise`). The method CLI adds:

* a TensorBoard logger configured with ``name: auto`` is named after the method
  (``anonpriv.baselines.raw.RawBaseline`` -> ``raw``), so every method's runs land in ``runs/<method>/version_N``;
* ``--ckpt_path last`` picks the newest ``last.ckpt`` under that folder, so ``anonpriv test`` can
  follow ``anonpriv fit`` without copying paths around.

Importing this module imports Lightning; :mod:`anonpriv.cli` imports it only when a Lightning
subcommand runs.
"""

from __future__ import annotations

import sys
from pathlib import Path

import lightning.pytorch as pl
from lightning.pytorch.cli import LightningCLI
from lightning.pytorch.loggers import TensorBoardLogger

from anonpriv.cli.errors import CONFIGURATION_ERRORS, mark_configuration_error
from anonpriv.cli.noise import (
    FROZEN_ANONYMIZER_WARNING,
    harmless_noise_silenced,
    ignore_warning,
)
from anonpriv.cli.runs import newest_last_checkpoint
from anonpriv.data import VideoPrivacyDataModule
from anonpriv.methods import AnonymizationMethod
from anonpriv.methods.catalog import short_name
from anonpriv.metrics import PrivacyUtilityMetrics


def add_shared_arguments(parser, model_key: str) -> None:
    """The shared metrics callback, and the label space and clip shape linked from the DataModule
    into the model's ``model_key`` (``model.init_args`` for a class_path model, else ``model``)."""
    parser.add_lightning_class_args(PrivacyUtilityMetrics, "metrics")
    for name in ("num_actions", "num_privacy", "action_names", "privacy_names", "clip_shape"):
        parser.link_arguments(f"data.{name}", f"{model_key}.{name}", apply_on="instantiate")


def run_root(trainer: pl.Trainer) -> Path:
    """The folder holding every run of the trainer's method: the TensorBoard logger's
    ``runs/<method>``, else the trainer's ``default_root_dir``."""
    if isinstance(trainer.logger, TensorBoardLogger):
        return Path(trainer.logger.root_dir)
    return Path(trainer.default_root_dir)


class MarksConfigurationErrors:
    """LightningCLI mixin: an error while the configuration is turned into objects is the user's to
    fix, so :func:`anonpriv.cli.main` prints it as one line (exit 2) instead of a traceback."""

    def instantiate_classes(self) -> None:
        try:
            super().instantiate_classes()
        except CONFIGURATION_ERRORS as error:
            mark_configuration_error(error)
            raise


class SilencesHarmlessNoise:
    """LightningCLI mixin: building the objects and running the subcommand happen with Lightning's
    advertisements and the named harmless warnings silenced (:mod:`anonpriv.cli.noise`)."""

    def __init__(self, *args, **kwargs) -> None:
        with harmless_noise_silenced():
            super().__init__(*args, **kwargs)


class AnonprivCLI(MarksConfigurationErrors, SilencesHarmlessNoise, LightningCLI):
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
            init_args.name = short_name(config.model.class_path)

    def _resolve_last_checkpoint(self) -> None:
        try:
            self._resolve_last_checkpoint_path()
        except CONFIGURATION_ERRORS as error:
            mark_configuration_error(error)
            raise

    def _resolve_last_checkpoint_path(self) -> None:
        config = self.config_init[self.subcommand]
        if config.get("ckpt_path") != "last":
            return
        config["ckpt_path"] = str(newest_last_checkpoint(run_root(self.trainer)))
        print(f"anonpriv: --ckpt_path last -> {config['ckpt_path']}", file=sys.stderr)

    def before_fit(self) -> None:
        self._resolve_last_checkpoint()
        protocol = sys.modules.get("anonpriv.evaluation.protocol")  # loaded by a protocol run's config only
        if protocol is not None and isinstance(self.model, protocol.ProtocolEvaluation):
            ignore_warning(*FROZEN_ANONYMIZER_WARNING)

    def before_validate(self) -> None:
        self._resolve_last_checkpoint()

    def before_test(self) -> None:
        self._resolve_last_checkpoint()

    def before_predict(self) -> None:
        self._resolve_last_checkpoint()


class PretrainCLI(MarksConfigurationErrors, SilencesHarmlessNoise, LightningCLI):
    """``anonpriv pretrain``: LightningCLI for :class:`DualCLSPretraining` with the same links as
    ``anonpriv fit``; the weights go to ``model.export_file`` when training ends."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("save_config_kwargs", {"overwrite": True})
        kwargs.setdefault("seed_everything_default", 0)
        from anonpriv.methods.token_pruning.pretrain import DualCLSPretraining

        super().__init__(DualCLSPretraining, VideoPrivacyDataModule, *args, **kwargs)

    def add_arguments_to_parser(self, parser) -> None:
        add_shared_arguments(parser, "model")
