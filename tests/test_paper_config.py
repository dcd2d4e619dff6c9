"""The paper's setting (configs/token_pruning_paper.yaml and its method file).

It parses with the paper's values (docs/paper.md), every value names its source, the model it
describes builds at ViT-B / 16 x 224 x 224 on the meta device with the paper's token counts per
stage, its start goes through timm's download by name, and the whole config runs end to end offline
(fast_dev_run, sizes shrunk, on the tiny synthetic data).
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
import torch

from anonpriv.cli import AnonprivCLI
from printed_config import printed_config

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"
PAPER_DOC = ROOT / "docs" / "paper.md"
PAPER = CONFIGS / "token_pruning_paper.yaml"
METHOD = CONFIGS / "method" / "token_pruning_paper.yaml"
TINY_DATA = str(CONFIGS / "data" / "synthetic_tiny.yaml")


@pytest.fixture(scope="module")
def printed() -> dict:
    """``anonpriv fit --config configs/token_pruning_paper.yaml --print_config``, parsed."""
    return printed_config(PAPER)


def test_print_config_shows_the_papers_values(printed):
    model = printed["model"]["init_args"]
    assert printed["model"]["class_path"] == "anonpriv.methods.token_pruning.TokenPruningMethod"
    expected = {
        "tubelet": [2, 16, 16], "embed_dim": 768, "depth": 12, "num_heads": 12, "mlp_ratio": 4.0,
        "stem": "linear", "motion_channels": False,
        "drop_rate": 0.2, "attn_drop_rate": 0.1, "drop_path_rate": 0.2,
        "pretrained": True, "pretrained_model": "vit_base_patch16_224.augreg_in21k_ft_in1k", "pretrained_file": None,
        "prune_blocks": [3, 6, 9], "keep_ratio": 0.9, "keep_ratio_start": 0.9, "lambda_priv": 0.5,
        "privacy_cls_gradient": "reversal", "reversal_weight": 1.0, "stage_supervision": 0.0,
        "straight_through": False, "adversarial_loss": "none", "act_cls_weight": 1.0, "priv_cls_weight": 1.0,
        "optimizer": "adamw", "lr": 1e-4, "anonymizer_lr": 1e-4, "weight_decay": 0.05, "warmup_epochs": 5,
        "schedule": "cosine",
    }
    assert {k: model[k] for k in expected} == expected
    source = printed["data"]["source"]["init_args"]
    assert (source["num_frames"], source["height"], source["width"], source["frame_stride"]) == (16, 224, 224, 2)
    assert (source["test_clips"], source["test_crop"], list(source["train_crop_scale"])) == (5, 0.8, [0.6, 1.0])
    assert printed["data"]["batch_size"] == 8
    trainer = printed["trainer"]
    assert (trainer["accelerator"], trainer["precision"], trainer["max_epochs"]) == ("gpu", "bf16-mixed", 80)


def _value_lines(path: Path) -> list[str]:
    """The lines of ``path`` that set a scalar or list value (not comments, mappings or class paths)."""
    lines = []
    for line in path.read_text().splitlines():
        body = line.split("#", 1)[0].strip()
        if re.match(r"^-?\s*[A-Za-z_]+:\s*\S", body) and not body.startswith(("class_path:", "- class_path:")):
            lines.append(line)
    return lines


#: A value's comment starts with its source (docs/paper.md, "How anonpriv maps onto it"): the paper, the
#: authors' public code where the paper is silent, or anonpriv's own choice with its reason.
SOURCE = re.compile(r"#\s*(paper|authors' code|anonpriv):\s*\S")


def _sources(path: Path, every: bool = True) -> dict[str, str]:
    """Each value line's key -> the source its comment names (``paper``, ``authors' code``, ``anonpriv``).
    ``every``: fail on a value line that names none (else skip it)."""
    sources = {}
    for line in _value_lines(path):
        found = SOURCE.search(line)
        assert found or not every, f"{path.name}: no source for: {line.strip()}"
        if found:
            sources[line.split(":", 1)[0].strip(" -")] = found.group(1)
    return sources


def test_every_paper_value_names_its_source():
    method = _sources(METHOD)
    assert len(method) > 30
    # The regularisation is the authors' code's (the paper is silent); the rest of the recipe the paper's.
    assert {k: method[k] for k in ("drop_rate", "attn_drop_rate", "drop_path_rate")} == dict.fromkeys(
        ("drop_rate", "attn_drop_rate", "drop_path_rate"), "authors' code")
    for key in ("tubelet", "embed_dim", "depth", "num_heads", "prune_blocks", "keep_ratio", "lambda_priv",
                "privacy_cls_gradient", "optimizer", "lr", "weight_decay", "warmup_epochs", "schedule"):
        assert method[key] == "paper", key
    # The composite: every dataset, batch and training value the paper fixes names the paper.
    paper = {line.split(":", 1)[0].strip(): line for line in _value_lines(PAPER)}
    for key in ("num_frames", "frame_stride", "height", "width", "train_crop_scale", "test_clips", "test_crop",
                "batch_size", "precision", "max_epochs"):
        assert re.search(r"#\s*paper:", paper[key]), f"no paper source for {key}"


def test_docs_page_explains_every_value_the_paper_or_its_code_sets():
    """docs/paper.md, the page the markers refer to, names every option they mark."""
    doc = PAPER_DOC.read_text()
    assert "## Regularisation" in doc and "the paper does not mention regularisation" in doc.lower()
    for path in (METHOD, PAPER):
        for key, source in _sources(path, every=path is METHOD).items():
            if source in ("paper", "authors' code"):
                assert f"`{key}`" in doc, f"{path.name}: {key} ({source}) is not explained in docs/paper.md"



def _paper_kwargs(printed: dict) -> dict:
    kwargs = dict(printed["model"]["init_args"])
    kwargs.update(pretrained=False, clip_shape=[16, 224, 224], num_actions=101, num_privacy=5)
    return kwargs


def test_paper_model_builds_on_meta_with_the_papers_token_counts(printed):
    import timm

    from anonpriv.methods.token_pruning import TokenPruningMethod

    with torch.device("meta"):
        method = TokenPruningMethod(**_paper_kwargs(printed)).eval()
        reference = timm.create_model("vit_base_patch16_224", pretrained=False, num_classes=0)
    vit = method.vit
    assert vit.grid == (8, 14, 14) and vit.num_tubelets == 1568  # 16x224x224 in 2x16x16 tubelets
    assert vit.prune_blocks == (3, 6, 9)
    assert vit.kept_count_schedule() == [1412, 1272, 1146]  # ceil(0.9 n) at each stage
    # The transformer is ViT-B/16's, block for block.
    for ours, theirs in zip(vit.blocks.state_dict().items(), reference.blocks.state_dict().items()):
        assert ours[0] == theirs[0] and ours[1].shape == theirs[1].shape
    assert len(vit.blocks) == 12 and vit.pos_embed.shape == (1, 1568, 768)

    # Tokens that reach each pruning block's MLP: 2 CLS + kept + 1 fused token.
    seen = []
    for block in (3, 6, 9):
        vit.blocks[block - 1].mlp.register_forward_hook(lambda module, args, out: seen.append(args[0].shape[1]))
    with torch.no_grad():
        out = method.anonymizer_outputs(torch.empty(1, 3, 16, 224, 224, device="meta"))
    assert seen == [2 + 1412 + 1, 2 + 1272 + 1, 2 + 1146 + 1]
    assert out["tokens"].shape == (1, 1146 + 1, 768) and out["token_ids"].shape == (1, 1147)
    assert out["tubelet_mask"].shape == (1, 8, 14, 14) and out["video"].shape == (1, 3, 16, 224, 224)
    assert 1146 / 1568 == pytest.approx(0.73, abs=0.005)  # "about 73% of tubelets kept"
    assert out["act_cls_logits"].shape == (1, 101) and out["priv_cls_logits"].shape == (1, 5)


def test_paper_start_is_imagenet_vit_b_by_name_through_timm(printed, monkeypatch):
    """``pretrained: true`` asks timm's own download (the Hub, here unreachable: stubbed to fail) for
    the named ViT-B weights, and the failure is one line naming the local-file fix."""
    import timm.models._builder as builder

    from anonpriv.methods.token_pruning import TokenPruningMethod
    from anonpriv.models.weights import WeightsDownloadError

    asked = []

    def offline(model_id, *args, **kwargs):
        asked.append(model_id)
        raise OSError("We couldn't connect to 'https://huggingface.co'.\nCheck your connection.")

    monkeypatch.setattr(builder, "load_state_dict_from_hf", offline)
    kwargs = dict(_paper_kwargs(printed), pretrained=True)
    with torch.device("meta"), pytest.raises(WeightsDownloadError) as error:
        TokenPruningMethod(**kwargs)
    assert asked == ["timm/vit_base_patch16_224.augreg_in21k_ft_in1k"]
    message = str(error.value)
    assert "\n" not in message and "pretrained_file" in message and "local file" in message


def test_paper_config_runs_end_to_end_offline_with_its_sizes_shrunk(tmp_path):
    """Every option of the paper's config, fit and test for one batch on CPU: only the width (and the
    monitors) shrunk, no download, the tiny synthetic data instead of UCF101."""
    common = [
        "--config", str(PAPER), "--data", TINY_DATA,
        "--data.num_workers", "0", "--data.pin_memory", "false",
        "--model.init_args.pretrained", "false",
        "--model.init_args.embed_dim", "48",  # 12 heads of 4 (ViT-B: 12 of 64)
        "--model.init_args.utility_model", "c3d_tiny", "--model.init_args.privacy_model", "frame_cnn_tiny",
        "--trainer.accelerator", "cpu", "--trainer.precision", "32-true", "--trainer.fast_dev_run", "1",
        "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false",
        "--trainer.logger.init_args.save_dir", str(tmp_path), "--metrics.results_dir", str(tmp_path / "results"),
    ]
    cli = AnonprivCLI(args=["fit", *common])
    method = cli.model
    assert method.hparams.privacy_cls_gradient == "reversal" and method.vit.prune_blocks == (3, 6, 9)
    assert method.current_keep_ratio() == 0.9  # no annealing
    AnonprivCLI(args=["test", *common])
    results = json.loads((tmp_path / "results" / "results.json").read_text())
    assert 0.0 <= results["top1"] <= 1.0 and set(results["positive_rate"]) == set(method.privacy_names)
    assert not math.isnan(results["positive_rate"][method.privacy_names[0]])
