"""FiftyOne: the time to embed a dataset through FiftyOne against `index build`, and a screenshot of
the App sorted by motion.

    .venv/bin/python benchmarks/fiftyone_app.py                     # both, on the shared arm actions
    .venv/bin/python benchmarks/fiftyone_app.py --skip-screenshot --rounds 3

Timing: one SemanticMoments model (the default settings), loaded and warmed up once; then, taking
turns for --rounds rounds (the machine may be shared), ``collection.build_index`` of the clips into
a new index (what ``semantic-moments index build`` runs) and ``dataset.compute_embeddings(MotionModel
(model))`` on a FiftyOne dataset of the same clips. Prints each round's seconds, the best of each
and their ratio.

Screenshot: the clips re-encoded to H.264 MP4 (what a browser plays; in a temporary folder), their
vectors loaded from an index (``load_index``: nothing embedded again), the Brain's similarity index
(``compute_similarity``), the App launched on the view sorted by motion to one clip of "both arms
side raise", and the page captured by Chromium (Playwright) into --screenshot.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ARM = ROOT.parent / "shared" / "data" / "ud810_arm_actions"


def clips(folder: Path) -> list[Path]:
    return sorted(folder.glob("*/*.avi"))


def timing(files: list[Path], rounds: int, work: Path) -> None:
    import fiftyone as fo

    from semantic_moments import SemanticMoments
    from semantic_moments.collection import build_index
    from semantic_moments.index import Index
    from semantic_moments.integrations.fiftyone import FIELD, MotionModel

    model = SemanticMoments()
    model.embed(files[0])  # warm-up: model loading, first allocations, MediaPipe's graphs
    times: dict[str, list[float]] = {"index build": [], "FiftyOne compute_embeddings": []}
    for turn in range(rounds):
        folder = work / f"index-{turn}"
        started = time.perf_counter()
        with Index.open(folder, create=True) as index:
            summary = build_index(index, files, model)
        times["index build"].append(time.perf_counter() - started)
        assert len(summary.added) == len(files), summary.failed

        dataset = fo.Dataset()
        dataset.add_samples([fo.Sample(filepath=str(path)) for path in files], progress=False)
        started = time.perf_counter()
        dataset.compute_embeddings(MotionModel(model), embeddings_field=FIELD, progress=False)
        times["FiftyOne compute_embeddings"].append(time.perf_counter() - started)
        assert all(vector is not None for vector in dataset.values(FIELD))
        dataset.delete()
        print(f"round {turn + 1}: " + ", ".join(f"{name} {values[-1]:.1f} s" for name, values in times.items()),
              flush=True)
    best = {name: min(values) for name, values in times.items()}
    print(f"\n{len(files)} clips, best of {rounds} rounds taking turns (one model, warmed up):")
    for name, seconds in best.items():
        print(f"  {name:30s} {seconds:6.1f} s  {seconds / len(files):.2f} s/clip")
    print(f"  ratio FiftyOne / index build: {best['FiftyOne compute_embeddings'] / best['index build']:.2f}")


def screenshot(files: list[Path], path: Path, work: Path) -> None:
    import fiftyone as fo

    from semantic_moments import SemanticMoments
    from semantic_moments.collection import build_index
    from semantic_moments.index import Index
    from semantic_moments.integrations.fiftyone import compute_similarity, load_index

    videos = work / "mp4"
    for source in files:  # the App plays what a browser plays: H.264 in MP4
        target = videos / source.parent.name / (source.stem + ".mp4")
        target.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(source), "-c:v", "libx264", "-pix_fmt", "yuv420p",
                        "-an", str(target)], check=True)
    with Index.open(work / "index-mp4", create=True) as index:
        build_index(index, [videos], SemanticMoments(), show_progress=True)
    dataset = load_index(work / "index-mp4", name="arm-actions-by-motion", overwrite=True)
    for sample in dataset.iter_samples(autosave=True):
        sample["action"] = fo.Classification(label=Path(sample.filepath).parent.name)
    compute_similarity(dataset)
    query = dataset.match(fo.ViewField("filepath").ends_with("A1_both_arms_side_raise/PS7A1P2T1.mp4")).first()
    view = dataset.sort_by_similarity(query.id, brain_key="motion", k=12)
    port = 5171
    session = fo.launch_app(view, port=port, remote=True, auto=False)
    try:
        from playwright.sync_api import sync_playwright

        chromium = shutil.which("chromium") or "/usr/bin/chromium"
        with sync_playwright() as driver:
            browser = driver.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--autoplay-policy=no-user-gesture-required"])
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(f"http://localhost:{port}/datasets/{dataset.name}", wait_until="load", timeout=120_000)
            time.sleep(20)  # the App loads the session's view; the grid's video tiles draw their first frames
            dismiss = page.get_by_text("Dismiss", exact=True)
            if dismiss.count():  # an advertisement over the grid
                dismiss.first.click()
                time.sleep(1)
            path.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(path))
            browser.close()
    finally:
        session.close()
    print(f"screenshot: {path} (App sorted by motion to {Path(query.filepath).parent.name}/{Path(query.filepath).name})")
    print("order:", [f"{Path(p).parent.name[:2]}/{Path(p).stem}" for p in view.values("filepath")])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=Path, default=ARM, help="folder of action folders of clips")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--screenshot", type=Path, default=ROOT / "docs" / "fiftyone-app.png")
    parser.add_argument("--skip-timing", action="store_true")
    parser.add_argument("--skip-screenshot", action="store_true")
    args = parser.parse_args()
    files = clips(args.clips)
    if not files:
        sys.exit(f"no clips under {args.clips}")
    os.environ.setdefault("FIFTYONE_DO_NOT_TRACK", "true")
    with tempfile.TemporaryDirectory() as folder:
        if not args.skip_timing:
            timing(files, args.rounds, Path(folder))
        if not args.skip_screenshot:
            screenshot(files, args.screenshot, Path(folder))


if __name__ == "__main__":
    main()
