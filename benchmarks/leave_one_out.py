"""Every design choice made on some sets and confirmed on the others: the leave-one-set-out table.

    .venv/bin/python benchmarks/leave_one_out.py bench-report/results.json bench-report-variants/results.json

Reads the results of ``bench run`` (with ``--variants`` for the stress variants), groups the sets into
families (a set and its variants and mirrored twin are one family: they share clips), and for each
family in turn chooses, among the candidate settings, the one with the best mean score on the *other*
families, then reports that choice's score on the family left out beside the previous default's and
the current default's. A set's score is the mean of R@1, triplet accuracy and kNN acc@1 (those it
has); a family's, the mean over its sets. A candidate that beats the previous default on one set of
the training families and loses on two or more is never chosen (the rule of the real-video issue), and
a candidate replaces the reference only when it beats it by more than 0.01 on the training families.

Two choices are made this way, each over the candidates that were run on the sets it needs:
* sampling (T and where the frames go): the ``main``, ``sampling`` and ``frames`` rows, on every set and
  variant;
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

from semantic_moments.bench.methods import MAIN_NAME, PREVIOUS_NAME

METRICS = ("recall_at_1", "triplet_accuracy", "knn_majority_acc1")
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


def family_mean(key: str, per_set: dict, sets: list[str]) -> float:
    """The mean over families of ``key``'s mean score on each family's sets among ``sets``."""
    by_family = defaultdict(list)
    for dataset in sets:
        by_family[family(dataset)].append(per_set[(key, dataset)])
    return float(np.mean([np.mean(values) for values in by_family.values()]))


def choose(candidates: list[str], per_set: dict, datasets: list[str], default: str, previous: str,
           reference: str) -> list[dict]:
    """For each family left out: the candidate best on the others (never one that beats ``reference``
    on at most one training set and loses on two or more; ``reference`` itself unless the best beats it
    by more than MARGIN on the training families' mean), and its score on the family left out."""
    families = sorted({family(dataset) for dataset in datasets})
    rows = []
    for held in families:
        train = [d for d in datasets if family(d) != held]
        test = [d for d in datasets if family(d) == held]

        eligible = []
        for key in candidates:
            moves = [per_set[(key, d)] - per_set[(reference, d)] for d in train]
            wins, losses = sum(m > MARGIN for m in moves), sum(m < -MARGIN for m in moves)
            if not (losses >= 2 and wins <= 1) or key == reference:
                eligible.append(key)
        best = max(eligible, key=lambda key: family_mean(key, per_set, train))
        if family_mean(best, per_set, train) - family_mean(reference, per_set, train) <= MARGIN:
            best = reference  # a change has to earn its place: ties keep what is there
        rows.append({"left out": held, "chosen without it": best, "chosen": family_mean(best, per_set, test),
                     "previous default": family_mean(previous, per_set, test), "current default": family_mean(default, per_set, test),
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


def short(key: str, default: str, previous: str) -> str:
    """A row's name in the tables: the sampling rows by their setting, the rest by what they change."""
    name, _, setting = key.partition(" [")
    setting = setting.rstrip("]").replace("efficientnet-lite0:blocks.7, ", "").replace(", ", " ", 1)
    if key == default:
        return f"**the default** ({setting})"
    if key == previous:
        return f"the previous default ({setting} over the whole clip)"
    if name == MAIN_NAME or name.startswith("sampling:"):
        return setting if "/s" in setting else f"{setting} over the whole clip"
    return name


def overall(candidates: list[str], per_set: dict, datasets: list[str]) -> tuple[str, float]:
    """The candidate with the best mean over all families, and that mean."""
    best = max(candidates, key=lambda key: family_mean(key, per_set, datasets))
    return best, family_mean(best, per_set, datasets)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="+", type=Path, help="results.json of bench run (variants run included)")
    args = parser.parse_args()
    per_set, _, groups = scores(args.results)
    keys = {key for key, _ in per_set}
    datasets = sorted({dataset for _, dataset in per_set})
    default = next(key for key in keys if key.startswith(MAIN_NAME + " [") and groups[key] == "main")
    previous = next(key for key in keys if key.startswith(PREVIOUS_NAME))
    names = {key: short(key, default, previous) for key in keys}

    everywhere = [d for d in datasets if (default, d) in per_set]  # every set and variant the default ran on
    sampling = [key for key in keys if groups[key] in ("main", "sampling", "frames")
                and all((key, d) in per_set for d in everywhere)]  # the candidates run on all of them
    print(table("Sampling (every set and its stress variants)",
                choose(sampling, per_set, everywhere, default, previous, reference=previous), names))
    best, mean = overall(sampling, per_set, everywhere)
    print(f"\nOn all families: {names[best]}, mean {mean:.3f}; candidates: "
          f"{'; '.join(sorted(names[key] for key in sampling))}.")
    descriptor = [key for key in keys if groups[key] in ("main", "ablation") and not key.startswith(("moments", "token flow only"))]
    plain = [d for d in datasets if all((key, d) in per_set for key in descriptor) and (previous, d) in per_set]
    print()
    print(table("Descriptor (the sets without variants; the sampling fixed at the default's)",
                choose(descriptor, per_set, plain, default, previous, reference=default), names))
    best, mean = overall(descriptor, per_set, plain)
    print(f"\nOn all families: {names[best]}, mean {mean:.3f} (the default: "
          f"{overall([default], per_set, plain)[1]:.3f}); {len(descriptor) - 1} candidates beside the default.")


if __name__ == "__main__":
    main()
