"""Pretrained weights at the right scale and by name, offline.

* A 2D timm ViT loaded into the dual-CLS tubelet ViT makes it normalise clips with the weights' own
  ``pretrained_cfg`` mean / std (0.5 / 0.5 for AugReg ViTs, ImageNet's for DeiT), so a static clip
  gives the tokens the 2D model gives the frame at its pretraining scale; a checkpoint keeps that scale.
* Weights by name (``pretrained: true`` or a timm name) go through timm's own download and cache. This
  machine cannot download, so the tests use a local file through timm's
  ``pretrained_cfg_overlay=dict(file=...)`` and, for the by-name path, stub only the final fetch of
  timm's own loader (``load_state_dict_from_hf``) to serve a local file or to fail as an offline fetch
  does. A failure is one line naming the fix (a local file).
* ``hf-hub:`` names: beside a local file they are refused (timm would fetch from the Hub and ignore
  the file); as ``pretrained`` they go to the Hub, explicitly.
* The same for the attackers (timm, ``weights_file`` / ``pretrained``) and R3D-18 (torchvision).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from anonpriv.methods.token_pruning import DualCLSTubeletViT, TokenPruningMethod
from anonpriv.models import create_privacy_model, create_utility_model
from anonpriv.models.weights import IMAGENET_MEAN, IMAGENET_STD, WeightsDownloadError, create_timm_model

ROOT = Path(__file__).resolve().parents[1]
CLIP = (8, 16, 16)
SHAPE = dict(embed_dim=32, depth=2, num_heads=2)


def _vit2d(name: str):
    import timm

    torch.manual_seed(0)
    return timm.create_model(name, pretrained=False, num_classes=0, img_size=16, patch_size=4, **SHAPE)


def _dual(**kwargs) -> DualCLSTubeletViT:
    torch.manual_seed(1)
    options = dict(clip_shape=CLIP, num_actions=3, num_privacy=2, tubelet=(2, 4, 4), prune_blocks=(1,),
                   keep_ratio=0.5, stem="linear", motion_channels=False, **SHAPE)
    options.update(kwargs)
    return DualCLSTubeletViT(**options)


@pytest.fixture
def saved(tmp_path):
    """``name -> (2D model, file)`` for small timm ViTs saved to local files."""
    def save(name: str):
        model = _vit2d(name)
        path = tmp_path / f"{name}.pth"
        torch.save(model.state_dict(), path)
        return model, path
    return save


def _static_clip_tokens(model: DualCLSTubeletViT, frame: torch.Tensor) -> torch.Tensor:
    clip = frame.unsqueeze(2).repeat(1, 1, CLIP[0], 1, 1)
    return model.embed(clip)[:, :16]  # the first time slot's 4 x 4 tubelets


@pytest.mark.parametrize(("name", "mean", "std"), [
    ("vit_tiny_patch16_224", (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),  # AugReg: 0.5 / 0.5
    ("deit_tiny_patch16_224", IMAGENET_MEAN, IMAGENET_STD),  # DeiT: ImageNet statistics
])
def test_a_loaded_vit_sees_clips_at_its_pretraining_scale(saved, name, mean, std):
    vit2d, path = saved(name)
    model = _dual()
    assert model.embed.mean.flatten().tolist() == [0.5] * 3 and model.embed.std.flatten().tolist() == [0.25] * 3
    report = model.load_pretrained_vit(path, name)
    assert report["mean"] == pytest.approx(mean) and report["std"] == pytest.approx(std)
    assert torch.allclose(model.embed.mean.flatten(), torch.tensor(mean))
    assert torch.allclose(model.embed.std.flatten(), torch.tensor(std))
    frame = torch.rand(1, 3, 16, 16)
    normalised = (frame - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    expected = vit2d.patch_embed(normalised)  # what the 2D model sees: (1, 16, D)
    assert torch.allclose(_static_clip_tokens(model, frame), expected, atol=1e-5)


def test_the_method_records_the_weights_scale_so_a_checkpoint_keeps_it(saved):
    _, path = saved("deit_tiny_patch16_224")
    options = dict(num_actions=3, num_privacy=2, clip_shape=list(CLIP), tubelet=[2, 4, 4], prune_blocks=[1],
                   stem="linear", motion_channels=False, attention_map_clips=0, **SHAPE)
    method = TokenPruningMethod(pretrained_file=str(path), pretrained_model="deit_tiny_patch16_224", **options)
    assert method.hparams.input_mean == pytest.approx(IMAGENET_MEAN)
    assert method.hparams.input_std == pytest.approx(IMAGENET_STD)
    # Rebuilt as load_method does (the weights source dropped, the checkpoint's weights loaded after).
    rebuilt_args = {k: v for k, v in method.hparams.items() if k in options or k.startswith("input_")}
    rebuilt = TokenPruningMethod(**rebuilt_args)
    assert torch.allclose(rebuilt.vit.embed.mean, method.vit.embed.mean)
    assert torch.allclose(rebuilt.vit.embed.std, method.vit.embed.std)
    # The tiny default (no 2D weights) keeps its 0.5 / 0.25 and records nothing new.
    tiny = TokenPruningMethod(**options)
    assert tiny.hparams.input_mean is None and tiny.vit.embed.std.flatten().tolist() == [0.25] * 3
    # An explicit scale wins over the weights'.
    explicit = TokenPruningMethod(pretrained_file=str(path), pretrained_model="deit_tiny_patch16_224",
                                  input_mean=[0.4, 0.4, 0.4], input_std=[0.2, 0.2, 0.2], **options)
    assert explicit.vit.embed.mean.flatten().tolist() == pytest.approx([0.4] * 3)
    assert explicit.hparams.input_std == pytest.approx([0.2] * 3)


@pytest.fixture
def hub(monkeypatch):
    """timm's own by-name loader with its final fetch served from local files (``serve[hub_id] = path``)
    or failing like an offline fetch. Records the hub ids asked for."""
    import timm.models._builder as builder

    state = {"serve": {}, "asked": []}

    def fetch(model_id, *args, **kwargs):
        state["asked"].append(model_id)
        if model_id in state["serve"]:
            return torch.load(state["serve"][model_id], map_location="cpu", weights_only=True)
        raise OSError("An error happened while trying to locate the file on the Hub and we cannot find the "
                      "requested files in the local cache.\nPlease check your connection and try again.")

    monkeypatch.setattr(builder, "load_state_dict_from_hf", fetch)
    return state


def test_pretrained_true_loads_weights_by_name_through_timms_loader(saved, hub):
    vit2d, path = saved("deit_tiny_patch16_224")
    hub["serve"]["timm/deit_tiny_patch16_224.fb_in1k"] = path
    model = _dual()
    report = model.load_pretrained_vit(None, "deit_tiny_patch16_224", pretrained=True)
    assert hub["asked"] == ["timm/deit_tiny_patch16_224.fb_in1k"] and report["file"] is None
    for ours, theirs in zip(model.blocks.state_dict().values(), vit2d.blocks.state_dict().values()):
        assert torch.equal(ours, theirs)
    assert torch.allclose(model.embed.std.flatten(), torch.tensor(IMAGENET_STD))
    # A timm name (architecture and tag) as `pretrained` asks for that tag's weights and scale.
    hub["serve"]["timm/vit_tiny_patch16_224.augreg_in21k_ft_in1k"] = saved("vit_tiny_patch16_224")[1]
    other = _dual()
    report = other.load_pretrained_vit(None, "ignored_when_pretrained_names_a_model",
                                       pretrained="vit_tiny_patch16_224.augreg_in21k_ft_in1k")
    assert hub["asked"][-1] == "timm/vit_tiny_patch16_224.augreg_in21k_ft_in1k"
    assert report["source"] == "vit_tiny_patch16_224.augreg_in21k_ft_in1k" and report["std"] == [0.5] * 3


def test_a_failed_download_is_one_line_naming_the_local_file_fix(hub):
    with pytest.raises(WeightsDownloadError) as error:
        _dual().load_pretrained_vit(None, "deit_tiny_patch16_224", pretrained=True)
    message = str(error.value)
    assert "\n" not in message
    assert "deit_tiny_patch16_224" in message and "pretrained_file" in message and "local file" in message
    assert isinstance(error.value, ValueError)  # the CLI prints it as a one-line configuration error


def test_the_cli_prints_a_failed_download_as_one_line(hub, capsys):
    from anonpriv.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--config", str(ROOT / "configs" / "token_pruning.yaml"),
              "--data", str(ROOT / "configs" / "data" / "synthetic_tiny.yaml"),
              "--model.init_args.pretrained_file", "null", "--model.init_args.pretrained", "true",
              "--model.init_args.pretrained_model", "vit_tiny_patch16_224", "--trainer.fast_dev_run", "1"])
    assert exit_info.value.code == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("anonpriv fit: error:")]
    assert len(err) == 1 and "could not download" in err[0] and "pretrained_file" in err[0]


def test_file_and_name_together_are_refused(saved):
    _, path = saved("vit_tiny_patch16_224")
    with pytest.raises(ValueError, match="keep one"):
        TokenPruningMethod(num_actions=3, num_privacy=2, clip_shape=list(CLIP), pretrained_file=str(path),
                           pretrained=True)


def test_hf_hub_names_are_explicit(saved, monkeypatch):
    _, path = saved("vit_tiny_patch16_224")
    # Beside a local file: refused, naming the plain timm name that would load the file.
    with pytest.raises(ValueError, match="'vit_tiny_patch16_224.augreg_in21k_ft_in1k'") as error:
        _dual().load_pretrained_vit(path, "hf-hub:timm/vit_tiny_patch16_224.augreg_in21k_ft_in1k")
    assert "ignore" in str(error.value)
    # As `pretrained`: timm fetches the model's config (then weights) from the Hub; offline, one line.
    import timm.models._factory as factory

    asked = []

    def offline(model_id, *args, **kwargs):
        asked.append(model_id)
        raise OSError("cannot reach huggingface.co\nretrying")

    monkeypatch.setattr(factory, "load_model_config_from_hf", offline)
    with pytest.raises(WeightsDownloadError, match="hf-hub:timm/vit_tiny"):
        create_timm_model("vit_tiny_patch16_224", pretrained="hf-hub:timm/vit_tiny_patch16_224.augreg_in21k_ft_in1k")
    assert asked == ["timm/vit_tiny_patch16_224.augreg_in21k_ft_in1k"]


def test_unknown_names_and_untrained_tags_get_clear_errors():
    with pytest.raises(ValueError, match="timm has no model"):
        create_timm_model("no_such_model_xyz", pretrained=True)
    with pytest.raises(FileNotFoundError, match="never downloaded"):
        create_timm_model("resnet18", weights_file="/nonexistent/resnet18.pth")


# -- attackers and utility models ---------------------------------------------------------------
def _normalize(model):
    return [round(v, 6) for v in model.normalize.mean.tolist()], [round(v, 6) for v in model.normalize.std.tolist()]


def test_attackers_take_the_weights_scale_from_pretrained_cfg(tmp_path, hub):
    import timm

    torch.manual_seed(0)
    vit = timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=7, img_size=32, patch_size=4,
                            embed_dim=32, depth=1, num_heads=2)
    path = tmp_path / "vit.pth"
    torch.save(vit.state_dict(), path)
    kwargs = dict(model_name="vit_tiny_patch16_224", weights_file=str(path),
                  model_kwargs=dict(img_size=32, patch_size=4, embed_dim=32, depth=1, num_heads=2))
    attacker = create_privacy_model("timm_frames", 5, kwargs)
    assert _normalize(attacker) == ([0.5] * 3, [0.5] * 3)  # AugReg weights: 0.5 / 0.5, not ImageNet's
    assert torch.equal(attacker.image_model.blocks[0].attn.qkv.weight, vit.blocks[0].attn.qkv.weight)
    assert attacker.image_model.head.out_features == 5  # timm replaced the classifier
    # Without weights nothing changes: ImageNet statistics, as before.
    assert _normalize(create_privacy_model("resnet18", 5)) == (list(IMAGENET_MEAN), list(IMAGENET_STD))
    assert _normalize(create_privacy_model("vit_micro", 5)) == (list(IMAGENET_MEAN), list(IMAGENET_STD))
    # By name through timm's loader (its fetch stubbed), and a failed fetch in one line naming weights_file.
    resnet = timm.create_model("resnet18", pretrained=False, num_classes=1000)
    torch.save(resnet.state_dict(), tmp_path / "resnet18.pth")
    hub["serve"]["timm/resnet18.a1_in1k"] = tmp_path / "resnet18.pth"
    attacker = create_privacy_model("resnet18", 5, {"pretrained": True})
    assert torch.equal(attacker.image_model.conv1.weight, resnet.conv1.weight)
    assert attacker.image_model.fc.out_features == 5
    with pytest.raises(WeightsDownloadError, match="weights_file") as error:
        create_privacy_model("resnet50", 5, {"pretrained": True})
    assert "\n" not in str(error.value)


def test_r3d_18_weights_by_name_through_torchvision(tmp_path, monkeypatch):
    import urllib.error

    import torchvision.models._api as api
    from torchvision.models.video import r3d_18

    torch.manual_seed(0)
    kinetics = r3d_18(weights=None, num_classes=400)
    path = tmp_path / "r3d_18.pth"
    torch.save(kinetics.state_dict(), path)
    asked = []

    def fetch(url, *args, **kwargs):
        asked.append(url)
        return torch.load(path, map_location="cpu", weights_only=True)

    monkeypatch.setattr(api, "load_state_dict_from_url", fetch)
    model = create_utility_model("r3d_18", 6, {"pretrained": True})
    assert asked == ["https://download.pytorch.org/models/r3d_18-b3b3357e.pth"]
    assert torch.equal(model.backbone.stem[0].weight, kinetics.stem[0].weight)
    assert model.backbone.fc.out_features == 6
    assert _normalize(model)[0] == pytest.approx([0.43216, 0.394666, 0.37645])  # the weights' Kinetics statistics
    with pytest.raises(ValueError, match="KINETICS400_V1"):
        create_utility_model("r3d_18", 6, {"pretrained": "NO_SUCH_WEIGHTS"})

    def offline(url, *args, **kwargs):
        raise urllib.error.URLError("[Errno -2] Name or service not known")

    monkeypatch.setattr(api, "load_state_dict_from_url", offline)
    with pytest.raises(WeightsDownloadError, match="weights_file") as error:
        create_utility_model("r3d_18", 6, {"pretrained": True})
    assert "\n" not in str(error.value)


def test_a_checkpoint_of_a_downloaded_start_loads_offline_at_the_same_scale(saved, hub, tmp_path):
    from anonpriv.methods import load_method

    _, path = saved("deit_tiny_patch16_224")
    hub["serve"]["timm/deit_tiny_patch16_224.fb_in1k"] = path
    method = TokenPruningMethod(num_actions=3, num_privacy=2, clip_shape=list(CLIP), tubelet=[2, 4, 4],
                                prune_blocks=[1], stem="linear", motion_channels=False, attention_map_clips=0,
                                pretrained=True, pretrained_model="deit_tiny_patch16_224", **SHAPE)
    assert method.hparams.pretrained is False  # the checkpoint records that nothing is to be fetched again
    checkpoint = tmp_path / "method.ckpt"
    torch.save({"hyper_parameters": dict(method.hparams), "state_dict": method.state_dict(),
                "anonpriv_method": "anonpriv.methods.token_pruning.TokenPruningMethod"}, checkpoint)
    hub["serve"].clear()  # offline from now on: loading must not fetch again
    asked = len(hub["asked"])
    loaded = load_method(checkpoint)
    assert len(hub["asked"]) == asked
    assert torch.allclose(loaded.vit.embed.std.flatten(), torch.tensor(IMAGENET_STD))
    video = torch.rand(1, 3, *CLIP)
    assert torch.equal(loaded.anonymize(video), method.eval().anonymize(video))


def test_local_dir_names_read_config_and_weights_from_a_folder(tmp_path):
    import timm
    from timm.models._hub import save_for_hf

    torch.manual_seed(0)
    shape = dict(img_size=32, patch_size=8, embed_dim=32, depth=1, num_heads=2)
    model = timm.create_model("deit_tiny_patch16_224", pretrained=False, **shape)
    save_for_hf(model, tmp_path / "deit")
    loaded = create_timm_model("unused", pretrained=f"local-dir:{tmp_path / 'deit'}", num_classes=0, **shape)
    assert torch.equal(loaded.blocks[0].attn.qkv.weight, model.blocks[0].attn.qkv.weight)
    with pytest.raises(FileNotFoundError, match="config.json"):
        create_timm_model("unused", pretrained=f"local-dir:{tmp_path / 'missing'}", num_classes=0)


def test_cli_test_of_an_explicit_checkpoint_does_not_fetch_the_start_again(tmp_path, hub):
    """Lightning re-applies a checkpoint's hyperparameters over the command line on
    ``test --ckpt_path FILE``: the recorded ``pretrained: false`` keeps that offline."""
    import timm

    from anonpriv.cli import AnonprivCLI

    torch.manual_seed(0)
    vit = timm.create_model("deit_tiny_patch16_224", pretrained=False, num_classes=0, img_size=32, patch_size=8,
                            embed_dim=64, depth=4, num_heads=4)
    torch.save(vit.state_dict(), tmp_path / "deit.pth")
    hub["serve"]["timm/deit_tiny_patch16_224.fb_in1k"] = tmp_path / "deit.pth"
    common = ["--config", str(ROOT / "configs" / "token_pruning.yaml"),
              "--data", str(ROOT / "configs" / "data" / "synthetic_tiny.yaml"),
              "--model.init_args.pretrained_file", "null", "--model.init_args.pretrained", "true",
              "--model.init_args.pretrained_model", "deit_tiny_patch16_224", "--model.init_args.attention_map_clips", "0",
              "--trainer.accelerator", "cpu", "--trainer.enable_progress_bar", "false",
              "--trainer.enable_model_summary", "false", "--trainer.logger.init_args.save_dir", str(tmp_path / "runs")]
    AnonprivCLI(args=["fit", *common, "--trainer.max_steps", "1", "--trainer.limit_val_batches", "0",
                      "--metrics.results_dir", str(tmp_path / "fit")])
    checkpoint = next((tmp_path / "runs").glob("**/last.ckpt"))
    hub["serve"].clear()  # offline
    asked = len(hub["asked"])
    cli = AnonprivCLI(args=["test", *common, "--ckpt_path", str(checkpoint), "--metrics.results_dir", str(tmp_path / "test")])
    assert len(hub["asked"]) == asked and (tmp_path / "test" / "results.json").is_file()
    assert torch.allclose(cli.model.vit.embed.std.flatten(), torch.tensor(IMAGENET_STD))  # the recorded scale
