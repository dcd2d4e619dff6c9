"""Done-when of the headline method: after a short fit on the synthetic data, the kept tubelets
cover the moving region far more than the private (head/hair/torso) region."""

import lightning.pytorch as pl
import torch

from anonpriv.data import SyntheticSource, VideoPrivacyDataModule
from anonpriv.methods.token_pruning import TokenPruningMethod


def kept_overlap(method, loader) -> tuple[float, float, float]:
    """Share of action-region pixels kept, share of private-only pixels kept, share of all kept."""
    kept_action = action = kept_private = private = kept = total = 0
    method.eval()
    with torch.inference_mode():
        for batch in loader:
            mask = method.anonymizer_outputs(batch["video"])["mask"][:, 0] > 0.5
            moving = batch["action_region"]
            still_private = batch["privacy_region"] & ~moving
            kept_action += (mask & moving).sum().item()
            action += moving.sum().item()
            kept_private += (mask & still_private).sum().item()
            private += still_private.sum().item()
            kept += mask.sum().item()
            total += mask.numel()
    return kept_action / action, kept_private / private, kept / total


def test_kept_tubelets_follow_motion_and_avoid_private_appearance():
    pl.seed_everything(0)
    source = SyntheticSource(num_train=768, num_val=128, num_test=8, with_regions=True, seed=0)
    dm = VideoPrivacyDataModule(source, batch_size=8)
    method = TokenPruningMethod(num_actions=dm.num_actions, num_privacy=dm.num_privacy, clip_shape=dm.clip_shape,
                                privacy_names=dm.privacy_names, attention_map_clips=0)
    trainer = pl.Trainer(max_epochs=8, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, num_sanity_val_steps=0, limit_val_batches=0)
    trainer.fit(method, dm)
    dm.setup("validate")
    action, private, kept = kept_overlap(method, dm.val_dataloader())
    print(f"kept: {kept:.3f} of all pixels, {action:.3f} of the moving region, {private:.3f} of the private region")
    assert 0.4 < kept < 0.6  # two stages at keep_ratio 0.7 keep ~49% of the tubelets
    assert action > private + 0.15
    assert action > kept  # the moving region is kept more than an average pixel
