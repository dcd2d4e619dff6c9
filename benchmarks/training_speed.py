"""Training speed of the two loops the sweep spends its time in, before and after issue 16's cuts.

    python -m benchmarks.training_speed [--quick] [--repeats 5]

Side by side in one run, on one thread (what each sweep process uses), batch 16 of 16 x 64 x 64:

* **the protocol's step**: the fresh ``c3d_tiny`` action model and the attacker panel
  (``frame_cnn_tiny`` every 2nd frame, ``resnet18`` and ``vit_micro`` every 8th), forward, backward
  and AdamW step on a raw batch, as ``configs/evaluation/protocol.yaml`` trains them;
* **the token-pruning step**: one training step of ``configs/method/token_pruning.yaml`` (both
  minimax phases) through Lightning's manual optimisation, called directly.

"Before" is the configuration until issue 16: ``c3d_tiny`` in the default (NCDHW) layout and
``vit_micro`` with 4x4 patches (256 tokens on a 64-px frame). "After": ``c3d_tiny`` channels-last
3D (oneDNN's fast path on CPU, same weights and the same numbers up to float rounding, the
difference is printed) and ``vit_micro`` with 8x8 patches (64 tokens, as it had on the former 32-px
frames). The profile (``torch.profiler`` on the token-pruning fit) showed 3D convolution backward
as the largest item, then data loading on the first epoch only (rendered clips are cached).
"""

from __future__ import annotations

import statistics
import time

import torch

from benchmarks.common import benchmark_parser, emit, machine_line

BATCH, CLIP = 16, (3, 16, 64, 64)


def _time(step, repeats: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        step()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _panel(channels_last: bool, vit_patch: int):
    from anonpriv.models import create_privacy_model, create_utility_model

    torch.manual_seed(0)
    models = [
        create_utility_model("c3d_tiny", 8, {"channels_last": channels_last}),
        create_privacy_model("frame_cnn_tiny", 5, {"frame_stride": 2}),
        create_privacy_model("resnet18", 5, {"frame_stride": 8}),
        create_privacy_model("vit_micro", 5, {"frame_stride": 8, "patch_size": vit_patch}),
    ]
    params = [p for m in models for p in m.parameters()]
    return models, torch.optim.AdamW(params, lr=1e-3)


def protocol_step_seconds(channels_last: bool, vit_patch: int, repeats: int, size: int = 64) -> float:
    models, opt = _panel(channels_last, vit_patch)
    video = torch.rand(BATCH, 3, 16, size, size, generator=torch.Generator().manual_seed(1))

    def step():
        loss = sum(m(video).float().square().mean() for m in models)
        loss.backward()
        opt.step()
        opt.zero_grad()

    return _time(step, repeats)


class _StepTimer:
    """Lightning callback: wall time of each training batch after the first ``warmup``."""

    def __new__(cls, warmup: int):
        import lightning.pytorch as pl

        class StepTimer(pl.Callback):
            def __init__(self) -> None:
                self.times: list[float] = []

            def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
                self.start = time.perf_counter()

            def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
                if batch_idx >= warmup:
                    self.times.append(time.perf_counter() - self.start)

        return StepTimer()


def token_pruning_step_seconds(channels_last: bool, repeats: int, size: int = 64, warmup: int = 2) -> float:
    """Median wall time of a token-pruning training step (both minimax phases), through ``fit``."""
    import lightning.pytorch as pl
    from torch.utils.data import DataLoader

    from anonpriv.methods.registry import build_method

    torch.manual_seed(0)
    method = build_method("token_pruning", num_actions=8, num_privacy=5, clip_shape=[16, size, size],
                          utility_kwargs={"channels_last": channels_last})
    generator = torch.Generator().manual_seed(1)
    clips = [{"video": torch.rand(3, 16, size, size, generator=generator),
              "action": torch.randint(0, 8, (), generator=generator),
              "privacy": torch.randint(0, 2, (5,), generator=generator).float(),
              "id": str(i)} for i in range(BATCH * (warmup + repeats))]
    timer = _StepTimer(warmup)
    trainer = pl.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, accelerator="cpu", limit_val_batches=0, callbacks=[timer])
    trainer.fit(method, train_dataloaders=DataLoader(clips, batch_size=BATCH))
    return statistics.median(timer.times)


def layout_difference() -> float:
    """Largest |difference| of c3d_tiny's logits between the two layouts, same weights and input."""
    from anonpriv.models import create_utility_model

    torch.manual_seed(0)
    before = create_utility_model("c3d_tiny", 8, {"channels_last": False}).eval()
    after = create_utility_model("c3d_tiny", 8, {"channels_last": True}).eval()
    after.load_state_dict(before.state_dict())
    video = torch.rand(4, 3, 16, 64, 64, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        return (before(video) - after(video)).abs().max().item()


def run(quick: bool = False, repeats: int = 5) -> str:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    size = 32 if quick else 64
    repeats = 1 if quick else repeats
    try:
        machine = machine_line()
        rows = []
        p_before = protocol_step_seconds(False, 4, repeats, size)
        p_after = protocol_step_seconds(True, 8, repeats, size)
        rows.append(("protocol step (c3d_tiny + 3 attackers)", p_before, p_after))
        t_before = token_pruning_step_seconds(False, repeats, size)
        t_after = token_pruning_step_seconds(True, repeats, size)
        rows.append(("token-pruning training step", t_before, t_after))
        diff = layout_difference()
    finally:
        torch.set_num_threads(threads)
    lines = [
        "### Training speed (issue 16): one thread, batch 16 of 16 x %d x %d, median of %d" % (size, size, repeats),
        "",
        f"Machine: {machine}",
        "",
        "| step | before (s) | after (s) | speed-up |",
        "|---|---:|---:|---:|",
    ]
    for name, before, after in rows:
        lines.append(f"| {name} | {before:.3f} | {after:.3f} | {before / after:.2f}x |")
    lines += ["", f"c3d_tiny logits, channels-last against the default layout, same weights: max |difference| {diff:.1e}."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = benchmark_parser(__doc__.splitlines()[0], repeats=5).parse_args(argv)
    emit(run(args.quick, args.repeats), args.output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
