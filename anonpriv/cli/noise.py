"""Lightning's output that tells the user nothing about their run, silenced while a CLI runs.

Each filter names one message (a regular expression matched at its start) and its category, so any
other warning still shows; the filters hold only inside :func:`harmless_noise_silenced` (the Lightning
CLI wraps each run in it) and are undone after it. What is silenced, and why it is harmless:

* Lightning's advertisements for its cloud products (``💡 Tip: ... litlogger`` / ``litmodels``), logged
  at INFO on every ``Trainer``;
* ``The dirpath has changed from ...``: ``anonpriv test --ckpt_path ...`` restores a checkpoint that
  ``fit`` wrote into another run folder; the test never reads the checkpoint callback's state;
* ``isinstance(treespec, LeafSpec) is deprecated``: Lightning's own use of a torch API, not the user's;
* ``LightningCLI's args parameter is intended ...``: the ``anonpriv`` command hands LightningCLI the
  arguments it read from the command line itself;
* ``Found N module(s) in eval mode at the start of training``: only while the evaluation protocol
  trains (:data:`FROZEN_ANONYMIZER_WARNING`, added by the CLI then), whose frozen anonymizer is kept in
  eval mode on purpose; for any other method the warning may point at a bug and still shows.
"""

from __future__ import annotations

import contextlib
import logging
import re
import warnings
from collections.abc import Iterator

from lightning.fabric.utilities.warnings import PossibleUserWarning

#: ``(message regex, category)`` of the warnings silenced in every run of the CLI.
HARMLESS_WARNINGS: tuple[tuple[str, type[Warning]], ...] = (
    (r"The dirpath has changed from ", UserWarning),
    (r"`isinstance\(treespec, LeafSpec\)` is deprecated", FutureWarning),
    (r"LightningCLI's args parameter is intended to run from within Python", UserWarning),
)

#: Silenced only while the evaluation protocol trains: its frozen anonymizer stays in eval mode.
FROZEN_ANONYMIZER_WARNING: tuple[str, type[Warning]] = (
    r"Found \d+ module\(s\) in eval mode at the start of training", PossibleUserWarning)

#: The logger through which Lightning prints its INFO lines (``rank_zero_info``), tips included.
LIGHTNING_INFO_LOGGER = "lightning.pytorch.utilities.rank_zero"


class DropsLightningAdvertisements(logging.Filter):
    """Drops Lightning's ``💡 Tip:`` lines that advertise litlogger or litmodels; keeps every other record."""

    advertisement = re.compile(r"💡 Tip: .*\b(litlogger|litmodels)\b")

    def filter(self, record: logging.LogRecord) -> bool:
        return not self.advertisement.match(record.getMessage())


def ignore_warning(message: str, category: type[Warning]) -> None:
    """Ignore one named warning until the enclosing :func:`harmless_noise_silenced` ends."""
    warnings.filterwarnings("ignore", message=message, category=category)


@contextlib.contextmanager
def harmless_noise_silenced() -> Iterator[None]:
    """Within this block, Lightning's advertisements and :data:`HARMLESS_WARNINGS` are not shown."""
    lightning_info = logging.getLogger(LIGHTNING_INFO_LOGGER)
    advertisements = DropsLightningAdvertisements()
    with warnings.catch_warnings():
        for message, category in HARMLESS_WARNINGS:
            ignore_warning(message, category)
        lightning_info.addFilter(advertisements)
        try:
            yield
        finally:
            lightning_info.removeFilter(advertisements)
