"""``index duplicates`` and ``index clusters``: organising a collection by motion (``organize.py``)."""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

from ..errors import ConfigError, one_line
from .arguments import non_negative_float, parse_alpha, positive_int

FORMATS = ("table", "json", "csv")


def add_organize_actions(actions) -> None:
    duplicates = actions.add_parser(
        "duplicates", help="copies (the same footage: re-encodes, resizes, trims, mild crops), or with --same-motion "
                           "pairs that move alike (retakes, repeats)",
        description="Copies: each clip's nearest clips by motion (FAISS), verified frame by frame under the best "
                    "time alignment (a retake of the same action is not a copy); score = the frames' agreement, "
                    "default --min-score 0.95. In an index with windows, a clip that is a part of a long video is "
                    "listed too, with the span it covers. Frame signatures are made from the files the first time "
                    "and kept in the index. --same-motion: the pairs whose motion cosine is at least --min-score "
                    "(default 0.95), with each score's percentile among the collection's pairs; in an index with "
                    "windows, also pairs of segments (the same motion at two places).")
    duplicates.add_argument("--index", type=Path, required=True, metavar="PATH", help="index folder")
    limit = duplicates.add_mutually_exclusive_group()
    limit.add_argument("--min-score", type=non_negative_float, default=None, metavar="S",
                       help="pairs scoring at least S (cosine); default: 0.95")
    limit.add_argument("--top", type=positive_int, default=None, metavar="N", help="the N best pairs, whatever their score")
    duplicates.add_argument("--same-motion", action="store_true",
                            help="pairs that move alike (retakes, repeats, copies) instead of copies only")
    duplicates.add_argument("--groups", action="store_true", help="join connected pairs into sets of clips")
    duplicates.add_argument("--segments", choices=("auto", "yes", "no"), default="auto",
                            help="pairs of windows too: yes, no, or auto (when the index has windows); default: %(default)s")
    duplicates.add_argument("--alpha", type=parse_alpha, default=None, help="weights per moment; default: the index's")
    duplicates.add_argument("--format", choices=FORMATS, default="table", help="default: %(default)s")

    clusters = actions.add_parser(
        "clusters", help="assign every clip to a motion group (k-means or HDBSCAN), named by its most central clip",
        description="Groups of clips that move alike: k-means on the fused vectors with --k groups, or --auto (k by "
                    "the best mean silhouette, 2..30), or --method hdbscan. --labels CSV (path,class) reports purity.")
    clusters.add_argument("--index", type=Path, required=True, metavar="PATH", help="index folder")
    how = clusters.add_mutually_exclusive_group()
    how.add_argument("--k", type=positive_int, default=None, help="number of groups (k-means)")
    how.add_argument("--auto", action="store_true", help="k-means with k chosen by the silhouette (the default)")
    clusters.add_argument("--method", choices=("kmeans", "hdbscan"), default="kmeans", help="default: %(default)s")
    clusters.add_argument("--labels", type=Path, default=None, metavar="CSV",
                          help="labels.csv (path,class[,...]; paths relative to it) to report the groups' purity")
    clusters.add_argument("--alpha", type=parse_alpha, default=None, help="weights per moment; default: the index's")
    clusters.add_argument("--format", choices=FORMATS, default="table",
                          help="table, json (one object per clip with its path and cluster) or csv; default: %(default)s")


def run_organize(args: argparse.Namespace) -> int:
    from .. import organize
    from ..index import Index

    with Index.open(args.index, create=False) as index:
        if args.index_command == "duplicates" and not args.same_motion:
            pairs, unread = organize.copies(index, args.min_score, args.top, args.alpha,
                                            show_progress=args.format == "table")
            for path, reason in unread.items():
                print(f"  skipped: {one_line(reason)}", file=sys.stderr)
            _print_pairs(pairs, organize.groups(pairs) if args.groups else None, args.format, index)
            return 0
        if args.index_command == "duplicates":
            min_score = args.min_score if args.min_score is not None else (None if args.top else organize.DUPLICATE_SCORE)
            pairs = organize.duplicates(index, min_score, args.top, args.alpha)
            if args.segments == "yes" or (args.segments == "auto" and index.has_windows()):
                pairs = sorted(pairs + organize.duplicate_segments(index, min_score, args.top, args.alpha),
                               key=lambda pair: -pair.score)[:args.top]
            _print_pairs(pairs, organize.groups(pairs) if args.groups else None, args.format, index)
            return 0
        result = organize.clusters(index, None if args.auto else args.k, args.method, args.alpha)
        paths = index.paths()
    rows = [{"id": int(clip_id), "path": paths[int(clip_id)], "cluster": int(label),
             "cluster_name": paths.get(result.names.get(int(label), -1), "") if label >= 0 else ""}
            for clip_id, label in zip(result.ids, result.labels)]
    purity = None
    if args.labels is not None:
        classes = _labels(args.labels)
        known = [(row["cluster"], classes[row["path"]]) for row in rows if row["path"] in classes]
        if not known:
            raise ConfigError(f"{args.labels}: none of its paths is in the index")
        purity = organize.purity([label for label, _ in known], [name for _, name in known])
    summary = f"{result.k} group(s) by {result.method}" + (f"; purity {purity:.3f} against {args.labels}" if purity is not None else "")
    print(summary, file=sys.stderr)
    if args.format == "json":
        print(json.dumps(rows, indent=2))
    elif args.format == "csv":
        writer = csv.DictWriter(sys.stdout, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    else:
        for label in sorted(set(result.labels.tolist())):
            members = [row for row in rows if row["cluster"] == label]
            name = Path(members[0]["cluster_name"]).name if label >= 0 else "(no group)"
            print(f"group {label} ({len(members)} clips), most central: {name}")
            for row in members:
                print(f"  {row['id']:>6}  {one_line(row['path'])}")
    return 0


def _labels(labels_csv: Path) -> dict[str, str]:
    """{absolute path: class} from a labels.csv whose paths are relative to its folder (or absolute)."""
    import os

    from ..files import read_csv_rows

    rows = read_csv_rows(labels_csv, ("path", "class"))
    root = labels_csv.parent
    return {os.path.abspath(root / row["path"]): row["class"] for row in rows}


def _print_pairs(pairs, sets, style: str, index) -> None:
    def span(value) -> str:
        return f"{value[0]:g}-{value[1]:g}s" if value else ""

    records = [{"kind": pair.kind, "score": pair.score, "percentile": pair.percentile, "a": pair.a,
                "path_a": pair.path_a, "span_a": list(pair.span_a) if pair.span_a else None, "b": pair.b,
                "path_b": pair.path_b, "span_b": list(pair.span_b) if pair.span_b else None,
                **({"motion_score": pair.motion_score, "offset_seconds": pair.offset_seconds}
                   if pair.kind in ("copy", "part") else {})} for pair in pairs]
    copies = bool(pairs) and pairs[0].kind in ("copy", "part")
    print(f"{len(pairs)} {'copies' if copies else 'pair(s) of the same motion'}"
          + (f" in {len(sets)} set(s)" if sets is not None else ""), file=sys.stderr)
    if style == "json":
        print(json.dumps({"pairs": records, **({"groups": sets} if sets is not None else {})}, indent=2))
    elif style == "csv":
        writer = csv.DictWriter(sys.stdout, fieldnames=list(records[0]) if records else ["score", "a", "b"])
        writer.writeheader()
        writer.writerows(records)
    elif copies:
        print(f"{'frames':>7}  {'motion':>7}  {'offset':>7}  copy (a part: the long video's span, then the clip)")
        for pair in pairs:
            print(f"{pair.score:7.4f}  {pair.motion_score:7.4f}  {pair.offset_seconds:+6.2f}s  {one_line(pair.path_a)}"
                  f"{' ' + span(pair.span_a) if pair.span_a else ''}  <->  {one_line(pair.path_b)}")
    else:
        print(f"{'score':>7}  {'pct':>5}  pair")
        for pair in pairs:
            print(f"{pair.score:7.4f}  {pair.percentile:5.1f}  {one_line(pair.path_a)} {span(pair.span_a)}  <->  "
                  f"{one_line(pair.path_b)} {span(pair.span_b)}")
        if sets is not None:
            paths = index.paths()
            for number, members in enumerate(sets):
                print(f"set {number}: " + ", ".join(Path(paths.get(member, "?")).name for member in members))
