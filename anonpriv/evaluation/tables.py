"""Comparison tables (paper style, deltas against raw) and the privacy-utility plot."""

from __future__ import annotations

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

    @classmethod
    def from_results(cls, name: str, results: dict, group: str = "method", params: dict | None = None) -> ResultRow:
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
                   group=group, params=dict(params or {}))


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


def _pct(value: float) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{100 * value:.2f}"


def _delta(value: float, reference: float | None, scale: float = 100.0, digits: int = 2) -> str:
    if reference is None or math.isnan(value) or math.isnan(reference):
        return ""
    diff = scale * (value - reference)
    return f"{diff:+.{digits}f}"


def comparison_table(rows: Sequence[ResultRow], reference: str = "raw", title: str = "") -> str:
    """Markdown table: top-1 (%), and cMAP (%) and F1 of one attacker, the worst (highest-cMAP)
    one, named in the last column; each with its delta against the ``reference`` row (the paper's
    deltas are against raw)."""
    ref = next((r for r in rows if r.name == reference), None)
    lines = [f"**{title}**", ""] if title else []
    lines += [
        f"| Method | Top-1 (%) ↑ | Δ vs {reference} | cMAP (%) ↓ | Δ vs {reference} | F1 ↓ | Δ vs {reference} | worst attacker |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r.name} | {_pct(r.top1)} | {_delta(r.top1, ref.top1 if ref else None)} "
            f"| {_pct(r.cmap)} | {_delta(r.cmap, ref.cmap if ref else None)} "
            f"| {r.f1:.3f} | {_delta(r.f1, ref.f1 if ref else None, scale=1.0, digits=3)} | {r.worst_attacker} |"
        )
    return "\n".join(lines) + "\n"


def write_comparison_csv(rows: Sequence[ResultRow], path: Path, reference: str = "raw") -> None:
    """Every number behind a table: one row per method, per-attacker cMAP/F1 columns included.

    ``cmap`` and ``f1`` are both the ``worst_attacker``'s (the highest-cMAP one); ``cmap_<a>`` /
    ``f1_<a>`` are every attacker's own.
    """
    ref = next((r for r in rows if r.name == reference), None)
    attackers = sorted({a for r in rows for a in r.attackers})
    params = sorted({p for r in rows for p in r.params})
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["method", "group", *params, "top1", "top1_delta", "cmap", "cmap_delta", "f1", "f1_delta",
                         "worst_attacker", *[f"cmap_{a}" for a in attackers], *[f"f1_{a}" for a in attackers]])
        for r in rows:
            def delta(v, rv):
                return "" if ref is None else f"{v - rv:.6f}"
            writer.writerow([
                r.name, r.group, *[r.params.get(p, "") for p in params],
                f"{r.top1:.6f}", delta(r.top1, ref.top1 if ref else 0), f"{r.cmap:.6f}",
                delta(r.cmap, ref.cmap if ref else 0), f"{r.f1:.6f}", delta(r.f1, ref.f1 if ref else 0),
                r.worst_attacker,
                *[f"{r.attackers[a]['cmap']:.6f}" if a in r.attackers else "" for a in attackers],
                *[f"{r.attackers[a]['f1']:.6f}" if a in r.attackers else "" for a in attackers],
            ])


def plot_tradeoff(rows: Sequence[ResultRow], path: Path, title: str = "Privacy-utility trade-off",
                  curve_method: str = "token_pruning") -> list[str]:
    """Scatter of worst-case privacy cMAP (x, lower is better) against action top-1 (y), the
    token-pruning sweep (with the ``curve_method`` row, its default setting) as a connected curve,
    and the Pareto front over every point marked.

    Returns the names of the points on the front.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = [(r.cmap, r.top1) for r in rows]
    front = pareto_front(points)
    fig, ax = plt.subplots(figsize=(7, 5))
    methods = [r for r in rows if r.group == "method"]
    sweep = [r for r in rows if r.group == "sweep"]
    if sweep:  # the method's own default is a point of its trade-off curve too
        sweep += [r for r in methods if r.name == curve_method]
    sweep.sort(key=lambda r: r.cmap)
    xy = [(100 * r.cmap, 100 * r.top1) for r in methods]
    colours = {}
    for r, (x, y) in zip(methods, xy):
        colours[r.name] = ax.scatter(x, y, s=60, zorder=3, label=r.name).get_facecolor()[0]
        # Every method is in the legend; only points with no close neighbour are labelled in place.
        crowded = sum(abs(x - ox) < 2.5 and abs(y - oy) < 5.0 for ox, oy in xy) > 1
        if not crowded:
            ax.annotate(r.name, (x, y), textcoords="offset points", xytext=(5, 4), fontsize=9)
    if sweep:
        curve_colour = colours.get(curve_method, "tab:gray")  # the curve in its method's colour
        ax.plot([100 * r.cmap for r in sweep], [100 * r.top1 for r in sweep], "o--", color=curve_colour,
                alpha=0.7, label="token pruning: lambda_priv x keep_ratio", zorder=2)
        for r in sweep:
            if not r.params:
                continue  # the default point carries the method's name already
            label = ", ".join(f"{k}={v}" for k, v in r.params.items())
            ax.annotate(label, (100 * r.cmap, 100 * r.top1), textcoords="offset points", xytext=(4, -10),
                        fontsize=7, color=curve_colour)
    fx = [100 * points[i][0] for i in front]
    fy = [100 * points[i][1] for i in front]
    ax.step(fx, fy, where="post", color="black", linewidth=1.2, label="Pareto front", zorder=1)
    ax.scatter(fx, fy, s=160, facecolors="none", edgecolors="black", zorder=4)
    ax.set_xlabel("privacy cMAP of the worst fresh attacker (%)  ← better")
    ax.set_ylabel("action top-1 of a fresh model (%)  ↑ better")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper center", fontsize=8, ncol=2)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return [rows[i].name for i in front]
