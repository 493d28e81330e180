"""A behaviour check across commits: the same vectors bit for bit and the same search results.

    .venv/bin/python benchmarks/same_results.py --base 6b8f823          # the arm actions, default settings
    .venv/bin/python benchmarks/same_results.py --base REV --clips DIR --preset flow

With the code of ``--base`` (a git worktree made under --work): an index of the clips is built and
every clip is searched for (``search ID --json``, k = 10). With the code of this checkout: the same
files are embedded and each vector compared with the row the base stored (bit for bit), the base's
index is opened (which upgrades its schema where it is older) and searched again, and the results
compared (the same ids in the same order, scores within 1e-6). Prints what differs, and exits 1 if
anything does.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
ARM = ROOT.parent / "shared" / "data" / "ud810_arm_actions"


def cli(source: Path, *arguments: str) -> str:
    """The output of ``semantic-moments ARGUMENTS`` run with the package at ``source``."""
    environment = {**os.environ, "PYTHONPATH": str(source / "src")}
    result = subprocess.run([sys.executable, "-m", "semantic_moments", *arguments], capture_output=True, text=True,
                            env=environment, cwd=source)
    if result.returncode != 0:
        sys.exit(f"{' '.join(arguments[:2])} failed at {source}: {result.stderr.strip().splitlines()[-1:]}")
    return result.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="the commit to compare with")
    parser.add_argument("--clips", type=Path, default=ARM, help="folder of clips (recursive)")
    parser.add_argument("--preset", default=None, help="settings preset for both (default: the base's default)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/same-results"), help="worktree and index go here")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    base = args.work / f"base-{args.base}"
    if not base.exists():
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(base), args.base], check=True,
                       capture_output=True)
    index = args.work / f"index-{args.base}"
    preset = ["--preset", args.preset] if args.preset else []
    if not index.exists():
        cli(base, "index", "build", str(args.clips.resolve()), "--index", str(index), "--quiet", *preset)
    ids = [int(line.split()[0]) for line in cli(base, "index", "list", "--index", str(index)).splitlines()
           if line.split() and line.split()[0].isdigit()]
    before = {clip_id: json.loads(cli(base, "search", str(clip_id), "--index", str(index), "--json")) for clip_id in ids}

    from semantic_moments.collection import model_for_index
    from semantic_moments.index import Index

    differences = []
    with Index.open(index) as opened:  # upgraded here where the base wrote an older schema
        paths = opened.paths()
        model = model_for_index(opened)
        for clip_id, result in zip(ids, model.iter_embed([paths[clip_id] for clip_id in ids])):
            if result.error is not None:
                differences.append(f"clip {clip_id}: {result.error}")
                continue
            mine, theirs = opened.raw_of(result.embedding), opened.row_of(clip_id)
            if not np.array_equal(mine, theirs):
                differences.append(f"clip {clip_id}: vector differs (max {np.abs(mine - theirs).max():.3g})")
    for clip_id in ids:
        after = json.loads(cli(ROOT, "search", str(clip_id), "--index", str(index), "--json"))
        order = ([hit["id"] for hit in before[clip_id]], [hit["id"] for hit in after])
        scores = max((abs(a["score"] - b["score"]) for a, b in zip(before[clip_id], after)), default=0.0)
        if order[0] != order[1] or scores > 1e-6:
            differences.append(f"search {clip_id}: {order[0]} -> {order[1]} (scores differ by up to {scores:.2g})")
    print(f"{len(ids)} clips of {args.clips}, base {args.base}: {len(ids)} vectors and {len(ids)} searches compared")
    for line in differences:
        print("  " + line)
    print("identical" if not differences else f"{len(differences)} difference(s)")
    sys.exit(1 if differences else 0)


if __name__ == "__main__":
    main()
