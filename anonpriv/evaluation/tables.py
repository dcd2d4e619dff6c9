"""Comparison tables (paper style, deltas against raw) and the privacy-utility plot.

A sweep evaluates each method with several seeds; every seed's scores are a :class:`ResultRow`.
:func:`summarize` groups them by method into :class:`SeedSummary` s (mean and standard deviation
over seeds, and the paired difference to the reference row, seed by seed, with a 95% t interval),
which is what the tables print and the plot draws. The CSV keeps every seed's row.

Rows of an evaluation with the protocol's face rate (``face_rate: true``, :mod:`anonpriv.evaluation.protocol`)
also carry ``face_rate`` (the share of anonymized test frames in which a pretrained face detector
finds a face) and ``face_rate_raw`` (the same on the raw clips); the table then shows a
``face rate (%)`` column and the CSV ``face_rate`` / ``face_rate_raw`` columns. When no row
carries them, neither has those columns.
"""

from __future__ import annotations

import collections
import csv
import dataclasses
import math
from collections.abc import Sequence
from pathlib import Path


@dataclasses.dataclass
class ResultRow:
    """One evaluated anonymizer: fresh-model scores in [0, 1] and the worst attacker's name."""

    name: str
    top1: float
    cmap: float
    f1: float
    attackers: dict[str, dict] = dataclasses.field(default_factory=dict)
    worst_attacker: str = ""
    group: str = "method"  # "method" or "sweep" (points of the token-pruning trade-off curve)
    params: dict = dataclasses.field(default_factory=dict)
    seed: int = 0
    face_rate: float | None = None  # share of anonymized test frames with a detected face (None: not measured)
    face_rate_raw: float | None = None  # the same on the raw test clips, for reference
    machine: str = ""  # where the run ran (see anonpriv.sweep.execute.machine_record); "" if not recorded

    @classmethod
    def from_results(cls, name: str, results: dict, group: str = "method", params: dict | None = None,
                     seed: int = 0) -> ResultRow:
        """From the metrics callback's test results (``results.json``).

        The privacy columns are those of one attacker, the worst (highest-cMAP) one: read from its
        own entry under ``attackers`` where the results name it, so results written before the
        headline F1 became that attacker's (it was the highest F1 of any attacker) read right too.
        """
        attackers = results.get("attackers", {})
        worst = results.get("worst_attacker", "")
        cmap, f1 = results["cmap"], results["f1"]
        if worst in attackers:
            cmap, f1 = attackers[worst]["cmap"], attackers[worst]["f1"]
        return cls(name=name, top1=results["top1"], cmap=cmap, f1=f1, attackers=attackers, worst_attacker=worst,
                   group=group, params=dict(params or {}), seed=seed, face_rate=results.get("face_rate"),
                   face_rate_raw=results.get("face_rate_raw"),
                   machine=describe_machine(results.get("sweep", {}).get("machine")))


def describe_machine(record: dict | None) -> str:
    """``"NVIDIA H200 (x86_64, 16 cores), torch 2.11.0+cu130"`` from a run's machine record
    (:func:`anonpriv.sweep.execute.machine_record`); "" when it has none."""
    if not record:
        return ""
    cpu = f" ({record['cpu']})" if record.get("cpu") else ""
    return f"{record.get('device', '?')}{cpu}, torch {record.get('torch', '?')}"


# Two-sided 95% quantiles of Student's t with 1..30 degrees of freedom (beyond: the normal's 1.96).
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145,
         2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048,
         2.045, 2.042)
METRICS = ("top1", "cmap", "f1")
#: metrics only some evaluations measure (None where not): summarised over the seeds that have them
OPTIONAL_METRICS = ("face_rate", "face_rate_raw")


def t_quantile_975(dof: int) -> float:
    """The 97.5% quantile of Student's t with ``dof`` degrees of freedom (two-sided 95% interval)."""
    if dof < 1:
        raise ValueError(f"a t interval needs at least 1 degree of freedom (2 seeds), got {dof}")
    return _T975[dof - 1] if dof <= len(_T975) else 1.96


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (n - 1; NaN for a single value)."""
    n = len(values)
    mean = sum(values) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else math.nan
    return mean, std


def paired_difference(values: Sequence[float], reference: Sequence[float]) -> tuple[float, float]:
    """Mean of ``values[i] - reference[i]`` (the same seed in both) and the half-width of its 95%
    t interval over seeds (NaN with one seed)."""
    if len(values) != len(reference) or not values:
        raise ValueError(f"paired differences need the same seeds on both sides, got {len(values)} and {len(reference)}")
    diffs = [v - r for v, r in zip(values, reference)]
    mean, std = mean_std(diffs)
    n = len(diffs)
    return mean, (t_quantile_975(n - 1) * std / math.sqrt(n) if n > 1 else math.nan)


@dataclasses.dataclass
class SeedSummary:
    """One method over its seeds: ``mean[m]`` / ``std[m]`` for m in top1, cmap, f1, and for
    face_rate / face_rate_raw where its rows measured them (over those rows; absent otherwise);
    ``delta[m]`` is ``(mean paired difference to the reference, 95% half-width)`` over the seeds
    both share (top1, cmap, f1)."""

    name: str
    group: str
    params: dict
    seeds: list[int]
    mean: dict[str, float]
    std: dict[str, float]
    worst_attacker: str  # the attacker that was the worst on most seeds
    delta: dict[str, tuple[float, float]] = dataclasses.field(default_factory=dict)
    rows: list[ResultRow] = dataclasses.field(default_factory=list)

    @property
    def n(self) -> int:
        return len(self.seeds)


def summarize(rows: Sequence[ResultRow], reference: str = "raw") -> list[SeedSummary]:
    """Group ``rows`` by name (first-seen order) into per-method summaries over seeds, with paired
    differences to the ``reference`` rows of the same seeds."""
    by_name: dict[str, list[ResultRow]] = {}
    for r in rows:
        by_name.setdefault(r.name, []).append(r)
    ref_by_seed = {r.seed: r for r in by_name.get(reference, [])}
    summaries = []
    for name, group in by_name.items():
        seeds = [r.seed for r in group]
        if len(set(seeds)) != len(seeds):
            raise ValueError(f"{name!r} has two results for one seed: {seeds}")
        stats = {m: mean_std([getattr(r, m) for r in group]) for m in METRICS}
        for m in OPTIONAL_METRICS:
            measured = [getattr(r, m) for r in group if getattr(r, m) is not None]
            if measured:
                stats[m] = mean_std(measured)
        worst = [r.worst_attacker for r in group]
        summary = SeedSummary(
            name=name, group=group[0].group, params=group[0].params, seeds=seeds,
            mean={m: mean for m, (mean, _) in stats.items()}, std={m: std for m, (_, std) in stats.items()},
            worst_attacker=max(dict.fromkeys(worst), key=worst.count), rows=list(group),
        )
        paired = [(r, ref_by_seed[r.seed]) for r in group if r.seed in ref_by_seed]
        if paired and name != reference:  # the reference row's own deltas are left empty
            summary.delta = {m: paired_difference([getattr(r, m) for r, _ in paired],
                                                  [getattr(ref, m) for _, ref in paired]) for m in METRICS}
        summaries.append(summary)
    return summaries


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the points (privacy leak, utility) that no other point dominates.

    Lower leak and higher utility are better; a point is dominated when another is at least as good
    on both and strictly better on one. Returned in order of increasing leak.
    """
    front = []
    for i, (leak_i, util_i) in enumerate(points):
        dominated = any(
            (leak_j <= leak_i and util_j >= util_i) and (leak_j < leak_i or util_j > util_i)
            for j, (leak_j, util_j) in enumerate(points) if j != i
        )
        if not dominated:
            front.append(i)
    return sorted(front, key=lambda i: (points[i][0], -points[i][1]))


def pareto_front_with_spread(summaries: Sequence[SeedSummary]) -> list[int]:
    """Indices of the methods on the front when seed spread is taken into account.

    Method ``j`` dominates ``i`` only if its mean worst-case cMAP is lower by more than one standard
    deviation and its mean top-1 higher by more than one standard deviation (on each axis the larger
    of the two methods' standard deviations over seeds; 0 for a single seed). Methods within each
    other's spread are both on the front. Returned in order of increasing mean cMAP.
    """
    def sd(a: SeedSummary, b: SeedSummary, metric: str) -> float:
        return max((v for v in (a.std[metric], b.std[metric]) if not math.isnan(v)), default=0.0)

    front = []
    for i, a in enumerate(summaries):
        dominated = any(
            a.mean["cmap"] - b.mean["cmap"] > sd(a, b, "cmap") and b.mean["top1"] - a.mean["top1"] > sd(a, b, "top1")
            for j, b in enumerate(summaries) if j != i
        )
        if not dominated:
            front.append(i)
    return sorted(front, key=lambda i: (summaries[i].mean["cmap"], -summaries[i].mean["top1"]))


def _pct(value: float) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{100 * value:.2f}"


def mean_std_text(mean: float, std: float, scale: float, digits: int) -> str:
    """``mean ± std`` scaled (``mean`` alone when std is NaN, i.e. one seed; ``n/a`` when mean is NaN)."""
    if math.isnan(mean):
        return "n/a"
    text = f"{scale * mean:.{digits}f}"
    return text if math.isnan(std) else f"{text} ± {scale * std:.{digits}f}"


def _cell(summary: SeedSummary, metric: str, scale: float, digits: int) -> str:
    if metric not in summary.mean:  # an optional metric this method's rows did not measure
        return "n/a"
    return mean_std_text(summary.mean[metric], summary.std[metric], scale, digits)


def _delta_cell(summary: SeedSummary, metric: str, scale: float, digits: int) -> str:
    """The paired difference to the reference: ``mean`` with one seed, ``mean [low, high]`` (95% t
    interval over seeds) with several."""
    if metric not in summary.delta:
        return ""
    mean, half = summary.delta[metric]
    if math.isnan(mean):
        return ""
    text = f"{scale * mean:+.{digits}f}"
    if math.isnan(half):
        return text
    return f"{text} [{scale * (mean - half):+.{digits}f}, {scale * (mean + half):+.{digits}f}]"


def comparison_table(rows: Sequence[ResultRow], reference: str = "raw", title: str = "") -> str:
    """Markdown table: top-1 (%), and cMAP (%) and F1 of one attacker, the worst (highest-cMAP)
    one, named in the last column; each with its delta against the ``reference`` row (the paper's
    deltas are against raw).

    Rows of several seeds per method are summarised (:func:`summarize`): each cell reads
    ``mean ± std`` over seeds and each delta ``mean [95% interval]`` of the paired difference to the
    reference on the same seeds; the worst attacker is the one that was worst on most seeds.

    Only when some row measured it, a ``face rate (%)`` column (after F1) gives the share of
    anonymized test frames in which the face detector finds a face (``mean ± std``; ``n/a`` for a
    method that was not measured), and a line under the table the raw test clips' rate, the
    reference.
    """
    summaries = summarize(rows, reference)
    several = any(s.n > 1 for s in summaries)
    spread = " (mean ± std)" if several else ""
    interval = " [95% CI]" if several else ""
    faces = any("face_rate" in s.mean for s in summaries)
    face_header = f" face rate (%) ↓{spread} |" if faces else ""
    lines = [f"**{title}**", ""] if title else []
    lines += [
        f"| Method | seeds | Top-1 (%) ↑{spread} | Δ vs {reference}{interval} | cMAP (%) ↓{spread} | Δ vs {reference}{interval} "
        f"| F1 ↓{spread} | Δ vs {reference}{interval} |{face_header} worst attacker |",
        f"|---|---:|---:|---:|---:|---:|---:|---:|{'---:|' if faces else ''}---|",
    ]
    for r in summaries:
        face_cell = f" {_cell(r, 'face_rate', 100, 1)} |" if faces else ""
        lines.append(
            f"| {r.name} | {r.n} | {_cell(r, 'top1', 100, 2)} | {_delta_cell(r, 'top1', 100, 2)} "
            f"| {_cell(r, 'cmap', 100, 2)} | {_delta_cell(r, 'cmap', 100, 2)} "
            f"| {_cell(r, 'f1', 1, 3)} | {_delta_cell(r, 'f1', 1, 3)} |{face_cell} {r.worst_attacker} |"
        )
    if faces:
        lines += ["", _raw_face_rate_note(rows)]
    return "\n".join(lines) + "\n"


def worst_case_per_attribute(row: ResultRow, metric: str = "ap") -> dict[str, float]:
    """Each attribute's highest ``per_attribute_<metric>`` over the row's attackers (the attacker that
    reads that attribute best, which need not be the worst attacker overall); {} if none recorded one.
    Missing and NaN scores are skipped; an attribute no attacker scored is left out."""
    best: dict[str, float] = {}
    for scores in row.attackers.values():
        for attribute, value in (scores.get(f"per_attribute_{metric}") or {}).items():
            if value is None or math.isnan(value):
                continue
            best[attribute] = max(best.get(attribute, value), value)
    return best


def attribute_table(rows: Sequence[ResultRow], title: str = "") -> str:
    """Markdown table: per private attribute, the worst-case AP (%) and F1 over the attackers, ``mean ±
    std`` over the seeds that scored it, one row per method (in order of first appearance; ``n/a`` where
    a method's results have no score for it); "" if no row has per-attribute scores at all."""
    scores = [(r.name, worst_case_per_attribute(r, "ap"), worst_case_per_attribute(r, "f1")) for r in rows]
    attributes = sorted({a for _, ap, f1 in scores for a in (*ap, *f1)})
    if not attributes:
        return ""
    methods = list(dict.fromkeys(name for name, _, _ in scores))
    spread = " (mean ± std)" if len(rows) > len(methods) else ""

    def cell(method: str, attribute: str, which: int, scale: float, digits: int) -> str:
        values = [score[which][attribute] for score in scores if score[0] == method and attribute in score[which]]
        return mean_std_text(*mean_std(values), scale, digits) if values else "n/a"

    lines = [f"**{title}**", ""] if title else []
    lines += [
        f"Worst case over the attackers, per attribute: AP (%) ↓ / F1 ↓{spread}.",
        "",
        "| Method | " + " | ".join(attributes) + " |",
        "|---|" + "---:|" * len(attributes),
    ]
    for method in methods:
        lines.append(f"| {method} | " + " | ".join(
            f"{cell(method, a, 1, 100, 1)} / {cell(method, a, 2, 1, 2)}" for a in attributes) + " |")
    return "\n".join(lines) + "\n"


def machines_note(rows: Sequence[ResultRow]) -> str:
    """The line under a table saying where its runs ran, with how many runs each (runs written before
    machines were recorded: "not recorded"); "" for no rows."""
    counts = collections.Counter(row.machine or "not recorded" for row in rows)
    parts = [f"{name} ({n} run{'s' if n > 1 else ''})" for name, n in sorted(counts.items())]
    return "\nRan on: " + "; ".join(parts) + ".\n" if parts else ""


def _raw_face_rate_note(rows: Sequence[ResultRow]) -> str:
    """The line under a table with a face-rate column: what it measures, and the raw clips' rate."""
    raw = [r.face_rate_raw for r in rows if r.face_rate_raw is not None]
    if not raw:
        reference = "not recorded"
    elif max(raw) - min(raw) < 1e-9:  # one test set: every evaluation saw the same raw clips
        reference = f"{100 * raw[0]:.1f}%"
    else:
        reference = f"{100 * min(raw):.1f}% to {100 * max(raw):.1f}% over the evaluations"
    return ("Face rate: share of the anonymized test frames in which a pretrained face detector (CenterFace, "
            f"heat >= its threshold) finds a face; on the raw test clips: {reference}.")


def write_comparison_csv(rows: Sequence[ResultRow], path: Path, reference: str = "raw") -> None:
    """Every number behind a table: one row per method and seed, per-attacker cMAP/F1 included.

    ``cmap`` and ``f1`` are both the ``worst_attacker``'s (the highest-cMAP one); ``cmap_<a>`` /
    ``f1_<a>`` are every attacker's own. Deltas are against the ``reference`` row of the same seed
    (empty where that seed has none). When some row measured the face rate, ``face_rate`` and
    ``face_rate_raw`` follow ``f1_delta`` (empty for rows that did not).
    """
    ref_by_seed = {r.seed: r for r in rows if r.name == reference}
    attackers = sorted({a for r in rows for a in r.attackers})
    params = sorted({p for r in rows for p in r.params})
    # both columns or neither: the raw clips' rate is the reference of the anonymized one
    faces = list(OPTIONAL_METRICS) if any(getattr(r, m) is not None for r in rows for m in OPTIONAL_METRICS) else []
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["method", "group", "seed", *params, "top1", "top1_delta", "cmap", "cmap_delta", "f1",
                         "f1_delta", *faces, "machine", "worst_attacker", *[f"cmap_{a}" for a in attackers],
                         *[f"f1_{a}" for a in attackers]])
        for r in rows:
            ref = ref_by_seed.get(r.seed)

            def delta(metric: str, row: ResultRow = r, ref: ResultRow | None = ref) -> str:
                return "" if ref is None else f"{getattr(row, metric) - getattr(ref, metric):.6f}"

            writer.writerow([
                r.name, r.group, r.seed, *[r.params.get(p, "") for p in params],
                f"{r.top1:.6f}", delta("top1"), f"{r.cmap:.6f}", delta("cmap"), f"{r.f1:.6f}", delta("f1"),
                *["" if getattr(r, m) is None else f"{getattr(r, m):.6f}" for m in faces],
                r.machine, r.worst_attacker,
                *[f"{r.attackers[a]['cmap']:.6f}" if a in r.attackers else "" for a in attackers],
                *[f"{r.attackers[a]['f1']:.6f}" if a in r.attackers else "" for a in attackers],
            ])


def plot_tradeoff(rows: Sequence[ResultRow], path: Path, title: str = "Privacy-utility trade-off",
                  curve_method: str = "token_pruning") -> list[str]:
    """Worst-case privacy cMAP (x, lower is better) against action top-1 (y): each method at its
    mean over seeds with one-standard-deviation error bars, the token-pruning sweep (with the
    ``curve_method`` row, its default setting) as a connected curve, and the Pareto front
    (:func:`pareto_front_with_spread`) marked.

    Returns the names of the methods on the front.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summaries = summarize(rows)
    front = pareto_front_with_spread(summaries)

    def err(summary: SeedSummary, metric: str) -> float:
        std = summary.std[metric]
        return 0.0 if math.isnan(std) else 100 * std

    fig, ax = plt.subplots(figsize=(7, 5.5))
    methods = [r for r in summaries if r.group == "method"]
    sweep = [r for r in summaries if r.group == "sweep"]
    if sweep:  # the method's own default is a point of its trade-off curve too
        sweep += [r for r in methods if r.name == curve_method]
    sweep.sort(key=lambda r: r.mean["cmap"])
    xy = [(100 * r.mean["cmap"], 100 * r.mean["top1"]) for r in methods]
    colours = {}
    for r, (x, y) in zip(methods, xy):
        bars = ax.errorbar(x, y, xerr=err(r, "cmap"), yerr=err(r, "top1"), fmt="o", markersize=7, capsize=3,
                           zorder=3, label=r.name if r.n == 1 else f"{r.name} (n={r.n})")
        colours[r.name] = bars.lines[0].get_color()
        # Every method is in the legend; only points with no close neighbour are labelled in place.
        crowded = sum(abs(x - ox) < 2.5 and abs(y - oy) < 5.0 for ox, oy in xy) > 1
        if not crowded:
            ax.annotate(r.name, (x, y), textcoords="offset points", xytext=(5, 4), fontsize=9)
    if sweep:
        curve_colour = colours.get(curve_method, "tab:gray")  # the curve in its method's colour
        ax.errorbar([100 * r.mean["cmap"] for r in sweep], [100 * r.mean["top1"] for r in sweep],
                    xerr=[err(r, "cmap") for r in sweep], yerr=[err(r, "top1") for r in sweep], fmt="o--",
                    color=curve_colour, alpha=0.7, capsize=2, label="token pruning: lambda_priv x keep_ratio",
                    zorder=2)
        for r in sweep:
            if not r.params:
                continue  # the default point carries the method's name already
            label = ", ".join(f"{k}={v}" for k, v in r.params.items())
            ax.annotate(label, (100 * r.mean["cmap"], 100 * r.mean["top1"]), textcoords="offset points",
                        xytext=(4, -10), fontsize=7, color=curve_colour)
    on_front = sorted((summaries[i] for i in front), key=lambda r: r.mean["cmap"])
    fx = [100 * r.mean["cmap"] for r in on_front]
    fy = [100 * r.mean["top1"] for r in on_front]
    ax.step(fx, fy, where="post", color="black", linewidth=1.2, label="Pareto front (within 1 std)", zorder=1)
    ax.scatter(fx, fy, s=160, facecolors="none", edgecolors="black", zorder=4)
    ax.set_xlabel("privacy cMAP of the worst fresh attacker (%)  ← better")
    ax.set_ylabel("action top-1 of a fresh model (%)  ↑ better")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    # Below the axes: inside, it hid the points near the top (where the useful methods are).
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.13), fontsize=8, ncol=3, frameon=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return [summaries[i].name for i in front]
