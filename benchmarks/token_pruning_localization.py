"""Does the trained token-pruning anonymizer keep the action and drop the private appearance?

    python -m benchmarks.token_pruning_localization [--seeds 0,1,2] [--epochs 8] [--quick] [--output FILE]

For each seed: a short fit of the default :class:`TokenPruningMethod` on synthetic clips with
ground-truth regions, then the share of the moving region's pixels and of the private (head,
hair, torso) region's pixels that the kept mask covers on validation clips. One table row per
seed, and how many seeds meet the criterion ``action > private + 0.15`` and ``action > kept``.
Beside it, whether the two CLS heads learned their own tasks (action top-1 against chance, privacy
BCE against ln 2): the kept mask comes from their attention, so a head at chance means the mask
was shaped by the downstream models' gradients alone.

This is a measurement over seeds, not a unit test: trained from scratch in a CPU budget, the
outcome depends on when the small models first pick up the action, which differs between seeds
(and between machines' floating-point reductions). About 2.5 minutes per seed on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

MARGIN = 0.15


def fit_and_measure(seed: int, epochs: int, num_train: int = 768, num_val: int = 128, **method_args):
    import lightning.pytorch as pl

    from anonpriv.data import SyntheticSource, VideoPrivacyDataModule
    from anonpriv.methods.token_pruning import TokenPruningMethod
    from anonpriv.methods.token_pruning.audit import cls_head_quality, kept_region_overlap

    pl.seed_everything(seed, verbose=False)
    source = SyntheticSource(num_train=num_train, num_val=num_val, num_test=8, with_regions=True, seed=0)
    dm = VideoPrivacyDataModule(source, batch_size=8)
    method = TokenPruningMethod(num_actions=dm.num_actions, num_privacy=dm.num_privacy, clip_shape=dm.clip_shape,
                                privacy_names=dm.privacy_names, attention_map_clips=0, **method_args)
    trainer = pl.Trainer(max_epochs=epochs, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, num_sanity_val_steps=0, limit_val_batches=0)
    trainer.fit(method, dm)
    dm.setup("validate")
    return kept_region_overlap(method, dm.val_dataloader()), cls_head_quality(method, dm.val_dataloader())


def meets_criterion(overlap) -> bool:
    return overlap.action > overlap.private + MARGIN and overlap.action > overlap.kept


def run(seeds: list[int], epochs: int, quick: bool = False) -> str:
    from benchmarks.common import machine_line

    rows = []
    for seed in seeds:
        began = time.perf_counter()
        overlap, heads = (fit_and_measure(seed, 1, num_train=32, num_val=16) if quick else fit_and_measure(seed, epochs))
        rows.append((seed, overlap, heads, time.perf_counter() - began))
        print(f"seed {seed}: moving {overlap.action:.3f}, private {overlap.private:.3f}, all {overlap.kept:.3f}; "
              f"action CLS top-1 {heads.action_top1:.3f}, privacy CLS BCE {heads.privacy_bce:.3f}", flush=True)
    lines = [
        f"#### Token pruning: kept pixels by region after {1 if quick else epochs} epochs (default config)",
        "",
        f"Machine: {machine_line()}",
        "",
        "| seed | moving region kept | private region kept | all pixels kept | margin | criterion "
        "| action CLS top-1 | privacy CLS BCE | fit + measure (s) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for seed, o, heads, seconds in rows:
        lines.append(f"| {seed} | {o.action:.3f} | {o.private:.3f} | {o.kept:.3f} | {o.margin:+.3f} | "
                     f"{'met' if meets_criterion(o) else 'missed'} | {heads.action_top1:.3f} "
                     f"(chance {heads.action_chance:.3f}) | {heads.privacy_bce:.3f} "
                     f"(chance {heads.privacy_chance_bce:.3f}) | {seconds:.0f} |")
    met = sum(meets_criterion(o) for _, o, _, _ in rows)
    lines += ["", f"Criterion (moving > private + {MARGIN} and moving > all) met by {met} of {len(rows)} seeds."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from benchmarks.common import emit

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated training seeds")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--quick", action="store_true", help="tiny data, one epoch, seed 0 (checks that it runs)")
    parser.add_argument("--output", type=Path, help="also write the markdown table to this file")
    args = parser.parse_args(argv)
    seeds = [0] if args.quick else [int(s) for s in args.seeds.split(",") if s]
    emit(run(seeds, args.epochs, args.quick), args.output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
