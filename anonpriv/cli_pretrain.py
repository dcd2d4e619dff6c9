"""``anonpriv pretrain``: train the dual-CLS ViT on its two CLS tasks and export its weights.

``anonpriv pretrain --config configs/pretrain.yaml`` is ``fit`` of
:class:`~anonpriv.methods.token_pruning.pretrain.DualCLSPretraining` on the shared DataModule, with
the shared metrics callback reporting the action CLS's top-1 and the privacy CLS's cMAP on the
validation split after every epoch. The weights go to ``model.export_file`` when training ends.
"""

from __future__ import annotations

from lightning.pytorch.cli import LightningCLI

from anonpriv.cli import MarksConfigurationErrors, add_shared_arguments
from anonpriv.data import VideoPrivacyDataModule
from anonpriv.methods.token_pruning.pretrain import DualCLSPretraining


class PretrainCLI(MarksConfigurationErrors, LightningCLI):
    """LightningCLI for :class:`DualCLSPretraining` with the same links as ``anonpriv fit``."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("save_config_kwargs", {"overwrite": True})
        kwargs.setdefault("seed_everything_default", 0)
        super().__init__(DualCLSPretraining, VideoPrivacyDataModule, *args, **kwargs)

    def add_arguments_to_parser(self, parser) -> None:
        add_shared_arguments(parser, "model")

