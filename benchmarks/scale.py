"""Scale-out: the local pipeline against ``--engine ray`` on this machine, 1 vs 2 Ray nodes, and the
driver's commit ceiling.

    python benchmarks/scale.py                 # 48 real clips from ../shared/data, 2 rounds
    python benchmarks/scale.py --clips 96 --rounds 3

Every case is the console command a user runs, ``semantic-moments index build DIR --index NEW``,
end to end (model load, scan, hash, decode, embed, commit), in its own process, the cases taking
turns for --rounds rounds (best round reported: the machine may be shared):

* local: the local pipeline;
* ray, 1 node: ``--engine ray`` against a running head node with every core of this machine;
* ray, 2 nodes: a head and a worker node on this machine, half the cores each (the same total: this
  shows the scheduling spreads the work, not a speed-up).

Clusters are started before the timed command (a cluster is up before a build, in real use) and
stopped after. The commit ceiling is the rate at which the driver's SQLite index takes clips (one
transaction per clip, as a build commits): a cluster feeding one driver cannot go faster.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def gather_clips(folder: Path, count: int) -> Path:
    """``count`` real clips linked into ``folder`` (arm actions, KTH, then WLASL signs)."""
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    sources = sorted(SHARED.glob("ud810_arm_actions/*/*")) + sorted(SHARED.glob("kth_partial/*/*")) + \
        sorted(SHARED.glob("wlasl100_subset/*/*.mp4"))
    for number, source in enumerate(sources[:count]):
        (folder / f"{number:04d}{source.suffix}").symlink_to(source)
    return folder


def clean_env(home: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("RAY_")}
    return {**env, "HOME": home, "RAY_USAGE_STATS_ENABLED": "0", "OMP_WAIT_POLICY": "PASSIVE"}


class Cluster:
    """``ray start`` nodes on this machine, CPUs given per node."""

    def __init__(self, cpus: list[int]) -> None:
        self.folder = tempfile.mkdtemp(prefix="rs", dir="/tmp")
        self.env = clean_env(self.folder)
        self.address = f"127.0.0.1:{21000 + os.getpid() % 20000}"
        port = self.address.split(":")[1]
        self._start(["--head", "--port", port, "--temp-dir", self.folder, "--include-dashboard", "false"], cpus[0])
        for count in cpus[1:]:
            self._start(["--address", self.address], count)

    def _start(self, arguments: list[str], cpus: int) -> None:
        subprocess.run([BIN / "ray", "start", *arguments, "--num-cpus", str(cpus), "--disable-usage-stats"],
                       check=True, capture_output=True, env=self.env)

    def stop(self) -> None:
        subprocess.run([BIN / "ray", "stop", "--force"], capture_output=True, env=self.env)
        shutil.rmtree(self.folder, ignore_errors=True)


def timed_build(clips: Path, extra: list[str], env: dict[str, str]) -> tuple[float, dict]:
    index = Path(tempfile.mkdtemp(prefix="scale-index-"))
    try:
        start = time.perf_counter()
        output = subprocess.run([BIN / "semantic-moments", "index", "build", str(clips), "--index", str(index / "i"),
                                 "--quiet", "--json", *extra], capture_output=True, text=True, env=env)
        seconds = time.perf_counter() - start
        if output.returncode != 0:
            raise RuntimeError(output.stderr[-2000:])
        return seconds, json.loads(output.stdout)
    finally:
        shutil.rmtree(index, ignore_errors=True)


def commit_rate(count: int = 2000) -> float:
    """Clips per second the driver's index commits, one transaction each (as a build does)."""
    import numpy as np

    from semantic_moments import SemanticMoments
    from semantic_moments.index import Index

    clip = sorted(SHARED.glob("kth_partial/*/*"))[0]
    embedding = SemanticMoments().embed(clip)
    with tempfile.TemporaryDirectory() as folder, Index.open(Path(folder) / "i", create=True) as index:
        start = time.perf_counter()
        for number in range(count):
            index.add(embedding, path=f"/videos/{number:07d}.mp4", size_bytes=1, mtime=float(number))
        seconds = time.perf_counter() - start
        assert len(index) == count and np.isfinite(index.moments_of(1)).all()
    return count / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description="Scale-out benchmark (see the module docstring).")
    parser.add_argument("--clips", type=int, default=48, help="real clips to index; default: %(default)s")
    parser.add_argument("--rounds", type=int, default=2, help="rounds, cases taking turns; default: %(default)s")
    parser.add_argument("--folder", type=Path, default=Path("/tmp/semantic-moments-scale-clips"))
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).parent))
    from speed import machine

    from semantic_moments.embedder import available_cores

    cores = available_cores()
    clips = gather_clips(args.folder, args.clips)
    count = len(list(clips.iterdir()))
    home = tempfile.mkdtemp(prefix="scale-home-")
    cases = {"local": None, "ray, 1 node": [cores], "ray, 2 nodes": [max(1, cores // 2)] * 2}
    best: dict[str, tuple[float, dict]] = {}
    for _ in range(args.rounds):
        for name, nodes in cases.items():
            cluster = Cluster(nodes) if nodes else None
            try:
                env = cluster.env if cluster else clean_env(home)
                extra = ["--engine", "ray", "--ray-address", cluster.address] if cluster else []
                seconds, summary = timed_build(clips, extra, env)
            finally:
                if cluster:
                    cluster.stop()
            if name not in best or seconds < best[name][0]:
                best[name] = (seconds, summary)
    print(f"machine: {machine()}; {count} real clips (../shared/data), default model; best of {args.rounds} rounds\n")
    print("| case | seconds | clips/s | vs local | clips per node |")
    print("|---|---|---|---|---|")
    for name, (seconds, summary) in best.items():
        ratio = best["local"][0] / seconds
        nodes = ", ".join(str(value) for value in summary.get("workers", {}).values()) or "-"
        print(f"| {name} | {seconds:.1f} | {count / seconds:.2f} | {ratio:.2f}x | {nodes} |")
    print(f"\nDriver commit ceiling (one SQLite transaction per clip): {commit_rate():,.0f} clips/s")


if __name__ == "__main__":
    main()
