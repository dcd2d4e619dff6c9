"""``anonpriv evaluate``: the protocol's fit and test in one command, the kept result, the verdict
against raw on the same setup (none on another), and Lightning's harmless noise kept out of its output."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from anonpriv.cli import main
from anonpriv.cli.noise import (
    FROZEN_ANONYMIZER_WARNING,
    harmless_noise_silenced,
    ignore_warning,
)
from anonpriv.cli.verdict import (
    Evaluation,
    raw_reference,
    setup_fingerprint,
    verdict_lines,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
TINY = str(REPO_ROOT / "configs" / "data" / "synthetic_tiny.yaml")

# Lightning's own wording of what the CLI silences (lightning 2.6, torch 2.9+).
TIP = ("💡 Tip: For seamless cloud logging and experiment tracking, try installing "
       "[litlogger](https://pypi.org/project/litlogger/) to enable LitLogger, which logs metrics and artifacts "
       "automatically to the Lightning Experiments platform.")
NAMED_WARNINGS = [
    (("The dirpath has changed from 'runs/a/version_0/checkpoints' to 'runs/a/version_1/checkpoints', therefore "
      "`best_model_score`, `kth_best_model_path`, `kth_value`, `last_model_path` and `best_k_models` won't be "
      "reloaded. Only `best_model_path` will be reloaded."), UserWarning),
    (("`isinstance(treespec, LeafSpec)` is deprecated, use `isinstance(treespec, TreeSpec) and treespec.is_leaf()` "
      "instead."), FutureWarning),
    (("LightningCLI's args parameter is intended to run from within Python like if it were from the command line. "
      "To prevent mistakes it is not recommended to provide both args and command line arguments, got: "
      "sys.argv[1:]=['fit'], args=['fit']."), UserWarning),
]


def _evaluation(method="blur", top1=0.90, cmap=0.70, chance=0.50, setup="s") -> Evaluation:
    return Evaluation(method=method, anonymizer=method, setup=setup, top1=top1, cmap=cmap, chance_cmap=chance,
                      worst_attacker="resnet18", num_videos=512)


# -- the verdict and the kept results (torch-free) --------------------------------------------------
def test_the_verdict_reads_the_numbers_against_raw():
    first, second = verdict_lines(_evaluation(top1=0.90, cmap=0.70), _evaluation("raw", top1=0.95, cmap=0.90))
    assert first == ("verdict vs raw: top-1 90.0% (raw 95.0%, -5.0 points), "
                     "worst-case cMAP 70.0% (raw 90.0%, -20.0 points)")
    assert "blur keeps 95% of raw's top-1" in second
    assert "removes 50% of the attackers' cMAP margin over chance (40.0 -> 20.0 points)" in second
    assert second.endswith("on 512 test videos.")


@pytest.mark.parametrize("mine, raw, says", [
    ({"cmap": 0.95}, {"cmap": 0.90}, "does not reduce the attackers' cMAP margin over chance (40.0 -> 45.0 points)"),
    ({"cmap": 0.45}, {"cmap": 0.90}, "removes 100% of the attackers' cMAP margin over chance (40.0 -> 0.0 points)"),
    ({"cmap": 0.50}, {"cmap": 0.48}, "raw's attackers do no better than chance here"),
    ({"top1": 0.0}, {"top1": 0.0}, "raw's top-1 is 0%, so blur has no action accuracy to keep"),
])
def test_the_verdict_says_when_there_is_nothing_to_remove_or_keep(mine, raw, says):
    assert says in verdict_lines(_evaluation(**mine), _evaluation("raw", **raw))[1]


def test_the_setup_fingerprint_leaves_out_the_anonymizer_and_where_output_goes():
    config = {"model": {"class_path": "P", "init_args": {"anonymizer": "raw", "attackers": ["a"]}},
              "data": {"source": {"init_args": {"height": 32}}, "num_workers": 0},
              "trainer": {"max_epochs": 1, "logger": {"init_args": {"save_dir": "runs"}}}, "config": ["x.yaml"]}
    same = {"model": {"class_path": "P", "init_args": {"anonymizer": "some.ckpt", "attackers": ["a"]}},
            "data": {"source": {"init_args": {"height": 32}}, "num_workers": 4},
            "trainer": {"max_epochs": 1, "logger": {"init_args": {"save_dir": "/tmp/elsewhere"}}}, "config": []}
    assert setup_fingerprint(config) == setup_fingerprint(same)
    for key, value in (("data", {"source": {"init_args": {"height": 24}}, "num_workers": 0}),
                       ("trainer", {"max_epochs": 2, "logger": {"init_args": {"save_dir": "runs"}}})):
        assert setup_fingerprint(config | {key: value}) != setup_fingerprint(config)


def test_raw_reference_is_the_newest_raw_result_on_the_same_setup(tmp_path):
    assert raw_reference(tmp_path / "missing", "s") is None
    _evaluation("raw", top1=0.1).keep(tmp_path / "version_0")
    _evaluation("raw", top1=0.2, setup="other").keep(tmp_path / "version_1")
    _evaluation("blur").keep(tmp_path / "version_2")
    (tmp_path / "version_3").mkdir()
    (tmp_path / "version_3" / "evaluation.json").write_text("{not json")
    assert raw_reference(tmp_path, "s").top1 == 0.1
    newer = tmp_path / "version_4"
    _evaluation("raw", top1=0.3).keep(newer)
    os.utime(newer / "evaluation.json", (1e10, 1e10))
    assert raw_reference(tmp_path, "s").top1 == 0.3
    assert raw_reference(tmp_path, "no such setup") is None


# -- the noise filters ------------------------------------------------------------------------------
def test_the_named_warnings_and_the_tip_are_silenced_and_nothing_else(caplog):
    tips = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    with warnings.catch_warnings(record=True) as caught, caplog.at_level(logging.INFO, logger=tips.name):
        warnings.simplefilter("always")
        with harmless_noise_silenced():
            for message, category in NAMED_WARNINGS:
                warnings.warn(message, category)
            tips.info(TIP)
            warnings.warn("The dirpath has changed: a message of our own", DeprecationWarning)  # other category
            warnings.warn("Found 3 module(s) in eval mode at the start of training.", FROZEN_ANONYMIZER_WARNING[1])
            tips.info("GPU available: False, used: False")
            ignore_warning(*FROZEN_ANONYMIZER_WARNING)  # what the CLI adds while the protocol trains
            warnings.warn("Found 3 module(s) in eval mode at the start of training.", FROZEN_ANONYMIZER_WARNING[1])
        warnings.warn(*NAMED_WARNINGS[0])  # the filters end with the block
        tips.info(TIP)
    assert [str(w.message) for w in caught] == ["The dirpath has changed: a message of our own",
                                                "Found 3 module(s) in eval mode at the start of training.",
                                                NAMED_WARNINGS[0][0]]
    assert [r.getMessage() for r in caplog.records] == ["GPU available: False, used: False", TIP]


# -- the command on tiny data -----------------------------------------------------------------------
def _fast(save_dir: Path, *data) -> list[str]:
    return [*(data or ("--data", TINY)), "--trainer.max_epochs", "1", "--trainer.limit_val_batches", "0",
            "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false",
            "--model.init_args.attackers", "[frame_cnn_tiny]", "--model.init_args.attacker_kwargs", "null",
            "--trainer.logger.init_args.save_dir", str(save_dir)]


def _anonpriv(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "anonpriv", *args], cwd=cwd, capture_output=True, text=True,
                            check=False, env=os.environ | {"PYTHONPATH": str(REPO_ROOT)})
    assert result.returncode == 0, result.stderr[-3000:]
    return result


@pytest.fixture(scope="module")
def raw_run(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """``anonpriv evaluate raw`` on the tiny data, as a user runs it (its own process)."""
    folder = tmp_path_factory.mktemp("evaluate")
    return folder, _anonpriv(["evaluate", "raw", *_fast(folder / "runs")], folder)


def test_evaluate_raw_prints_and_keeps_its_result(raw_run):
    folder, result = raw_run
    lines = result.stdout.strip().splitlines()
    assert lines[-2].startswith("result: raw: top-1 ") and "worst-case cMAP" in lines[-2], result.stdout
    assert lines[-1].startswith("kept as raw's result for this setup") and "verdict vs raw" not in result.stdout
    run = folder / "runs" / "protocol_evaluation" / "version_0"
    assert (run / "results.json").is_file() and (run / "checkpoints" / "last.ckpt").is_file()
    assert Evaluation.read(run / "evaluation.json").method == "raw"


def test_a_tiny_run_shows_neither_the_tip_nor_the_named_warnings(raw_run):
    """``evaluate`` fits and tests; the warning ``anonpriv test --ckpt_path`` would add is checked in
    tests/test_cli.py::test_fit_then_test_last_checkpoint_writes_results."""
    output = raw_run[1].stdout + raw_run[1].stderr
    assert "Seed set to 0" in output and "result: raw" in output  # Lightning's other lines and ours still show
    assert "Tip:" not in output and "litlogger" not in output
    assert "LeafSpec" not in output and "args parameter is intended" not in output
    assert "in eval mode at the start of training" not in output


def test_evaluate_after_raw_ends_with_the_verdict_and_on_other_data_without(raw_run, capsys, monkeypatch):
    folder, _ = raw_run
    monkeypatch.chdir(folder)
    main(["evaluate", "blur", *_fast(folder / "runs")])
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-3].startswith("result: blur: top-1 ")
    assert lines[-2].startswith("verdict vs raw: top-1 ") and "(raw " in lines[-2]
    assert "of raw's top-1" in lines[-1] or "no action accuracy to keep" in lines[-1]

    other_data = ("--data", TINY, "--data.source.init_args.num_train", "8")
    main(["evaluate", "blur", *_fast(folder / "runs", *other_data)])
    out = capsys.readouterr().out
    assert "verdict vs raw" not in out
    assert out.strip().splitlines()[-1].startswith("no raw result for this setup")


def test_evaluate_without_a_checkpoint_or_name_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["evaluate", "--data", TINY])
    assert exit_info.value.code == 2 and "give the checkpoint or the method name" in capsys.readouterr().err
