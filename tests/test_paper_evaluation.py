"""The paper's evaluation models (configs/evaluation/paper.yaml, configs/evaluate_paper.yaml).

They parse with the paper's values, every value names its source, they build through the CLI offline
from local weight files (random-weight stand-ins of the right architectures, no download attempted)
and score a batch, and without the files and without internet they refuse in one line that names the
option and the file. (Training them is what every protocol run does: tests/test_evaluation.py.)
"""

from __future__ import annotations

import re
import urllib.error
from pathlib import Path

import pytest
import torch

from anonpriv.cli import AnonprivCLI
from printed_config import printed_config
from anonpriv.models.weights import WeightsDownloadError

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"
MODEL = CONFIGS / "evaluation" / "paper.yaml"
COMPOSITE = CONFIGS / "evaluate_paper.yaml"
TINY_DATA = str(CONFIGS / "data" / "synthetic_tiny.yaml")
SOURCE = re.compile(r"#\s*(paper|anonpriv):\s*\S")

R2PLUS1D_FILE = "r2plus1d_18-91a641e6.pth"


@pytest.fixture(scope="module")
def printed() -> dict:
    return printed_config(COMPOSITE)


def test_the_config_has_the_papers_evaluation(printed):
    model = printed["model"]["init_args"]
    assert printed["model"]["class_path"] == "anonpriv.evaluation.ProtocolEvaluation"
    assert model["utility_model"] == "r2plus1d_18" and model["utility_kwargs"] == {"pretrained": "KINETICS400_V1"}
    assert model["attackers"] == ["resnet50"]
    assert model["attacker_kwargs"] == {"resnet50": {"pretrained": "resnet50.tv_in1k", "frame_stride": 1}}
    assert (model["optimizer"], model["lr"]) == ("adamw", 1e-4)
    source = printed["data"]["source"]["init_args"]
    assert (source["num_frames"], source["height"], source["width"]) == (16, 224, 224)
    assert (source["test_clips"], source["test_crop"]) == (5, 0.8)
    assert printed["trainer"]["max_epochs"] == 50


def _value_lines(path: Path) -> dict[str, str]:
    """Key -> line of every line of ``path`` that sets a scalar or list value (class paths aside)."""
    lines = {}
    for line in path.read_text().splitlines():
        body = line.split("#", 1)[0].strip()
        if re.match(r"^-?\s*[A-Za-z_]+:\s*\S", body) and not body.startswith(("class_path:", "- class_path:")):
            lines[body.split(":", 1)[0].strip(" -")] = line
    return lines


def test_every_value_names_its_source():
    for key, line in _value_lines(MODEL).items():
        assert SOURCE.search(line), f"{MODEL.name}: no source for {key}: {line.strip()}"
    composite = _value_lines(COMPOSITE)
    for key in ("num_frames", "frame_stride", "height", "width", "test_clips", "test_crop", "max_epochs"):
        assert re.search(r"#\s*paper:", composite[key]), f"{COMPOSITE.name}: no paper source for {key}"
    text = MODEL.read_text()
    for key in ("attackers", "optimizer", "lr", "frame_stride"):
        assert re.search(rf"^\s*{key}:.*#\s*paper:", text, re.M), key
    # The stand-in for I3D-ResNet-50 says why; docs/protocol.md compares the paper's models with these.
    assert re.search(r"utility_model: r2plus1d_18\s+#\s*anonpriv: the paper's I3D-ResNet-50", text)
    protocol = (ROOT / "docs" / "protocol.md").read_text()
    assert "configs/evaluation/paper.yaml" in protocol and "r2plus1d_18" in protocol and "pytorchvideo" in protocol


@pytest.fixture
def no_downloads(monkeypatch, tmp_path):
    """Every weights download fails as without internet (torchvision's and timm's own loaders, an empty
    torch cache); returns what was asked for."""
    import timm.models._builder as builder
    import torchvision.models._api as api

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    asked = []

    def torchvision_fetch(url, *args, **kwargs):
        asked.append(url)
        raise urllib.error.URLError("[Errno -2] Name or service not known")

    def hub_fetch(model_id, *args, **kwargs):
        asked.append(model_id)
        raise OSError("We couldn't connect to 'https://huggingface.co'.\nCheck your connection.")

    monkeypatch.setattr(api, "load_state_dict_from_url", torchvision_fetch)
    monkeypatch.setattr(builder, "load_state_dict_from_hf", hub_fetch)
    monkeypatch.setattr(builder, "load_state_dict_from_url", torchvision_fetch)
    return asked


@pytest.fixture(scope="module")
def weight_files(tmp_path_factory) -> dict:
    """Random-weight stand-ins of the paper config's models, saved as their real files are."""
    import timm
    from torchvision.models.video import r2plus1d_18

    folder = tmp_path_factory.mktemp("weights")
    torch.manual_seed(0)
    action, attacker = r2plus1d_18(weights=None, num_classes=400), timm.create_model("resnet50", num_classes=1000)
    torch.save(action.state_dict(), folder / R2PLUS1D_FILE)
    torch.save(attacker.state_dict(), folder / "resnet50-0676ba61.pth")
    return {"action": (action, folder / R2PLUS1D_FILE), "attacker": (attacker, folder / "resnet50-0676ba61.pth")}


def test_offline_with_local_files_it_builds_and_scores_a_batch(weight_files, no_downloads, tmp_path):
    action, action_file = weight_files["action"]
    attacker, attacker_file = weight_files["attacker"]
    cli = AnonprivCLI(run=False, args=[
        "--config", str(COMPOSITE), "--data", TINY_DATA, "--data.num_workers", "0",
        "--model.init_args.utility_kwargs", f"{{weights_file: {action_file}}}",
        "--model.init_args.attacker_kwargs", f"{{resnet50: {{weights_file: {attacker_file}}}}}",
        "--trainer.accelerator", "cpu", "--trainer.precision", "32-true", "--trainer.enable_progress_bar", "false",
        "--trainer.logger.init_args.save_dir", str(tmp_path), "--metrics.results_dir", str(tmp_path / "results"),
    ])
    assert no_downloads == []
    protocol = cli.model
    utility, panel = protocol.utility.backbone, protocol.attackers.models
    assert list(panel) == ["resnet50"] and protocol.hparams.lr == 1e-4
    assert torch.equal(utility.stem[0].weight, action.stem[0].weight)  # the file's weights
    assert utility.fc.out_features == protocol.num_actions  # the head replaced
    image_model = panel["resnet50"].image_model
    assert torch.equal(image_model.conv1.weight, attacker.conv1.weight) and image_model.fc.out_features == protocol.num_privacy
    cli.datamodule.setup("test")
    batch = next(iter(cli.datamodule.test_dataloader()))
    with torch.no_grad():
        outputs = protocol.eval().evaluation_outputs(batch)
    assert outputs["action_logits"].shape == (len(batch["id"]), protocol.num_actions)
    assert outputs["privacy_logits"]["resnet50"].shape == (len(batch["id"]), protocol.num_privacy)


def test_offline_without_files_it_refuses_in_one_line_naming_the_option_and_the_file(printed, no_downloads,
                                                                                        weight_files):
    from anonpriv.evaluation import ProtocolEvaluation

    options = dict(printed["model"]["init_args"], num_actions=4, num_privacy=5)
    with pytest.raises(WeightsDownloadError) as error:
        ProtocolEvaluation(**options)
    message = str(error.value)
    assert "\n" not in message and message.startswith("utility model 'r2plus1d_18'")
    assert "weights_file" in message and R2PLUS1D_FILE in message
    # With the action model's file, the attacker's download is the one refused, naming its own file.
    options["utility_kwargs"] = {"weights_file": str(weight_files["action"][1])}
    with pytest.raises(WeightsDownloadError) as error:
        ProtocolEvaluation(**options)
    message = str(error.value)
    assert "\n" not in message and message.startswith("privacy model 'resnet50'")
    assert "weights_file" in message and "timm/resnet50.tv_in1k" in message
    assert no_downloads == [f"https://download.pytorch.org/models/{R2PLUS1D_FILE}", "timm/resnet50.tv_in1k"]


def test_the_cli_prints_the_refusal_as_one_line(no_downloads, capsys):
    from anonpriv.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--config", str(COMPOSITE), "--data", TINY_DATA, "--trainer.accelerator", "cpu",
              "--trainer.precision", "32-true", "--trainer.fast_dev_run", "1"])
    assert exit_info.value.code == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("anonpriv fit: error:")]
    assert len(errors) == 1 and "could not download" in errors[0] and R2PLUS1D_FILE in errors[0]


@pytest.mark.parametrize("name", ["mc3_18", "s3d"])  # r2plus1d_18: above; r3d_18: tests/test_timm_weights.py
def test_torchvision_video_models_load_a_local_kinetics_file(name, tmp_path):
    import torchvision.models.video as video

    from anonpriv.models import create_utility_model

    with torch.device("meta"):  # shapes only: the file's keys must all load
        kinetics = getattr(video, name)(weights=None, num_classes=400)
    path = tmp_path / f"{name}.pth"
    torch.save({k: torch.zeros(v.shape) for k, v in kinetics.state_dict().items()}, path)
    model = create_utility_model(name, 7, {"weights_file": str(path)})
    loaded = {k: v for k, v in model.backbone.state_dict().items() if v.dtype.is_floating_point}
    head = "classifier.1." if name == "s3d" else "fc."
    assert all(bool((v == 0).all()) for k, v in loaded.items() if not k.startswith(head))  # everything but the head
    head_weight = next(v for k, v in loaded.items() if k.startswith(head) and k.endswith("weight"))
    assert head_weight.shape[0] == 7 and bool(head_weight.abs().sum() > 0)  # a fresh head for 7 classes
