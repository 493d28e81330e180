"""Argument types and the model options every embedding command shares."""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

from ..config import parse_number_list
from ..errors import ConfigError
from ..settings import PRESETS, Settings

def parse_segment(text: str) -> tuple[float, float]:
    try:
        start, end = (float(part) for part in text.split("-", 1))
    except ValueError:
        raise argparse.ArgumentTypeError(f"segment must be START-END in seconds like 1.5-4, got {text!r}") from None
    if not 0 <= start < end:
        raise argparse.ArgumentTypeError(f"segment needs 0 <= START < END, got {text!r}")
    return start, end


def positive_int(text: str) -> int:
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


def whole_number_in(low: int, high: int):
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


result_count = whole_number_in(1, MAX_RESULTS)


port_number = whole_number_in(1, 65535)


def positive_float(text: str) -> float:
    value = non_negative_float(text)
    if value == 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0, got {text!r}")
    return value


def non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if not 0.0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be finite and non-negative, got {text!r}")
    return value


def bounded_float(low: float, high: float):
    """An argparse type: a number from ``low`` to ``high``."""

    def parse(text: str) -> float:
        value = non_negative_float(text) if low >= 0 else float(text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be between {low:g} and {high:g}, got {text!r}")
        return value

    return parse


def parse_orders(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"orders must be comma-separated integers like 1,2,3, got {text!r}") from None


def parse_alpha(text: str) -> tuple[float, ...]:
    try:
        return parse_number_list(text, "alpha")
    except ConfigError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def parse_names(text: str) -> tuple[str, ...]:
    """``"pose,hands"`` -> ("pose", "hands"); ``""`` or ``none`` -> ()."""
    return () if text.strip().lower() in ("", "none") else tuple(part.strip() for part in text.split(",") if part.strip())


TYPES = {"int": int, "non_negative_float": non_negative_float, "orders": parse_orders, "alpha": parse_alpha,
         "names": parse_names}
MODEL_OPTIONS = tuple(item.name for item in dataclasses.fields(Settings) if item.metadata.get("flag") != "")


def add_model_options(parser: argparse.ArgumentParser) -> None:
    """Options that choose the backbone and the moments, one per ``Settings`` field (its help text
    and type are the field's); shared by every command that embeds. None: the preset's (or, for an
    existing index, the index's) value."""
    group = parser.add_argument_group("model")
    group.add_argument("--preset", choices=tuple(PRESETS), default=None,
                       help="named settings: motion = Lite0 blocks.7, T=16 at least 4/s, moments + token flow + body and "
                            "hand keypoints (the default); slow = the same with T=16 over the whole clip (one slow "
                            "motion per clip); flow = motion without keypoints (no MediaPipe); paper = Lite0 blocks.10, "
                            "T=32 over the whole clip, moments only; options below override it")
    default = Settings.preset()
    for item in dataclasses.fields(Settings):
        meta = item.metadata
        if meta.get("flag") == "":
            continue
        flag = meta.get("flag") or "--" + item.name.replace("_", "-")
        value = getattr(default, item.name)
        shown = (",".join(str(part) for part in value) or "none") if isinstance(value, tuple) else value
        help_text = meta["help"] % {"preset": shown}
        if item.type in ("bool", bool):  # a switch away from the default
            group.add_argument(flag, dest=item.name, action="store_const", const=not item.default, default=None,
                               help=help_text)
            continue
        keywords = dict(meta.get("argparse", {}))
        if "type" in keywords:
            keywords["type"] = TYPES[keywords["type"]]
        group.add_argument(flag, dest=item.name, default=None, help=help_text, **keywords)
    group.add_argument("--segment", type=parse_segment, default=None, metavar="START-END",
                       help="embed only this part of each clip, in seconds, e.g. 2-5.5")
    run = parser.add_argument_group("execution")
    run.add_argument("--device", default="cpu", help="cpu or cuda[:N]; default: %(default)s")
    run.add_argument("--dtype", choices=("float32", "bfloat16", "float16"), default="float32",
                     help="backbone precision (moments always accumulate in float64); default: %(default)s")
    run.add_argument("--batch-size", type=positive_int, default=32, help="frames per backbone pass; default: %(default)s")
    run.add_argument("--runtime", choices=("auto", "torch", "onnxruntime", "openvino"), default="auto",
                     help="what runs the backbone on the CPU: auto = the fastest installed (OpenVINO, ONNX Runtime, "
                          "torch); the same tokens to 1e-4 (tested); a GPU always runs torch; default: %(default)s")
    run.add_argument("--decode-workers", type=positive_int, default=None,
                     help="threads decoding upcoming clips while the backbone runs; default: 2 on the CPU, "
                          "every core but one on a GPU")
    run.add_argument("--decode-threads", type=positive_int, default=None,
                     help="each decoder's own threads; default: the cores shared among the clips decoding at once")


def settings_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The ``Settings`` fields given on the command line (None: not given)."""
    return {name: getattr(args, name, None) for name in MODEL_OPTIONS}


def execution_options(args: argparse.Namespace) -> dict[str, Any]:
    """How the model runs (not what it means): device, dtype, batch size, decoding, the CPU runtime."""
    runtime = getattr(args, "runtime", "auto")
    return {"device": getattr(args, "device", "cpu"), "dtype": getattr(args, "dtype", None) or "float32",
            "batch_size": getattr(args, "batch_size", None) or 32,
            "decode_workers": getattr(args, "decode_workers", None),
            "decode_threads": getattr(args, "decode_threads", None),
            **({"runtime": runtime} if runtime not in (None, "auto") else {})}


def model_from_args(args: argparse.Namespace):
    """The model the command line asks for: the preset (or the default) with the options given."""
    from ..embedder import SemanticMoments

    return SemanticMoments(preset=args.preset, **execution_options(args), **settings_overrides(args))


def add_engine_options(parser: argparse.ArgumentParser) -> None:
    """``--engine ray`` and its options (``engines/ray_data.py``)."""
    group = parser.add_argument_group("engine")
    group.add_argument("--engine", choices=("local", "ray"), default="local",
                       help="local: this machine's pipeline; ray: a Ray cluster (pip install 'semantic-moments[ray]'; "
                            "files must be at the same path on every node); default: %(default)s")
    group.add_argument("--ray-address", default=None, metavar="ADDRESS",
                       help="with --engine ray: the cluster (host:6379, ray://host:10001 or auto); default: "
                            "RAY_ADDRESS, else a Ray instance on this machine")
    group.add_argument("--ray-workers", type=positive_int, default=None, metavar="N",
                       help="with --engine ray: model actors; default: one per GPU, or one per --ray-cpus-per-worker "
                            "CPUs of each node")
    group.add_argument("--ray-cpus-per-worker", type=positive_float, default=None, metavar="N",
                       help="with --engine ray: CPUs per actor; default: 1 on nodes of up to 8 CPUs, else 2")
    group.add_argument("--ray-gpus-per-worker", type=non_negative_float, default=None, metavar="N",
                       help="with --engine ray: GPUs per actor; default: 1 when the cluster has GPUs, else 0")
    group.add_argument("--ray-files-per-task", type=positive_int, default=8, metavar="N",
                       help="with --engine ray: files per actor call (their frames share batches); default: %(default)s")


def engine_from_args(args: argparse.Namespace, model):
    """None for the local pipeline, or a RayEngine with the model's settings."""
    ray_options = [name for name in ("ray_address", "ray_workers", "ray_cpus_per_worker", "ray_gpus_per_worker")
                   if getattr(args, name, None) is not None]
    if getattr(args, "engine", "local") != "ray":
        if ray_options:
            raise ConfigError(f"--{ray_options[0].replace('_', '-')} needs --engine ray")
        return None
    from ..engines.ray_data import RayEngine

    return RayEngine(model.options(), address=args.ray_address, workers=args.ray_workers,
                     cpus_per_worker=args.ray_cpus_per_worker, gpus_per_worker=args.ray_gpus_per_worker,
                     files_per_task=args.ray_files_per_task)


def sampling_note(config, durations) -> str | None:
    """Once per run: how many clips were longer than the T frames cover (their central T / min_rate
    seconds were sampled), and what to do where the whole of them matters; None when none were."""
    span = config.sampled_seconds()
    if span is None:
        return None
    longer = [duration for duration in durations if duration and duration > span + 1e-6]
    if not longer:
        return None
    return (f"note: {len(longer)} clip(s) longer than {span:g} s (up to {max(longer):.0f} s) were sampled over their "
            f"central {span:g} s, {config.num_frames} frames at {config.min_rate:g} per second; to search all of a "
            f"long video index it with windows (`index build --windows {span:g}:{span / 4:g}`), or, where each clip is "
            "one slow motion, spread the frames over whole clips with --preset slow (or --min-rate 0)")


def throughput(video_seconds: float, wall_seconds: float) -> dict[str, float]:
    """How fast video went through, for --json: seconds of video, of wall time, and their ratio
    (hours of video per hour)."""
    return {"video_seconds": round(video_seconds, 2), "wall_seconds": round(wall_seconds, 3),
            "video_hours_per_hour": round(video_seconds / wall_seconds, 2) if wall_seconds > 0 else None}
