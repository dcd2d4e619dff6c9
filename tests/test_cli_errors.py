"""``anonpriv fit`` / ``test`` configuration errors: the message alone, the traceback on request."""

from pathlib import Path

import pytest

from anonpriv.cli import main

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def _args(tmp_path, *extra):
    return ["--config", str(CONFIGS / "raw.yaml"), "--data", str(CONFIGS / "data" / "synthetic_tiny.yaml"),
            "--trainer.enable_progress_bar", "false", "--trainer.logger.init_args.save_dir", str(tmp_path), *extra]


@pytest.mark.parametrize("command, extra, message", [
    ("fit", ["--data.source.init_args.height", "8"], "too small to draw a figure"),
    ("test", ["--ckpt_path", "last"], "Run `anonpriv fit`"),
])
def test_configuration_errors_are_one_line_without_a_traceback(tmp_path, capsys, command, extra, message):
    with pytest.raises(SystemExit) as exit_info:
        main([command, *_args(tmp_path, *extra)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "error:" in line]
    assert len(lines) == 1 and lines[0].startswith(f"anonpriv {command}: error:") and message in lines[0], err
    assert "Traceback" not in err


def test_debug_shows_the_traceback(tmp_path):
    with pytest.raises(ValueError, match="too small to draw a figure"):
        main(["fit", "--debug", *_args(tmp_path, "--data.source.init_args.height", "8")])
