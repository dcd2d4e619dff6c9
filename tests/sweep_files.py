"""Sweep files for the tests: the repository's sweep configs (or new ones) written into a test's folder,
with every config path made absolute so they resolve from there."""

from __future__ import annotations

from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "configs"
SWEEPS = CONFIGS / "sweep"
PATH_KEYS = ("data", "config", "trainer")


def load_sweep(name: str) -> dict:
    """``configs/sweep/<name>.yaml`` as a dict, its config paths absolute."""
    return absolute(yaml.safe_load((SWEEPS / f"{name}.yaml").read_text()), SWEEPS)


def absolute(config: dict, folder: Path) -> dict:
    """``config`` with the paths under datasets, methods, train and evaluation resolved against ``folder``."""
    def fix(entry: dict) -> None:
        for key in PATH_KEYS:
            if isinstance(entry.get(key), str):
                entry[key] = str((folder / entry[key]).resolve())

    for section in ("datasets", "methods"):
        for entry in (config.get(section) or {}).values():
            if isinstance(entry, dict):
                fix(entry)
    for section in ("train", "evaluation"):
        if isinstance(config.get(section), dict):
            fix(config[section])
    return config


def write_sweep(folder: Path, config: dict, name: str = "sweep.yaml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def tiny_sweep(out: Path, **changes) -> dict:
    """A one-seed sweep on a few tiny synthetic clips, one epoch everywhere, one attacker."""
    config = {
        "out": str(out), "seeds": [0], "launcher": {"name": "local", "jobs": 1},
        "datasets": {"synthetic": {"data": str(CONFIGS / "data" / "synthetic_tiny.yaml"), "folder": "."}},
        "methods": {"raw": {"config": str(CONFIGS / "method" / "raw.yaml")}},
        "train": {"epochs": 1, "trainer": str(CONFIGS / "trainer" / "cpu.yaml")},
        "evaluation": {"config": str(CONFIGS / "evaluation" / "protocol.yaml"), "epochs": 1,
                       "trainer": str(CONFIGS / "trainer" / "cpu.yaml"),
                       "overrides": {"attackers": ["frame_cnn_tiny"], "attacker_kwargs": {}}},
    }
    config.update(changes)
    return config
