"""``anonpriv sweep`` end to end on the paper's sweep (configs/sweep/paper.yaml) shrunk to tiny sizes.

Fake VP-UCF, VP-HMDB and PA-HMDB51 trees in the real layouts (class folders of short PyAV videos, the
official split lists, the paper's VP-UCF label pickle, its ``File Path,Array Values`` CSV for VP-HMDB,
PA-HMDB51's per-class JSON) are swept with every row of paper.yaml, one seed, one epoch and tiny models:
Table 1 of all three datasets and Table 2 in both directions must be written with every row. A transfer
between clips of different sizes must stop with one line naming both shapes, before fresh models train.
"""

from __future__ import annotations

import csv
import pickle
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from sweep_files import CONFIGS, load_sweep, tiny_sweep, write_sweep
from test_real_splits import build_hmdb, build_ucf, write_pa_folder

from anonpriv.sweep.cli import main as sweep_main
from anonpriv.sweep.config import load_sweep_config
from anonpriv.sweep.execute import execute_job
from anonpriv.sweep.launchers import LocalLauncher
from anonpriv.sweep.plan import build_plan
from anonpriv.sweep.report import write_reports
from anonpriv.sweep.runner import run_plan

ATTRIBUTES = 5
DATASETS = ("vp_ucf", "vp_hmdb", "pa_hmdb51")
TRANSFERS = ("vp_ucf_to_vp_hmdb", "vp_hmdb_to_vp_ucf")
# Tiny clips for every dataset: 4 frames of 16 x 16, one test clip, no workers.
TINY_DATA = {"source.init_args.num_frames": 4, "source.init_args.height": 16, "source.init_args.width": 16,
             "source.init_args.test_clips": 1, "batch_size": 4, "num_workers": 0, "pin_memory": False}
TINY_MODELS = {"utility_model": "c3d_tiny", "privacy_model": "frame_cnn_tiny"}
# The paper's ViT-B token pruning at a tiny shape: 2 x 8 x 8 tubelets of 4 x 16 x 16 clips (8 tokens).
TINY_TOKEN_PRUNING = {"tubelet": [2, 8, 8], "embed_dim": 16, "depth": 2, "num_heads": 2, "prune_blocks": [1],
                      "pretrained": False, "warmup_epochs": 0}
FAST_TRAINER = {"limit_val_batches": 0, "num_sanity_val_steps": 0, "log_every_n_steps": 1}


def bits(key: str) -> list[int]:
    """Labels that differ from video to video (and include positives and negatives of every attribute)."""
    code = sum(map(ord, key)) * 2654435761
    return [(code >> (3 * i + 1)) & 1 for i in range(ATTRIBUTES)]


@pytest.fixture(scope="module")
def trees(tmp_path_factory) -> dict[str, Path]:
    """UCF101 and HMDB51 in their layouts with the paper's label files, and PA-HMDB51's JSON folder."""
    base = tmp_path_factory.mktemp("paper_data")
    ucf, hmdb = base / "ucf101", base / "hmdb51"
    listed = build_ucf(ucf)
    # VP-UCF as the paper's code ships it: "Class/v_X.mp4" -> int64 (1, 5), while the videos are .avi.
    pickle_file = base / "ucf101_privacy_attribute_label.pickle"
    pickle_file.write_bytes(pickle.dumps({f"{v}.mp4": np.array([bits(v)], dtype=np.int64)
                                          for v in listed["train"] + listed["test"]}))
    videos = build_hmdb(hmdb)
    # VP-HMDB in the paper code's CSV schema (its loader's, not shipped): File Path,Array Values.
    csv_file = base / "hmdb51_privacy_attribute_label.csv"
    rows = [f"{v}.avi,[[{' '.join(map(str, bits(v)))}]]" for v in videos["train"] + videos["test"] + videos["unused"]]
    csv_file.write_text("File Path,Array Values\n" + "\n".join(rows) + "\n")
    write_pa_folder(base / "PrivacyAttributes")
    return {"ucf": ucf, "hmdb": hmdb, "pickle": pickle_file, "csv": csv_file, "pa": base / "PrivacyAttributes"}


def tiny_paper_sweep(out: Path, trees: dict[str, Path]) -> tuple[dict, list[str]]:
    """configs/sweep/paper.yaml with the fake trees, one seed, one epoch and tiny models; every row kept
    that can run here (the names of those left out, with why, are returned)."""
    config = load_sweep("paper")
    roots = {"vp_ucf": {"source.init_args.root": str(trees["ucf"]), "source.init_args.privacy_labels": str(trees["pickle"])},
             "vp_hmdb": {"source.init_args.root": str(trees["hmdb"]), "source.init_args.privacy_labels": str(trees["csv"])},
             "pa_hmdb51": {"source.init_args.root": str(trees["hmdb"]), "source.init_args.pa_labels": str(trees["pa"]),
                           "source.init_args.privacy_labels": str(trees["csv"])}}
    for name, dataset in config["datasets"].items():
        dataset["overrides"] |= roots[name] | TINY_DATA
    left_out = []
    from anonpriv.faces import faces_available

    for name, method in list(config["methods"].items()):
        if not Path(method["config"]).is_file():
            left_out.append(f"{name} (no {method['config']})")
        elif name == "face_blur" and not faces_available():
            left_out.append(f"{name} (needs the faces extra)")
        else:
            method["overrides"] = {**method.get("overrides", {}), **TINY_MODELS}
            continue
        del config["methods"][name]
    config["methods"]["token_pruning"]["overrides"] |= TINY_TOKEN_PRUNING
    if "blackening" in config["methods"]:  # a stand-in person detector: no COCO weights to download
        config["methods"]["blackening"]["overrides"] |= {"detector": "centre_box"}
    for entry in config["table2"]:
        entry["methods"] = [m for m in entry["methods"] if m in config["methods"]]
    trainer = str(CONFIGS / "trainer" / "cpu.yaml")
    config |= {"out": str(out), "seeds": [0], "launcher": {"name": "local", "jobs": 1}}
    config["train"] |= {"epochs": 1, "trainer": trainer, "trainer_overrides": FAST_TRAINER, "method_overrides": TINY_MODELS}
    # The paper's evaluation config, with its pretrained Kinetics / ImageNet models swapped for tiny fresh ones.
    config["evaluation"] |= {"epochs": 1, "trainer": trainer, "trainer_overrides": FAST_TRAINER,
                             "overrides": {"utility_model": "c3d_tiny", "utility_kwargs": {},
                                           "attackers": ["frame_cnn_tiny"], "attacker_kwargs": {}}}
    return config, left_out


def centre_box_detector(weights_file=None):
    """A stand-in for the COCO person detector: one person box in the middle of every frame."""
    def detect(frames: torch.Tensor) -> list[torch.Tensor]:
        h, w = frames.shape[-2:]
        return [torch.tensor([[w / 4, h / 4, 3 * w / 4, 3 * h / 4, 0.9]]) for _ in range(len(frames))]

    return detect


def table_rows(path: Path) -> list[str]:
    """The method column of a table file's first table (the block after its bold title)."""
    block = path.read_text().split("\n\n")[1]
    return [line.split("|")[1].strip() for line in block.splitlines()[2:]]


def execute_with_a_stub_detector(job):
    """The sweep's own job runner, with the stand-in person detector registered (in each worker process)."""
    import anonpriv.baselines.blackening.anonymizer as blackening

    blackening.PERSON_DETECTORS.setdefault("centre_box", centre_box_detector)
    return execute_job(job)


@pytest.mark.filterwarnings("ignore")
def test_paper_sweep_writes_table1_of_every_dataset_and_table2_both_ways_with_every_row(trees, tmp_path):
    """What `anonpriv sweep --config <tiny paper.yaml>` does (anonpriv/sweep/cli.py), with the stand-in detector
    in its two worker processes: trainings, then the evaluations that need them, then the tables."""
    config, left_out = tiny_paper_sweep(tmp_path / "out", trees)
    plan = build_plan(load_sweep_config(write_sweep(tmp_path, config)))
    learned = [m for m, spec in config["methods"].items() if spec.get("train")]
    transferred = [m for m in ("raw", "spact", "bdq", "token_pruning") if m in config["methods"]]
    assert plan.counts() == {"train": 3 * len(learned), "evaluate": 3 * len(config["methods"]) + 2 * len(transferred)}
    outcome = run_plan(plan, LocalLauncher(jobs=2), log=lambda _: None, execute=execute_with_a_stub_detector)
    assert not outcome.failed and not outcome.skipped, outcome
    write_reports(plan, "test", log=lambda _: None)
    out = tmp_path / "out"
    methods = list(config["methods"])
    assert len(methods) + len(left_out) == 9, (methods, left_out)
    for dataset in DATASETS:
        table = out / dataset / "table1.md"
        assert table_rows(table) == methods, (dataset, table.read_text())
        assert "Not finished" not in table.read_text() and (out / dataset / "tradeoff.png").exists()
        with open(out / dataset / "table1.csv") as fh:
            assert [(r["method"], r["seed"]) for r in csv.DictReader(fh)] == [(m, "0") for m in methods]
    for folder, (source, target) in zip(TRANSFERS, [("VP-UCF", "VP-HMDB"), ("VP-HMDB", "VP-UCF")]):
        text = (out / folder / "table2.md").read_text()
        assert text.startswith(f"**Table 2: {source} → {target} ")
        assert table_rows(out / folder / "table2.md") == transferred
    # A transfer row evaluates the source's Table 1 training (one training per dataset, method and seed) ...
    assert not list((out / "vp_ucf_to_vp_hmdb").glob("runs/*/seed0/train"))
    import json

    record = json.loads((out / "vp_ucf_to_vp_hmdb" / "runs" / "bdq" / "seed0" / "result.json").read_text())["sweep"]
    assert (record["table"], record["protocol"], record["dataset"], record["anonymizer_dataset"]) == \
        ("table2", "transfer", "vp_hmdb", "vp_ucf")
    # ... on the target's own label space: two HMDB classes, its test videos.
    results = json.loads((out / "vp_ucf_to_vp_hmdb" / "runs" / "bdq" / "seed0" / "evaluation" / "results.json").read_text())
    assert results["num_videos"] == 6  # the fake HMDB51's split-1 test list


def test_a_transfer_to_clips_of_another_size_is_one_line_naming_both_shapes(tmp_path, capsys):
    """Token pruning's ViT is built for one tubelet grid: trained on 8-frame clips it cannot take 4-frame
    ones. The evaluation stops before any fresh model trains, with one line naming both shapes."""
    data = str(CONFIGS / "data" / "synthetic_tiny.yaml")
    config = tiny_sweep(tmp_path / "out", datasets={
        "long": {"data": data},  # 8 x 32 x 32 clips
        "short": {"data": data, "overrides": {"source.init_args.num_frames": 4}},
    }, methods={"token_pruning": {"config": str(CONFIGS / "method" / "token_pruning.yaml"), "train": True}},
        table1=[], table2=[{"kind": "transfer", "source": "long", "target": "short"}])
    config["train"]["trainer_overrides"] = {**FAST_TRAINER, "limit_train_batches": 1}
    code = sweep_main(["--config", str(write_sweep(tmp_path, config))])
    error = capsys.readouterr().err.strip()
    assert code == 1 and "\n" not in error, error
    assert re.search(r"evaluate Table 2 long->short/token_pruning seed 0: the anonymizer '.*last\.ckpt' was trained on "
                     r"clips of 8 x 32 x 32 .* does not accept this data's clips of 4 x 32 x 32", error), error
    assert "num_frames" in error  # the fix
    assert not (tmp_path / "out" / "long_to_short" / "runs" / "token_pruning" / "seed0" / "evaluation").exists()
