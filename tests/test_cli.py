"""The command line: errors for bad input name the problem and the fix; fit then test works."""

import json
import warnings
from pathlib import Path

import pytest

from anonpriv.cli.lightning import AnonprivCLI
from anonpriv.cli.runs import newest_last_checkpoint
from anonpriv.methods.catalog import short_name as method_short_name

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
TINY = str(CONFIGS / "data" / "synthetic_tiny.yaml")


def _quiet(tmp_path):
    return ["--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false",
            "--trainer.logger.init_args.save_dir", str(tmp_path)]


def test_unknown_config_key_is_rejected_by_name(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model:\n  class_path: anonpriv.baselines.raw.RawBaseline\n  init_args:\n    learning_rat: 0.1\n")
    with pytest.raises(SystemExit):
        AnonprivCLI(args=["fit", "--config", str(CONFIGS / "raw.yaml"), "--config", str(bad), "--data", TINY])
    err = capsys.readouterr().err
    assert "learning_rat" in err and "No module named" not in err
    assert "not accepted" in err or "unexpected" in err.lower() or "not expected" in err, err


def test_impossible_clip_size_names_the_fix(tmp_path):
    with pytest.raises(ValueError, match="too small to draw a figure"):
        AnonprivCLI(args=["fit", "--config", str(CONFIGS / "raw.yaml"), "--data", TINY,
                          "--data.source.init_args.height", "8", *_quiet(tmp_path)])


def test_test_without_a_checkpoint_says_run_fit_first(tmp_path):
    with pytest.raises(FileNotFoundError, match="Run `anonpriv fit`"):
        AnonprivCLI(args=["test", "--config", str(CONFIGS / "raw.yaml"), "--data", TINY, "--ckpt_path", "last",
                          *_quiet(tmp_path)])


def test_fit_then_test_last_checkpoint_writes_results(tmp_path):
    args = ["--config", str(CONFIGS / "raw.yaml"), "--data", TINY, "--trainer.max_epochs", "1",
            "--metrics.results_dir", str(tmp_path / "results"), *_quiet(tmp_path)]
    AnonprivCLI(args=["fit", *args])
    assert newest_last_checkpoint(tmp_path / "raw").is_file()  # logger named after the method
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        AnonprivCLI(args=["test", *args, "--ckpt_path", "last"])
    assert not [w for w in caught if "dirpath has changed" in str(w.message)]  # harmless: the CLI silences it
    results = json.loads((tmp_path / "results" / "results.json").read_text())
    assert results["method"] == "RawBaseline" and 0.0 <= results["top1"] <= 1.0
    assert set(results["attackers"]["privacy_model"]["per_attribute_ap"]) <= {
        "face", "skin_color", "gender", "nudity", "relationship"}


def test_method_short_names():
    assert method_short_name("baselines.RawBaseline") == "raw"
    assert method_short_name("anonpriv.methods.TokenPruningMethod") == "token_pruning"
    assert method_short_name("baselines.BDQBaseline") == "bdq"
    assert method_short_name("anonpriv.baselines.blur.DownsampleBaseline") == "downsample"
    assert method_short_name("my_pkg.MyNewMethod") == "my_new"  # not in the catalog: from the class name
