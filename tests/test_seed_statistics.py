"""Tables over seeds: mean ± std per cell, paired differences to raw with a 95% t interval, the
Pareto front that ignores differences within one standard deviation, and every seed kept in the CSV."""

from __future__ import annotations

import csv
import math
import statistics
import sys
from pathlib import Path

import pytest

from anonpriv.evaluation.sweep import SweepRun, default_runs
from anonpriv.evaluation.tables import (
    ResultRow,
    comparison_table,
    paired_difference,
    pareto_front_with_spread,
    plot_tradeoff,
    summarize,
    t_quantile_975,
    write_comparison_csv,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # `benchmarks` is a folder of scripts, not an installed package
    sys.path.insert(0, str(REPO_ROOT))


def _rows(name, top1, cmap, f1=None, group="method"):
    f1 = f1 or [0.5] * len(top1)
    return [ResultRow(name, t, c, f, worst_attacker="resnet18", group=group, seed=s)
            for s, (t, c, f) in enumerate(zip(top1, cmap, f1))]


def test_paired_difference_matches_a_hand_computed_t_interval():
    values, reference = [0.70, 0.74, 0.69], [0.90, 0.91, 0.93]
    mean, half = paired_difference(values, reference)
    diffs = [-0.20, -0.17, -0.24]
    assert mean == pytest.approx(statistics.mean(diffs))
    assert half == pytest.approx(4.303 * statistics.stdev(diffs) / math.sqrt(3))
    assert math.isnan(paired_difference([0.7], [0.9])[1])  # one seed: no interval
    with pytest.raises(ValueError, match="same seeds"):
        paired_difference([0.7, 0.8], [0.9])
    assert t_quantile_975(1) == pytest.approx(12.706) and t_quantile_975(100) == pytest.approx(1.96)


def test_table_cells_read_mean_and_std_and_deltas_are_paired_per_seed():
    rows = _rows("raw", [0.90, 0.92, 0.94], [0.98, 0.97, 0.99]) + _rows("x", [0.80, 0.83, 0.86], [0.60, 0.62, 0.64])
    text = comparison_table(rows)
    # x: top-1 mean 83.00, std 3.00; paired differences -10, -9, -8 points: mean -9, std 1,
    # 95% half-width 4.303 * 1 / sqrt(3) = 2.48.
    assert "| x | 3 | 83.00 ± 3.00 | -9.00 [-11.48, -6.52] | 62.00 ± 2.00 |" in text
    assert "mean ± std" in text and "95% CI" in text
    summary = {s.name: s for s in summarize(rows)}
    assert summary["x"].mean["cmap"] == pytest.approx(0.62) and summary["x"].std["cmap"] == pytest.approx(0.02)
    assert summary["raw"].delta == {}  # the reference row has no delta against itself
    assert "| raw | 3 | 92.00 ± 2.00 |  | 98.00 ± 1.00 |  |" in text


def test_deltas_use_only_the_seeds_the_reference_shares():
    rows = _rows("raw", [0.9, 0.9], [0.9, 0.9]) + [ResultRow("x", 0.5, 0.5, 0.5, seed=s) for s in (1, 7)]
    x = {s.name: s for s in summarize(rows)}["x"]
    assert x.n == 2 and x.delta["top1"][0] == pytest.approx(-0.4)
    assert math.isnan(x.delta["top1"][1])  # one shared seed: no interval
    with pytest.raises(ValueError, match="two results for one seed"):
        summarize([ResultRow("x", 0.5, 0.5, 0.5, seed=0)] * 2)


def test_pareto_front_keeps_methods_within_one_standard_deviation():
    # b beats a on both axes, but by less than a's spread: both stay on the front.
    noisy = summarize(_rows("a", [0.80, 0.90, 0.70], [0.70, 0.80, 0.60]) + _rows("b", [0.85, 0.86, 0.84], [0.66, 0.67, 0.65]))
    assert sorted(noisy[i].name for i in pareto_front_with_spread(noisy)) == ["a", "b"]
    # The same means with tight seeds: a is dominated.
    tight = summarize(_rows("a", [0.80, 0.81, 0.79], [0.70, 0.71, 0.69]) + _rows("b", [0.85, 0.86, 0.84], [0.66, 0.67, 0.65]))
    assert [tight[i].name for i in pareto_front_with_spread(tight)] == ["b"]


def test_csv_keeps_every_seed_and_the_plot_draws_means(tmp_path):
    rows = _rows("raw", [0.9, 0.92], [0.98, 0.97]) + _rows("x", [0.8, 0.83], [0.6, 0.62])
    write_comparison_csv(rows, tmp_path / "t.csv")
    table = list(csv.DictReader(open(tmp_path / "t.csv")))
    assert [(r["method"], r["seed"]) for r in table] == [("raw", "0"), ("raw", "1"), ("x", "0"), ("x", "1")]
    assert float(table[3]["top1_delta"]) == pytest.approx(0.83 - 0.92)  # against raw of the same seed
    front = plot_tradeoff(rows, tmp_path / "plot.png")
    assert front == ["x", "raw"] and (tmp_path / "plot.png").stat().st_size > 1000  # neither dominates


def test_default_runs_repeat_every_run_per_seed_in_seed_order():
    runs = default_runs(["raw", "bdq"], [(2.0, 0.5)], ["bdq"], seeds=[0, 1, 2])
    assert len(runs) == 3 * 4
    assert [r.seed for r in runs] == [0] * 4 + [1] * 4 + [2] * 4
    assert SweepRun("novel_bdq", "bdq", table="table2", seed=2) in runs
    with pytest.raises(ValueError, match="distinct"):
        default_runs(["raw"], [], seeds=[0, 0])


def test_sweep_script_plans_three_seeds_and_one_epoch_budget_for_every_learned_method(tmp_path):
    from benchmarks import sweep as script

    settings, runs = script.plan(script.parse_args(["--out", str(tmp_path)]))
    seeds = {}
    for r in runs:
        seeds.setdefault((r.name, r.table), set()).add(r.seed)
    assert all(s == {0, 1, 2} for s in seeds.values()), seeds
    assert settings.train_epochs == script.TRAIN_EPOCHS  # BDQ, SPAct and token pruning alike
    _, quick = script.plan(script.parse_args(["--quick", "--seeds", "3,4", "--out", str(tmp_path)]))
    assert {r.seed for r in quick} == {3, 4}


def test_report_only_writes_tables_from_finished_runs_and_lists_the_rest(tmp_path):
    """An interrupted multi-seed sweep still yields tables of what finished, saying what is missing."""
    import json

    from anonpriv.evaluation.sweep import Sweep, SweepSettings

    sweep = Sweep(SweepSettings(out=tmp_path), log=lambda _: None)
    runs = default_runs(["raw", "bdq"], [], seeds=[0, 1])
    scores = {("raw", 0): 0.90, ("raw", 1): 0.92, ("bdq", 0): 0.80}  # bdq seed 1 did not finish
    for run in runs:
        if run.key in scores:
            sweep.result_file(run).parent.mkdir(parents=True)
            sweep.result_file(run).write_text(json.dumps({"top1": scores[run.key], "cmap": 0.5, "f1": 0.5}))
    rows, missing = sweep.collect(runs)
    assert [(r.name, r.seed) for r in rows["table1"]] == [("raw", 0), ("bdq", 0), ("raw", 1)]  # seed by seed
    assert [m.key for m in missing] == [("bdq", 1)]
    sweep.write_reports(rows, "test", missing)
    text = (tmp_path / "table1.md").read_text()
    assert "| bdq | 1 | 80.00 | -10.00 |" in text and "Not finished yet (not in the table): bdq (seed 1)" in text


def test_a_failed_run_does_not_stop_the_others_and_is_named_at_the_end(tmp_path, monkeypatch):
    """One failing run in a parallel sweep: the rest finish and are kept, the error names the failure."""
    from anonpriv.evaluation.sweep import CONFIGS, Sweep, SweepSettings

    settings = SweepSettings(out=tmp_path, data_config=CONFIGS / "data" / "synthetic_tiny.yaml", train_epochs=1,
                             eval_epochs=1, eval_args=("--model.init_args.attackers", '["frame_cnn_tiny"]'))
    runs = [SweepRun("raw", "raw"), SweepRun("broken", "raw", model_args=(("no_such_option", 1),)),
            SweepRun("downsample", "downsample")]
    sweep = Sweep(settings, log=lambda _: None)
    with pytest.raises(RuntimeError, match=r"1 sweep run\(s\) failed: broken \(seed 0\).*rerun the same command"):
        sweep.run(runs, jobs=2)
    assert sweep.result_file(runs[0]).exists() and sweep.result_file(runs[2]).exists()
    assert not sweep.result_file(runs[1]).exists()
    from anonpriv.evaluation.sweep import machine_record

    recorded = sweep.saved_result(runs[0])["sweep"]["machine"]  # each run says where it ran
    assert set(recorded) == {"device", "cpu", "torch"} and recorded == machine_record()


def test_machine_record_names_the_accelerator_auto_picks(monkeypatch):
    """The first CUDA device by name, else MPS, else the CPU; always the CPU and the torch build."""
    import torch

    from anonpriv.evaluation.sweep import machine_record
    from anonpriv.evaluation.tables import describe_machine

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    record = machine_record()
    assert set(record) == {"device", "cpu", "torch"}
    assert record["device"] == "CPU" and record["cpu"].endswith(" cores") and record["torch"] == torch.__version__
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert machine_record()["device"] == "MPS"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda index=0: "Some GPU")
    record = machine_record()
    assert record["device"] == "Some GPU"
    assert describe_machine(record) == f"Some GPU ({record['cpu']}), torch {torch.__version__}"
    assert describe_machine({"device": "GPU A", "torch": "2.11"}) == "GPU A, torch 2.11"  # no CPU recorded
    assert describe_machine(None) == ""


def test_tables_and_csv_say_where_the_runs_ran(tmp_path):
    """Runs from one machine and one written before machines were recorded: the notes under both tables
    count each, the CSV names each row's machine."""
    import json

    from anonpriv.evaluation.sweep import Sweep, SweepSettings

    sweep = Sweep(SweepSettings(out=tmp_path), log=lambda _: None)
    runs = default_runs(["raw"], [], novel=["raw"], seeds=[0, 1, 2])
    machine = {"device": "GPU A", "torch": "2.11"}
    for run in runs:
        sweep.result_file(run).parent.mkdir(parents=True)
        recorded = run.seed < 2
        record = {"top1": 0.9, "cmap": 0.5, "f1": 0.5, **({"sweep": {"machine": machine}} if recorded else {})}
        sweep.result_file(run).write_text(json.dumps(record))
    rows, _ = sweep.collect(runs)
    sweep.write_reports(rows, "test")
    for table in ("table1", "table2"):
        assert "Ran on: GPU A, torch 2.11 (2 runs); not recorded (1 run)." in (tmp_path / f"{table}.md").read_text()
    with open(tmp_path / "table1.csv") as fh:
        assert [row["machine"] for row in csv.DictReader(fh)] == ["GPU A, torch 2.11", "GPU A, torch 2.11", ""]


def test_attribute_table_takes_each_attributes_best_attacker_then_averages_seeds():
    """Per attribute the attacker that reads it best (not the overall worst one), mean ± std over seeds."""
    from anonpriv.evaluation.tables import ResultRow, attribute_table, worst_case_per_attribute

    def row(seed: int, face_a: float, face_b: float, gender_a: float) -> ResultRow:
        attackers = {"a": {"cmap": 0.9, "f1": 0.8, "per_attribute_ap": {"face": face_a, "gender": gender_a},
                           "per_attribute_f1": {"face": 0.5, "gender": 0.6}},
                     "b": {"cmap": 0.7, "f1": 0.6, "per_attribute_ap": {"face": face_b},
                           "per_attribute_f1": {"face": 0.7}}}
        return ResultRow("bdq", 0.9, 0.9, 0.8, attackers=attackers, seed=seed)

    rows = [row(0, 0.60, 0.80, 0.90), row(1, 0.70, 0.50, 0.70)]
    assert worst_case_per_attribute(rows[0]) == {"face": 0.80, "gender": 0.90}
    assert worst_case_per_attribute(rows[1], "f1") == {"face": 0.7, "gender": 0.6}
    text = attribute_table(rows)
    # face: 80 and 70 -> 75.0 ± 7.1; gender: 90 and 70 -> 80.0 ± 14.1; F1 0.70 and 0.60 both seeds
    assert "| Method | face | gender |" in text
    assert "| bdq | 75.0 ± 7.1 / 0.70 ± 0.00 | 80.0 ± 14.1 / 0.60 ± 0.00 |" in text
    assert attribute_table([ResultRow("raw", 0.9, 0.9, 0.8)]) == ""  # results without per-attribute scores


def test_attribute_table_with_one_seed_missing_scores_and_nan():
    """One seed: plain values and no "(mean ± std)"; a NaN score is skipped (the other attacker's
    counts); a method without per-attribute scores reads n/a beside one that has them."""
    from anonpriv.evaluation.tables import ResultRow, attribute_table

    attackers = {"a": {"per_attribute_ap": {"face": math.nan}, "per_attribute_f1": {"face": math.nan}},
                 "b": {"per_attribute_ap": {"face": 0.55}, "per_attribute_f1": {"face": 0.4}}}
    text = attribute_table([ResultRow("bdq", 0.9, 0.9, 0.8, attackers=attackers), ResultRow("raw", 0.9, 0.9, 0.8)])
    assert "(mean ± std)" not in text
    assert "| bdq | 55.0 / 0.40 |" in text and "| raw | n/a / n/a |" in text
