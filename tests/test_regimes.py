"""The two-regime table (anonpriv/evaluation/regimes.py) and the README's copy of it."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from anonpriv.evaluation import regimes

ROOT = Path(__file__).resolve().parents[1]


def _write_csv(path: Path, rows: list[tuple[str, int, float, float]]) -> Path:
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["method", "group", "seed", "top1", "cmap", "f1"])
        for method, seed, top1, cmap in rows:
            writer.writerow([method, "method", seed, top1, cmap, 0.5])
    return path


def test_table_gives_mean_and_sample_std_per_regime_and_dashes_for_methods_a_regime_lacks(tmp_path):
    motion = _write_csv(tmp_path / "motion.csv", [("raw", 0, 0.90, 0.80), ("raw", 1, 0.92, 0.82),
                                                  ("raw", 2, 0.94, 0.84), ("bdq", 0, 1.0, 0.7)])
    looks = _write_csv(tmp_path / "looks.csv", [("raw", 0, 0.50, 0.60), ("raw", 1, 0.70, 0.60),
                                                ("blackening", 0, 0.3, 0.5)])
    text = regimes.regime_table([("motion", regimes.read_regime(motion)), ("looks", regimes.read_regime(looks))])
    lines = text.strip().splitlines()
    assert lines[0].startswith("| Method | motion: top-1 (%) ↑ | motion: worst-case cMAP (%) ↓ | looks: top-1")
    rows = {line.split(" | ")[0].strip("| "): line for line in lines[2:]}
    assert list(rows) == ["raw", "bdq", "blackening"]
    # raw, motion: mean 92.0, sample std 2.0 over 3 seeds; looks: 60.0 ± 14.1 over 2 seeds
    assert lines[0].endswith("| seeds (motion / looks) |")
    assert rows["raw"] == "| raw | 92.0 ± 2.0 | 82.0 ± 2.0 | 60.0 ± 14.1 | 60.0 ± 0.0 | 3 / 2 |"
    assert rows["bdq"] == "| bdq | 100.0 | 70.0 | - | - | 1 / - |"  # one seed: no spread shown
    assert rows["blackening"] == "| blackening | - | - | 30.0 | 50.0 | - / 1 |"


@pytest.mark.parametrize("content, message", [
    (None, "no such file"),
    ("method,seed,top1\nraw,0,0.9\n", "no column cmap"),
    ("method,seed,top1,cmap\n", "no rows"),
    ("", "empty file"),
    ("method,seed,top1,cmap\nraw,0,high,0.8\n", "line 2: column top1: 'high' is not a number"),
    ("method,seed,top1,cmap\nraw,0,0.9,0.8\nraw,0,0.8,0.8\n", "line 3: a second row of 'raw' for seed 0"),
])
def test_bad_regime_files_are_named_with_the_problem(tmp_path, capsys, content, message):
    path = tmp_path / "table1.csv"
    if content is not None:
        path.write_text(content)
    assert regimes.main(["--regime", f"x={path}"]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and message in err


def test_regime_option_needs_a_name_and_a_path():
    with pytest.raises(SystemExit):
        regimes.main(["--regime", "results/table1.csv"])


def test_committed_two_regime_table_matches_the_sweeps_and_the_readme_shows_it(tmp_path):
    """results/regimes.md is what `make regimes` makes from the committed table1.csv files, and every
    row of it is in the README, so neither can go stale when a sweep's results change."""
    out = tmp_path / "regimes.md"
    assert regimes.main(["--regime", f"motion-only={ROOT / 'results/table1.csv'}",
                         "--regime", f"appearance-rich={ROOT / 'results/appearance/table1.csv'}",
                         "--out", str(out)]) == 0
    fresh_rows = [line for line in out.read_text().splitlines() if line.startswith("|")]
    committed = (ROOT / "results/regimes.md").read_text(encoding="utf-8").splitlines()
    assert fresh_rows == [line for line in committed if line.startswith("|")], "run `make regimes` and commit"
    readme = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert fresh_rows[0] in readme, "the README has no two-regime table (copy it from results/regimes.md)"
    start = readme.index(fresh_rows[0])
    end = next((i for i in range(start, len(readme)) if not readme[i].startswith("|")), len(readme))
    assert readme[start:end] == fresh_rows, "the README's two-regime table differs from results/regimes.md"
