"""Benchmark reports: a markdown table, CSV/JSON of every number, and plots."""

from __future__ import annotations

import csv
import json
import platform
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .runner import BenchmarkResult

METRIC_LABELS = {
    "recall_at_1": "R@1",
    "triplet_accuracy": "triplet acc",
    "retrieval_accuracy": "retrieval acc",
    "mean_rank": "pos. rank",
    "map": "MRR",
    "knn_majority_acc1": "kNN acc@1",
    "knn_majority_acc5": "kNN acc@5",
    "knn_weighted_acc1": "kNN-w acc@1",
    "knn_weighted_acc5": "kNN-w acc@5",
    "appearance_trap_rate": "trap rate",
}
GROUP_ORDER = {"main": 0, "baseline": 1, "paper": 2, "sampling": 3, "keypoints": 4, "backbone": 5, "ablation": 6, "frames": 7}


def _cell(row: dict[str, Any]) -> str:
    if row["metric"] == "mean_rank":
        return f"{row['value']:.2f}"
    return f"{row['value']:.3f} [{row['low']:.2f}, {row['high']:.2f}]"


def _table(result: BenchmarkResult, category: str, metrics: Sequence[str]) -> list[str]:
    rows = [row for row in result.rows if row["category"] == category and row["metric"] in metrics]
    first_seen: dict[str, int] = {}
    for row in rows:  # rows come in the method list's order; keep it within each group
        first_seen.setdefault(row["key"], GROUP_ORDER[row["group"]])
    seen = sorted(first_seen, key=lambda key: first_seen[key])
    present = [metric for metric in metrics if any(row["metric"] == metric for row in rows)]
    lines = ["| method | " + " | ".join(METRIC_LABELS[m] for m in present) + " |",
             "|---|" + "---|" * len(present)]
    for key in seen:
        by_metric = {row["metric"]: row for row in rows if row["key"] == key}
        group = next(row["group"] for row in rows if row["key"] == key)
        name = f"**{key}**" if group == "main" else key
        lines.append(f"| {name} | " + " | ".join(_cell(by_metric[m]) if m in by_metric else "" for m in present) + " |")
    return lines


def markdown(results: Sequence[BenchmarkResult], settings: dict[str, Any]) -> str:
    lines = ["# semantic-moments benchmark report", "",
             f"Machine: {platform.machine()}, Python {platform.python_version()}. "
             f"Settings: `{json.dumps(settings, sort_keys=True)}`", "",
             "Values are means with 95% bootstrap intervals. R@1: the positive is the reference's nearest "
             "neighbour in the whole pool; triplet acc: sim(ref, pos) > sim(ref, neg); retrieval acc: the positive "
             "is nearest among positive, negative and distractors; pos. rank: its mean rank there; MRR: the mean "
             "reciprocal rank (one right answer per triplet). kNN: leave-one-out, majority (kNN) or similarity-weighted (kNN-w) vote; trap rate: "
             "share of the k neighbours with the query's actor but another class.", ""]
    for result in results:
        lines += [f"## {result.manifest.name} ({result.manifest.kind}, {len(result.triplet_ids)} triplets)", ""]
        if result.failures:
            lines.append(f"{len(result.failures)} clip(s) failed and were left out "
                         f"({len(result.dropped_triplets)} triplet(s) dropped):")
            lines += [f"- {message}" for message in sorted(result.failures.values())] + [""]
        lines += [f"Note: {note}." for note in result.notes] + ([""] if result.notes else [])
        lines += _table(result, "all", list(METRIC_LABELS)) + [""]
        categories = sorted({row["category"] for row in result.rows} - {"all"})
        if categories:
            lines += ["Recall@1 per category:", ""]
            keys = [row["key"] for row in result.rows if row["category"] == "all" and row["metric"] == "recall_at_1"
                    and row["group"] in ("main", "baseline", "paper", "backbone")]
            lines.append("| method | " + " | ".join(categories) + " |")
            lines.append("|---|" + "---|" * len(categories))
            for key in keys:
                values = {row["category"]: row for row in result.rows if row["key"] == key and row["metric"] == "recall_at_1"}
                lines.append(f"| {key} | " + " | ".join(f"{values[c]['value']:.2f}" if c in values else "" for c in categories) + " |")
            lines.append("")
    return "\n".join(lines)


def write_report(results: Sequence[BenchmarkResult], report_dir: str | Path, settings: dict[str, Any],
                 plots: bool = True, failure_examples: int = 3) -> Path:
    """Write report.md, results.csv, results.json and plots into ``report_dir``; returns report.md."""
    report_dir = Path(report_dir)
    report_dir.mkdir(parents=True, exist_ok=True)
    rows = [row for result in results for row in result.rows]
    fields = ["dataset", "method", "group", "backbone", "frames", "category", "metric", "value", "low", "high", "n", "key"]
    with open(report_dir / "results.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    payload = {"settings": settings, "rows": rows,
               "failures": {r.manifest.name: r.failures for r in results},
               "dropped_triplets": {r.manifest.name: r.dropped_triplets for r in results}}
    (report_dir / "results.json").write_text(json.dumps(payload, indent=1))
    text = markdown(results, settings)
    if plots:
        text += "\n" + "\n".join(_plots(results, report_dir, failure_examples))
    (report_dir / "report.md").write_text(text)
    return report_dir / "report.md"


def _plots(results: Sequence[BenchmarkResult], report_dir: Path, failure_examples: int) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lines = ["## Plots", ""]
    for result in results:
        slug = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in result.manifest.name)
        rows = [row for row in result.rows if row["metric"] == "recall_at_1"]
        if not rows:
            continue
        categories = ["all"] + sorted({row["category"] for row in rows} - {"all"})
        keys = [row["key"] for row in rows if row["category"] == "all" and row["group"] in ("main", "baseline", "paper", "backbone")]
        figure, axis = plt.subplots(figsize=(max(6, 1.6 * len(categories)), 4.8))
        width = 0.8 / max(len(keys), 1)
        for index, key in enumerate(keys):
            values = {row["category"]: row for row in rows if row["key"] == key}
            heights = [values[c]["value"] if c in values else np.nan for c in categories]
            errors = np.array([[values[c]["value"] - values[c]["low"], values[c]["high"] - values[c]["value"]]
                               if c in values else [0, 0] for c in categories]).T
            axis.bar(np.arange(len(categories)) + index * width, heights, width, yerr=errors, label=key, capsize=2)
        axis.set_xticks(np.arange(len(categories)) + width * (len(keys) - 1) / 2, categories, rotation=20)
        axis.set_ylabel("Recall@1")
        axis.set_ylim(0, 1.05)
        axis.set_title(f"{result.manifest.name}: Recall@1 per category")
        if all(row["value"] == 0 for row in rows if row["key"] in keys):
            axis.text(0.5, 0.5, "all zero", transform=axis.transAxes, ha="center", va="center", fontsize=14, color="0.4")
        axis.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
        figure.savefig(report_dir / f"{slug}_categories.png", dpi=110, bbox_inches="tight")  # the legend stays whole
        plt.close(figure)
        lines.append(f"![{result.manifest.name} per category]({slug}_categories.png)")
        sweep = sorted((row["frames"], row) for row in rows if row["category"] == "all" and row["group"] in ("main", "frames"))
        if len(sweep) > 1:
            figure, axis = plt.subplots(figsize=(5, 3.5))
            frames = [f for f, _ in sweep]
            axis.errorbar(frames, [r["value"] for _, r in sweep],
                          yerr=[[r["value"] - r["low"] for _, r in sweep], [r["high"] - r["value"] for _, r in sweep]],
                          marker="o", capsize=3)
            axis.set_xscale("log", base=2)
            axis.set_xticks(frames, [str(f) for f in frames])
            axis.set_xlabel("frames T")
            axis.set_ylabel("Recall@1")
            axis.set_ylim(-0.02, 1.02)  # Recall@1's own range: a flat curve is drawn flat, not zoomed into noise
            axis.set_title(f"{result.manifest.name}: frame count")
            if all(r["value"] == 0 for _, r in sweep):
                axis.text(0.5, 0.5, "all zero", transform=axis.transAxes, ha="center", va="center", color="0.4")
            figure.tight_layout()
            figure.savefig(report_dir / f"{slug}_frames.png", dpi=110)
            plt.close(figure)
            lines.append(f"![{result.manifest.name} frame count]({slug}_frames.png)")
        lines += _failure_strips(result, report_dir, slug, failure_examples)
    return lines


def _failure_strips(result: BenchmarkResult, report_dir: Path, slug: str, count: int) -> list[str]:
    """Frame strips of the main method's worst triplets (most negative sim(pos) - sim(neg))."""
    from PIL import Image, ImageDraw

    from ..video import read_clip

    main = next((row["key"] for row in result.rows if row["group"] == "main"), None)
    if main is None or count <= 0:
        return []
    margins = result.margins[main]
    worst = [index for index in np.argsort(margins)[:count] if margins[index] < 0]
    lines = []
    by_id = {t.id: t for t in result.manifest.triplets}
    for rank, index in enumerate(worst):
        triplet = by_id[result.triplet_ids[index]]
        rows = []
        for role in ("reference", "positive", "negative"):
            frames = read_clip(result.manifest.resolve(getattr(triplet, role)), 6, size=(96, 96)).frames
            strip = Image.fromarray(np.concatenate(list(frames), axis=1))
            ImageDraw.Draw(strip).text((3, 3), role, fill=(255, 255, 0))
            rows.append(np.asarray(strip))
        name = f"{slug}_failure{rank + 1}.png"
        Image.fromarray(np.concatenate(rows, axis=0)).save(report_dir / name)
        lines.append(f"Failure {rank + 1}: triplet {triplet.id} ({triplet.category}), "
                     f"sim(pos) - sim(neg) = {margins[index]:.3f}\n\n![failure]({name})")
    return lines
