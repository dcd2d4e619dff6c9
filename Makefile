# Two commands do all set-up on a fresh machine:
#   make demo   trains and tests the headline method on the built-in synthetic dataset, evaluates it
#               and raw video with the honest protocol, and ends with a verdict against raw
#   make test   runs the test suite
# Each creates .venv and installs the project into it first if that has not been done
# (with the optional extras `faces`, the face detector of face_blur and of the face-rate metric, and
# `cluster`, submitit for the sweep's SLURM launcher, whose tests run it without a cluster).

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

# The torch and torchvision builds the test suite runs with, per architecture. They are installed first;
# the project's install then keeps them, as they lie within the ranges pyproject.toml allows.
ARCH := $(shell uname -m)
ifeq ($(ARCH),aarch64)
TORCH_PINS := torch==2.9.1 torchvision==0.24.1
else
TORCH_PINS := torch==2.14.1 torchvision==0.29.1
endif

.PHONY: demo test install pretrain sweep regimes benchmarks clean

install: $(STAMP)

$(STAMP): pyproject.toml setup.py Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet $(TORCH_PINS)
	$(BIN)/python -m pip install --quiet -e '.[dev,faces,cluster]'
	touch $(STAMP)

# The headline method end to end: train it, test it, then the honest protocol on its output (a fresh
# action model and fresh attackers trained on the frozen anonymizer), first on raw video as the
# reference, so that the demo ends with a two-line verdict against raw.
demo: $(STAMP)
	$(BIN)/anonpriv fit --config configs/token_pruning.yaml
	$(BIN)/anonpriv test --config configs/token_pruning.yaml --ckpt_path last
	$(BIN)/anonpriv evaluate raw
	$(BIN)/anonpriv evaluate $$(ls -t runs/token_pruning/*/checkpoints/last.ckpt | head -n 1)

# Remake the token-pruning method's pretrained backbone, anonpriv/weights/dual_cls_vit_tiny.pt
# (the analog of the paper's ImageNet start; the file is committed, so demo and sweep need not run this).
pretrain: $(STAMP)
	$(BIN)/anonpriv pretrain --config configs/pretrain.yaml --trainer.enable_progress_bar false

# Table 1, Table 2 and the trade-off plot on the synthetic default (resumes; configs/sweep/synthetic.yaml).
sweep: $(STAMP)
	$(BIN)/anonpriv sweep --config configs/sweep/synthetic.yaml

# The README's two-regime table: every method on the motion-only default (make sweep) and on the
# appearance-rich synthetic_objects (configs/sweep/appearance.yaml), from the two sweeps' table1.csv.
regimes: $(STAMP)
	$(BIN)/python -m anonpriv.evaluation.regimes --regime "motion-only=results/table1.csv" \
		--regime "appearance-rich=results/appearance/table1.csv" --out results/regimes.md

test: $(STAMP)
	$(BIN)/python -m pytest -q tests

# Issue 7's performance benchmarks (a few minutes on 2 CPU cores); tables also go to benchmarks/results.md.
benchmarks: $(STAMP)
	$(BIN)/python -m benchmarks.run_all --output benchmarks/results.md

clean:
	rm -rf runs lightning_logs .pytest_cache
