"""Table 1 / Table 2 and the privacy-utility plot from one command.

    .venv/bin/python benchmarks/sweep.py                 # full sweep on the synthetic default (make sweep)
    .venv/bin/python benchmarks/sweep.py --seeds 0       # one seed (a third of the time)
    .venv/bin/python benchmarks/sweep.py --grid 2.0:0.5,1.0:0.7   # plus token-pruning trade-off points
    .venv/bin/python benchmarks/sweep.py --quick         # a tiny smoke version, into results/runs/quick
    .venv/bin/python benchmarks/sweep.py --jobs 1        # one run at a time (default: 2 processes)
    .venv/bin/python benchmarks/sweep.py --faces         # the faces comparison, into results/faces

Trains every method that learns (BDQ, SPAct, token pruning; optionally a lambda_priv x keep_ratio
grid of token pruning), each with the same epoch budget, evaluates every method with fresh models
and a panel of fresh attackers, once per seed (default 0, 1, 2), and writes ``<out>/table1.md|csv``,
``<out>/table2.md|csv`` and ``<out>/tradeoff.png``: mean ± std over seeds, paired differences to raw
with 95% intervals, every seed's row in the CSVs. Interrupted, it resumes per (method, seed):
finished runs under ``<out>/runs/<name>/seed<k>`` are kept (their ``result.json`` is committed
with the tables). Delete a run's folder to redo it.
``--quick`` writes into ``results/runs/quick`` unless ``--out`` is given, so a smoke run neither
overwrites the published tables nor leaves tiny runs that a full sweep would then keep as finished.

``--faces``: the faces comparison. Every method (raw, blur, blur_strong, downsample, face_blur, bdq,
spact, token_pruning) is trained and evaluated on the synthetic variant with detectable faces
(``configs/data/synthetic_faces.yaml``: 112-px frames, heads carrying real face photos; the sweep uses
8-frame clips, and a ``c3d_tiny`` that pools each frame 2x2, see ``FACES_DATA_ARGS`` and
``FACES_MODEL_ARGS``) with the protocol's face rate on (``--model.init_args.face_rate true``: the
share of test frames in which CenterFace finds a face, after anonymization and on the raw clips), so
Table 1 gains a ``face rate (%)`` column. It writes ``results/faces/table1.md|csv`` (never
``results/table1.md``), with no Table 2, and needs the optional extra ``pip install 'anonpriv[faces]'``. With ``--quick`` it
uses a few 8-frame 112-px clips and writes into ``results/runs/quick/faces``.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path

from anonpriv.evaluation.sweep import CONFIGS, Sweep, SweepRun, SweepSettings, default_runs

METHODS = ["raw", "blur", "downsample", "bdq", "spact", "token_pruning"]
# (lambda_priv, keep_ratio) besides the default (1.0, 0.5), one step in each direction: the
# suggested --grid (not run by default: each point is a training and an evaluation per seed).
GRID = [(2.0, 0.5), (1.0, 0.7)]
NOVEL = ["raw", "bdq", "spact", "token_pruning"]  # training-free methods do not learn anything to transfer
# One epoch budget for every learned anonymizer (BDQ, SPAct and token pruning alike), and the fresh
# models' epochs (the README's Results section says what a sweep with them costs).
TRAIN_EPOCHS = 5
EVAL_EPOCHS = 6
# The faces comparison (--faces): face_blur beside every other method (blur_strong joins blur as in the
# default plan) on the synthetic data with detectable faces, with the protocol's face rate on.
FACE_METHODS = ["raw", "blur", "downsample", "face_blur", "bdq", "spact", "token_pruning"]
FACES_DATA = CONFIGS / "data" / "synthetic_faces.yaml"
# Its clip length: 112-px frames cost three times the default's 64-px ones, so the comparison uses 8-frame
# clips (half the cost of 16), with Table 1's clip counts and epochs (benchmarks/sweep_history.md).
FACES_DATA_ARGS = ("--data.source.init_args.num_frames", "8")
# c3d_tiny's receptive field suits the 64-px figures; on 112-px frames it pools each frame 2x2 first, in the
# evaluation's fresh action model and in the learned anonymizers' own (raw clips: 96.8 ± 0.4% top-1 over three
# seeds in the protocol's 384 steps, against 28.3% unpooled on seed 0; benchmarks/sweep_history.md).
FACES_MODEL_ARGS = ("--model.init_args.utility_kwargs", '{"input_pool": 2}')
FACE_RATE_ARGS = ("--model.init_args.face_rate", "true")
# --faces --quick: a few short clips (the faces variant needs frames of at least 112 pixels)
QUICK_FACES_DATA_ARGS = (*FACES_DATA_ARGS, "--data.source.init_args.num_train", "8",
                         "--data.source.init_args.num_val", "4", "--data.source.init_args.num_test", "6",
                         "--data.batch_size", "4")


def parse_seeds(text: str) -> list[int]:
    seeds = [int(item) for item in text.split(",") if item.strip()]
    if not seeds or len(set(seeds)) != len(seeds):
        raise SystemExit(f"--seeds {text!r}: give distinct integer seeds, e.g. 0,1,2")
    return seeds


def parse_grid(text: str) -> list[tuple[float, float]]:
    points = []
    for item in filter(None, text.split(",")):
        lam, _, keep = item.partition(":")
        points.append((float(lam), float(keep)))
    return points


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=None,
                        help="output folder (default: results, or results/runs/quick with --quick; "
                             "with --faces, faces/ under either)")
    parser.add_argument("--methods", default=None,
                        help=f"comma-separated registered methods (default {','.join(METHODS)}; "
                             f"with --faces: {','.join(FACE_METHODS)})")
    parser.add_argument("--grid", default="",
                        help="token-pruning points lambda_priv:keep_ratio, comma-separated, e.g. "
                             f"{','.join(f'{lam}:{k}' for lam, k in GRID)} (default: none; each point costs a "
                             "training and an evaluation per seed)")
    parser.add_argument("--no-novel", action="store_true", help="skip Table 2 (the novel protocol)")
    parser.add_argument("--seeds", default=None,
                        help="comma-separated seeds, each a full run of every method (default 0,1,2; --quick: 0,1)")
    parser.add_argument("--train-epochs", type=int, default=TRAIN_EPOCHS,
                        help=f"epochs of every learned anonymizer, the same for all (default {TRAIN_EPOCHS})")
    parser.add_argument("--eval-epochs", type=int, default=EVAL_EPOCHS,
                        help=f"epochs of the fresh models (default {EVAL_EPOCHS})")
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1),
                        help="runs executed at once, in separate processes with one thread each (default: 2)")
    parser.add_argument("--report-only", action="store_true",
                        help="run nothing: write the tables from the runs finished so far, listing the others")
    parser.add_argument("--quick", action="store_true", help="tiny data and one epoch everywhere (smoke test)")
    parser.add_argument("--faces", action="store_true",
                        help="the faces comparison: training-free methods (and any --methods) on "
                             "configs/data/synthetic_faces.yaml with the protocol's face rate on, into results/faces "
                             "(needs pip install 'anonpriv[faces]')")
    return parser.parse_args(argv)


def plan(args: argparse.Namespace) -> tuple[SweepSettings, list[SweepRun]]:
    """The settings and the runs ``args`` ask for (what :func:`main` executes; tests read it too)."""
    faces = getattr(args, "faces", False)
    default_methods = FACE_METHODS if faces else METHODS
    methods = [m for m in (args.methods if args.methods is not None else ",".join(default_methods)).split(",") if m]
    out = args.out if args.out is not None else Path("results/runs/quick" if args.quick else "results")
    if faces and args.out is None:
        out = out / "faces"
    settings = SweepSettings(out=out, train_epochs=args.train_epochs, eval_epochs=args.eval_epochs)
    if args.quick:
        settings.data_config = CONFIGS / "data" / "synthetic_tiny.yaml"
        settings.train_epochs = 1
        settings.eval_epochs = 1
    if faces:
        settings.data_config = FACES_DATA
        settings.eval_args = (*settings.eval_args, *FACE_RATE_ARGS, *FACES_MODEL_ARGS)
        settings.train_args = (*settings.train_args, *FACES_MODEL_ARGS)
        settings.data_args = (*settings.data_args, *(QUICK_FACES_DATA_ARGS if args.quick else FACES_DATA_ARGS))
    seeds = parse_seeds(args.seeds if args.seeds is not None else ("0,1" if args.quick else "0,1,2"))
    novel = [] if args.no_novel or faces else [m for m in methods if m in NOVEL]
    runs = default_runs(methods, parse_grid(args.grid) if "token_pruning" in methods else [], novel, seeds)
    if "blur" in methods and not args.quick:
        # The papers' StrongBlur (k=13, sigma=10 on person boxes of 112+ px) scaled to the ~50-px figures of
        # the 64-px synthetic default, beside the mild blur of configs/method/blur.yaml.
        for seed in seeds:
            at = runs.index(SweepRun("blur", "blur", seed=seed)) + 1
            runs.insert(at, SweepRun("blur_strong", "blur", model_args=(("kernel_size", 13), ("sigma", 4.0)), seed=seed))
    return settings, runs


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.faces:
        from anonpriv.faces import FacesExtraMissing, require_faces

        try:
            require_faces()
        except FacesExtraMissing as error:
            raise SystemExit(f"sweep.py --faces: {error}") from None
    settings, runs = plan(args)
    sweep = Sweep(settings)
    command = " ".join(["python benchmarks/sweep.py", *map(shlex.quote, argv if argv is not None else sys.argv[1:])])
    if args.report_only:
        rows, missing = sweep.collect(runs)
        command = command.replace(" --report-only", "")
        print(f"{len(runs) - len(missing)} of {len(runs)} runs finished; tables from those")
    else:
        rows, missing = sweep.run(runs, jobs=args.jobs), []
    for name, path in sweep.write_reports(rows, command.strip(), missing).items():
        print(f"{name}: {os.path.relpath(path)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
