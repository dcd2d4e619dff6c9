"""The pretraining stage: the exported file round-trips into the token-pruning method, refuses other
ViT shapes, resamples position embeddings for other clip sizes, and `anonpriv pretrain` runs."""

from pathlib import Path

import pytest
import torch

from anonpriv.methods.token_pruning import TokenPruningMethod
from anonpriv.methods.token_pruning.model import DualCLSTubeletViT
from anonpriv.methods.token_pruning.pretrained_file import (
    is_pretrained_file,
    load_pretrained,
    resample_position_embedding,
    resolve_weights_file,
    save_pretrained,
)

ACTIONS = ["a", "b", "c"]
ATTRIBUTES = ["face", "gender"]


def tiny_vit(clip_shape=(8, 32, 32), num_actions=3, **kwargs):
    torch.manual_seed(kwargs.pop("seed", 0))
    args = dict(tubelet=(4, 8, 8), embed_dim=32, depth=2, num_heads=2, prune_blocks=(2,), keep_ratio=0.5,
                stem="linear", motion_channels="magnitude") | kwargs
    return DualCLSTubeletViT(clip_shape, num_actions, len(ATTRIBUTES), **args)


def test_saved_backbone_loads_into_the_method_with_its_heads(tmp_path):
    source = tiny_vit(seed=1)
    path = save_pretrained(source, tmp_path / "vit.pt", ACTIONS, ATTRIBUTES, metrics={"val/top1": 0.9})
    assert is_pretrained_file(path) and path.stat().st_size < 2_000_000
    method = TokenPruningMethod(num_actions=3, num_privacy=2, clip_shape=[8, 32, 32], action_names=ACTIONS,
                                privacy_names=ATTRIBUTES, embed_dim=32, depth=2, num_heads=2, prune_blocks=[2],
                                pretrained_file=str(path), attention_map_clips=0)
    for key, value in source.state_dict().items():
        assert torch.equal(method.vit.state_dict()[key], value), key
    assert method.pretrained_report["heads_loaded"] == ["act_head", "priv_head"]
    assert method.pretrained_report["metrics"] == {"val/top1": pytest.approx(0.9)}


def test_heads_stay_fresh_when_the_labels_differ(tmp_path):
    path = save_pretrained(tiny_vit(seed=1), tmp_path / "vit.pt", ACTIONS, ATTRIBUTES)
    target = tiny_vit(num_actions=2, seed=2)
    fresh_head = target.act_head.weight.clone()
    report = load_pretrained(target, path, ["a", "b"], ATTRIBUTES)
    assert report["heads_loaded"] == ["priv_head"]
    assert torch.equal(target.act_head.weight, fresh_head)


def test_another_vit_shape_is_refused_with_the_differences(tmp_path):
    path = save_pretrained(tiny_vit(), tmp_path / "vit.pt", ACTIONS, ATTRIBUTES)
    with pytest.raises(ValueError, match=r"another ViT shape \(embed_dim: file 32 vs model 48"):
        load_pretrained(tiny_vit(embed_dim=48), path, ACTIONS, ATTRIBUTES)
    with pytest.raises(ValueError, match="motion_channels: file 'magnitude' vs model 'signed'"):
        load_pretrained(tiny_vit(motion_channels="signed"), path, ACTIONS, ATTRIBUTES)


def test_other_clip_sizes_get_resampled_position_embeddings(tmp_path):
    source = tiny_vit(clip_shape=(8, 32, 32))
    path = save_pretrained(source, tmp_path / "vit.pt", ACTIONS, ATTRIBUTES)
    target = tiny_vit(clip_shape=(16, 64, 64))
    report = load_pretrained(target, path, ACTIONS, ATTRIBUTES)
    assert report["resampled_grid"] == ([2, 4, 4], [4, 8, 8])
    assert target.pos_embed.shape == (1, 4 * 8 * 8, 32)
    assert torch.equal(target.blocks[0].attn.qkv.weight, source.blocks[0].attn.qkv.weight)


def test_resampling_a_constant_embedding_keeps_it_and_same_grid_is_identity():
    constant = torch.ones(1, 2 * 3 * 3, 4) * torch.arange(4.0)
    assert torch.allclose(resample_position_embedding(constant, [2, 3, 3], [4, 6, 5]),
                          torch.ones(1, 4 * 6 * 5, 4) * torch.arange(4.0))
    values = torch.randn(1, 2 * 3 * 3, 4)
    assert torch.allclose(resample_position_embedding(values, [2, 3, 3], [2, 3, 3]), values)


def test_builtin_names_resolve_to_the_shipped_folder_and_missing_ones_say_how_to_make_them():
    assert resolve_weights_file("anonpriv:dual_cls_vit_tiny").name == "dual_cls_vit_tiny.pt"
    with pytest.raises(FileNotFoundError, match="no shipped weights 'anonpriv:nope'.*make pretrain"):
        resolve_weights_file("anonpriv:nope")
    assert resolve_weights_file("some/file.pth") == Path("some/file.pth")


def test_shipped_weights_match_the_method_config():
    """The committed file loads into the default config's ViT with both heads (make pretrain remakes it)."""
    path = resolve_weights_file("anonpriv:dual_cls_vit_tiny")
    payload = torch.load(path, weights_only=True)
    assert path.stat().st_size < 3_000_000
    assert payload["geometry"]["clip_shape"] == [16, 64, 64] and payload["geometry"]["tubelet"] == [4, 8, 8]
    assert payload["metrics"]["val/top1"] > 0.5 and payload["metrics"]["val/cmap"] > 0.7


def test_pretrain_command_trains_and_exports(tmp_path):
    from anonpriv.cli import main

    out = tmp_path / "vit.pt"
    main(["pretrain", "--config", "configs/pretrain.yaml", "--trainer.max_epochs", "2",
          "--trainer.logger", "false", "--trainer.enable_progress_bar", "false",
          "--trainer.default_root_dir", str(tmp_path),
          "--data.source.init_args.num_frames", "8", "--data.source.init_args.height", "32",
          "--data.source.init_args.width", "32", "--data.source.init_args.num_train", "8",
          "--data.source.init_args.num_val", "8", "--data.batch_size", "4", "--model.export_file", str(out)])
    payload = torch.load(out, weights_only=True)
    assert payload["geometry"]["clip_shape"] == [8, 32, 32]
    assert set(payload["metrics"]) >= {"val/top1", "val/cmap"}


def test_fresh_clips_need_the_loader_rebuilt_each_epoch(tmp_path):
    from anonpriv.cli import main

    with pytest.raises(ValueError, match="reload_dataloaders_every_n_epochs: 1"):
        main(["pretrain", "--config", "configs/pretrain.yaml", "--trainer.max_epochs", "1",
              "--trainer.logger", "false", "--trainer.reload_dataloaders_every_n_epochs", "0",
              "--trainer.default_root_dir", str(tmp_path),
              "--data.source.init_args.num_frames", "8", "--data.source.init_args.height", "32",
              "--data.source.init_args.width", "32", "--data.source.init_args.num_train", "8",
              "--data.source.init_args.num_val", "4", "--data.batch_size", "4",
              "--model.export_file", str(tmp_path / "x.pt")])
