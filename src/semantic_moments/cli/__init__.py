"""The ``semantic-moments`` command line. Thin: parses, calls the library, prints.

One module per verb: ``embed.py`` (embed, compare, backbones), ``index.py`` (index ..., search),
``organize.py`` (index duplicates, index clusters), ``serve.py``, ``bench.py``; the parsers of embed,
compare and backbones are built here, the others' in their modules (``add_*_commands``);
``arguments.py`` holds the shared argument types and the model options (one per ``Settings`` field).
Progress and summaries go to stderr; ``--json`` writes machine-readable results to stdout.
Exit codes: 0 success (for ``embed``: at least one clip embedded), 1 nothing succeeded or a
command failed, 2 bad arguments.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
from collections.abc import Sequence
from pathlib import Path

from .. import __version__
from ..errors import ConfigError, SemanticMomentsError, one_line
from .arguments import add_engine_options, add_model_options, part_label
from .bench import add_bench_commands, run_bench
from .embed import run_backbones, run_compare, run_embed
from .index import add_index_commands, run_index, run_search
from .serve import add_serve_command, run_serve

__all__ = ["build_parser", "entry_point", "main", "part_label"]

EPILOG = "Docs: README.md. Embedding files: see `semantic_moments.embedding` for the format."


class Parser(argparse.ArgumentParser):
    """An argument parser whose mistakes are one line naming the fix, not the whole usage."""

    def error(self, message: str) -> None:  # type: ignore[override]
        print(f"{self.prog}: error: {message} (see `{self.prog} --help`)", file=sys.stderr)
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
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
    embed.add_argument("-o", "--output", required=True, type=Path, metavar="DIR",
                       help="output folder (with --engine ray: a folder of Parquet shards, for `index ingest`)")
    embed.add_argument("--json", action="store_true", help="print one JSON object with every result to stdout")
    embed.add_argument("--quiet", action="store_true", help="no progress bar")
    embed.add_argument("--overwrite", action="store_true",
                       help="embed every clip again (by default a clip whose output file already holds its embedding "
                            "with these settings is left as it is: an interrupted run continues)")
    add_model_options(embed)
    add_engine_options(embed)

    compare = commands.add_parser(
        "compare", help="cosine similarity of two clips, or the similarity matrix of several",
        description="Similarity of A and B, each a video or an embedding file (.moments.safetensors): the fused "
                    "similarity and the similarity of each moment on its own. With three or more clips: the "
                    "similarity matrix of every pair.",
        epilog=EPILOG,
    )
    compare.add_argument("clips", nargs="+", metavar="CLIP",
                         help="two or more videos, image folders or .moments.safetensors files")
    compare.add_argument("--json", action="store_true", help="print JSON to stdout (the same as --format json)")
    compare.add_argument("--format", choices=("table", "csv", "json"), default="table",
                         help="with three or more clips: the matrix as a table, CSV or JSON; default: %(default)s")
    compare.add_argument("--plot", type=Path, default=None, metavar="FILE.png",
                         help="with three or more clips: also draw the matrix as a heatmap (needs matplotlib)")
    add_model_options(compare)

    commands.add_parser("backbones", help="list the registered backbones",
                        description="List every registered backbone with its default weights and layer.")
    add_bench_commands(commands)
    add_index_commands(commands)
    add_serve_command(commands)
    return parser


COMMANDS = {"embed": run_embed, "compare": run_compare, "backbones": run_backbones, "bench": run_bench,
            "index": run_index, "search": run_search, "serve": run_serve}


INTERRUPTED = {  # what a user needs to know after Ctrl-C, by command
    ("index", "build"): "every clip committed so far is kept; run the same command again to continue",
    ("index", "ingest"): "the rows committed so far are kept; run the same command again to add the rest",
    ("embed", None): "the embedding files written so far are kept; run again to embed the rest",
    ("bench", "run"): "features computed so far are cached; run again to continue",
}


def _warn_in_one_line(message, category, filename, lineno, file=None, line=None) -> None:
    """Warnings as ``warning: MESSAGE`` (no source line), each once."""
    text = one_line(message)
    if category.__name__ in _SAID_AS_NOTE:
        return
    if text not in _WARNED:
        _WARNED.add(text)
        print(f"warning: {text}", file=sys.stderr)


_WARNED: set[str] = set()
_SAID_AS_NOTE: set[str] = set()  # warnings the running command says itself, as a note


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI in-process; returns the exit code (tests call this directly)."""
    import warnings

    parser = build_parser()
    args = parser.parse_args(argv)
    with warnings.catch_warnings():
        warnings.showwarning = _warn_in_one_line
        _WARNED.clear()
        _SAID_AS_NOTE.clear()
        if args.command == "search":
            _SAID_AS_NOTE.add("SegmentClamped")  # search prints a note naming the segment searched
        return _run(args)


def _run(args: argparse.Namespace) -> int:
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
        action = getattr(args, "index_command", None) or getattr(args, "bench_command", None)
        print(f"interrupted: {INTERRUPTED.get((args.command, action), 'stopped')}", file=sys.stderr)
        return 130


def entry_point() -> None:
    # Before torch loads OpenMP: idle OpenMP threads sleep instead of spinning, so the decoding threads
    # get the cores between backbone passes (measured on 2 cores: 5% faster, 15% less CPU; see README).
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    try:
        code = main()
        sys.stdout.flush()
    except BrokenPipeError:  # `semantic-moments search ... | head`: the reader left; not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = 0
    sys.exit(code)


if __name__ == "__main__":
    entry_point()
