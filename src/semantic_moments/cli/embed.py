"""``embed``, ``compare`` and ``backbones``."""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import ConfigError, one_line
from .arguments import engine_from_args, model_from_args, part_label, sampling_note, throughput

def _output_names(sources: Sequence[str]) -> list[str]:
    """``<stem>.moments.safetensors`` per source; a stem used twice gets a short hash of its path."""
    from ..embedding import FILE_SUFFIX

    stems = [Path(source).name.rsplit(".", 1)[0] if Path(source).suffix else Path(source).name for source in sources]
    names = []
    for source, stem in zip(sources, stems):
        if stems.count(stem) > 1:
            stem = f"{stem}-{hashlib.blake2b(str(Path(source).resolve()).encode(), digest_size=4).hexdigest()}"
        names.append(stem + FILE_SUFFIX)
    return names


def _up_to_date(sources: Sequence[str], names: Sequence[str], output: Path, model, segment) -> dict[str, Path]:
    """{source: output file} of the sources whose output file is already their embedding with these
    settings (same file content, same features and moments settings, same segment): an interrupted
    run continues where it stopped. Image folders are embedded again (no cheap content check)."""
    from ..embedding import Embedding
    from ..errors import SemanticMomentsError
    from ..video import hash_file

    found: dict[str, Path] = {}
    settings = model.feature_settings()
    for source, name in zip(sources, names):
        path = output / name
        if not path.is_file() or not Path(source).is_file():
            continue
        try:
            existing = Embedding.load(path)
            wanted = tuple(segment) if segment else None
            clamped = (existing.segment is not None and wanted is not None and existing.segment[0] == wanted[0]
                       and existing.segment[1] == existing.duration_seconds < wanted[1])  # the clip ended first
            same = (existing.content_hash == hash_file(source) and existing.feature_settings() == settings
                    and existing.config == model.config and (existing.segment == wanted or clamped))
        except (SemanticMomentsError, OSError):
            continue  # damaged or unreadable: embedded again
        if same:
            found[source] = path
    return found


def run_embed(args: argparse.Namespace) -> int:
    from ..collection import expand_sources

    args.videos = expand_sources(args.videos)  # a folder of videos: each video in it
    model = model_from_args(args)
    engine = engine_from_args(args, model)
    if engine is not None:
        if args.segment is not None:
            raise ConfigError("--segment is not supported with --engine ray")
        with contextlib.redirect_stdout(sys.stderr):  # stdout is for --json (Ray prints worker news)
            try:
                written, failed = engine.write_parquet(args.videos, args.output)
            finally:
                engine.close()
        print(f"embedded {written} of {len(args.videos)} clip(s) into Parquet shards in {args.output} with {model!r} "
              f"(load them with `semantic-moments index ingest {args.output} --index DIR`)", file=sys.stderr)
        for reason in failed.values():
            print(f"  failed: {one_line(reason)}", file=sys.stderr)
        if args.json:
            print(json.dumps({"embedded": written, "failed": len(failed), "output": str(args.output),
                              "failures": failed}, indent=2))
        return 0 if written > 0 else 1
    names = _output_names(args.videos)
    records: list[dict[str, Any]] = []
    failures: list[str] = []
    started = time.perf_counter()
    done = {} if args.overwrite else _up_to_date(args.videos, names, args.output, model, args.segment)
    todo = [(source, name) for source, name in zip(args.videos, names) if source not in done]
    results = model.iter_embed([source for source, _ in todo], segment=args.segment, show_progress=not args.quiet)
    for result, (_, name) in zip(results, todo):
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
    print(f"embedded {succeeded} of {len(records)} clip(s) into {args.output} with {model!r}"
          + (f"; {len(done)} already there with these settings (--overwrite embeds them again)" if done else ""),
          file=sys.stderr)
    records += [{"source": source, "output": str(path), "unchanged": True} for source, path in done.items()]
    succeeded += len(done)
    note = sampling_note(model.config, [record.get("duration_seconds", 0.0) for record in records]) \
        if args.segment is None else None
    if note:
        print(note, file=sys.stderr)
    if failures:
        print(f"{len(failures)} failed:", file=sys.stderr)
        for failure in failures:
            print(f"  {one_line(failure)}", file=sys.stderr)
    if args.json:
        print(json.dumps({"embedded": succeeded, "failed": len(failures),
                          **throughput(sum(record.get("duration_seconds", 0.0) for record in records),
                                       time.perf_counter() - started),
                          "results": records}, indent=2))
    return 0 if succeeded > 0 else 1


def run_compare(args: argparse.Namespace) -> int:
    from ..embedding import Embedding, moment_similarities, similarity

    if len(args.clips) < 2:
        raise ConfigError("compare needs at least two clips")
    model = None
    embeddings = []
    for source in args.clips:
        if str(source).endswith(".safetensors"):
            embeddings.append(Embedding.load(source))
        else:
            model = model or model_from_args(args)
            embeddings.append(model.embed(source, segment=args.segment))
    if len(embeddings) > 2 or args.plot is not None:
        return _compare_many(embeddings, args)
    first, second = embeddings
    orders = tuple(order for order in first.config.orders if order in second.moments)
    alpha = args.alpha or first.config.alpha_for(orders)
    flow_weight = first.config.flow_weight if args.flow_weight is None else args.flow_weight
    score = similarity(first, second, alpha=alpha, orders=orders, flow_weight=flow_weight)
    per_part = moment_similarities(first, second)
    if args.json:
        print(json.dumps({"a": first.source, "b": second.source, "similarity": score, "alpha": list(alpha),
                          "flow_weight": flow_weight, "orders": list(orders),
                          "per_part": {part_label(k): v for k, v in per_part.items()},
                          "backbone": first.backbone}, indent=2))
    else:
        keypoints = (f", keypoint weight {first.config.keypoint_weight:g} ({'+'.join(first.config.keypoints)})"
                     if first.config.keypoints else "")
        print(f"similarity {score:.4f}  (alpha {','.join(f'{w:g}' for w in alpha)}, flow weight {flow_weight:g}"
              f"{keypoints}, {first.backbone['name']})")
        for order, value in per_part.items():
            print(f"  {part_label(order):>6} {value:.4f}")
    return 0


def _compare_many(embeddings, args: argparse.Namespace) -> int:
    """The similarity matrix of three or more clips, as a table, CSV or JSON, and a heatmap."""
    from ..embedding import similarity_matrix

    first = embeddings[0]
    orders = first.config.orders
    alpha = args.alpha or first.config.alpha_for(orders)
    flow_weight = first.config.flow_weight if args.flow_weight is None else args.flow_weight
    matrix = similarity_matrix(embeddings, alpha, orders, flow_weight=flow_weight)
    names = [Path(e.source).name for e in embeddings]
    style = "json" if args.json else args.format
    if style == "json":
        print(json.dumps({"clips": [e.source for e in embeddings], "matrix": matrix.round(6).tolist(),
                          "alpha": list(alpha), "flow_weight": flow_weight}, indent=2))
    elif style == "csv":
        import csv

        writer = csv.writer(sys.stdout)
        writer.writerow(["clip", *names])
        for name, row in zip(names, matrix):
            writer.writerow([name, *(f"{value:.6f}" for value in row)])
    else:
        width = max(len(name) for name in names)
        print(" " * width + "  " + "  ".join(f"{index:>6}" for index in range(len(names))))
        for index, (name, row) in enumerate(zip(names, matrix)):
            print(f"{name:<{width}}  " + "  ".join(f"{value:6.3f}" for value in row) + f"   [{index}]")
    if args.plot is not None:
        print(f"wrote {_heatmap(matrix, names, args.plot)}", file=sys.stderr)
    return 0


def _heatmap(matrix, names, path: Path) -> Path:
    """Draw the matrix into ``path`` (a PNG; ``.png`` is added where the name has no image suffix);
    returns the file written. OutputError for a folder that is missing or cannot be written."""
    from ..files import write_atomically

    if path.suffix.lower() not in (".png", ".svg", ".pdf", ".jpg", ".jpeg"):
        path = path.with_name(path.name + ".png")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ConfigError("--plot needs matplotlib: pip install 'semantic-moments[bench]'") from None
    size = max(4.0, 0.45 * len(names) + 2)
    figure, axes = plt.subplots(figsize=(size, size * 0.85))
    image = axes.imshow(matrix, cmap="viridis", vmin=min(0.0, float(matrix.min())), vmax=1.0)
    axes.set_xticks(range(len(names)), names, rotation=60, ha="right", fontsize=7)
    axes.set_yticks(range(len(names)), names, fontsize=7)
    figure.colorbar(image, ax=axes, label="cosine similarity")
    figure.tight_layout()
    try:
        write_atomically(path, lambda temporary: figure.savefig(temporary, dpi=120, format=path.suffix[1:].lower()))
    finally:
        plt.close(figure)
    return path


def run_backbones(args: argparse.Namespace) -> int:
    from ..backbones import list_backbones
    from ..backbones.registry import offline_status
    from ..settings import PRESETS

    entries = list_backbones()
    by_layer: dict[str, dict[str, list[str]]] = {}  # backbone -> layer -> the presets using it
    for name, preset in PRESETS.items():
        by_layer.setdefault(preset.backbone, {}).setdefault(preset.layer, []).append(name)
    preset_layers = {backbone: [f"{layer} ({', '.join(names)})" for layer, names in layers.items()]
                     for backbone, layers in by_layer.items()}
    from ..keypoints import keypoint_offline_status, list_keypoint_sources

    rows = [(entry.name, ", ".join(preset_layers.get(entry.name, [entry.default_layer])), offline_status(entry),
             f"{entry.description}  [{entry.default_weights}]") for entry in entries]
    sources = [(source.name, "", keypoint_offline_status(source),
                f"{source.description}  [{source.model_file}, SHA-256 {source.sha256[:12]}...]")
               for source in list_keypoint_sources()]
    widths = [max(len(row[column]) for row in rows + sources + [("keypoints", "layer", "offline", "")])
              for column in range(3)]

    def line(row: tuple[str, ...]) -> str:
        return "  ".join(f"{cell:<{size}}" for cell, size in zip(row[:3], widths)) + f"  {row[3]}"

    print(line(("backbone", "layer", "offline", "description [weights]")))
    for row in rows:
        print(line(row))
    print("\n" + line(("keypoints", "", "offline", "description [model file]")))
    for row in sources:
        print(line(row))
    return 0
