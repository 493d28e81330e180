"""Shared fixtures: real video files written with PyAV, and backbones loaded once per session."""

from __future__ import annotations

import os
from contextlib import contextmanager
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared"


def on_ci() -> bool:
    return os.environ.get("CI") == "true"


def need(module: str):
    """The optional module, imported; a skip without it, except under CI=true, where `make setup`
    installs the dev extra and a missing module is a failure."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        if on_ci():
            pytest.fail(f"CI must have {module} (make setup installs the dev extra)")
        pytest.skip(f"needs {module}")


def need_data(path: Path, what: str = "") -> Path:
    """``path`` (shared data); a skip where it is missing, except under CI=true (CI has ../shared)."""
    if not path.exists():
        message = f"no {what or path} (../shared/data, beside the project)"
        if on_ci():
            pytest.fail(f"{message}: CI=true must have it")
        pytest.skip(message)
    return path


def write_video(
    path: Path,
    frames: np.ndarray,
    fps: float = 16,
    codec: str = "libx264",
    rotation: int | None = None,
    pts: list[int] | None = None,
    time_base: Fraction | None = None,
    gop: int | None = None,
) -> Path:
    """Encode (T, H, W, 3) uint8 frames into a real file. ``pts`` (in ``time_base`` units) makes a
    variable-frame-rate file; ``rotation`` writes display-matrix rotation metadata."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=Fraction(fps).limit_denominator(1000))
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p" if codec != "mjpeg" else "yuvj420p"
        if codec == "libx264":
            stream.options = {"crf": "12", "preset": "ultrafast", **({"g": str(gop)} if gop else {})}
        if time_base is not None:
            stream.codec_context.time_base = time_base
            stream.time_base = time_base
        if rotation is not None:
            stream.set_display_rotation(rotation)
        for index, frame in enumerate(frames):
            video_frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
            if pts is not None:
                video_frame.pts = pts[index]
                video_frame.time_base = time_base
            for packet in stream.encode(video_frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def numbered_frames(count: int, height: int = 48, width: int = 64) -> np.ndarray:
    """Frames that encode their index in brightness, robust to lossy coding: the left half holds
    index % 16, the right half index // 16 (up to 256 frames)."""
    frames = np.empty((count, height, width, 3), dtype=np.uint8)
    for index in range(count):
        frames[index, :, : width // 2] = (index % 16) * 16 + 8
        frames[index, :, width // 2 :] = (index // 16) * 16 + 8
    return frames


def decoded_index(frame: np.ndarray) -> int:
    width = frame.shape[1]
    low = frame[:, 2 : width // 2 - 2].mean()
    high = frame[:, width // 2 + 2 : -2].mean()
    return int(round((high - 8) / 16)) * 16 + int(round((low - 8) / 16))


def moving_square(count: int, size: int, colour, direction: str, background: int = 40) -> np.ndarray:
    """A square moving ``right``/``down``/``spin-ish`` over a flat background."""
    frames = np.full((count, size, size, 3), background, dtype=np.uint8)
    side = size // 5
    for t in range(count):
        step = int(t * (size - side - 4) / max(count - 1, 1))
        y, x = (size // 3, 2 + step) if direction == "right" else (2 + step, size // 3)
        frames[t, y:y + side, x:x + side] = colour
    return frames


@pytest.fixture(scope="session")
def tiny_model():
    from semantic_moments import SemanticMoments

    return SemanticMoments("test-tiny", frames=8)


@pytest.fixture(scope="session")
def default_model():
    """The default backbone (EfficientNet-Lite0, real ImageNet weights), loaded once."""
    from semantic_moments import SemanticMoments

    return SemanticMoments(frames=16)


@pytest.fixture(scope="session")
def paper_model():
    """The paper's method (moments only, Lite0 blocks.10) at T = 16."""
    from semantic_moments import SemanticMoments

    return SemanticMoments(preset="paper", frames=16)


@pytest.fixture
def videos(tmp_path: Path) -> Path:
    """A folder of real files: good clips and every kind of bad input the issue names."""
    import av

    good = moving_square(24, 64, (230, 60, 40), "right")
    write_video(tmp_path / "good.mp4", good)
    write_video(tmp_path / "also good.mp4", moving_square(24, 64, (40, 200, 90), "down"))
    (tmp_path / "text.mp4").write_text("this is not a video\n")
    (tmp_path / "empty.mp4").write_bytes(b"")
    data = (tmp_path / "good.mp4").read_bytes()
    (tmp_path / "truncated.mp4").write_bytes(data[: len(data) // 3])
    write_video(tmp_path / "one_frame.mp4", good[:1])
    with av.open(str(tmp_path / "audio_only.m4a"), "w") as container:
        stream = container.add_stream("aac", rate=16000)
        samples = (np.sin(np.arange(16000) / 10.0) * 0.2).astype(np.float32)[None, :]
        frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
        frame.sample_rate = 16000
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return tmp_path


def gpu_required() -> bool:
    return os.environ.get("SEMANTIC_MOMENTS_REQUIRE_GPU") == "1"


def pytest_runtest_setup(item):
    """GPU tests skip without CUDA, unless SEMANTIC_MOMENTS_REQUIRE_GPU=1 makes that a failure, so a GPU
    run cannot pass by skipping everything."""
    if "gpu" not in item.keywords:
        return
    import torch

    if not torch.cuda.is_available():
        if gpu_required():
            pytest.fail("SEMANTIC_MOMENTS_REQUIRE_GPU=1 but CUDA is not available")
        pytest.skip("no CUDA (set SEMANTIC_MOMENTS_REQUIRE_GPU=1 to fail instead)")


@contextmanager
def served_page(app, width: int = 1280, height: int = 900):
    """(page, base URL) of ``app`` served by uvicorn in a thread and opened in headless Chromium.
    Skips without Chromium or Playwright; on CI (CI=true) a missing Chromium is a failure."""
    import shutil

    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(chromium).exists():
        if os.environ.get("CI") == "true":
            pytest.fail("CI needs Chromium for the browser test: `make setup` installs Debian's chromium as root")
        pytest.skip("no Chromium (make setup installs it as root)")
    playwright = need("playwright.sync_api")
    with served_app(app) as base:
        with playwright.sync_playwright() as driver:
            browser = driver.chromium.launch(executable_path=chromium, args=[
                "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync"])
            try:
                yield browser.new_page(viewport={"width": width, "height": height}), base
            finally:
                browser.close()


@contextmanager
def served_app(app, **config):
    """The base URL of ``app`` served by uvicorn in a thread on a free port of 127.0.0.1, with the
    serve command's protocol (``server/protocol.py``); ``config`` goes to ``uvicorn.Config``."""
    import socket
    import threading
    import time

    import uvicorn

    from semantic_moments.server.protocol import HeaderDeadline

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", http=HeaderDeadline,
                                           **config))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(200):
        if server.started:
            break
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@contextmanager
def api_client(index_path: Path, upload_dir: Path, **options):
    """A TestClient over ``create_app(index_path, upload_dir=...)`` that answers the client's Host
    ("testserver"), with the app's start-up and shutdown run; ``options`` go to ``create_app``."""
    need("fastapi")
    from fastapi.testclient import TestClient

    from semantic_moments.server import create_app

    with TestClient(create_app(index_path, upload_dir=upload_dir, allowed_hosts=("testserver",), **options)) as client:
        yield client
