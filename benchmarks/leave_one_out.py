"""Every design choice made on some sets and confirmed on the others: the leave-one-set-out table.

    .venv/bin/python benchmarks/leave_one_out.py bench-report/results.json bench-report-variants/results.json
    .venv/bin/python benchmarks/leave_one_out.py docs/benchmarks/results.csv docs/benchmarks/variants.csv \
        docs/benchmarks/keypoints.csv   # the published numbers

Reads the results of ``bench run`` (with ``--variants`` for the stress variants), groups the sets into
families (a set and its variants and mirrored twin are one family: they share clips), and for each
family in turn chooses, among the candidate settings, the one with the best mean score on the *other*
families, then reports that choice's score on the family left out beside the previous default's and
the current default's. A set's score is the mean of R@1, triplet accuracy and kNN acc@1 (those it
has); a family's, the mean over its sets. **A candidate is eligible only if no training set and no
stress variant falls below the reference's 95% interval on any of the three metrics** (a mean over a
family once hid a collapse on one variant: a default must not buy gains on some kinds of motion with
a collapse on another), and it replaces the reference only when it beats it by more than 0.01 on the
training families' mean. The table says, for the family left out, whether the choice stays inside
the reference's intervals there too (confirmed) or which set falls below.

Two choices are made this way, each over the candidates that were run on the sets it needs:
* the default's sampling and keypoints together: the ``main``, ``sampling``, ``frames`` and
  ``keypoints`` rows (T, where the frames go; the moments of keypoints beside the default, their
  weight and the rule for a part that saw nothing), on every set and variant;
* the descriptor (parts, grids, weights, the token-flow candidates): ``main`` and ``ablation`` rows
  that keep the token flow, on the sets without variants.
Prints markdown tables (the README's "Quality" section is this output).
"""

from __future__ import annotations

import argparse
import csv
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


def scores(paths: list[Path]) -> tuple[dict[tuple[str, str], float], dict[tuple[str, str, str], tuple[float, float]],
                                       dict[str, str]]:
    """({(key, dataset): score}, {(key, dataset, metric): (value, interval low)}, {key: group}) of every
    method row, first file first."""
    values: dict[tuple[str, str, str], tuple[float, float]] = {}
    groups: dict[str, str] = {}
    for path in paths:
        if path.suffix == ".csv":  # a report's results.csv (docs/benchmarks/ keeps them)
            with open(path, newline="") as handle:
                rows = [{**row, "value": float(row["value"]), "low": float(row["low"])} for row in csv.DictReader(handle)]
        else:
            rows = json.loads(path.read_text())["rows"]
        for row in rows:
            if row["category"] == "all" and row["metric"] in METRICS:
                values.setdefault((row["key"], row["dataset"], row["metric"]), (row["value"], row["low"]))
                groups[row["key"]] = row["group"]
    by_set: dict[tuple[str, str], list[float]] = defaultdict(list)
    for (key, dataset, _), (value, _) in values.items():
        by_set[(key, dataset)].append(value)
    return {key: float(np.mean(value)) for key, value in by_set.items()}, values, groups


def below(key: str, reference: str, values: dict, sets: list[str]) -> list[str]:
    """The sets (and metrics) where ``key`` falls below ``reference``'s interval."""
    return [f"{dataset} {metric}" for dataset in sets for metric in METRICS
            if (key, dataset, metric) in values and (reference, dataset, metric) in values
            and values[(key, dataset, metric)][0] < values[(reference, dataset, metric)][1] - 1e-9]


def family_mean(key: str, per_set: dict, sets: list[str]) -> float:
    """The mean over families of ``key``'s mean score on each family's sets among ``sets``."""
    by_family = defaultdict(list)
    for dataset in sets:
        if (key, dataset) not in per_set:
            return float("nan")  # not run on this set
        by_family[family(dataset)].append(per_set[(key, dataset)])
    return float(np.mean([np.mean(values) for values in by_family.values()]))


def choose(candidates: list[str], per_set: dict, values: dict, datasets: list[str], default: str, previous: str,
           reference: str) -> list[dict]:
    """For each family left out: the candidate best on the others among those that fall below
    ``reference``'s interval on no training set or variant (``reference`` itself unless the best beats
    it by more than MARGIN on the training families' mean), its score on the family left out, and
    where it falls below the reference's interval there."""
    families = sorted({family(dataset) for dataset in datasets})
    rows = []
    for held in families:
        train = [d for d in datasets if family(d) != held]
        test = [d for d in datasets if family(d) == held]
        eligible = [key for key in candidates if key == reference or not below(key, reference, values, train)]
        best = max(eligible, key=lambda key: family_mean(key, per_set, train))
        if family_mean(best, per_set, train) - family_mean(reference, per_set, train) <= MARGIN:
            best = reference  # a change has to earn its place: ties keep what is there
        rows.append({"left out": held, "chosen without it": best, "chosen": family_mean(best, per_set, test),
                     "previous default": family_mean(previous, per_set, test), "current default": family_mean(default, per_set, test),
                     "sets": test, "below": below(best, reference, values, test)})
    return rows


def table(title: str, rows: list[dict], names: dict[str, str]) -> str:
    lines = [f"**{title}**", "", "| left out | chosen on the other families | its score on the family left out | "
             "previous default | current default | on the family left out |", "|---|---|---|---|---|---|"]
    for row in rows:
        verdict = "inside the reference's intervals" if not row["below"] else "below on " + ", ".join(row["below"])
        lines.append(f"| {row['left out']} ({len(row['sets'])} set{'s' if len(row['sets']) > 1 else ''}) | "
                     f"{names.get(row['chosen without it'], row['chosen without it'])} | {row['chosen']:.3f} | "
                     f"{_number(row['previous default'])} | {row['current default']:.3f} | {verdict} |")
    return "\n".join(lines)


def _number(value: float) -> str:
    return "-" if np.isnan(value) else f"{value:.3f}"


def short(key: str, default: str, previous: str) -> str:
    """A row's name in the tables: the sampling rows by their setting, the rest by what they change."""
    name, _, setting = key.partition(" [")
    setting = setting.rstrip("]").replace("efficientnet-lite0:blocks.7", "").lstrip(", ").replace(", ", " ", 1)
    if key == default:
        return f"**the default** ({setting})"
    if key == previous:
        return f"the previous default ({setting})"
    if name == MAIN_NAME or name.startswith("sampling:"):
        return setting if "/s" in setting else f"{setting} over the whole clip"
    return name


def overall(candidates: list[str], per_set: dict, datasets: list[str]) -> tuple[str, float]:
    """The candidate with the best mean over all families, and that mean."""
    best = max(candidates, key=lambda key: family_mean(key, per_set, datasets))
    return best, family_mean(best, per_set, datasets)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="+", type=Path,
                        help="results.json (or results.csv) of bench run, variants runs included; where two files "
                             "hold the same row, the first one's counts")
    args = parser.parse_args()
    per_set, values, groups = scores(args.results)
    keys = {key for key, _ in per_set}
    datasets = sorted({dataset for _, dataset in per_set})
    default = next(key for key in keys if key.startswith(MAIN_NAME + " [") and groups[key] == "main")
    previous = next((key for key in keys if key.startswith(PREVIOUS_NAME)), default)
    names = {key: short(key, default, previous) for key in keys}

    everywhere = [d for d in datasets if (default, d) in per_set]  # every set and variant the default ran on
    # the default's settings, sampling and keypoints together: every candidate run on all of them
    candidates = [key for key in keys if groups[key] in ("main", "sampling", "frames", "keypoints")
                  and not key.partition(" [")[2].startswith("keypoints")  # keypoints alone: a part, not a default
                  and all((key, d) in per_set for d in everywhere)]
    reference = previous if previous in candidates else default  # the default before this choice
    print(table(f"The default: sampling and keypoints (every set and its stress variants; the reference: "
                f"{names[reference]})", choose(candidates, per_set, values, everywhere, default, previous,
                                                reference=reference), names))
    print("\nEvery candidate on all families (mean score; where it falls below the reference's intervals):")
    for key in sorted(candidates, key=lambda key: -family_mean(key, per_set, everywhere)):
        falls = below(key, reference, values, everywhere)
        print(f"- {names[key]}: {family_mean(key, per_set, everywhere):.3f}; "
              + ("inside everywhere" if not falls else f"below on {len(falls)}: " + ", ".join(falls[:4])
                 + (" ..." if len(falls) > 4 else "")))
    descriptor = [key for key in keys if groups[key] in ("main", "ablation") and not key.startswith(("moments", "token flow only"))]
    plain = [d for d in datasets if all((key, d) in per_set for key in descriptor) and (previous, d) in per_set]
    if plain and len(descriptor) > 1:
        print()
        print(table("Descriptor (the sets without variants; the sampling fixed at the default's)",
                    choose(descriptor, per_set, values, plain, default, previous, reference=default), names))
        best, mean = overall(descriptor, per_set, plain)
        print(f"\nOn all families: {names[best]}, mean {mean:.3f} (the default: "
              f"{overall([default], per_set, plain)[1]:.3f}); {len(descriptor) - 1} candidates beside the default.")
    alone = sorted(key for key in keys if groups[key] == "keypoints" and key.partition(" [")[2].startswith("keypoints"))
    if alone:
        print("\nKeypoints alone (score per set): " + "; ".join(
            f"{names[key]}: " + ", ".join(f"{d} {per_set[(key, d)]:.3f}" for d in everywhere if (key, d) in per_set)
            for key in alone))


if __name__ == "__main__":
    main()
