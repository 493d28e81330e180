"""``index`` (build, info, list, remove, export, ingest, check, repair; duplicates and clusters in organize.py) and ``search``."""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import sys
import time
from itertools import chain
from pathlib import Path

from ..errors import ConfigError, one_line
from ..windows import WindowPlan
from ..index.rows import MAX_NEGATIVE_WEIGHT
from .arguments import (MAX_RESULTS, bounded_float, add_engine_options, add_model_options, engine_from_args, execution_options,
                        non_negative_float, settings_overrides, parse_alpha, parse_segment, part_label, result_count, sampling_note,
                        throughput)
from .organize import add_organize_actions, run_organize

def add_index_commands(commands) -> None:
    index = commands.add_parser("index", help="build and maintain a motion index of video folders",
                                description="A persistent, incremental index: embed a collection once, search it.")
    actions = index.add_subparsers(dest="index_command", metavar="ACTION", required=True)
    build = actions.add_parser(
        "build", help="add new/changed videos under DIR... to the index (resumable)",
        description="Scan DIR... recursively and embed only new or changed videos (content hash). Each clip is "
                    "committed as soon as it is embedded: an interrupted build keeps its work and the next run "
                    "continues. Model options default to the index's own settings once it exists; the defaults "
                    "shown below are for a new index.")
    build.add_argument("folders", nargs="+", type=Path, metavar="DIR", help="folders (or files) to index")
    build.add_argument("--index", type=Path, required=True, metavar="PATH", help="index folder (created if missing)")
    build.add_argument("--glob", default=None, help="only files matching this pattern, e.g. '*.mp4'; default: every video")
    build.add_argument("--prune", action="store_true",
                       help="drop indexed clips whose files are gone (only under the folders given)")
    build.add_argument("--retry-failed", action="store_true",
                       help="try files that failed before again even if they did not change")
    build.add_argument("--include-removed", action="store_true",
                       help="index again the files taken out with `index remove` (builds leave them out otherwise)")
    build.add_argument("--ann", choices=("auto", "exact", "hnsw"), default="auto",
                       help="search structure: exact, HNSW, or auto (HNSW from 50,000 clips); default: %(default)s")
    build.add_argument("--windows", default=None, metavar="LEN[:STRIDE]",
                       help="also index every LEN-second window (every STRIDE seconds; default LEN/4) of long videos, "
                            "so search finds where in a video a motion happens, e.g. 4:1; kept by the index once given")
    build.add_argument("--windows-from", type=non_negative_float, default=None, metavar="SECONDS",
                       help="with --windows: only videos at least this long get windows; default: any video holding "
                            "two windows (LEN + STRIDE)")
    build.add_argument("--json", action="store_true", help="print the summary as JSON to stdout")
    build.add_argument("--quiet", action="store_true", help="no progress bar")
    add_model_options(build)
    add_engine_options(build)
    ingest = actions.add_parser(
        "ingest", help="add embeddings from Parquet (written by `embed --engine ray`) to the index",
        description="Load every row of a Parquet file or folder of shards written by `embed --engine ray -o DIR`; "
                    "each embedding is validated like an embedding file and checked against the index's settings. "
                    "Bad rows are reported and skipped; rows are committed in batches.")
    ingest.add_argument("parquet", type=Path, metavar="PARQUET", help="Parquet file or folder of shards")
    ingest.add_argument("--index", type=Path, required=True, metavar="PATH", help="index folder (created if missing)")
    ingest.add_argument("--quiet", action="store_true", help="no progress bar")
    info = actions.add_parser("info", help="what an index holds and how it was made",
                              description="Print the index's size and the settings every clip in it shares.")
    info.add_argument("--index", type=Path, required=True, metavar="PATH", help="index folder")
    listing = actions.add_parser("list", help="ids, durations and paths of the indexed clips",
                                 description="List indexed clips sorted by path (ids are what `search ID` takes).")
    listing.add_argument("--index", type=Path, required=True, metavar="PATH", help="index folder")
    listing.add_argument("--filter", default="", help="only paths containing this text (any case)")
    listing.add_argument("--offset", type=int, default=0, help="skip this many; default: %(default)s")
    listing.add_argument("--limit", type=result_count, default=1000, help="at most this many; default: %(default)s")
    listing.add_argument("--json", action="store_true", help="print JSON to stdout")
    removing = actions.add_parser("remove", help="remove clips by id (later builds leave them out)",
                                  description="Remove clips from the index (their files are untouched). Later builds "
                                              "of their folders leave them out; `index build --include-removed` "
                                              "takes them back.")
    removing.add_argument("ids", nargs="+", type=int, metavar="ID", help="clip ids (see `index list`)")
    removing.add_argument("--index", type=Path, required=True, metavar="PATH", help="index folder")
    export = actions.add_parser("export", help="write the index as a Parquet file (ids, paths, settings, vectors)",
                                description="One row per clip with its raw parts as float32 list columns and the "
                                            "settings in the file's metadata; readable by pandas, DuckDB, Spark and "
                                            "vector databases. Needs pyarrow.")
    export.add_argument("--index", type=Path, required=True, metavar="PATH", help="index folder")
    export.add_argument("--parquet", type=Path, required=True, metavar="FILE",
                        help="Parquet file to write; an existing file is replaced only when it is an earlier export")
    export.add_argument("--overwrite", action="store_true",
                        help="replace an existing regular file that is not an earlier export (never a folder, device, "
                             "link or anything inside an index folder)")
    check = actions.add_parser("check", help="look for damage: SQLite's integrity check and every stored row",
                               description="Exit 0 when the index is sound, 1 with one line per problem otherwise.")
    check.add_argument("--index", type=Path, required=True, metavar="PATH", help="index folder")
    repair = actions.add_parser("repair", help="drop damaged rows (the next build embeds their files again)",
                                description="Remove the clips whose stored rows are unusable and the ANN file; "
                                            "SQLite-level damage needs a new index built from the folders.")
    repair.add_argument("--index", type=Path, required=True, metavar="PATH", help="index folder")
    add_organize_actions(actions)
    actions.help = ", ".join(actions.choices)  # from the actions themselves: it cannot go stale
    add_search_command(commands)


def add_search_command(commands) -> None:
    search = commands.add_parser(
        "search", help="find the indexed clips whose motion is most like QUERY (one example or several)",
        description="QUERY is a video file (embedded with the index's settings) or the id/path of an indexed clip; "
                    "several QUERY are several examples of the motion wanted, --not examples of what is not (a "
                    "clip scores its mean cosine with the examples minus --negative-weight times its mean cosine "
                    "with the --not examples; one example alone: its cosine). --alpha or --motion re-weight the "
                    "stored moments at query time, without re-embedding. An indexed query's own clip is left out "
                    "(--include-own keeps it).")
    search.add_argument("query", nargs="+", metavar="QUERY", help="video file, or id/path of an indexed clip")
    search.add_argument("--not", dest="negatives", action="append", default=[], metavar="QUERY",
                        help="an example of what is NOT wanted (file, id or path); repeatable")
    search.add_argument("--negative-weight", type=bounded_float(0.0, MAX_NEGATIVE_WEIGHT), default=0.5, metavar="W",
                        help=f"how much a --not example counts against a clip, 0 to {MAX_NEGATIVE_WEIGHT:g}; "
                             "default: %(default)s")
    search.add_argument("--where", action="append", default=[], metavar="KEY=VALUE",
                        help="only results with path=GLOB, folder=DIR, contains=TEXT, duration=A-B (seconds; A- or "
                             "-B open) or windowed=yes|no; repeatable (all must hold)")
    search.add_argument("--include-own", action="store_true",
                        help="keep an indexed query's own clip (or video, in segment search) among the results")
    search.add_argument("--index", type=Path, required=True, metavar="PATH", help="index folder")
    search.add_argument("-k", type=result_count, default=10,
                        help=f"number of results, 1-{MAX_RESULTS:,} (more than the index holds gives them all); "
                             "default: %(default)s")
    weights = search.add_mutually_exclusive_group()
    weights.add_argument("--alpha", type=parse_alpha, default=None, help="weights per moment, e.g. 1,8,4")
    weights.add_argument("--motion", type=float, default=None,
                         help="one knob: 0 = appearance only, 0.5 = the index's own weights, 1 = motion only")
    search.add_argument("--flow-weight", type=non_negative_float, default=None,
                        help="with --alpha: weight of the token flow; default: the index's")
    search.add_argument("--segment", type=parse_segment, default=None, metavar="START-END",
                        help="embed only this part of the query video, in seconds (also of an indexed video given "
                             "by id: its own overlapping windows are then left out)")
    search.add_argument("--segments", choices=("auto", "yes", "no"), default="auto",
                        help="results as segments (path, start, end) of long videos: yes, no (whole clips), or auto "
                             "(yes when the index holds windowed videos); default: %(default)s")
    search.add_argument("--per-video", type=result_count, default=1, metavar="N",
                        help="with segments: at most N segments from one video; default: %(default)s")
    search.epilog = ("pct: the score's percentile among all pairs of indexed clips under the same weights (how "
                     "unusual the match is in this collection; a raw cosine alone means little)")
    search.add_argument("--format", choices=("table", "json", "csv", "paths", "segments"), default="table",
                        help="table (ranks, ids, scores, paths), json, csv, paths (one per line, for xargs or "
                             "playlists; a segment as PATH#t=START,END, the media-fragment form players such as mpv "
                             "and browsers understand) or segments (PATH<TAB>START<TAB>END, seconds); "
                             "default: %(default)s")
    search.add_argument("--json", action="store_true", help="the same as --format json")
    search.add_argument("--device", default="cpu", help="device for embedding a video query; default: %(default)s")


def model_for_index(index, args: argparse.Namespace):
    """A model with the index's settings; a preset or model option given that disagrees is refused."""
    from ..collection import model_for_index as build

    return build(index, getattr(args, "preset", None), execution_options(args), **settings_overrides(args))


def run_index(args: argparse.Namespace) -> int:
    from ..collection import build_index
    from ..index import Index

    if args.index_command in ("check", "repair"):
        with Index.open(args.index, create=False) as index:
            if args.index_command == "repair":
                with index.builds.lock():
                    removed = index.repair()
                print(f"index {args.index}: removed {len(removed)} damaged clip(s)"
                      + "".join(f"\n  removed: {path}" for path in removed), file=sys.stderr)
            problems = index.check()
            count = len(index)
        for problem in problems:
            print(f"  {one_line(problem)}", file=sys.stderr)
        print(f"index {args.index}: " + (f"{len(problems)} problem(s)" if problems else f"sound ({count} clips)"),
              file=sys.stderr)
        return 1 if problems else 0
    if args.index_command == "info":
        with Index.open(args.index, create=False) as index:
            print(json.dumps({"path": str(args.index), "clips": len(index), "features": index.feature_settings,
                              "config": index.config.to_dict() if index.config else None,
                              "ann": index.ann, "windows": index.builds.window_plan,
                              "windowed_videos": len(index.windowed()), "window_rows": index.window_count()},
                             indent=2))
        return 0
    if args.index_command in ("duplicates", "clusters"):
        return run_organize(args)
    if args.index_command in ("list", "remove"):
        return _list_or_remove(args)
    if args.index_command == "ingest":
        return _ingest(args)
    if args.index_command == "export":
        with Index.open(args.index) as index:
            count = index.export_parquet(args.parquet, args.overwrite)
        print(f"wrote {count} clip(s) to {args.parquet}", file=sys.stderr)
        return 0
    if args.windows_from is not None and args.windows is None:
        raise ConfigError("--windows-from needs --windows LEN[:STRIDE]")
    # Everything that can be refused is checked before an index folder is created.
    existing = Index.open(args.index, create=False) if (Path(args.index) / "index.sqlite").exists() else None
    engine = None
    try:
        model = model_for_index(existing, args)
        windows = args.windows
        if windows is not None:
            windows = WindowPlan.parse(windows, model.config.num_frames, args.windows_from).require_rate(
                model.config.min_rate)
            if getattr(args, "engine", "local") == "ray":
                raise ConfigError("windows of long videos are embedded by the local engine only (not --engine ray)")
            if existing is not None:
                existing.builds.require_window_plan(windows.to_dict())
            print(f"windows: {windows.describe()}", file=sys.stderr)
        for folder in args.folders:
            if not Path(folder).exists():
                raise ConfigError(f"{folder}: no such folder")
        engine = engine_from_args(args, model)
        if engine is not None:
            engine.check_address()
            engine.check_resources()  # connects: a cluster that refuses is said before any index folder exists
    except BaseException:
        if engine is not None:
            engine.close()
        if existing is not None:
            existing.close()
        raise
    started = time.perf_counter()
    with existing or Index.open(args.index, create=True) as index:
        with contextlib.redirect_stdout(sys.stderr):  # stdout is for --json (Ray prints worker news)
            try:
                summary = build_index(index, args.folders, model, glob=args.glob, prune=args.prune,
                                      show_progress=not args.quiet, ann=args.ann, retry_failed=args.retry_failed,
                                      windows=windows, engine=engine, include_removed=args.include_removed)
            finally:
                if engine is not None:
                    engine.close()
        total = len(index)
        durations, windowed = index.durations(), index.windowed()
        note = sampling_note(model.config, [durations.get(path, 0.0) for path in summary.added + summary.updated
                                            if path not in windowed])
    counts = summary.counts()
    print(f"index {args.index}: {total} clips; " + ", ".join(f"{n} {name}" for name, n in counts.items()), file=sys.stderr)
    if summary.workers:
        print("ray: clips per node: " + ", ".join(f"{node[:12]} {count}" for node, count in summary.workers.items()),
              file=sys.stderr)
    for path, reason in summary.failed.items():
        print(f"  failed: {one_line(reason)}", file=sys.stderr)
    for path, reason in summary.skipped.items():
        print(f"  skipped: {one_line(path)}: {reason}", file=sys.stderr)
    if note:
        print(note, file=sys.stderr)
    if args.json:
        embedded = sum(durations.get(path, 0.0) for path in summary.added + summary.updated)
        print(json.dumps({"clips": total, **counts, **throughput(embedded, time.perf_counter() - started),
                          "failures": summary.failed, "skipped": summary.skipped, "workers": summary.workers}, indent=2))
    return 0 if not summary.failed or summary.added or summary.updated or summary.unchanged else 1


def _ingest(args: argparse.Namespace) -> int:
    from ..engines.ray_data import read_parquet
    from ..index import Index
    from ..index.layout import require_settings

    added, failed, batch = 0, [], []
    rows = read_parquet(args.parquet)  # a missing or unreadable file is refused before the index is created
    first = next(rows, None)
    if first is None:
        raise ConfigError(f"{args.parquet}: no rows to ingest")
    rows = chain([first], rows)
    new = not Path(args.index).exists()  # a folder this command makes; removed again if nothing is ingested
    with Index.open(args.index, create=True) as index, index.builds.lock():
        if not args.quiet:
            from tqdm.auto import tqdm

            rows = tqdm(rows, unit="clip", desc="ingesting", dynamic_ncols=True)
        settings = index.feature_settings  # what every row must share: the index's, or the first good row's
        for row in rows:
            if row.embedding is None:
                failed.append(row.error)
                continue
            try:
                index.raw_of(row.embedding)  # the index's settings, before it joins a batch
                theirs = row.embedding.feature_settings()
                if settings is not None and theirs != settings:
                    require_settings(settings, theirs, row.path, "being filled")
                settings = theirs
            except ConfigError as problem:
                failed.append(f"{row.path}: {problem}")
                continue
            if row.windows:  # a long video of a windowed export: it and its windows at once
                added += 1
                index.add_video(row.embedding, row.windows, row.path, row.size_bytes, row.mtime, row.window_plan)
                continue
            batch.append((row.embedding, row.path, row.size_bytes, row.mtime))
            if len(batch) == 256:
                added += len(index.add_many(batch))
                batch = []
        if batch:
            added += len(index.add_many(batch))
        if added:
            index.write_ann("auto")
        total = len(index)
    if new and not added:  # nothing was ingested: no empty index is left behind
        import shutil

        shutil.rmtree(args.index, ignore_errors=True)
    print(f"index {args.index}: {total} clips; {added} ingested from {args.parquet}, {len(failed)} failed", file=sys.stderr)
    for reason in failed:
        print(f"  failed: {one_line(reason)}", file=sys.stderr)
    return 0 if added or not failed else 1


def _list_or_remove(args: argparse.Namespace) -> int:
    from ..index import Index

    with Index.open(args.index, create=False) as index:
        if args.index_command == "remove":
            with index.builds.lock():
                removed = index.remove_ids(args.ids)
            print(f"index {args.index}: removed {len(removed)} clip(s)" +
                  "".join(f"\n  removed: {one_line(path)}" for path in removed), file=sys.stderr)
            return 0 if removed else 1
        total, rows = index.browse(args.filter, args.offset, args.limit)
    if args.json:
        print(json.dumps({"total": total, "clips": [{"id": i, "path": p, "duration_seconds": d} for i, p, d in rows]},
                         indent=2))
        return 0
    for clip_id, path, duration in rows:
        print(f"{clip_id:>6}  {duration or 0:8.2f}s  {one_line(path)}")
    print(f"{len(rows)} of {total} clip(s)" + (f" matching {args.filter!r}" if args.filter else ""), file=sys.stderr)
    return 0


def run_search(args: argparse.Namespace) -> int:
    from ..index import Index, SearchRequest, Where, resolve

    where = Where.parse(args.where)
    with Index.open(args.index, create=False) as index:
        model = functools.cache(lambda: model_for_index(index, args))  # made only if a file needs embedding

        def example(given: str):
            return resolve(index, given, args.segment, lambda path, segment: model().embed(path, segment=segment),
                           f"the index {args.index}")

        request = SearchRequest([example(given) for given in args.query], [example(given) for given in args.negatives],
                                k=args.k, per_video=args.per_video,
                                segments={"yes": True, "no": False}.get(args.segments), alpha=args.alpha,
                                flow_weight=args.flow_weight, motion=args.motion, negative_weight=args.negative_weight,
                                where=where, include_own=args.include_own)
        answer = index.answer(request)
        hits, percentiles, segments = answer.hits, answer.percentiles, answer.segments
        if answer.cancelled:
            print(f"warning: clip(s) {', '.join(map(str, answer.cancelled))} given both as an example and as --not: "
                  "they cancel out", file=sys.stderr)
        queries = [example.query for example in request.examples]
        owns = {example.own for example in request.examples if example.own is not None}
        clamped = [query for query in queries if getattr(query, "segment", None) and args.segment
                   and query.segment[1] < args.segment[1]]
        durations = index.durations_of([hit.id for hit in hits]) if args.format == "segments" and not segments else {}
        described = ", ".join(_describe_query(index, given, query, args) for given, query in zip(args.query, queries))
    if args.negatives:
        described += " | not " + ", ".join(args.negatives)
    if not hits and owns and not args.include_own:
        print(f"note: nothing found: the query's own {'videos were' if len(owns) > 1 else 'video was'} left out "
              "(--include-own keeps it) and no other clip matched", file=sys.stderr)
    for query in clamped:
        print(f"note: the segment {args.segment[0]:g}-{args.segment[1]:g} s ends after the video; searched with "
              f"{query.segment[0]:g}-{query.segment[1]:g} s", file=sys.stderr)
    times = (lambda hit: {"start": hit.start, "end": hit.end}) if segments else (lambda hit: {})
    records = [{"rank": rank, "id": hit.id, **times(hit), "score": hit.score, "percentile": percentile,
                "path": hit.path, **{part_label(k): v for k, v in hit.per_part.items()}}
               for rank, (hit, percentile) in enumerate(zip(hits, percentiles), 1)]
    style = "json" if args.json else args.format
    print(f"query: {one_line(described)}", file=sys.stderr)
    if style == "json":
        print(json.dumps([{**{key: record[key] for key in ("rank", "id", "start", "end", "path", "score", "percentile")
                              if key in record},
                           "per_part": {part_label(k): v for k, v in hit.per_part.items()}}
                          for record, hit in zip(records, hits)], indent=2))
    elif style == "paths":
        for hit in hits:
            print(f"{hit.path}#t={hit.start:g},{hit.end:g}" if segments else hit.path)
    elif style == "segments":
        for hit in hits:
            start, end = (hit.start, hit.end) if segments else (0.0, durations.get(hit.id, 0.0))
            print(f"{hit.path}\t{start:g}\t{end:g}")
    elif style == "csv":
        import csv

        fields = list(dict.fromkeys(key for record in records for key in record)) or ["rank", "id", "path", "score"]
        writer = csv.DictWriter(sys.stdout, fieldnames=fields)  # a part one clip lacks: an empty cell
        writer.writeheader()
        writer.writerows(records)
    else:
        parts = list(dict.fromkeys(part_label(k) for hit in hits for k in hit.per_part))  # a part one clip lacks: -
        span = f"{'start':>9}  {'end':>9}  " if segments else ""
        print(f"{'rank':>4}  {'id':>6}  {span}{'score':>7}  {'pct':>5}  " + "  ".join(f"{label:>6}" for label in parts)
              + "  path")
        for record in records:
            span = f"{_clock(record['start']):>9}  {_clock(record['end']):>9}  " if segments else ""
            print(f"{record['rank']:>4}  {record['id']:>6}  {span}{record['score']:7.4f}  {record['percentile']:5.1f}  "
                  + "  ".join(f"{record[label]:6.3f}" if label in record else f"{'-':>6}" for label in parts)
                  + f"  {one_line(record['path'])}")
    return 0


def _describe_query(index, given: str, query, args: argparse.Namespace) -> str:
    found = index.lookup(query) if isinstance(query, (str, int)) else None
    text = f"clip {found[0]} ({found[1]})" if found else str(given)
    if args.segment is not None:
        segment = getattr(query, "segment", None) or args.segment
        text += f", {segment[0]:g}-{segment[1]:g} s"
    return text


def _clock(seconds: float) -> str:
    """12.5 -> '0:12.5'; 3725 -> '1:02:05.0'."""
    minutes, rest = divmod(float(seconds), 60)
    hours, minutes = divmod(int(minutes), 60)
    return f"{hours}:{minutes:02d}:{rest:04.1f}" if hours else f"{minutes}:{rest:04.1f}"
