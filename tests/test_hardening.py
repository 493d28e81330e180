"""What an adversarial probe broke (issue 10), each pinned by a test that failed before the fix."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pytest
from conftest import api_client, moving_square, need, write_video

from semantic_moments import SemanticMoments
from semantic_moments.collection import build_index
from semantic_moments.index import Index


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    need("fastapi")  # only the server's tests need it: the others run without
    root = tmp_path_factory.mktemp("hardening")
    videos = root / "videos"
    videos.mkdir()
    for index, direction in enumerate(("right", "down", "right")):
        write_video(videos / f"clip{index}.mp4", moving_square(16, 64, (200, 40 * index, 90), direction))
    with Index.open(root / "idx", create=True) as index:
        build_index(index, [videos], SemanticMoments("test-tiny", frames=8))
    return root


@pytest.fixture
def client(served, tmp_path):
    with api_client(served / "idx", tmp_path / "uploads", max_upload_mb=1) as test_client:
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
    assert not any(path.is_file() for path in (tmp_path / "uploads").rglob("*"))


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
    # another port of the same address is another origin (the probe's page was on 127.0.0.1:18766)
    local = {"Host": "127.0.0.1:8000"}
    refused = client.post("/api/search", json={"query": {"id": clip}}, headers={**local, "Origin": "http://127.0.0.1:18766"})
    assert refused.status_code == 403
    assert client.post("/api/search", json={"query": {"id": clip}},
                       headers={**local, "Origin": "http://127.0.0.1:8000"}).status_code == 200
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
    with Index.open(tmp_path / "idx", create=True) as index:
        build_index(index, [copy], SemanticMoments("test-tiny", frames=8))
    with api_client(tmp_path / "idx", tmp_path / "uploads") as client:
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


# -- index ------------------------------------------------------------------------------------------------


@pytest.fixture
def two_folders(tmp_path):
    folders = []
    for name, colour in (("a", (200, 40, 40)), ("b", (40, 200, 40))):
        folder = tmp_path / name
        folder.mkdir()
        write_video(folder / f"{name}1.mp4", moving_square(12, 64, colour, "right"))
        write_video(folder / f"{name}2.avi", moving_square(12, 64, colour, "down"), codec="mpeg4")
        folders.append(folder)
    return folders


@pytest.fixture(scope="module")
def tiny():
    return SemanticMoments("test-tiny", frames=8)


def test_prune_never_deletes_clips_of_folders_not_scanned_or_globbed_out(tmp_path, two_folders, tiny):
    a, b = two_folders
    with Index.open(tmp_path / "idx", create=True) as index:
        build_index(index, [a, b], tiny)
        assert len(index) == 4
        summary = build_index(index, [a], tiny, prune=True)  # b was not scanned: its clips stay
        assert summary.removed == [] and len(index) == 4
        summary = build_index(index, [a, b], tiny, glob="*.mp4", prune=True)  # the .avi files were globbed out
        assert summary.removed == [] and len(index) == 4
        (a / "a1.mp4").unlink()  # really gone: pruned
        summary = build_index(index, [a, b], tiny, prune=True)
        assert summary.removed == [str((a / "a1.mp4").resolve())] and len(index) == 3


def test_disk_full_is_one_line_and_the_index_stays_valid(tmp_path, two_folders, tiny, monkeypatch):
    import sqlite3

    with Index.open(tmp_path / "idx", create=True) as index:
        build_index(index, [two_folders[0]], tiny)
        original = Index._insert

        def full(self, *args, **kwargs):
            raise sqlite3.OperationalError("database or disk is full")

        monkeypatch.setattr(Index, "_insert", full)
        with pytest.raises(Exception) as error_info:
            build_index(index, [two_folders[1]], tiny)
        message = str(error_info.value)
        assert "database or disk is full" in message and "\n" not in message
        assert "rollback" not in message
        monkeypatch.setattr(Index, "_insert", original)
        assert len(index) == 2 and index.check() == []
        summary = build_index(index, two_folders, tiny)  # the next run resumes
        assert len(summary.added) == 2 and len(index) == 4


def test_huge_k_is_clamped_or_refused(tmp_path, two_folders, tiny, capsys):
    from semantic_moments.cli import main

    with Index.open(tmp_path / "idx", create=True) as index:
        build_index(index, two_folders, tiny)
        assert len(index.search(1, k=100_000_000)) == 3
        with pytest.raises(Exception, match="whole number"):
            index.search(1, k=3e9)
    with pytest.raises(SystemExit):
        main(["search", "1", "--index", str(tmp_path / "idx"), "-k", "3e9"])
    assert "-k" in capsys.readouterr().err
    assert main(["search", "1", "--index", str(tmp_path / "idx"), "-k", "100000", "--json"]) == 0


def _corrupt(database, sql, *parameters):
    import sqlite3

    with sqlite3.connect(database) as connection:
        connection.execute(sql, parameters)


@pytest.mark.parametrize("damage, expected", [
    ("UPDATE clips SET parts = X'00010203' WHERE id = 1", "clip 1 has a row of 4 bytes"),
    ("UPDATE clips SET parts = ? WHERE id = 2", "clip 2 has NaN or infinite values"),
    ("UPDATE settings SET value = '{not json' WHERE key = 'config'", "setting 'config' is unreadable"),
    ("UPDATE settings SET value = '\"a string\"' WHERE key = 'config'", "setting 'config' is invalid"),
])
def test_damage_inside_the_index_is_reported_not_a_traceback(tmp_path, two_folders, tiny, capsys, damage, expected):
    from semantic_moments.cli import main

    with Index.open(tmp_path / "idx", create=True) as index:
        build_index(index, two_folders, tiny)
        width = sum(size for _, size in index.parts)
    parameters = (np.full(width, np.nan, dtype=np.float32).tobytes(),) if "?" in damage else ()
    _corrupt(tmp_path / "idx" / "index.sqlite", damage, *parameters)
    assert main(["search", "3", "--index", str(tmp_path / "idx")]) == 1  # damage: 1, never 2 (a usage error)
    err = capsys.readouterr().err
    assert "is damaged" in err and expected in err and "Traceback" not in err
    assert main(["index", "check", "--index", str(tmp_path / "idx")]) == 1
    assert expected in capsys.readouterr().err
    if "clips" in damage:
        assert main(["index", "repair", "--index", str(tmp_path / "idx")]) == 0
        assert "removed 1 damaged clip" in capsys.readouterr().err
        assert main(["index", "build", str(two_folders[0]), str(two_folders[1]), "--index", str(tmp_path / "idx"),
                     "--quiet"]) == 0
        assert main(["index", "check", "--index", str(tmp_path / "idx")]) == 0


def test_an_empty_index_file_is_not_silently_replaced(tmp_path):
    from semantic_moments.errors import IndexStoreError

    (tmp_path / "idx").mkdir()
    (tmp_path / "idx" / "index.sqlite").write_bytes(b"")
    with pytest.raises(IndexStoreError, match="empty \\(0 bytes\\)"):
        Index.open(tmp_path / "idx", create=True)
    assert (tmp_path / "idx" / "index.sqlite").stat().st_size == 0




def test_a_read_only_index_searches_and_refuses_to_build(tmp_path, two_folders, tiny, capsys, monkeypatch):
    from semantic_moments.cli import main

    with Index.open(tmp_path / "idx", create=True) as index:
        build_index(index, two_folders, tiny)
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode, **kw: False if mode == os.W_OK and "idx" in str(path)
                        else real_access(path, mode, **kw))
    assert main(["search", "1", "--index", str(tmp_path / "idx"), "--json"]) == 0
    capsys.readouterr()
    assert main(["index", "build", str(two_folders[0]), "--index", str(tmp_path / "idx"), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "read-only" in err and "Traceback" not in err


def test_a_file_vanishing_during_the_build_is_one_failure(tmp_path, two_folders, tiny, monkeypatch):
    import semantic_moments.collection as collection

    real = collection.find_videos

    def then_vanish(*args, **kwargs):
        found = real(*args, **kwargs)
        found[0].unlink()  # gone between the scan and the stat
        return found

    monkeypatch.setattr(collection, "find_videos", then_vanish)
    with Index.open(tmp_path / "idx", create=True) as index:
        summary = build_index(index, two_folders, tiny)
    assert len(summary.failed) == 1 and len(summary.added) == 3


def test_a_second_build_says_another_is_running(tmp_path, two_folders, tiny):
    import fcntl

    from semantic_moments.errors import IndexStoreError

    with Index.open(tmp_path / "idx", create=True) as index:
        build_index(index, [two_folders[0]], tiny)
        with open(tmp_path / "idx" / ".build.lock", "a+") as held:
            fcntl.flock(held, fcntl.LOCK_EX)
            with pytest.raises(IndexStoreError, match="another build is running"):
                build_index(index, two_folders, tiny)
            assert len(index.search(1, k=2)) == 1  # searches take no lock
        assert len(build_index(index, two_folders, tiny).added) == 2


def test_unreadable_folders_broken_links_and_loops_are_reported(tmp_path, two_folders, tiny):
    root = two_folders[0]
    (root / "broken.mp4").symlink_to(tmp_path / "nowhere.mp4")
    (root / "loop").symlink_to(root)
    with Index.open(tmp_path / "idx", create=True) as index:
        summary = build_index(index, [root], tiny)
    assert len(summary.added) == 2
    reasons = {Path(path).name: reason for path, reason in summary.skipped.items()}
    assert reasons["broken.mp4"] == "broken link"
    assert any("loop" in reason for reason in reasons.values())


# -- inputs ----------------------------------------------------------------------------------------------


def test_mpeg2_in_mpeg_ts_reads_every_sampled_frame_exactly(tmp_path):
    """Its timestamps start at an offset and timestamp seeks land a GOP late (asked 3600, got 46800)."""
    import av

    from semantic_moments.video import VideoReader, read_clip

    path = tmp_path / "clip.ts"
    frames = moving_square(90, 96, (200, 50, 50), "right")
    with av.open(str(path), "w", format="mpegts") as container:
        stream = container.add_stream("mpeg2video", rate=25)
        stream.width = stream.height = 96
        stream.pix_fmt = "yuv420p"
        stream.options = {"g": "12"}
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    with VideoReader(path) as reader:
        everything = [frame.to_ndarray(format="rgb24") for _, frame in reader._iter_decoded()]
    for wanted in ([0], [45], [5, 16, 28, 39, 89], [89, 0]):
        with VideoReader(path) as reader:
            got = reader.get_frames_at(wanted)
        assert all(np.array_equal(frame, everything[index]) for frame, index in zip(got, wanted)), wanted
    clip = read_clip(path, 8, (64, 64))
    assert len(clip.frames) == 8


@pytest.mark.parametrize("alpha", [(1e200, 8, 4), (1e-300, 0, 0), (1e-300, 1e-300, 1e-300)])
def test_extreme_alpha_only_its_ratios_matter(tmp_path, two_folders, alpha):
    with Index.open(tmp_path / "idx", create=True) as index:  # alpha the only weight: no keypoints
        build_index(index, two_folders, SemanticMoments("test-tiny", frames=8, keypoints=()))
        hits = index.search(1, k=3, alpha=alpha, flow_weight=0)
        scale = max(alpha)
        same = index.search(1, k=3, alpha=tuple(weight / scale for weight in alpha), flow_weight=0)
    assert [hit.id for hit in hits] == [hit.id for hit in same]
    assert all(np.isfinite(hit.score) and hit.score != 0.0 for hit in hits)
    np.testing.assert_allclose([hit.score for hit in hits], [hit.score for hit in same], atol=1e-6)


def _crafted(path, header=None, tensors=None):
    import json

    from safetensors.numpy import save_file

    base = {"moment.1": np.ones(4, np.float32), "moment.2": np.ones(4, np.float32),
            "pts_seconds": np.zeros(2), "frame_indices": np.zeros(2, np.int64)}
    meta = {"config": {"orders": [1, 2], "alpha": [1, 8]}, "backbone": {"name": "x"}, "source": "s", "content_hash": "",
            "segment": None, "duration_seconds": 1.0, "fps": 1.0, "num_source_frames": 2}
    save_file({**base, **(tensors or {})}, str(path), metadata={
        "format": "semantic-moments/embedding", "format_version": "1",
        "header": json.dumps(meta if header is None else header(meta))})
    return path


@pytest.mark.parametrize("header, tensors, expected", [
    (lambda meta: [meta], None, "not an object"),
    (lambda meta: {**meta, "config": "reference"}, None, "'config' is not an object"),
    (lambda meta: {**meta, "config": {"orders": [1, 2], "alpha": [1, 8], "num_frames": "many"}}, None, "malformed"),
    (None, {"moment.2": np.ones(3, np.float32)}, "one non-empty length"),
    (None, {"moment.2": np.array([1, np.nan, 1, 1], np.float32)}, "moment.2 is not a finite vector"),
    (None, {"flow.2": np.array([np.inf], np.float32)}, "flow.2 is not a finite vector"),
])
def test_crafted_embedding_files_are_refused_on_load(tmp_path, header, tensors, expected):
    from semantic_moments import Embedding
    from semantic_moments.errors import EmbeddingFileError

    path = _crafted(tmp_path / "x.moments.safetensors", header, tensors)
    with pytest.raises(EmbeddingFileError, match=expected):
        Embedding.load(path)


def test_orders_out_of_range_is_a_message(capsys):
    from semantic_moments.cli import main

    assert main(["embed", "x.mp4", "-o", "out", "--orders", "5"]) == 2
    assert "orders must be a non-empty subset" in capsys.readouterr().err


def test_error_messages_stay_one_line_and_files_follow_the_umask(tmp_path, capsys, tiny):
    from semantic_moments.cli import main

    odd = tmp_path / "two\nlines.mp4"
    odd.write_text("not a video")
    main(["embed", str(odd), "-o", str(tmp_path / "out"), "--backbone", "test-tiny", "--frames", "8", "--quiet"])
    err = capsys.readouterr().err
    assert "two\\nlines.mp4" in err and not any(line.startswith("lines.mp4") for line in err.splitlines())
    previous = os.umask(0o022)
    try:
        written = tiny.embed(moving_square(8, 64, (1, 2, 3), "right")).save(tmp_path / "e.moments.safetensors")
    finally:
        os.umask(previous)
    assert written.stat().st_mode & 0o777 == 0o644


def test_a_tiny_segment_names_its_own_frame_count(tmp_path, tiny):
    from semantic_moments.errors import VideoError

    path = write_video(tmp_path / "clip.mp4", moving_square(40, 64, (200, 10, 10), "right"))
    with pytest.raises(VideoError, match="the segment 0-0.001 s holds 1 decodable frame"):
        tiny.embed(path, segment=(0, 0.001))


def test_search_for_an_id_not_in_the_index_says_so(tmp_path, two_folders, tiny, capsys):
    from semantic_moments.cli import main

    with Index.open(tmp_path / "idx", create=True) as index:
        build_index(index, two_folders, tiny)
    assert main(["search", "99999", "--index", str(tmp_path / "idx")]) == 1
    assert "no clip with id 99999" in capsys.readouterr().err


def test_page_level_corruption_is_reported_not_a_traceback(tmp_path, two_folders, tiny, capsys):
    from semantic_moments.cli import main

    with Index.open(tmp_path / "idx", create=True) as index:
        build_index(index, two_folders, tiny)
    database = tmp_path / "idx" / "index.sqlite"
    data = bytearray(database.read_bytes())
    for offset in range(4096, len(data), 4096):  # scribble over every page but the header page
        data[offset + 8:offset + 64] = b"\xff" * 56
    database.write_bytes(bytes(data))
    for wal in tmp_path.glob("idx/index.sqlite-*"):
        wal.unlink()
    assert main(["search", "1", "--index", str(tmp_path / "idx")]) == 1
    err = capsys.readouterr().err
    assert "is damaged: database disk image is malformed" in err and "Traceback" not in err
    # check reads every page: it lists the damage, or (where the schema's own pages are hit) says so as search does
    assert main(["index", "check", "--index", str(tmp_path / "idx")]) == 1
    err = capsys.readouterr().err
    assert (re.search(r"idx: \d+ problem\(s\)$", err.strip()) or "is damaged: database disk image" in err) \
        and "Traceback" not in err


def test_a_clip_indexed_through_a_link_is_served_and_a_swapped_link_is_not(served, tmp_path):
    copy = tmp_path / "real"
    copy.mkdir()
    for path in (served / "videos").iterdir():
        (copy / path.name).write_bytes(path.read_bytes())
    link = tmp_path / "linked"
    link.symlink_to(copy)
    with Index.open(tmp_path / "idx", create=True) as index:
        build_index(index, [link], SemanticMoments("test-tiny", frames=8))
    with api_client(tmp_path / "idx", tmp_path / "uploads") as client:
        clips = client.get("/api/clips").json()["clips"]
        assert client.get(f"/api/clips/{clips[0]['id']}/video").status_code == 200  # links the user made are fine
        link.unlink()
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        for path in copy.iterdir():
            (elsewhere / path.name).symlink_to("/etc/passwd")
        link.symlink_to(elsewhere)  # the same paths now lead somewhere else
        response = client.get(f"/api/clips/{clips[0]['id']}/video")
        assert response.status_code == 410 and b"root:" not in response.content


def test_a_new_index_file_appears_whole_or_not_at_all(tmp_path, monkeypatch):
    import sqlite3

    from semantic_moments.index import store as index_module

    real_connect = sqlite3.connect

    def dies_after_creating_the_file(database, *args, **kwargs):
        real_connect(database, *args, **kwargs).close()  # the file exists, no schema yet
        raise KeyboardInterrupt  # killed here

    monkeypatch.setattr(index_module.sqlite3, "connect", dies_after_creating_the_file)
    with pytest.raises(KeyboardInterrupt):
        Index.open(tmp_path / "idx", create=True)
    monkeypatch.setattr(index_module.sqlite3, "connect", real_connect)
    assert not (tmp_path / "idx" / "index.sqlite").exists()  # no 0-byte file to be refused later
    with Index.open(tmp_path / "idx", create=True) as index:
        assert len(index) == 0
    assert sorted(p.name for p in (tmp_path / "idx").iterdir() if p.name.startswith(".index")) == []


# -- Parquet ingest: bad rows are skipped one by one, and only rows a local build could write get in --------


def _parquet_rows(tmp_path, tiny):
    import dataclasses

    clip = write_video(tmp_path / "clip.mp4", moving_square(12, 64, (200, 40, 40), "right"))
    good = tiny.embed(clip)
    data = good.to_bytes()
    base = {"path": str(clip), "size_bytes": 10, "mtime": 1.0, "embedding": data}
    goods = [{**base, "path": str(tmp_path / f"good{i}.mp4")} for i in range(6)]
    forged = {
        "relative path": {**base, "path": "../../../../etc/passwd"},
        "NUL in the path": {**base, "path": str(tmp_path / "a\x00b.mp4")},
        "5 MB path": {**base, "path": "/" + "x" * 5_000_000},
        "NaN mtime": {**base, "mtime": float("nan")},
        "NaN duration": {**base, "embedding": dataclasses.replace(good, duration_seconds=float("nan")).to_bytes()},
        "negative duration": {**base, "embedding": dataclasses.replace(good, duration_seconds=-5.0).to_bytes()},
        "3e38 moment": {**base, "embedding": dataclasses.replace(
            good, moments={**good.moments, 1: np.full_like(good.moments[1], 3e38)}).to_bytes()},
        "huge motion map": {**base, "embedding": dataclasses.replace(
            good, motion_map=np.zeros((3000, 3000), np.float32)).to_bytes()},
        "NaN time": {**base, "embedding": dataclasses.replace(
            good, pts_seconds=np.full_like(good.pts_seconds, np.nan)).to_bytes()},
    }
    return goods, forged


def test_ingest_skips_each_bad_row_and_keeps_the_good_ones(tmp_path, tiny, capsys):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from semantic_moments.cli import main

    goods, forged = _parquet_rows(tmp_path, tiny)
    shards = tmp_path / "shards"
    shards.mkdir()
    for name, row in forged.items():
        folder = tmp_path / name.replace(" ", "_")
        folder.mkdir()
        table = pa.Table.from_pylist(goods + [row])
        pq.write_table(table, folder / "part.parquet")
        assert main(["index", "ingest", str(folder), "--index", str(folder / "idx"), "--quiet"]) == 0, name
        err = capsys.readouterr().err
        assert "6 ingested" in err and "1 failed" in err, (name, err)
        with Index.open(folder / "idx") as index:
            assert len(index) == 6 and index.check() == [], name
    # a column of the wrong type (sizes as text): every row refused, in one line each, no traceback
    folder = tmp_path / "text_sizes"
    folder.mkdir()
    pq.write_table(pa.Table.from_pylist([{**row, "size_bytes": str(row["size_bytes"])} for row in goods]),
                   folder / "part.parquet")
    assert main(["index", "ingest", str(folder), "--index", str(folder / "idx"), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "0 ingested" in err and "6 failed" in err and "size_bytes '10'" in err and "Traceback" not in err
    # a stray file and a damaged shard beside a good one: each reported, the good shard ingested
    pq.write_table(pa.Table.from_pylist(goods), shards / "good.parquet")
    (shards / "notes.txt").write_text("not parquet")
    (shards / "damaged.parquet").write_bytes((shards / "good.parquet").read_bytes()[:200])
    assert main(["index", "ingest", str(shards), "--index", str(tmp_path / "idx"), "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "6 ingested" in err and "2 failed" in err and "Traceback" not in err


def test_check_reports_rows_no_local_build_writes(tmp_path, tiny):
    clip = write_video(tmp_path / "clip.mp4", moving_square(12, 64, (200, 40, 40), "right"))
    with Index.open(tmp_path / "idx", create=True) as index:
        index.add(tiny.embed(clip), path=str(clip))
        index.add(tiny.embed(clip), path=str(tmp_path / "other.mp4"))
        assert index.check() == []
        index.store.execute("UPDATE clips SET path = '../../etc/passwd' WHERE path = ?", (str(clip),))
        index.store.execute("UPDATE clips SET duration_seconds = -5 WHERE path = ?", (str(tmp_path / "other.mp4"),))
        problems = index.check()
        assert len(problems) == 2 and "not absolute" in problems[0] and "duration" in problems[1]
        assert sorted(index.repair()) == sorted(["../../etc/passwd", str(tmp_path / "other.mp4")])
        assert index.check() == [] and len(index) == 0


# -- slow work, slow clients, uploads that outlive the server ----------------------------------------


def _raw_request(base: str, head: bytes, body_parts=(), pause: float = 0.0, read_for: float = 3.0) -> bytes:
    """What the server answers on a raw socket (``head``, then ``body_parts`` ``pause`` s apart), and
    b"" once it closes: everything until the server closes or ``read_for`` s pass."""
    import socket
    import time

    host, port = base.rsplit("//", 1)[1].split(":")
    with socket.create_connection((host, int(port)), timeout=read_for) as sock:
        sock.sendall(head)
        for part in body_parts:
            time.sleep(pause)
            try:
                sock.sendall(part)
            except OSError:
                break
        answer = b""
        deadline = time.monotonic() + read_for
        while time.monotonic() < deadline:
            try:
                data = sock.recv(65536)
            except (TimeoutError, OSError):
                break
            if not data:
                return answer + b"<closed>"
            answer += data
        return answer


def test_slow_previews_are_queued_503_beyond_and_the_api_keeps_answering(served, tmp_path, monkeypatch):
    import threading
    import time

    import httpx

    from conftest import served_app
    from semantic_moments.server import create_app, previews

    started, stopped = [], []

    def slow_transcode(source, target, cancelled):
        started.append(source)
        for _ in range(100):  # 5 s unless its client leaves
            if cancelled():
                stopped.append(source)
                raise previews.Cancelled("gone")
            time.sleep(0.05)
        target.write_bytes(source.read_bytes())

    monkeypatch.setattr(previews, "playable", lambda path: False)
    monkeypatch.setattr(previews, "_transcode", slow_transcode)
    app = create_app(served / "idx", upload_dir=tmp_path / "uploads")
    with served_app(app) as base:
        clip = httpx.get(f"{base}/api/clips").json()["clips"][0]["id"]
        answers: list[int] = []

        def ask(timeout):
            try:
                answers.append(httpx.get(f"{base}/api/clips/{clip}/video", timeout=timeout).status_code)
            except httpx.TimeoutException:
                answers.append(0)  # the client left

        threads = [threading.Thread(target=ask, args=(0.5,)) for _ in range(20)]
        for thread in threads:
            thread.start()
        time.sleep(0.2)
        began = time.monotonic()
        assert httpx.get(f"{base}/api/info", timeout=2).status_code == 200  # not stuck behind the queue
        assert time.monotonic() - began < 1.0
        for thread in threads:
            thread.join()
        assert answers.count(503) >= 20 - 1 - 8  # one running, eight waiting, the rest refused at once
        for _ in range(60):  # the clients left: the running transcode stops at its next check
            if stopped:
                break
            time.sleep(0.1)
        assert stopped and len(started) <= 9
        response = httpx.get(f"{base}/api/clips/{clip}/video", timeout=10)  # the queue is free again
        assert response.status_code == 200


def test_a_full_queue_says_when_to_retry(served, tmp_path, monkeypatch):
    import asyncio

    from semantic_moments.server.work import WorkQueue

    queue = WorkQueue("test", running=1, waiting=0)

    async def scenario():
        first = asyncio.create_task(queue.run(None, lambda cancelled: __import__("time").sleep(0.3) or 1))
        await asyncio.sleep(0.05)
        with pytest.raises(Exception) as refused:
            await queue.run(None, lambda cancelled: 2)
        return await first, refused.value

    result, refused = asyncio.run(scenario())
    assert result == 1 and refused.status_code == 503 and refused.headers["Retry-After"]


def test_slow_clients_are_cut_off_and_a_refused_body_closes_the_connection(served, tmp_path, monkeypatch):
    from conftest import served_app
    from semantic_moments.server import create_app
    from semantic_moments.server.protocol import HeaderDeadline

    monkeypatch.setattr(HeaderDeadline, "header_seconds", 0.5)
    app = create_app(served / "idx", upload_dir=tmp_path / "uploads", max_upload_mb=1, body_idle_seconds=0.5)
    with served_app(app) as base:
        # headers that never finish: closed at the deadline, without an answer
        assert _raw_request(base, b"GET /api/info HTTP/1.1\r\nHost: 127.0.0.1\r\n", read_for=3) == b"<closed>"
        # a body that stops: 408 and closed
        answer = _raw_request(base, b"POST /api/search HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                                    b"Content-Length: 100\r\n\r\n{\"query\"", read_for=3)
        assert answer.startswith(b"HTTP/1.1 408") and b"connection: close" in answer.lower() and answer.endswith(b"<closed>")
        # an upload over the limit: 413 and closed, the rest of the body is not read
        head = (b"POST /api/uploads HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n"
                b"Content-Type: multipart/form-data; boundary=xyz\r\n\r\n")
        part = b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="big.mp4"\r\n\r\n'
        chunks = [b"%x\r\n%s\r\n" % (len(data), data) for data in [part] + [b"\0" * (1 << 16)] * 64]
        answer = _raw_request(base, head, chunks, pause=0.0, read_for=5)  # 4 MB sent, 1 MB allowed
        assert answer.startswith(b"HTTP/1.1 413") and b"connection: close" in answer.lower() and answer.endswith(b"<closed>")


def test_uploads_live_only_as_long_as_the_server_even_in_an_explicit_folder(served, tmp_path):
    folder = tmp_path / "uploads"
    (folder / "semantic-moments-uploads").mkdir(parents=True)
    (folder / "semantic-moments-uploads" / "leftover.mp4").write_bytes(b"from a server that was killed")
    (folder / "mine.txt").write_text("the user's own file")
    clip = write_video(tmp_path / "q.mp4", moving_square(12, 64, (250, 250, 250), "right"))
    with api_client(served / "idx", folder) as client:
        assert not (folder / "semantic-moments-uploads" / "leftover.mp4").exists()  # a restart clears its own
        with open(clip, "rb") as handle:
            assert client.post("/api/uploads", files={"file": ("q.mp4", handle, "video/mp4")}).status_code == 200
        assert len([p for p in folder.rglob("*.mp4")]) == 1
    assert [p.name for p in folder.rglob("*") if p.is_file()] == ["mine.txt"]  # ours gone, the user's kept


def test_timeline_needs_both_ends_of_a_segment(client):
    clip = first_id(client)
    for params in ({"a": clip, "b": clip, "start": 1.0}, {"a": clip, "b": clip, "end": 2.0}):
        response = client.get("/api/timeline", params=params)
        assert response.status_code == 422 and "both start and end" in response.json()["detail"]


def test_thumbnails_of_files_that_exist_are_never_410(tmp_path):
    import time

    from test_video import packed_b_frames_avi

    folder = tmp_path / "videos"
    folder.mkdir()
    packed_b_frames_avi(folder / "packed.avi")
    write_video(folder / "a.mp4", moving_square(16, 64, (200, 40, 90), "right"))
    write_video(folder / "b.mp4", moving_square(16, 64, (20, 240, 90), "down"))
    with Index.open(tmp_path / "idx", create=True) as index:
        build_index(index, [folder], SemanticMoments("test-tiny", frames=8))
    with api_client(tmp_path / "idx", tmp_path / "uploads") as client:
        ids = {clip["name"]: clip["id"] for clip in client.get("/api/clips").json()["clips"]}
        assert client.get(f"/api/clips/{ids['packed.avi']}/thumbnail").status_code == 200  # packed B-frames
        assert client.get(f"/api/clips/{ids['packed.avi']}/video").status_code == 200  # its H.264 preview
        touched = folder / "a.mp4"  # same bytes, new mtime: still the indexed file
        os.utime(touched, (time.time() + 100, time.time() + 100))
        assert client.get(f"/api/clips/{ids['a.mp4']}/thumbnail").status_code == 200
        broken = folder / "b.mp4"  # same size and mtime, but no longer a video
        status = broken.stat()
        broken.write_bytes(b"\0" * status.st_size)
        os.utime(broken, ns=(status.st_atime_ns, status.st_mtime_ns))
        response = client.get(f"/api/clips/{ids['b.mp4']}/thumbnail")
        assert response.status_code == 422 and "cannot make a thumbnail" in response.json()["detail"]
        assert str(folder) not in response.text and "b.mp4" in response.text


def test_a_trickling_body_and_a_crowd_of_slow_headers_cannot_hold_the_server(served, tmp_path, monkeypatch):
    """#31 item 17: an upload trickling a byte at a time is answered 408; sockets that never finish
    their headers cannot fill the connection limit (the longest-waiting is closed beyond a few)."""
    import socket

    import semantic_moments.server.guards as guards
    from conftest import served_app
    from semantic_moments.server import create_app
    from semantic_moments.server.protocol import HeaderDeadline

    monkeypatch.setattr(guards, "BODY_GRACE_SECONDS", 0.5)
    monkeypatch.setattr(HeaderDeadline, "max_waiting", 8)
    app = create_app(served / "idx", upload_dir=tmp_path / "uploads", max_upload_mb=1)
    with served_app(app, limit_concurrency=20) as base:
        head = (b"POST /api/uploads HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000\r\n"
                b"Content-Type: multipart/form-data; boundary=xyz\r\n\r\n")
        answer = _raw_request(base, head, [b"-"] * 12, pause=0.25, read_for=4)
        assert answer.startswith(b"HTTP/1.1 408") and b"slower than" in answer
        host, port = base.rsplit("//", 1)[1].split(":")
        crowd = [socket.create_connection((host, int(port))) for _ in range(40)]  # twice the limit
        try:
            for sock in crowd:
                sock.sendall(b"GET /api/info HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # never finished
            answer = _raw_request(base, b"GET /api/info HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            assert answer.startswith(b"HTTP/1.1 200"), answer[:80]
        finally:
            for sock in crowd:
                sock.close()
