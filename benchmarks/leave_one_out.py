"""Every design choice made on some sets and confirmed on the others: the leave-one-set-out table.

    .venv/bin/python benchmarks/leave_one_out.py bench-report/results.json bench-report-variants/results.json

Reads the results of ``bench run`` (with ``--variants`` for the stress variants), groups the sets into
families (a set and its variants and mirrored twin are one family: they share clips), and for each
family in turn chooses, among the candidate settings, the one with the best mean score on the *other*
families, then reports that choice's score on the family left out beside the previous default's and
the current default's. A set's score is the mean of R@1, triplet accuracy and kNN acc@1 (those it
has); a family's, the mean over its sets. A candidate that beats the previous default on one set of
the training families and loses on two or more is never chosen (the rule of the real-video issue).

Two choices are made this way, each over the candidates that were run on the sets it needs:
* sampling (where the T frames go): the ``main`` and ``sampling`` rows, on every set and variant;
* the descriptor (parts, grids, weights, the token-flow candidates): ``main`` and ``ablation`` rows
  that keep the token flow, on the sets without variants.
Prints markdown tables (the README's "Quality" section is this output).
"""

from __future__ import annotations

import argparse
import json
import re
from collections import defaultdict
from pathlib import Path

import numpy as np

METRICS = ("recall_at_1", "triplet_accuracy", "knn_majority_acc1")
PREVIOUS = "sampling: T=16 over the whole clip (the previous default)"
MAIN = "SemanticMoments + token flow (default)"
MARGIN = 0.01  # a win or loss counts when the set's score moves by more than this


def family(dataset: str) -> str:
    base = re.sub(r"-(loop|hold|slow)\d+$", "", dataset)
    return re.sub(r"-mirrored$", "", base)


def scores(paths: list[Path]) -> tuple[dict[tuple[str, str], float], dict[tuple[str, str, str], float]]:
    """({(key, dataset): score}, {(key, dataset, metric): value}) of every method row, first file first."""
    values: dict[tuple[str, str, str], float] = {}
    groups: dict[str, str] = {}
    for path in paths:
        for row in json.loads(path.read_text())["rows"]:
            if row["category"] == "all" and row["metric"] in METRICS:
                values.setdefault((row["key"], row["dataset"], row["metric"]), row["value"])
                groups[row["key"]] = row["group"]
    by_set: dict[tuple[str, str], list[float]] = defaultdict(list)
    for (key, dataset, _), value in values.items():
        by_set[(key, dataset)].append(value)
    return {key: float(np.mean(value)) for key, value in by_set.items()}, values, groups


def choose(candidates: list[str], per_set: dict, datasets: list[str], default: str, previous: str,
           reference: str) -> list[dict]:
    """For each family left out: the candidate best on the others (never one that beats ``reference``
    on at most one training set and loses on two or more), and its score on the family left out."""
    families = sorted({family(dataset) for dataset in datasets})
    rows = []
    for held in families:
        train = [d for d in datasets if family(d) != held]
        test = [d for d in datasets if family(d) == held]

        def family_mean(key: str, sets: list[str]) -> float:
            by_family = defaultdict(list)
            for dataset in sets:
                by_family[family(dataset)].append(per_set[(key, dataset)])
            return float(np.mean([np.mean(v) for v in by_family.values()]))

        eligible = []
        for key in candidates:
            moves = [per_set[(key, d)] - per_set[(reference, d)] for d in train]
            wins, losses = sum(m > MARGIN for m in moves), sum(m < -MARGIN for m in moves)
            if not (losses >= 2 and wins <= 1) or key == reference:
                eligible.append(key)
        best = max(eligible, key=lambda key: family_mean(key, train))
        rows.append({"left out": held, "chosen without it": best, "chosen": family_mean(best, test),
                     "previous default": family_mean(previous, test), "current default": family_mean(default, test),
                     "sets": test})
    return rows


def table(title: str, rows: list[dict], names: dict[str, str]) -> str:
    lines = [f"**{title}**", "", "| left out | chosen on the other families | its score on the family left out | "
             "previous default | current default |", "|---|---|---|---|---|"]
    for row in rows:
        lines.append(f"| {row['left out']} ({len(row['sets'])} set{'s' if len(row['sets']) > 1 else ''}) | "
                     f"{names.get(row['chosen without it'], row['chosen without it'])} | {row['chosen']:.3f} | "
                     f"{row['previous default']:.3f} | {row['current default']:.3f} |")
    return "\n".join(lines)


def short(key: str) -> str:
    name, _, setting = key.partition(" [")
    setting = setting.rstrip("]").replace("efficientnet-lite0:blocks.7, ", "")
    name = name.replace("SemanticMoments + token flow (default)", "the default's descriptor")
    return f"{name} ({setting})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="+", type=Path, help="results.json of bench run (variants run included)")
    args = parser.parse_args()
    per_set, _, groups = scores(args.results)
    keys = {key for key, _ in per_set}
    datasets = sorted({dataset for _, dataset in per_set})
    default = next(key for key in keys if key.startswith(MAIN + " [") and groups[key] == "main")
    previous = next(key for key in keys if key.startswith(PREVIOUS))
    names = {key: short(key) for key in keys}

    sampling = [key for key in keys if groups[key] in ("main", "sampling")]
    everywhere = [d for d in datasets if all((key, d) in per_set for key in sampling)]
    print(table("Sampling (every set and its stress variants)",
                choose(sampling, per_set, everywhere, default, previous, reference=previous), names))
    descriptor = [key for key in keys if groups[key] in ("main", "ablation") and not key.startswith(("moments", "token flow only"))]
    plain = [d for d in datasets if all((key, d) in per_set for key in descriptor) and (previous, d) in per_set]
    print()
    print(table("Descriptor (the sets without variants; the sampling fixed at the default's)",
                choose(descriptor, per_set, plain, default, previous, reference=default), names))


if __name__ == "__main__":
    main()
