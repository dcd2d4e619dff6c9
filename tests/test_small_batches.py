"""Issue 17: training never crashes on a final batch too small for a method's losses.

* The DataModule drops the incomplete last training batch by default (``drop_last``), never an
  evaluation clip, and keeps the one short batch of a training set smaller than ``batch_size``.
* Every registered method trains on a dataset of ``batch_size + 1`` clips, and on a batch of one
  either trains or refuses with an error naming ``drop_last``.
* The quick sweep's plan (``configs/sweep/quick.yaml``) covers every default method and both
  tables, none of its trainings sees a batch below 2 clips, and the run that crashed (SPAct on the
  novel protocol's filtered training set) trains through its whole epoch.
"""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
import yaml
from torch.utils.data import DataLoader

from anonpriv.data import SyntheticSource, VideoPrivacyDataModule
from anonpriv.evaluation import ProtocolEvaluation
from anonpriv.methods import CATALOG, build_method
from anonpriv.sweep.config import load_sweep_config
from anonpriv.sweep.execute import execute_job
from anonpriv.sweep.plan import build_plan
from sweep_files import SWEEPS

pytestmark = pytest.mark.filterwarnings("ignore:You defined a `validation_step` but have no `val_dataloader`",
                                        "ignore:.*module\\(s\\) in eval mode.*")

BATCH = 4


def _source(num_train: int) -> SyntheticSource:
    # with_regions: blackening blacks out the renderer's person mask (no detector weights needed offline)
    return SyntheticSource(num_frames=8, height=32, width=32, num_train=num_train, num_val=3, num_test=3, seed=3,
                           with_regions=True)


def _train_batch_sizes(dm: VideoPrivacyDataModule) -> list[int]:
    """Sizes of one epoch's training batches, from the sampler (no clip is rendered)."""
    return [len(indices) for indices in dm.train_dataloader().batch_sampler]


# -- the DataModule -------------------------------------------------------------------------------
def test_incomplete_last_training_batch_is_dropped_by_default_and_evaluation_keeps_every_clip():
    dm = VideoPrivacyDataModule(_source(BATCH + 1), batch_size=BATCH, eval_batch_size=2)
    assert dm.drop_last is True
    assert _train_batch_sizes(dm) == [BATCH]
    for loader in (dm.val_dataloader(), dm.test_dataloader(), dm.predict_dataloader()):
        assert [len(i) for i in loader.batch_sampler] == [2, 1]  # 3 clips: the short batch stays

    kept = VideoPrivacyDataModule(_source(BATCH + 1), batch_size=BATCH, drop_last=False)
    assert _train_batch_sizes(kept) == [BATCH, 1]


def test_training_set_smaller_than_the_batch_is_one_short_batch_with_a_warning():
    dm = VideoPrivacyDataModule(_source(BATCH - 1), batch_size=BATCH)
    with pytest.warns(UserWarning, match="fewer than batch_size=4: drop_last is not applied"):
        sizes = _train_batch_sizes(dm)
    assert sizes == [BATCH - 1]  # dropping it would leave no training batch at all


# -- every method ---------------------------------------------------------------------------------
def _trainer() -> pl.Trainer:
    return pl.Trainer(accelerator="cpu", max_epochs=1, logger=False, enable_checkpointing=False,
                      enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0,
                      num_sanity_val_steps=0)


def _method(name: str, dm: VideoPrivacyDataModule):
    torch.manual_seed(0)
    return build_method(name, num_actions=dm.num_actions, num_privacy=dm.num_privacy, clip_shape=dm.clip_shape)


@pytest.fixture(scope="module")
def one_clip() -> list[dict]:
    item = VideoPrivacyDataModule(_source(BATCH + 1), batch_size=BATCH).split("train")[0]
    return [item]


@pytest.mark.parametrize("name", sorted(CATALOG))
def test_every_method_trains_on_batch_size_plus_one_clips(name):
    dm = VideoPrivacyDataModule(_source(BATCH + 1), batch_size=BATCH)
    method = _method(name, dm)
    trainer = _trainer()
    trainer.fit(method, train_dataloaders=dm.train_dataloader())
    assert trainer.fit_loop.epoch_loop.batch_progress.total.completed == 1  # the clip left over was dropped


@pytest.mark.parametrize("name", sorted(CATALOG))
def test_every_method_trains_on_a_batch_of_one_or_names_the_fix(name, one_clip):
    dm = VideoPrivacyDataModule(_source(BATCH + 1), batch_size=BATCH)
    method = _method(name, dm)
    loader = DataLoader(one_clip, batch_size=1)
    if method.min_train_batch_size <= 1:
        trainer = _trainer()
        trainer.fit(method, train_dataloaders=loader)
        assert trainer.fit_loop.epoch_loop.batch_progress.total.completed == 1
    else:
        with pytest.raises(ValueError, match=r"cannot train on a batch of 1 clip: .*Fix: keep data\.drop_last true"):
            _trainer().fit(method, train_dataloaders=loader)


def test_spact_is_refused_a_final_batch_of_one_with_drop_last_off():
    dm = VideoPrivacyDataModule(_source(3), batch_size=2, drop_last=False)  # batches of 2 and 1
    with pytest.raises(ValueError, match=r"SPActBaseline cannot train on a batch of 1 clip.*data\.drop_last"):
        _trainer().fit(_method("spact", dm), train_dataloaders=dm.train_dataloader())


def test_batchnorm_on_a_single_value_names_the_fix(one_clip):
    # ResNet-18 on one frame (stride 8 of 8) of 32 x 32 pixels ends in 1 x 1 maps: BatchNorm in training
    # mode has a single value per channel on a batch of one clip.
    protocol = ProtocolEvaluation(anonymizer="raw", attackers=["resnet18"], attacker_kwargs={"resnet18": {"frame_stride": 8}},
                                  num_actions=8, num_privacy=5, clip_shape=[8, 32, 32])
    with pytest.raises(ValueError, match=r"ProtocolEvaluation cannot train on a batch of 1 clip: a BatchNorm layer.*drop_last"):
        _trainer().fit(protocol, train_dataloaders=DataLoader(one_clip, batch_size=1))


# -- the quick sweep ------------------------------------------------------------------------------
def _quick_plan(out: Path):
    return build_plan(load_sweep_config(SWEEPS / "quick.yaml").select(out=out))


def test_quick_sweep_covers_every_default_method_and_table_and_no_training_batch_is_below_two(tmp_path):
    plan = _quick_plan(tmp_path)
    table1, table2 = plan.tables
    default = load_sweep_config(SWEEPS / "synthetic.yaml")
    assert {r.name for r in table1.rows} == set(default.methods) - {"blur_strong"}
    assert {r.name for r in table2.rows} == set(default.table2[0].methods)
    assert table1.folder == tmp_path
    assert load_sweep_config(SWEEPS / "quick.yaml").out == Path("results/runs/quick")  # never the published tables

    quick = load_sweep_config(SWEEPS / "quick.yaml")
    config = yaml.safe_load(quick.datasets["synthetic"].data.read_text())
    assert config.get("drop_last", True) is True
    source = SyntheticSource(**config["source"]["init_args"])
    # Every DataModule the quick sweep trains on: anonymizers and fresh models on all labels (Table 1),
    # anonymizers on the seen labels and fresh models on the novel ones (Table 2).
    novel = quick.table2[0]
    subsets = [(None, None), (novel.train_data["actions"], novel.train_data["attributes"]),
               (novel.evaluate_data["actions"], novel.evaluate_data["attributes"])]
    for actions, attributes in subsets:
        dm = VideoPrivacyDataModule(source, batch_size=config["batch_size"], actions=actions, attributes=attributes)
        sizes = _train_batch_sizes(dm)
        assert sizes and min(sizes) >= 2, (actions, sizes)


@pytest.mark.filterwarnings("ignore")
def test_quick_sweep_trains_spact_on_the_novel_protocol(tmp_path):
    """The run that crashed the quick sweep (docs/clusters.md), trained as the sweep trains it."""
    job = _quick_plan(tmp_path).job("train synthetic/novel_spact seed 0")
    assert "--data.actions" in job.args and job.folder == tmp_path / "runs" / "novel_spact" / "seed0" / "train"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        execute_job(job)
    finally:
        torch.set_num_threads(threads)
    assert job.checkpoint.exists() and job.done
