"""How much of a clip the reader decodes to get its T sampled frames: the decoded share.

    .venv/bin/python benchmarks/decoded_share.py               # 360p, 720p, 1080p x 5 s, 60 s, 10 min
    .venv/bin/python benchmarks/decoded_share.py --sizes 360p --lengths 5,60

Exact sampling of H.264 must decode every reference frame from the keyframe before a wanted frame
up to it (frames nothing refers to are skipped unless wanted), so the cost of a read is set by where
the samples lie, not by how many there are. For each clip and sampling rule this prints the pictures
the decoder produced (``VideoReader.frames_decoded``) as a share of the clip's frames, and the
seconds the read took on one decoder thread (best of --repeats). Rules: the default (T = 16 at least
4 per second: the central 4 s of a longer clip), the previous default (T = 16 over the whole clip)
and T = 32 over the whole clip (the paper's).

Clips: moving textured content (the speed benchmark's), 30 fps, x264 ``veryfast`` crf 23 with its
default GOP (a keyframe at least every 250 frames, scene cuts aside), made once into --clips.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from speed import encode_moving_texture  # the speed benchmark's clips (this folder)

SIZES = {"360p": (640, 360), "720p": (1280, 720), "1080p": (1920, 1080)}
RULES = (("default: T=16, at least 4/s", 16, 4.0), ("previous: T=16, whole clip", 16, None),
         ("T=32, whole clip", 32, None))


def measure(path: Path, frames: int, min_rate: float | None, repeats: int) -> tuple[int, int, int, float]:
    """(frames decoded, frames in the clip, keyframes, best seconds) of one exact read at 224 px."""
    from semantic_moments.video.decode import VideoReader
    from semantic_moments.video.sample import sample_frame_indices

    best, decoded = float("inf"), 0
    for _ in range(repeats):
        with VideoReader(path, threads=1) as reader:
            indices = sample_frame_indices(reader.frame_times, frames, duration=reader.duration_seconds,
                                           min_rate=min_rate)
            started = time.perf_counter()
            reader.decode_frames(indices, (224, 224))
            best = min(best, time.perf_counter() - started)
            decoded, total, keyframes = reader.frames_decoded, reader.num_frames, len(reader.keyframe_pts)
    return decoded, total, keyframes, best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=Path, default=Path("/tmp/semantic-moments-share-clips"))
    parser.add_argument("--sizes", default="360p,720p,1080p", help=f"of {', '.join(SIZES)}")
    parser.add_argument("--lengths", default="5,60,600", help="seconds")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    sizes = args.sizes.split(",")
    if unknown := [size for size in sizes if size not in SIZES]:
        sys.exit(f"decoded_share.py: unknown size {unknown[0]!r}; known: {', '.join(SIZES)}")
    print("| clip | keyframes | " + " | ".join(f"{name}: decoded share (frames), read s" for name, *_ in RULES) + " |")
    print("|---|---|" + "---|" * len(RULES))
    for seconds in (int(value) for value in args.lengths.split(",")):
        for size in sizes:
            width, height = SIZES[size]
            path = encode_moving_texture(args.clips / f"{size}-{seconds}s.mp4", width, height, seconds)
            cells, keyframes = [], 0
            for _, frames, min_rate in RULES:
                decoded, total, keyframes, best = measure(path, frames, min_rate, args.repeats)
                cells.append(f"{decoded / total:.1%} ({decoded} of {total}), {best:.2f} s")
            print(f"| {size}, {seconds} s | {keyframes} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
