"""What skipping the deblocking filter on non-reference frames buys, and what it costs.

    python benchmarks/decode_options.py [--clips DIR] [--real ../shared/data/wlasl100_subset] [--count 40]

Decodes every clip's sampled frames (default settings, one decoder thread) exactly, with FFmpeg's
``skip_loop_filter=noref`` (no deblocking on frames nothing refers to) and with the loop filter
skipped on every frame, then embeds them with the default model. Prints the decoding CPU of each
(best of --rounds, taking turns), the speed-up, the cosine of each embedding to the exact one (mean
and worst) and the worst mean pixel difference of a clip's frames. An option would be offered only if
it were faster with every embedding within cosine 0.999 of the exact one; exact decoding is the
default either way. Measured (README, Speed): neither qualifies, so the library offers none.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from semantic_moments import SemanticMoments
from semantic_moments import video as video_module


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=Path, default=Path("/tmp/semantic-moments-speed-clips"),
                        help="H.264 clips (benchmarks/speed.py makes them); default: %(default)s")
    parser.add_argument("--real", type=Path, default=Path("../shared/data/wlasl100_subset"))
    parser.add_argument("--count", type=int, default=40, help="real clips to add; default: %(default)s")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; each setting's best is kept; default: %(default)s")
    args = parser.parse_args()
    files = sorted(args.clips.glob("*.mp4")) + sorted(args.real.glob("*/*.mp4"))[: args.count]
    model = SemanticMoments()
    reader_init = video_module.VideoReader.__init__
    runs: dict[str, tuple] = {}
    for _ in range(args.rounds):  # the settings take turns; each keeps its best round (a shared machine)
        for name, options in (("exact", None), ("loop filter off on non-reference frames", "noref"),
                              ("loop filter off on every frame", "all")):
            def init(self, path, threads=0, options=options):
                reader_init(self, path, threads)
                if options:
                    self._stream.codec_context.options = {"skip_loop_filter": options}
            video_module.VideoReader.__init__ = init
            started = time.process_time()
            clips = [model.read(path, decode_threads=1) for path in files]
            cpu = time.process_time() - started
            if name not in runs or cpu < runs[name][0]:
                runs[name] = (cpu, [model.embed_clip(clip).vector() for clip in clips], [clip.frames for clip in clips])
    video_module.VideoReader.__init__ = reader_init
    exact = runs["exact"]
    print(f"{len(files)} clips ({len(files) - min(args.count, len(files))} synthetic H.264, the rest real)\n")
    print("| decoding | decode CPU s | speed-up | embedding cosine to exact: mean | worst | worst mean pixel diff |")
    print("|---|---|---|---|---|---|")
    for name, (cpu, vectors, frames) in runs.items():
        cosines = [float(a @ b / np.linalg.norm(a) / np.linalg.norm(b)) for a, b in zip(exact[1], vectors)]
        difference = max(float(np.abs(a.astype(int) - b.astype(int)).mean()) for a, b in zip(exact[2], frames))
        print(f"| {name} | {cpu:.2f} | {exact[0] / cpu:.2f}x | {np.mean(cosines):.5f} | {min(cosines):.5f} | "
              f"{difference:.2f} |")


if __name__ == "__main__":
    main()
