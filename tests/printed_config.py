"""``anonpriv fit --config FILE --print_config``, parsed: what a config resolves to, for the config tests."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pytest
import yaml

from anonpriv.cli import AnonprivCLI


def printed_config(config: Path) -> dict:
    """The full config LightningCLI prints for ``anonpriv fit --config config``."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as exit_info:
        AnonprivCLI(args=["fit", "--config", str(config), "--print_config"])
    assert exit_info.value.code in (0, None)
    return yaml.safe_load(out.getvalue())
