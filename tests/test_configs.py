"""Every YAML under configs/ runs: composites as they are, fragments combined with the tiny data.

Each run is ``anonpriv fit`` with ``fast_dev_run`` on CPU (one batch of train and val), then
``anonpriv test`` on the checkpoint-free model.
"""

from pathlib import Path

import pytest
import yaml

from anonpriv.cli import AnonprivCLI

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
TINY_DATA = str(CONFIGS / "data" / "synthetic_tiny.yaml")
TRAINER = str(CONFIGS / "trainer" / "cpu.yaml")


def _needs_files(path: Path) -> bool:
    """Data configs of real datasets need a dataset root; tests/test_real_data.py covers those."""
    text = yaml.safe_load(path.read_text()) or {}
    return "root" in str(text)


def _run(args: list[str], tmp_path: Path) -> AnonprivCLI:
    common = [
        "--trainer.fast_dev_run", "1",
        "--trainer.accelerator", "cpu",
        "--trainer.enable_progress_bar", "false",
        "--trainer.logger.init_args.save_dir", str(tmp_path),
        "--metrics.results_dir", str(tmp_path / "results"),
    ]
    return AnonprivCLI(args=args + common)


# configs/pretrain.yaml is `anonpriv pretrain`'s, not a method's: tests/test_pretrain.py runs it.
# The *_paper.yaml configs (ViT-B, ImageNet weights downloaded by name) are run, offline and shrunk,
# by tests/test_paper_config.py; configs/evaluate_paper.yaml and configs/evaluation/paper.yaml (Kinetics and
# ImageNet weights downloaded by name) by tests/test_paper_evaluation.py, offline from local files.
COMPOSITES = sorted(p for p in CONFIGS.glob("*.yaml") if p.name != "pretrain.yaml" and "_paper" not in p.name)
METHODS = sorted(p for p in (CONFIGS / "method").glob("*.yaml") if "_paper" not in p.name)
DATA = sorted(p for p in (CONFIGS / "data").glob("*.yaml") if not _needs_files(p))
TRAINERS = sorted(p for p in (CONFIGS / "trainer").glob("*.yaml") if "gpu" not in p.name)


# Blackening blacks out the synthetic renderer's person mask, which the tiny data serves with with_regions
# (configs/blackening.yaml's own data does); without it a person detector would run, whose weights are not
# here offline (tests/test_blackening.py covers that path).
NEEDS_REGIONS = {"blackening.yaml"}


def _tiny_data(config: Path) -> list[str]:
    regions = ["--data.source.init_args.with_regions", "true"] if config.name in NEEDS_REGIONS else []
    return ["--data", TINY_DATA, *regions]


@pytest.mark.parametrize("config", COMPOSITES, ids=lambda p: p.name)
def test_composite_config_fits_with_fast_dev_run(config, tmp_path):
    _run(["fit", "--config", str(config), *_tiny_data(config)], tmp_path)
    _run(["test", "--config", str(config), *_tiny_data(config)], tmp_path)
    assert (tmp_path / "results" / "results.json").is_file()


@pytest.mark.parametrize("config", METHODS, ids=lambda p: p.name)
def test_method_config_fits_with_fast_dev_run(config, tmp_path):
    _run(["fit", "--trainer", TRAINER, *_tiny_data(config), "--model", str(config)], tmp_path)


@pytest.mark.parametrize("config", DATA + TRAINERS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_data_and_trainer_configs_fit_with_fast_dev_run(config, tmp_path):
    group = config.parent.name
    args = ["fit", "--trainer", TRAINER, "--data", TINY_DATA, "--model", str(CONFIGS / "method" / "raw.yaml")]
    args += [f"--{group}", str(config)]
    if group == "data":  # keep the smoke test small whatever the config's dataset size
        args += ["--data.source.init_args.num_train", "8", "--data.source.init_args.num_val", "4",
                 "--data.source.init_args.num_test", "4"]
    _run(args, tmp_path)


def test_gpu_trainer_config_parses(capsys):
    # Instantiating gpu.yaml needs a GPU; --print_config validates every key without instantiating.
    with pytest.raises(SystemExit) as exit_info:
        AnonprivCLI(args=["fit", "--config", str(CONFIGS / "raw.yaml"),
                          "--trainer", str(CONFIGS / "trainer" / "gpu.yaml"), "--print_config"])
    assert exit_info.value.code in (0, None)
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["trainer"]["accelerator"] == "gpu" and printed["trainer"]["precision"] == "16-mixed"
