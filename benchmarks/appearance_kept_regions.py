"""Where the appearance sweep's token-pruning anonymizers keep pixels on `synthetic_objects` clips.

For each trained token-pruning checkpoint of `configs/sweep/appearance.yaml` (trained on
`synthetic_objects`, and on the default `synthetic` data for the transfer), the share of the pixels
its kept mask covers, per ground-truth region of `synthetic_objects` test clips: the held object
(`object_region`), the rest of the moving region, and the private region that does not move; and the
share of clips in which more than half of the object's pixels are kept. It tells whether a seed's low
top-1 comes from the anonymizer dropping the object or from the fresh action model trained afterwards.

    python -m benchmarks.appearance_kept_regions --results results/appearance --clips 192

The checkpoints are not committed (they are large): run it where the sweep ran. A minute on a CPU.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

DATASETS = {"synthetic_objects": "runs", "synthetic": "synthetic/runs"}


def kept_shares(method, batches) -> dict[str, float]:
    kept = {"object": [0, 0], "moving, not the object": [0, 0], "private, still": [0, 0]}
    clips_with_object = clips = 0
    method.eval()
    with torch.inference_mode():
        for batch in batches:
            mask = method.anonymizer_outputs(batch["video"])["mask"][:, 0] > 0.5
            obj = batch["object_region"]
            regions = {"object": obj, "moving, not the object": batch["action_region"] & ~obj,
                       "private, still": batch["privacy_region"] & ~batch["action_region"]}
            for name, region in regions.items():
                kept[name][0] += (mask & region).sum().item()
                kept[name][1] += region.sum().item()
            per_clip = (mask & obj).flatten(1).sum(1) / obj.flatten(1).sum(1).clamp(min=1)
            clips_with_object += (per_clip > 0.5).sum().item()
            clips += len(per_clip)
    shares = {name: a / b for name, (a, b) in kept.items()}
    shares["clips with > half the object"] = clips_with_object / clips
    return shares


def main(argv: list[str] | None = None) -> int:
    from anonpriv.data.synthetic_objects import SyntheticObjectsSource
    from anonpriv.methods.registry import load_method

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", type=Path, default=Path("results/appearance"), help="the appearance sweep's out")
    parser.add_argument("--clips", type=int, default=192, help="synthetic_objects test clips (seed 0)")
    parser.add_argument("--seeds", default="0,1,2")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    dataset = SyntheticObjectsSource(num_train=1, num_val=1, num_test=args.clips, with_regions=True).dataset("test")
    items = [dataset[i] for i in range(len(dataset))]
    keys = ("video", "action_region", "privacy_region", "object_region")
    batches = [{k: torch.stack([item[k] for item in items[i:i + 16]]) for k in keys} for i in range(0, len(items), 16)]
    rows = []
    for trained_on, folder in DATASETS.items():
        for seed in (int(s) for s in args.seeds.split(",")):
            checkpoint = args.results / folder / "token_pruning" / f"seed{seed}" / "train/anonymizer/run/checkpoints/last.ckpt"
            if not checkpoint.is_file():
                print(f"skipped: {checkpoint} (no such file; the sweep's training has not run here)")
                continue
            shares = kept_shares(load_method(checkpoint), batches)
            rows.append((trained_on, seed, shares))
    if not rows:
        print(f"no token-pruning checkpoint under {args.results}: run the appearance sweep first")
        return 1
    names = list(rows[0][2])
    print("| trained on | seed | " + " | ".join(f"kept: {n} (%)" for n in names) + " |")
    print("|---|---:|" + "---:|" * len(names))
    for trained_on, seed, shares in rows:
        print(f"| {trained_on} | {seed} | " + " | ".join(f"{100 * shares[n]:.1f}" for n in names) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
