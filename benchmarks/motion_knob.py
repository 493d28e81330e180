"""How far the appearance-to-motion knob acts: top-k overlap with the rankings at both ends.

    python benchmarks/motion_knob.py --index my.index [--queries 50] [-k 10]

For each knob value, the mean share of the top-k results that the appearance-only ranking (knob 0)
also has, and the share the motion-only ranking (knob 1) has, over evenly spaced indexed clips as
queries; beside it the same for the plain knob (raw
weights scaled linearly: alpha = (2(1-m), 16m, 8m), flow 32m), which stops acting early because
M(1) carries under 1% of the squared weight at the default setting.
"""

from __future__ import annotations

import argparse

import numpy as np

from semantic_moments.index import Index


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", required=True)
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("-k", type=int, default=10)
    args = parser.parse_args()
    knobs = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
    with Index.open(args.index) as index:
        ids = [clip_id for clip_id, _, _ in index.browse(limit=10**9)[1]]
        queries = [ids[i] for i in np.linspace(0, len(ids) - 1, min(args.queries, len(ids))).astype(int)]
        rows = []
        for name, weights in (("spread-balanced knob (default)", index.motion_weights),
                              ("plain knob (raw weights)", lambda m: (index.motion_alpha(m), index.motion_flow_weight(m)))):
            def top(query, knob):
                alpha, flow = weights(knob)
                return {hit.id for hit in index.search(query, k=args.k, alpha=alpha, flow_weight=flow)}

            for end in (0.0, 1.0):
                base = {q: top(q, end) for q in queries}
                overlaps = [np.mean([len(base[q] & top(q, knob)) / args.k for q in queries]) for knob in knobs]
                rows.append((f"{name}: overlap with knob {end:.0f}", overlaps))
    print(f"index {args.index}: {len(ids)} clips, {len(queries)} queries, top-{args.k} overlap\n")
    print("| knob | " + " | ".join(f"{k:.1f}" for k in knobs) + " |")
    print("|---|" + "---|" * len(knobs))
    for name, overlaps in rows:
        print(f"| {name} | " + " | ".join(f"{value:.2f}" for value in overlaps) + " |")


if __name__ == "__main__":
    main()
