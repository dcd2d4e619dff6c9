"""``anonpriv fit`` / ``test`` configuration errors: the message alone, the traceback on request."""

from pathlib import Path

import lightning.pytorch  # noqa: F401  imported here, not inside a capsys test: Lightning binds its log
import pytest              # handler to the sys.stderr of its first import, which capsys closes after that test

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


@pytest.mark.parametrize("old, new", [("baselines.RawBaseline", "anonpriv.baselines.raw.RawBaseline"),
                                      ("baselines.bdq.BDQBaseline", "anonpriv.baselines.bdq.BDQBaseline")])
def test_a_config_naming_a_moved_class_path_gets_the_new_path(tmp_path, capsys, old, new):
    old_config = tmp_path / "config.yaml"  # as saved beside a run before the baselines moved
    old_config.write_text(f"model:\n  class_path: {old}\n")
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", *_args(tmp_path), "--config", str(old_config)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("anonpriv fit: error:") and repr(old) in err and repr(new) in err, err
    assert "\n" not in err


def test_a_longer_class_path_sharing_a_moved_prefix_is_not_flagged(tmp_path):
    from anonpriv.cli.errors import moved_class_path_error

    config = tmp_path / "config.yaml"
    config.write_text("model:\n  class_path: anonpriv.baselines.raw.RawBaseline  # was baselines.RawBaseline\n")
    assert moved_class_path_error(["fit", "--config", str(config)]) is None


@pytest.mark.parametrize("form", ["--config PATH", "--config=PATH", "--model PATH"])
def test_a_config_file_is_read_in_every_form_it_is_given(tmp_path, form):
    from anonpriv.cli.errors import moved_class_path_error

    config = tmp_path / "old.yaml"
    config.write_text("model:\n  class_path: baselines.RawBaseline\n")
    args = ["fit", *form.replace("PATH", str(config)).split(" "), "--trainer.max_epochs", "1"]
    message = moved_class_path_error(args)
    assert message and str(config) in message and "'anonpriv.baselines.raw.RawBaseline'" in message


def test_a_config_naming_a_renamed_option_gets_the_new_name(tmp_path, capsys):
    old_config = tmp_path / "config.yaml"  # LightningCLI wrote budget_lr into every run's config.yaml
    old_config.write_text("model:\n  class_path: anonpriv.baselines.bdq.BDQBaseline\n  init_args:\n"
                          "    budget_lr: null\n")
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", *_args(tmp_path), "--config", str(old_config)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("anonpriv fit: error:") and "'budget_lr'" in err and "'privacy_lr'" in err, err
