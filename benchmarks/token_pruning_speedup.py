"""Benchmark 2: what token pruning saves downstream, and what the pruning anonymizer itself costs.

Three tables, all measured in one run under ``torch.inference_mode()``, the variants of each table
timed in round-robin order (so load changes hit them alike):

1. **Downstream ViT, kept tubelets vs. all.** ``tubelet_vit_tiny`` (192 wide, 4 blocks) on
   16 x 112 x 112 clips with 4 x 14 x 14 tubelets (4 x 8 x 8 = 256 tubelets, the token pruning
   config's grid: 4 x 8 x 8 tubelets on 16 x 64 x 64) classifies a batch from every tubelet (the
   normal forward) and from the ``ceil(r * 256)`` tubelets kept at keep ratio ``r``
   (:meth:`TubeletViT.forward_tubelets <anonpriv.models.token_vit.TubeletViT.forward_tubelets>`).
   Wall time (median), speedup over the full forward and FLOPs per clip. Below it, FLOPs only
   (counted on meta tensors, nothing computed) for the paper-sized ViT-B/16 tubelet downstream on
   16 x 224 x 224 (1568 tubelets).
2. **The anonymizer's own cost.** The tiny token-pruning ViT (``configs/method/token_pruning.yaml``:
   4 x 8 x 8 tubelets, linear stem, motion channels, on the default data config's 16 x 64 x 64
   clips) unpruned (keep ratio 1) vs. its configured keep ratio, and the paper's ViT-B shape
   (pruning in blocks 3, 6, 9 keeping 0.9 each) in FLOPs only.
3. **The pipeline.** Anonymizer (tiny config on the clip resized to 64 px) followed by the
   downstream on the full masked 112 px clip, vs. the downstream fed only the kept tubelets
   (:func:`~anonpriv.layers.tubelets.kept_tubelet_ids` of the anonymizer's ``tubelet_mask``; both
   grids are 4 x 8 x 8, so the ids carry over), with the default 3D CNN downstream ``c3d_tiny`` on
   the masked clip for reference.

The anonymizer's tubelet and clip size are read from ``configs/method/token_pruning.yaml`` and
``configs/data/synthetic.yaml``; the downstream tubelet is the one that gives the same grid on the
112 px clip. Weights are untrained: speed does not depend on them, so the token-pruning method is
built with ``pretrained_file=None`` (its config starts from ``anonpriv:dual_cls_vit_tiny``) and the
benchmark runs whether or not that weights file exists.

FLOPs count matrix products, convolutions and attention (a multiply-add is 2 FLOPs).

    python -m benchmarks.token_pruning_speedup [--quick] [--keep-ratios 0.9 0.7 0.5 0.3] [--output FILE]
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch
import torch.nn.functional as F

from benchmarks.anonymize_throughput import NUM_ACTIONS, NUM_PRIVACY, config_clip_shape, speed_config
from benchmarks.common import (
    benchmark_parser,
    count_flops,
    emit,
    fmt,
    machine_line,
    markdown_table,
    time_calls_interleaved,
)

KEEP_RATIOS = (0.9, 0.7, 0.5, 0.3)


def random_tubelet_ids(batch: int, num_tubelets: int, keep: int, generator: torch.Generator) -> torch.Tensor:
    """(batch, keep) distinct tubelet ids per clip in ascending order (which ones does not change
    the cost, only how many)."""
    return torch.rand(batch, num_tubelets, generator=generator).topk(keep, dim=1).indices.sort(dim=1).values


def measure_variants(calls: dict[str, Callable[[], object]], repeats: int, warmup: int) -> dict[str, tuple[float, int]]:
    """``{name: (median seconds, FLOPs)}``: timed side by side (round-robin), FLOPs counted once."""
    with torch.inference_mode():
        timings = time_calls_interleaved(calls, repeats=repeats, warmup=warmup)
        return {name: (timings[name].median, count_flops(call)) for name, call in calls.items()}


# -- 1. downstream ---------------------------------------------------------------------------------
def downstream_table(clip_shape, tubelet, batch_size, keep_ratios, repeats, warmup) -> str:
    from anonpriv.models import create_utility_model

    torch.manual_seed(0)
    model = create_utility_model("tubelet_vit_tiny", NUM_ACTIONS,
                                 {"clip_shape": list(clip_shape), "tubelet": list(tubelet)}).eval()
    generator = torch.Generator().manual_seed(0)
    video = torch.rand(batch_size, 3, *clip_shape, generator=generator)
    n = model.num_tubelets
    calls = {"all (normal forward)": (n, lambda: model(video))}
    for ratio in (1.0, *keep_ratios):
        keep = math.ceil(ratio * n - 1e-9)
        ids = random_tubelet_ids(batch_size, n, keep, generator)
        calls[f"{ratio:.1f}"] = (keep, lambda ids=ids: model.forward_tubelets(video, ids))
    measured = measure_variants({name: call for name, (_, call) in calls.items()}, repeats, warmup)
    full_s, full_flops = measured["all (normal forward)"]
    rows = [[name, calls[name][0], fmt(1e3 * seconds, 2), f"{full_s / seconds:.2f}x",
             fmt(flops / batch_size / 1e9, 3), f"{flops / full_flops:.2f}"]
            for name, (seconds, flops) in measured.items()]
    shape = "x".join(map(str, clip_shape))
    return (f"#### Downstream `tubelet_vit_tiny` on {shape} clips, {'x'.join(map(str, tubelet))} tubelets, "
            f"batch {batch_size}\n\n"
            + markdown_table(["keep ratio", "tubelets", "ms / batch", "speedup", "GFLOPs / clip", "FLOP ratio"], rows))


def vit_base_downstream_flops(keep_ratios) -> str:
    """FLOPs of a ViT-B/16 tubelet downstream at 16 x 224 x 224, counted on meta tensors."""
    from anonpriv.models.token_vit import TubeletViT

    model = TubeletViT(400, clip_shape=(16, 224, 224), tubelet=(2, 16, 16), embed_dim=768, depth=12,
                       num_heads=12).eval().to("meta")
    video = torch.empty(1, 3, 16, 224, 224, device="meta")
    n = model.num_tubelets
    with torch.inference_mode():
        full = count_flops(lambda: model(video))
        rows = [["all", n, fmt(full / 1e9, 1), "1.00"]]
        for ratio in keep_ratios:
            keep = math.ceil(ratio * n - 1e-9)
            ids = torch.arange(keep, device="meta").unsqueeze(0)
            flops = count_flops(lambda: model.forward_tubelets(video, ids))
            rows.append([f"{ratio:.1f}", keep, fmt(flops / 1e9, 1), f"{flops / full:.2f}"])
    return ("#### Paper-sized downstream: ViT-B/16 tubelet ViT on 16x224x224, 2x16x16 tubelets "
            "(FLOPs only, counted without computing)\n\n"
            + markdown_table(["keep ratio", "tubelets", "GFLOPs / clip", "FLOP ratio"], rows))


# -- 2. the anonymizer itself --------------------------------------------------------------------------
def tiny_token_pruning(clip_shape):
    """The token-pruning config for ``clip_shape``, untrained (``pretrained_file=None``)."""
    from anonpriv.methods.registry import build_method

    torch.manual_seed(0)
    return build_method("token_pruning", num_actions=NUM_ACTIONS, num_privacy=NUM_PRIVACY,
                        clip_shape=list(clip_shape), **speed_config("token_pruning")).eval()


def anonymizer_table(clip_shape, batch_size, repeats, warmup, paper_rows: bool = True) -> str:
    method = tiny_token_pruning(clip_shape)
    vit = method.vit
    video = torch.rand(batch_size, 3, *clip_shape, generator=torch.Generator().manual_seed(1))
    ratios = (1.0, method.hparams.keep_ratio)
    measured = measure_variants({ratio: (lambda ratio=ratio: vit(video, ratio)) for ratio in ratios}, repeats, warmup)
    unpruned_s, unpruned_flops = measured[1.0]
    rows = []
    for ratio, (seconds, flops) in measured.items():
        kept = vit.kept_count_schedule(ratio)[-1] if vit.prune_blocks else vit.num_tubelets
        rows.append([f"tiny config, keep {ratio:g} per stage", f"{kept}/{vit.num_tubelets}", fmt(1e3 * seconds, 2),
                     f"{unpruned_s / seconds:.2f}x", fmt(flops / batch_size / 1e9, 3),
                     f"{flops / unpruned_flops:.2f}"])
    if paper_rows:  # ViT-B: built on the CPU first (a few seconds), then counted on meta tensors
        rows += vit_base_anonymizer_rows()
    shape = "x".join(map(str, clip_shape))
    return (f"#### The token-pruning anonymizer itself (tiny config on {shape} clips, batch {batch_size}"
            + ("; ViT-B rows: FLOPs only)" if paper_rows else ")") + "\n\n"
            + markdown_table(["anonymizer", "tubelets kept", "ms / batch", "speedup", "GFLOPs / clip", "FLOP ratio"],
                             rows))


def vit_base_anonymizer_rows() -> list[list[object]]:
    """The paper's ViT-B/16 dual-CLS anonymizer at 16 x 224 x 224, unpruned vs. 0.9 in blocks 3, 6, 9."""
    from anonpriv.methods.token_pruning import DualCLSTubeletViT

    vit = DualCLSTubeletViT((16, 224, 224), 400, 5, tubelet=(2, 16, 16), embed_dim=768, depth=12, num_heads=12,
                            prune_blocks=(3, 6, 9), keep_ratio=0.9, stem="linear", motion_channels=False)
    vit = vit.eval().to("meta")
    video = torch.empty(1, 3, 16, 224, 224, device="meta")
    with torch.inference_mode():
        full = count_flops(lambda: vit(video, 1.0))
        pruned = count_flops(lambda: vit(video, 0.9))
    n = vit.num_tubelets
    return [["paper ViT-B/16, unpruned", f"{n}/{n}", "-", "-", fmt(full / 1e9, 1), "1.00"],
            ["paper ViT-B/16, keep 0.9 in blocks 3, 6, 9", f"{vit.kept_count_schedule(0.9)[-1]}/{n}", "-", "-",
             fmt(pruned / 1e9, 1), f"{pruned / full:.2f}"]]


# -- 3. the pipeline -------------------------------------------------------------------------------------
def pipeline_table(clip_shape, anonymizer_shape, batch_size, repeats, warmup) -> str:
    from anonpriv.layers import kept_tubelet_ids
    from anonpriv.methods.token_pruning.anonymizer import upsample_tubelet_mask
    from anonpriv.models import create_utility_model

    method = tiny_token_pruning(anonymizer_shape)
    tubelet = tuple(c // g for c, g in zip(clip_shape, method.vit.grid))
    torch.manual_seed(0)
    vit = create_utility_model("tubelet_vit_tiny", NUM_ACTIONS,
                               {"clip_shape": list(clip_shape), "tubelet": list(tubelet)}).eval()
    c3d = create_utility_model("c3d_tiny", NUM_ACTIONS).eval()
    video = torch.rand(batch_size, 3, *clip_shape, generator=torch.Generator().manual_seed(2))

    def anonymize():
        small = F.interpolate(video, size=tuple(anonymizer_shape), mode="trilinear", align_corners=False)
        mask = method.anonymizer_outputs(small)["tubelet_mask"]
        return mask

    def full_masked(downstream):
        def call():
            mask = anonymize()
            return downstream(video * upsample_tubelet_mask(mask.to(video.dtype), tubelet))
        return call

    def kept_only():
        return vit.forward_tubelets(video, kept_tubelet_ids(anonymize()))

    with torch.inference_mode():
        kept_fraction = float(anonymize().float().mean())
    variants = [("anonymizer alone", anonymize),
                ("anonymizer + `tubelet_vit_tiny` on the full masked clip", full_masked(vit)),
                ("anonymizer + `tubelet_vit_tiny` on the kept tubelets only", kept_only),
                ("anonymizer + `c3d_tiny` on the full masked clip (default downstream)", full_masked(c3d))]
    measured = measure_variants(dict(variants), repeats, warmup)
    reference = measured[variants[1][0]][0]
    rows = [[name, fmt(1e3 * s, 2), f"{reference / s:.2f}x", fmt(f / batch_size / 1e9, 3)]
            for name, (s, f) in measured.items()]
    shape = "x".join(map(str, clip_shape))
    return (f"#### Pipeline on {shape} clips (anonymizer at {'x'.join(map(str, anonymizer_shape))}, "
            f"{kept_fraction:.0%} of tubelets kept), batch {batch_size}\n\n"
            + markdown_table(["pipeline", "ms / batch", "speedup vs full masked ViT", "GFLOPs / clip"], rows))


def run(quick: bool = False, batch_size: int = 4, repeats: int = 5, keep_ratios=KEEP_RATIOS) -> str:
    # The anonymizer runs at the config's clip size (16 x 64 x 64; half of it with --quick), and the
    # downstream tubelet makes its grid equal the anonymizer's (4 x 14 x 14 -> 4 x 8 x 8 with the
    # config's 4 x 8 x 8 tubelets; 2 x 4 x 4 with --quick).
    frames, height, width = config_clip_shape()
    clip_shape = (frames // 2, 56, 56) if quick else (frames, 112, 112)
    anonymizer_shape = (frames // 2, height // 2, width // 2) if quick else (frames, height, width)
    grid = tiny_token_pruning(anonymizer_shape).vit.grid
    tubelet = tuple(c // g for c, g in zip(clip_shape, grid))
    batch_size = 1 if quick else batch_size
    repeats, warmup = (1, 1) if quick else (repeats, 2)
    parts = [
        f"### Token-pruning speedup (median of {repeats})\n\nMachine: {machine_line()}",
        downstream_table(clip_shape, tubelet, batch_size, keep_ratios, repeats, warmup),
    ]
    if not quick:  # ViT-B: built on the CPU first (a few seconds), then counted on meta tensors
        parts.append(vit_base_downstream_flops(keep_ratios))
    parts.append(anonymizer_table(anonymizer_shape, batch_size, repeats, warmup, paper_rows=not quick))
    parts.append(pipeline_table(clip_shape, anonymizer_shape, batch_size, repeats, warmup))
    return "\n\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = benchmark_parser(__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=4, help="clips per forward pass")
    parser.add_argument("--keep-ratios", type=float, nargs="+", default=list(KEEP_RATIOS),
                        help="fractions of the tubelets fed to the downstream ViT")
    args = parser.parse_args(argv)
    if args.devices and args.devices != ["cpu"]:
        parser.error("this benchmark measures on the CPU only (ratios are what it reports).")
    emit(run(args.quick, args.batch_size, args.repeats, tuple(args.keep_ratios)), args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
