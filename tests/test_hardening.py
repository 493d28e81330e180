"""What an adversarial probe broke (issue 10), each pinned by a test that failed before the fix."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from conftest import moving_square, write_video

fastapi = pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from semantic_moments import SemanticMoments  # noqa: E402
from semantic_moments.collection import build_index  # noqa: E402
from semantic_moments.index import Index  # noqa: E402
from semantic_moments.server import create_app  # noqa: E402


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("hardening")
    videos = root / "videos"
    videos.mkdir()
    for index, direction in enumerate(("right", "down", "right")):
        write_video(videos / f"clip{index}.mp4", moving_square(16, 64, (200, 40 * index, 90), direction))
    with Index.open(root / "idx") as index:
        build_index(index, [videos], SemanticMoments("test-tiny", frames=8))
    return root


@pytest.fixture
def client(served, tmp_path):
    app = create_app(served / "idx", upload_dir=tmp_path / "uploads", max_upload_mb=1, allowed_hosts=("testserver",))
    with TestClient(app) as test_client:
        yield test_client


def first_id(client) -> int:
    return client.get("/api/clips").json()["clips"][0]["id"]


# -- 1. uploads stop at the limit -------------------------------------------------------------------


def test_an_oversized_upload_is_cut_off_while_streaming(client, tmp_path):
    """The body arrives in 1 MB messages, as a server hands it to the app; the app must stop asking
    for more at the limit (a test client would read the whole body itself, so ASGI is driven directly)."""
    import asyncio

    consumed = []
    responses = []
    head = b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="big.mp4"\r\n\r\n'

    async def receive():
        consumed.append(1)
        if len(consumed) > 300:  # 300 MB if the app read it all
            return {"type": "http.request", "body": b"\r\n--xyz--\r\n", "more_body": False}
        return {"type": "http.request", "body": (head if len(consumed) == 1 else b"") + b"\0" * (1 << 20),
                "more_body": True}

    async def send(message):
        responses.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
             "scheme": "http", "path": "/api/uploads", "raw_path": b"/api/uploads", "query_string": b"",
             "root_path": "", "headers": [(b"host", b"127.0.0.1:8000"),
                                          (b"content-type", b"multipart/form-data; boundary=xyz")],
             "client": ("127.0.0.1", 5), "server": ("127.0.0.1", 8000)}
    asyncio.run(client.app(scope, receive, send))
    status = next(message["status"] for message in responses if message["type"] == "http.response.start")
    assert status == 413
    assert len(consumed) <= 3, f"read {len(consumed)} MB of a body over a 1 MB limit"
    assert not any((tmp_path / "uploads").iterdir())


def test_a_declared_oversized_body_is_refused_before_reading(client):
    response = client.post("/api/uploads", content=b"x", headers={"Content-Length": str(300 << 20)})
    assert response.status_code == 413


# -- 2. cross-origin posts, 3. foreign Host headers --------------------------------------------------


def test_cross_origin_state_changes_are_refused(client):
    clip = first_id(client)
    for header in ({"Origin": "http://127.0.0.1:18766"}, {"Origin": "http://evil.example"},
                   {"Referer": "http://evil.example/page"}, {"Origin": "null"}):
        response = client.post("/api/search", json={"query": {"id": clip}}, headers=header)
        assert response.status_code == 403, header
    with open(__file__, "rb") as handle:
        refused = client.post("/api/uploads", files={"file": ("x.mp4", handle, "video/mp4")},
                              headers={"Origin": "http://evil.example"})
    assert refused.status_code == 403
    # the page's own origin, and clients that send none (curl), still work
    assert client.post("/api/search", json={"query": {"id": clip}}, headers={"Origin": "http://testserver"}).status_code == 200
    assert client.post("/api/search", json={"query": {"id": clip}}).status_code == 200


def test_only_the_bound_host_names_are_answered(client):
    assert client.get("/api/clips", headers={"Host": "evil.example"}).status_code == 400
    assert client.get(f"/api/clips/{first_id(client)}/video", headers={"Host": "evil.example:8000"}).status_code == 400
    for host in ("127.0.0.1:8000", "localhost", "[::1]:8000", "testserver"):
        assert client.get("/api/info", headers={"Host": host}).status_code == 200, host


# -- 4. a file swapped for a symlink, or changed since indexing ---------------------------------------


def test_a_file_replaced_by_a_symlink_is_not_served(served, tmp_path):
    copy = tmp_path / "copy"
    copy.mkdir()
    for path in (served / "videos").iterdir():
        (copy / path.name).write_bytes(path.read_bytes())
    with Index.open(tmp_path / "idx") as index:
        build_index(index, [copy], SemanticMoments("test-tiny", frames=8))
    app = create_app(tmp_path / "idx", upload_dir=tmp_path / "uploads", allowed_hosts=("testserver",))
    with TestClient(app) as client:
        clips = client.get("/api/clips").json()["clips"]
        target = copy / clips[0]["name"]
        target.unlink()
        target.symlink_to("/etc/passwd")
        response = client.get(f"/api/clips/{clips[0]['id']}/video")
        assert response.status_code == 410 and b"root:" not in response.content
        assert client.get(f"/api/clips/{clips[0]['id']}/thumbnail").status_code == 410
        changed = copy / clips[1]["name"]
        changed.write_bytes(changed.read_bytes() + b"\0")
        assert client.get(f"/api/clips/{clips[1]['id']}/video").status_code == 410
        assert client.get(f"/api/clips/{clips[2]['id']}/video").status_code == 200


# -- 5. thumbnails decode small ------------------------------------------------------------------------


def test_thumbnails_are_decoded_at_thumbnail_size(client, monkeypatch):
    from semantic_moments.video import VideoReader

    sizes = []
    original = VideoReader.get_frames_at

    def spy(self, indices, size=None):
        sizes.append(size)
        return original(self, indices, size)

    monkeypatch.setattr(VideoReader, "get_frames_at", spy)
    assert client.get(f"/api/clips/{first_id(client)}/thumbnail").status_code == 200
    assert sizes and sizes[0] is not None and max(sizes[0]) <= 320


# -- 6. JSON bodies are capped ---------------------------------------------------------------------


def test_a_huge_json_body_is_refused(client):
    huge = b'{"query": {"id": 1}, "pad": "' + b"x" * (2 << 20) + b'"}'
    response = client.post("/api/search", content=huge, headers={"Content-Type": "application/json"})
    assert response.status_code == 413


# -- 7. odd values give 4xx with a message, never 500 ---------------------------------------------------


@pytest.mark.parametrize("request_args", [
    ("get", "/api/clips/9223372036854775808/video", None),
    ("get", "/api/clips/99999999999999999999999/thumbnail", None),
    ("get", "/api/clips?offset=9223372036854775808", None),
    ("get", "/api/explain?b=9223372036854775808&a=1", None),
    ("post", "/api/search", {"query": {"id": 2**63}}),
])
def test_out_of_range_ids_are_4xx(client, request_args):
    method, url, body = request_args
    response = getattr(client, method)(url, **({"json": body} if body else {}))
    assert 400 <= response.status_code < 500 and response.json()["detail"]


def test_non_finite_numbers_are_4xx(client):
    clip = first_id(client)
    for text in ('{"query": {"id": %d}, "motion": NaN}' % clip, '{"query": {"id": %d}, "motion": Infinity}' % clip,
                 '{"query": {"id": %d}, "alpha": [NaN, 1, 1]}' % clip):
        response = client.post("/api/search", content=text, headers={"Content-Type": "application/json"})
        assert response.status_code == 422 and response.json()["detail"], text


# -- 20/21. serve options are checked before anything is created ----------------------------------------


@pytest.mark.parametrize("options, message", [
    (["--max-upload-mb", "nan"], "--max-upload-mb"), (["--max-upload-mb", "-1"], "--max-upload-mb"),
    (["--max-upload-mb", "0"], "--max-upload-mb"), (["--port", "99999"], "--port"), (["--port", "x"], "--port"),
])
def test_bad_serve_options_are_one_line_errors(served, tmp_path, capsys, options, message):
    from semantic_moments.cli import main

    uploads = tmp_path / "uploads"
    with pytest.raises(SystemExit) as exit_info:
        main(["serve", "--index", str(served / "idx"), "--upload-dir", str(uploads), *options])
    assert exit_info.value.code == 2 and message in capsys.readouterr().err
    assert not uploads.exists()


def test_a_refused_upload_dir_or_busy_port_leaves_nothing_behind(served, tmp_path, capsys):
    import socket

    from semantic_moments.cli import main

    inside = served / "videos" / "uploads-here"
    assert main(["serve", "--index", str(served / "idx"), "--upload-dir", str(inside)]) == 2
    assert "must not go inside an indexed folder" in capsys.readouterr().err and not inside.exists()
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        uploads = tmp_path / "uploads"
        assert main(["serve", "--index", str(served / "idx"), "--port", str(port), "--upload-dir", str(uploads)]) == 2
    err = capsys.readouterr().err
    assert "cannot serve on 127.0.0.1" in err and "serving" not in err and not uploads.exists()
