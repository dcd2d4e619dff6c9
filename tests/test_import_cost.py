"""What each entry point imports (checked in fresh processes; timings are the benchmark's job:
``benchmarks/startup_and_deface.py``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "lightning", "timm", "torchmetrics")


def imports_of(code: str, tmp_path: Path) -> dict:
    """Run ``code`` in a fresh interpreter; return which of :data:`HEAVY` it imported, its exit
    code (``SystemExit`` is caught) and what it printed."""
    script = textwrap.dedent("""
        import contextlib, io, json, sys
        out, err, code = io.StringIO(), io.StringIO(), 0
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
        {body}
            except SystemExit as exit:
                code = exit.code or 0
        print(json.dumps({{"modules": [m for m in {heavy!r} if m in sys.modules], "code": code,
                          "stdout": out.getvalue(), "stderr": err.getvalue()}}))
    """).format(body=textwrap.indent(textwrap.dedent(code).strip(), " " * 8), heavy=HEAVY)
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True,
                            env=os.environ | {"PYTHONPATH": str(REPO_ROOT)})
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_the_anonymize_module_imports_neither_torch_nor_lightning(tmp_path):
    assert imports_of("import anonpriv.anonymize", tmp_path)["modules"] == []


def test_anonymize_help_needs_no_torch(tmp_path):
    result = imports_of("from anonpriv.cli import main; main(['anonymize', '--help'])", tmp_path)
    assert result["code"] == 0
    assert "--method" in result["stdout"] and "--checkpoint" in result["stdout"]
    assert result["modules"] == []


def test_top_level_help_lists_every_subcommand_without_lightning(tmp_path):
    result = imports_of("from anonpriv.cli import main; main(['--help'])", tmp_path)
    assert result["code"] == 0
    for subcommand in ("fit", "validate", "test", "predict", "pretrain", "anonymize", "sweep"):
        assert f"\n  {subcommand} " in result["stdout"], result["stdout"]
    assert result["modules"] == []


def test_no_subcommand_is_a_one_line_error_without_lightning(tmp_path):
    result = imports_of("from anonpriv.cli import main; main([])", tmp_path)
    assert result["code"] == 2 and "give a subcommand" in result["stderr"]
    assert result["modules"] == []


def test_sweep_help_dry_run_and_report_only_need_no_torch(tmp_path):
    """The sweep plans and reports without torch: only a run imports it."""
    sweep = REPO_ROOT / "configs" / "sweep"
    result = imports_of("from anonpriv.cli import main; main(['sweep', '--help'])", tmp_path)
    assert result["code"] == 0 and "--dry-run" in result["stdout"] and "--report-only" in result["stdout"]
    assert result["modules"] == []
    result = imports_of(f"from anonpriv.cli import main; main(['sweep', '--config', {str(sweep / 'paper.yaml')!r}, "
                        "'--dry-run'])", tmp_path)
    assert result["code"] == 0 and result["stdout"].startswith("132 runs planned")
    assert result["modules"] == []
    result = imports_of(f"from anonpriv.cli import main; main(['sweep', '--config', {str(sweep / 'quick.yaml')!r}, "
                        f"'--report-only', '--out', {str(tmp_path / 'empty')!r}])", tmp_path)
    assert result["code"] == 0 and "not written" in result["stdout"]
    assert result["modules"] == []


@pytest.mark.parametrize("module", ["anonpriv.cli", "anonpriv.cli.verdict", "anonpriv.sweep.cli", "anonpriv.sweep.runner", "anonpriv.data.video_io", "anonpriv.methods.registry",
                                    "anonpriv.data", "anonpriv.methods", "anonpriv.baselines", "anonpriv.methods.token_pruning",
                                    "anonpriv.baselines.blur.anonymizer", "anonpriv.baselines.bdq.anonymizer",
                                    "anonpriv.baselines.spact.anonymizer", "anonpriv.baselines.face_blur.anonymizer",
                                    "anonpriv.baselines.blackening.anonymizer",
                                    "anonpriv.methods.token_pruning.anonymizer"])
def test_light_modules_do_not_import_lightning(module, tmp_path):
    assert "lightning" not in imports_of(f"import {module}", tmp_path)["modules"]


def test_anonymizing_with_a_training_free_method_does_not_import_lightning(tmp_path):
    from test_anonymize import write_test_video

    write_test_video(tmp_path / "clip.mp4", frames=8)
    result = imports_of(f"""
        from anonpriv.cli import main
        main(['anonymize', {str(tmp_path / 'clip.mp4')!r}, '--output', {str(tmp_path / 'out')!r},
              '--method', 'blur', '--device', 'cpu'])
    """, tmp_path)
    assert result["code"] == 0, result["stderr"]
    assert "torch" in result["modules"]
    assert "lightning" not in result["modules"]


@pytest.mark.filterwarnings("ignore:You defined a `validation_step` but have no `val_dataloader`")
def test_anonymizing_with_a_token_pruning_checkpoint_imports_neither_lightning_nor_timm(tmp_path):
    # The checkpoint is written here (that takes Lightning); the fresh process only reads it.
    from test_anonymize import write_test_video
    from test_anonymize_torch_only import write_checkpoint

    write_checkpoint("token_pruning", tmp_path / "tp.ckpt")
    write_test_video(tmp_path / "clip.mp4", frames=12)
    result = imports_of(f"""
        from anonpriv.cli import main
        main(['anonymize', {str(tmp_path / 'clip.mp4')!r}, '--output', {str(tmp_path / 'out')!r},
              '--checkpoint', {str(tmp_path / 'tp.ckpt')!r}, '--save-masks', '--device', 'cpu'])
    """, tmp_path)
    assert result["code"] == 0, result["stderr"]
    assert "TokenPruningMethod on cpu" in result["stderr"]
    assert (tmp_path / "out" / "clip.mp4").is_file() and (tmp_path / "out" / "clip.masks.npz").is_file()
    assert "torch" in result["modules"]
    assert "lightning" not in result["modules"]
    assert "timm" not in result["modules"]  # the method's ViT blocks are torch only


# -- the lazy package inits keep their names ------------------------------------------------------------
@pytest.mark.parametrize("package", ["anonpriv.anonymize", "anonpriv.data", "anonpriv.methods", "anonpriv.methods.token_pruning",
                                     *(f"anonpriv.baselines.{name}"
                                       for name in ("raw", "blur", "blackening", "face_blur", "bdq", "spact"))])
def test_lazy_packages_export_every_name(package):
    import importlib

    module = importlib.import_module(package)
    for name in module.__all__:
        assert getattr(module, name) is not None
        assert name in dir(module)
    with pytest.raises(AttributeError):
        module.no_such_name  # noqa: B018


def test_package_level_imports_work_as_before():
    from anonpriv.data import SyntheticSource, UCF101Source, VideoPrivacyDataModule, VideoReadError
    from anonpriv.data.video_io import VideoReadError as direct
    from anonpriv.methods import AnonymizationMethod, build_method
    from anonpriv.baselines.blur import BlurBaseline

    assert VideoReadError is direct
    assert issubclass(BlurBaseline, AnonymizationMethod)
    assert isinstance(build_method("blur"), BlurBaseline)
    assert SyntheticSource and UCF101Source and VideoPrivacyDataModule


def test_the_lightning_clis_are_imported_on_first_use(tmp_path):
    from lightning.pytorch.cli import LightningCLI

    import anonpriv.cli
    from anonpriv.cli.lightning import (
        AnonprivCLI,
        MarksConfigurationErrors,
        PretrainCLI,
    )

    for cli in (AnonprivCLI, PretrainCLI):
        assert issubclass(cli, LightningCLI) and issubclass(cli, MarksConfigurationErrors)
    assert anonpriv.cli.AnonprivCLI is AnonprivCLI and anonpriv.cli.PretrainCLI is PretrainCLI
    assert imports_of("import anonpriv.cli.lightning", tmp_path)["modules"][:2] == ["torch", "lightning"]  # alone, in a fresh process


# -- the benchmark's measuring machinery (its figures are not checked) ----------------------------------
def test_the_benchmark_measures_a_process_peak_memory_alone(tmp_path):
    sys.path.insert(0, str(REPO_ROOT))
    from benchmarks.startup_and_deface import run_process

    small = run_process([sys.executable, "-S", "-c", "pass"], tmp_path, tmp_path / "small.log")
    big = run_process([sys.executable, "-S", "-c", "b = bytearray(200 * 2**20); b[::4096] = b'x' * len(b[::4096])"],
                      tmp_path, tmp_path / "big.log")
    assert small["status"] == 0 and big["status"] == 0
    assert small["peak_mib"] < 60  # not this (large) test process's memory
    assert big["peak_mib"] >= 200
    assert run_process([sys.executable, "-S", "-c", "raise SystemExit(3)"], tmp_path, tmp_path / "x.log")["status"] == 3


def test_the_benchmark_clip_is_a_224_pixel_face_video(tmp_path):
    sys.path.insert(0, str(REPO_ROOT))
    from anonpriv.data.video_io import probe_video
    from benchmarks.startup_and_deface import write_face_clip

    write_face_clip(tmp_path / "face.mp4", frames=12)
    info = probe_video(tmp_path / "face.mp4")
    assert (info.num_frames, info.width, info.height) == (12, 224, 224)


def test_the_benchmark_says_skipped_without_deface():
    sys.path.insert(0, str(REPO_ROOT))
    from benchmarks.startup_and_deface import end_to_end_rows

    timing = {"seconds": 2.0, "peak_mib": 700.0, "low": 2.0, "high": 2.0}
    rows = end_to_end_rows(64, {"`--method blur`": timing})
    assert any("skipped" in str(cell) for row in rows for cell in row)
    with_deface = end_to_end_rows(64, {"`--method blur`": timing, "deface": timing | {"seconds": 4.0}})
    assert with_deface[0][5] == "2.00x" and with_deface[0][6] == "1.5x: yes"
