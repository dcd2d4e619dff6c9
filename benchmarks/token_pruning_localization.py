"""Does the trained token-pruning anonymizer keep the action and drop the private appearance?

    python -m benchmarks.token_pruning_localization [--seeds 0,1,2,3,4] [--epochs 3]
        [--variants default,scratch,paper] [--quick] [--output FILE]

For each variant and seed: a short fit of :class:`TokenPruningMethod` with the options of
``configs/method/token_pruning.yaml`` (changed as the variant says) on synthetic clips with
ground-truth regions, then the share of the moving region's pixels and of the private (head, hair,
torso) region's pixels that the kept mask covers on validation clips. A seed meets the criterion
when ``moving - private >= 0.25`` and the moving region is kept more than the frame as a whole.
Beside it, whether the two CLS heads know their own tasks (action top-1 against chance, attribute
cMAP against its chance of about 0.5): the kept mask comes from their attention.

Variants:

* ``default``: the config as shipped, fine-tuned from the pretrained backbone
  (``anonpriv:dual_cls_vit_tiny``, made by ``make pretrain``);
* ``scratch``: the same, trained from scratch (``pretrained_file: null``);
* ``paper``: the paper's own settings where they apply to the tiny 4-block ViT, from the same
  pretrained start: pruning in blocks 2, 3 and 4 keeping 0.9 of the tokens each (about 73% of
  tubelets kept, as ViT-B's blocks 3, 6, 9 of 12), lambda_priv 0.5, the privacy CLS through a
  gradient-reversal layer with the DANN ramp, no stage supervision.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

MARGIN = 0.25
CONFIG = Path(__file__).resolve().parents[1] / "configs" / "method" / "token_pruning.yaml"
VARIANTS = {
    "default": {},
    "scratch": {"pretrained_file": None},
    "paper": {"prune_blocks": [2, 3, 4], "keep_ratio": 0.9, "lambda_priv": 0.5, "privacy_cls_gradient": "reversal",
              "stage_supervision": 0.0},
}


def config_args(**overrides) -> dict:
    """``init_args`` of the shipped method config, with ``overrides``."""
    import yaml

    args = dict(yaml.safe_load(CONFIG.read_text())["init_args"])
    args.update(overrides)
    return args


def fit_and_measure(seed: int, epochs: int, num_train: int = 512, num_val: int = 128, batch_size: int = 16,
                    **overrides):
    """Fit the method (config + ``overrides``) for ``epochs`` and measure it on validation clips.

    Returns ``(KeptOverlap, ClsHeadQuality)``.
    """
    import lightning.pytorch as pl

    from anonpriv.data import SyntheticSource, VideoPrivacyDataModule
    from anonpriv.methods.token_pruning import TokenPruningMethod
    from anonpriv.methods.token_pruning.localization import cls_head_quality, kept_region_overlap

    pl.seed_everything(seed, verbose=False)
    source = SyntheticSource(num_train=num_train, num_val=num_val, num_test=8, with_regions=True, seed=0)
    dm = VideoPrivacyDataModule(source, batch_size=batch_size)
    args = config_args(**overrides)
    args["attention_map_clips"] = 0
    method = TokenPruningMethod(num_actions=dm.num_actions, num_privacy=dm.num_privacy, clip_shape=dm.clip_shape,
                                action_names=dm.action_names, privacy_names=dm.privacy_names, **args)
    if epochs > 0:  # epochs 0: the starting point as it is (the pretrained backbone, no fine-tuning)
        trainer = pl.Trainer(max_epochs=epochs, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                             enable_model_summary=False, num_sanity_val_steps=0, limit_val_batches=0)
        trainer.fit(method, dm)
    dm.setup("validate")
    return kept_region_overlap(method, dm.val_dataloader()), cls_head_quality(method, dm.val_dataloader())


def meets_criterion(overlap) -> bool:
    return overlap.margin >= MARGIN and overlap.action > overlap.kept


def run(variants: list[str], seeds: list[int], epochs: int, quick: bool = False) -> str:
    from benchmarks.common import machine_line

    rows = []
    for variant in variants:
        for seed in seeds:
            began = time.perf_counter()
            if quick:
                overlap, heads = fit_and_measure(seed, 1, num_train=32, num_val=16, **VARIANTS[variant])
            else:
                overlap, heads = fit_and_measure(seed, epochs, **VARIANTS[variant])
            rows.append((variant, seed, overlap, heads, time.perf_counter() - began))
            print(f"{variant} seed {seed}: moving {overlap.action:.3f}, private {overlap.private:.3f}, "
                  f"all {overlap.kept:.3f}; action CLS top-1 {heads.action_top1:.3f}, attribute cMAP "
                  f"{heads.privacy_cmap:.3f}", flush=True)
    lines = [
        f"#### Token pruning: kept pixels by region after {1 if quick else epochs} epochs of fine-tuning",
        "",
        f"Machine: {machine_line()}",
        "",
        "| variant | seed | moving region kept | private region kept | all pixels kept | margin | criterion "
        "| action CLS top-1 | attribute cMAP (CLS) | fit + measure (s) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for variant, seed, o, heads, seconds in rows:
        lines.append(f"| {variant} | {seed} | {o.action:.3f} | {o.private:.3f} | {o.kept:.3f} | {o.margin:+.3f} | "
                     f"{'met' if meets_criterion(o) else 'missed'} | {heads.action_top1:.3f} "
                     f"(chance {heads.action_chance:.3f}) | {heads.privacy_cmap:.3f} | {seconds:.0f} |")
    lines.append("")
    for variant in variants:
        mine = [o for v, _, o, _, _ in rows if v == variant]
        margins = [o.margin for o in mine]
        lines.append(f"- {variant}: criterion (moving - private >= {MARGIN}, moving > all) met by "
                     f"{sum(map(meets_criterion, mine))} of {len(mine)} seeds; margin "
                     f"{min(margins):+.3f} to {max(margins):+.3f}.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from benchmarks.common import emit

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", default="0,1,2,3,4", help="comma-separated training seeds")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--variants", default="default", help=f"comma-separated, from {sorted(VARIANTS)}")
    parser.add_argument("--quick", action="store_true", help="tiny data, one epoch, seed 0 (checks that it runs)")
    parser.add_argument("--output", type=Path, help="also write the markdown table to this file")
    args = parser.parse_args(argv)
    variants = [v for v in args.variants.split(",") if v]
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        parser.error(f"unknown variants {unknown}: choose from {sorted(VARIANTS)}")
    seeds = [0] if args.quick else [int(s) for s in args.seeds.split(",") if s]
    emit(run(variants, seeds, args.epochs, args.quick), args.output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
