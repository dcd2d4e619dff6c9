"""Tables over seeds: mean ± std per cell, paired differences to raw with a 95% t interval, the
Pareto front that ignores differences within one standard deviation, and every seed kept in the CSV."""

from __future__ import annotations

import csv
import json
import math
import re
import statistics
from pathlib import Path

import pytest

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
from anonpriv.sweep.config import SweepConfigError, load_sweep_config
from anonpriv.sweep.plan import build_plan
from anonpriv.sweep.report import write_reports
from sweep_files import CONFIGS, SWEEPS, tiny_sweep, write_sweep


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


def _plan(folder: Path, config: dict):
    return build_plan(load_sweep_config(write_sweep(folder, config)))


def _methods(*names: str, trained=("bdq",)) -> dict:
    return {n: {"config": str(CONFIGS / "method" / f"{n}.yaml"), **({"train": True} if n in trained else {})}
            for n in names}


def _fake_results(plan, scores: dict, machine: dict | None = None, unrecorded_seed: int | None = None) -> None:
    """result.json of the evaluations named in ``scores`` ({(row, seed): top-1}), as finished runs leave them."""
    for table in plan.tables:
        for row in table.rows:
            if (row.name, row.seed) not in scores:
                continue
            record = {"top1": scores[row.name, row.seed], "cmap": 0.5, "f1": 0.5}
            if machine is not None and row.seed != unrecorded_seed:
                record["sweep"] = {"machine": machine}
            result = plan.job(row.job).result_file
            result.parent.mkdir(parents=True, exist_ok=True)
            result.write_text(json.dumps(record))


def test_every_row_runs_once_per_seed_in_seed_order(tmp_path):
    plan = _plan(tmp_path, tiny_sweep(tmp_path / "out", seeds=[0, 1, 2], methods=_methods("raw", "bdq"), table2=[
        {"kind": "novel", "dataset": "synthetic", "seen": {"actions": ["march"]}, "novel": {"actions": ["kick_left"]}}]))
    table1, table2 = plan.tables
    assert [(r.name, r.seed) for r in table1.rows] == [(n, s) for s in (0, 1, 2) for n in ("raw", "bdq")]
    assert [(r.name, r.seed) for r in table2.rows] == [(n, s) for s in (0, 1, 2) for n in ("raw", "bdq")]
    assert plan.counts() == {"train": 6, "evaluate": 12}  # bdq trains anew for the novel split
    assert plan.job("evaluate Table 2 novel synthetic/bdq seed 2").after == ("train synthetic/novel_bdq seed 2",)
    with pytest.raises(SweepConfigError, match="distinct integer seeds"):
        _plan(tmp_path, tiny_sweep(tmp_path / "out", seeds=[0, 0]))


def test_default_sweep_plans_three_seeds_and_one_epoch_budget_for_every_learned_method():
    plan = build_plan(load_sweep_config(SWEEPS / "synthetic.yaml"))
    seeds = {}
    for table in plan.tables:
        for row in table.rows:
            seeds.setdefault((table.name, row.name), set()).add(row.seed)
    assert all(s == {0, 1, 2} for s in seeds.values()), seeds
    trainings = [job for job in plan.jobs if job.kind == "train"]
    assert {job.args[job.args.index("--trainer.max_epochs") + 1] for job in trainings} == {"5"}  # BDQ, SPAct, token pruning
    assert {job.args[job.args.index("--model") + 1].rsplit("/", 1)[-1] for job in trainings} == \
        {"bdq.yaml", "spact.yaml", "token_pruning.yaml"}
    quick = build_plan(load_sweep_config(SWEEPS / "synthetic.yaml").select(seeds=[3, 4]))
    assert {row.seed for table in quick.tables for row in table.rows} == {3, 4}


def test_report_only_writes_tables_from_finished_runs_and_lists_the_rest(tmp_path):
    """An interrupted multi-seed sweep still yields tables of what finished, saying what is missing."""
    plan = _plan(tmp_path, tiny_sweep(tmp_path, seeds=[0, 1], methods=_methods("raw", "bdq")))
    _fake_results(plan, {("raw", 0): 0.90, ("raw", 1): 0.92, ("bdq", 0): 0.80})  # bdq seed 1 did not finish
    from anonpriv.sweep.report import collect

    rows, missing = collect(plan, plan.tables[0])
    assert [(r.name, r.seed) for r in rows] == [("raw", 0), ("bdq", 0), ("raw", 1)]  # seed by seed
    assert [(m.name, m.seed) for m in missing] == [("bdq", 1)]
    write_reports(plan, "test", log=lambda _: None)
    text = (tmp_path / "table1.md").read_text()
    assert "| bdq | 1 | 80.00 | -10.00 |" in text and "Not finished yet (not in the table): bdq (seed 1)" in text


def test_a_failed_run_does_not_stop_the_others_and_is_named_at_the_end(tmp_path, capsys):
    """One failing run in a parallel sweep: the rest finish and are kept, the error names the failure."""
    methods = _methods("raw", "downsample")
    methods["broken"] = {"config": str(CONFIGS / "method" / "raw.yaml"), "overrides": {"no_such_option": 1}}
    config = tiny_sweep(tmp_path / "out", methods={k: methods[k] for k in ("raw", "broken", "downsample")})
    from anonpriv.sweep.cli import main

    assert main(["--config", str(write_sweep(tmp_path, config)), "--jobs", "2"]) == 1
    error = capsys.readouterr().err.strip()
    assert "\n" not in error and re.search(
        r"1 sweep job\(s\) failed: evaluate Table 1 synthetic/broken seed 0: .*no_such_option.*rerun the same command",
        error), error
    runs = tmp_path / "out" / "runs"
    assert (runs / "raw" / "seed0" / "result.json").exists() and (runs / "downsample" / "seed0" / "result.json").exists()
    assert not (runs / "broken" / "seed0" / "result.json").exists()
    assert "Not finished yet (not in the table): broken (seed 0)" in (tmp_path / "out" / "table1.md").read_text()
    from anonpriv.sweep.execute import machine_record

    recorded = json.loads((runs / "raw" / "seed0" / "result.json").read_text())["sweep"]["machine"]  # where it ran
    assert set(recorded) == {"device", "cpu", "torch"} and recorded == machine_record()


def test_machine_record_names_the_accelerator_auto_picks(monkeypatch):
    """The first CUDA device by name, else MPS, else the CPU; always the CPU and the torch build."""
    import torch

    from anonpriv.evaluation.tables import describe_machine
    from anonpriv.sweep.execute import machine_record

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
    plan = _plan(tmp_path, tiny_sweep(tmp_path, seeds=[0, 1, 2], methods=_methods("raw"), table2=[
        {"kind": "novel", "dataset": "synthetic", "seen": {"actions": ["march"]}, "novel": {"actions": ["kick_left"]}}]))
    _fake_results(plan, {("raw", s): 0.9 for s in (0, 1, 2)}, machine={"device": "GPU A", "torch": "2.11"},
                  unrecorded_seed=2)
    write_reports(plan, "test", log=lambda _: None)
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
