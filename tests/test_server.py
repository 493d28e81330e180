"""The web app: every API endpoint with good and bad input, and the page in a real headless browser."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import api_client, moving_square, need, served_page, write_video

fastapi = need("fastapi")

from semantic_moments import SemanticMoments  # noqa: E402
from semantic_moments.collection import build_index  # noqa: E402
from semantic_moments.errors import SemanticMomentsError  # noqa: E402
from semantic_moments.index import Index  # noqa: E402
from semantic_moments.server import create_app  # noqa: E402

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"


@pytest.fixture(scope="module")
def collection(tmp_path_factory):
    """Six clips: three colours x two motions, so appearance and motion disagree on the nearest clip."""
    root = tmp_path_factory.mktemp("web")
    videos = root / "videos"
    videos.mkdir()
    colours = {"red": (230, 40, 40), "green": (40, 200, 60), "blue": (40, 60, 230)}
    for name, colour in colours.items():
        for direction in ("right", "down"):
            write_video(videos / f"{name}_{direction}.mp4", moving_square(20, 64, colour, direction,
                                                                           background=40 + 60 * list(colours).index(name)))
    with Index.open(root / "idx", create=True) as index:
        # real features where motion and colour disagree: blocks.10's mean features see the colour (blocks.7's
        # see the square's path as much), with the token flow stored too
        build_index(index, [videos], SemanticMoments(preset="paper", frames=16, flow_weight=16))
    return root


@pytest.fixture
def client(collection, tmp_path):
    with api_client(collection / "idx", tmp_path / "uploads", max_upload_mb=1) as test_client:
        yield test_client


def clip_id(client, name: str) -> int:
    return next(c["id"] for c in client.get("/api/clips").json()["clips"] if c["name"] == name)


def test_info_browse_and_filter(client):
    info = client.get("/api/info").json()
    assert info["clips"] == 6 and info["features"]["backbone"]["name"] == "efficientnet-lite0"
    listing = client.get("/api/clips").json()
    assert listing["total"] == 6 and {c["name"] for c in listing["clips"]} >= {"red_right.mp4", "blue_down.mp4"}
    filtered = client.get("/api/clips", params={"q": "RED"}).json()
    assert filtered["total"] == 2 and all(c["name"].startswith("red") for c in filtered["clips"])
    assert client.get("/api/clips", params={"limit": 2, "offset": 5}).json()["clips"][0]["name"]
    assert client.get("/api/clips", params={"limit": 0}).status_code == 422
    assert "/api/search" in client.get("/openapi.json").json()["paths"]
    assert "semantic-moments" in client.get("/").text


def test_video_and_thumbnail_only_for_indexed_clips(client, collection):
    red = clip_id(client, "red_right.mp4")
    video = client.get(f"/api/clips/{red}/video")
    assert video.status_code == 200 and video.content == (collection / "videos" / "red_right.mp4").read_bytes()
    ranged = client.get(f"/api/clips/{red}/video", headers={"Range": "bytes=0-9"})
    assert ranged.status_code == 206 and len(ranged.content) == 10
    thumbnail = client.get(f"/api/clips/{red}/thumbnail")
    assert thumbnail.status_code == 200 and thumbnail.content[:2] == b"\xff\xd8"
    assert client.get("/api/clips/9999/video").status_code == 404
    assert client.get("/api/clips/9999/thumbnail").status_code == 404
    assert client.get("/api/clips/abc/thumbnail").status_code == 422
    assert client.get("/api/uploads/not-a-token/video").status_code == 404
    for attempt in ("/api/clips/..%2F..%2Fetc%2Fpasswd/video", "/static/../index.py", "/api/clips/1%2F..%2F2/video"):
        response = client.get(attempt)
        assert response.status_code in (404, 422) and b"root:" not in response.content


def test_search_by_clip_with_query_time_alpha(client):
    red_right = clip_id(client, "red_right.mp4")
    appearance = client.post("/api/search", json={"query": {"id": red_right}, "k": 5, "motion": 0}).json()
    motion = client.post("/api/search", json={"query": {"id": red_right}, "k": 5, "motion": 1}).json()
    assert [r["name"] for r in appearance["results"]][0] == "red_down.mp4"  # same colour
    assert [r["name"] for r in motion["results"]][0].endswith("_right.mp4")  # same motion
    assert red_right not in [r["id"] for r in motion["results"]]
    explicit = client.post("/api/search", json={"query": {"id": red_right}, "alpha": [1, 8, 4]}).json()
    paper = client.post("/api/search", json={"query": {"id": red_right}, "motion": 0.5}).json()
    assert [r["id"] for r in explicit["results"]] == [r["id"] for r in paper["results"]]


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"query": {}}, 422),
        ({"query": {"id": 1, "upload": "x"}}, 422),
        ({"query": {"id": 9999}}, 404),
        ({"query": {"upload": "nope"}}, 404),
        ({"query": {"id": 1}, "k": 0}, 422),
        ({"query": {"id": 1}, "motion": 2}, 422),
        ({"query": {"id": 1}, "alpha": [1, 2]}, 422),
        ({"nothing": True}, 422),
    ],
)
def test_search_rejects_bad_requests(client, body, status):
    response = client.post("/api/search", json=body)
    assert response.status_code == status and response.json()["detail"]


def test_upload_then_search_and_explain(client, tmp_path):
    query = write_video(tmp_path / "mine.mp4", moving_square(20, 64, (250, 250, 250), "right"))
    with open(query, "rb") as handle:
        uploaded = client.post("/api/uploads", files={"file": ("mine.mp4", handle, "video/mp4")})
    assert uploaded.status_code == 200
    token = uploaded.json()["token"]
    assert not (tmp_path / "uploads").is_relative_to(query.parent / "videos")
    assert len([path for path in (tmp_path / "uploads").rglob("*") if path.is_file()]) == 1
    assert client.get(f"/api/uploads/{token}/video").content == query.read_bytes()
    hits = client.post("/api/search", json={"query": {"upload": token}, "k": 3, "motion": 1}).json()["results"]
    assert len(hits) == 3
    why = client.get("/api/explain", params={"upload": token, "b": hits[0]["id"], "motion": 1}).json()
    assert set(why["per_part"]) == {"1", "2", "3", "flow"} and why["score"] == pytest.approx(hits[0]["score"], abs=1e-5)
    assert np.array(why["maps"]["query"]).shape == np.array(why["maps"]["candidate"]).shape == (14, 14)
    red = clip_id(client, "red_right.mp4")
    assert client.get("/api/explain", params={"a": red, "b": clip_id(client, "red_down.mp4")}).status_code == 200
    assert client.get("/api/explain", params={"b": red}).status_code == 422
    assert client.get("/api/explain", params={"a": red, "b": 9999}).status_code == 404


def test_uploads_are_limited_in_size_and_type(client, videos):
    big = b"\x00" * (1024 * 1024 + 10)
    too_big = client.post("/api/uploads", files={"file": ("big.mp4", big, "video/mp4")})
    assert too_big.status_code == 413 and "1 MB limit" in too_big.json()["detail"]
    wrong_type = client.post("/api/uploads", files={"file": ("notes.txt", b"hello", "text/plain")})
    assert wrong_type.status_code == 415
    fake = client.post("/api/uploads", files={"file": ("fake.mp4", (videos / "text.mp4").read_bytes(), "video/mp4")})
    assert fake.status_code == 400 and "fake.mp4: not a readable video" in fake.json()["detail"]
    audio = client.post("/api/uploads", files={"file": ("a.mp4", (videos / "audio_only.m4a").read_bytes(), "video/mp4")})
    assert audio.status_code == 400 and "no video stream" in audio.json()["detail"]
    assert client.post("/api/uploads").status_code == 422


def test_refuses_empty_index_and_uploads_inside_indexed_folders(collection, tmp_path):
    Index.open(tmp_path / "empty", create=True).close()
    with pytest.raises(SemanticMomentsError, match="the index is empty"):
        create_app(tmp_path / "empty")
    with pytest.raises(SemanticMomentsError, match="must not go inside an indexed folder"):
        create_app(collection / "idx", upload_dir=collection / "videos" / "uploads")


@pytest.mark.browser
def test_page_in_a_real_browser(collection, tmp_path):
    with served_page(create_app(collection / "idx", upload_dir=tmp_path / "up")) as (page, base):
        failed = []  # every request the page makes must succeed: no favicon 404 (#31, item 9)
        page.on("response", lambda response: failed.append(response.url) if response.status >= 400 else None)
        page.goto(f"{base}/")
        page.wait_for_selector("#clips .card")
        assert page.locator("#clips .card").count() == 6
        page.fill("#filter", "red")
        page.wait_for_function("document.querySelectorAll('#clips .card').length === 2")
        page.locator("#clips .card", has_text="red_right").click()
        page.wait_for_selector("#results .card")
        # the filter box restricts the results too, not only the grid
        page.wait_for_function("document.querySelectorAll('#results .card').length === 1")
        assert page.text_content("#results .card .caption").endswith("red_down.mp4")
        assert "red" in page.text_content("#results-note")
        # a filter only the query matches: said, not an empty list (#31, item 5)
        page.fill("#filter", "red_right")
        page.wait_for_function("document.querySelector('#results-note').textContent.includes('left out of its own')")
        assert page.locator("#results .card").count() == 0
        page.fill("#filter", "")
        page.wait_for_function("document.querySelectorAll('#results .card').length === 5")
        page.eval_on_selector("#motion", "el => { el.value = 0; el.dispatchEvent(new Event('input')); }")
        page.wait_for_function("document.querySelector('#motion-value').textContent === '0.00'")
        page.wait_for_function("document.querySelector('#results .card .caption').title === 'red_down.mp4'")
        appearance = page.get_attribute("#results", "data-ranking")
        page.eval_on_selector("#motion", "el => { el.value = 1; el.dispatchEvent(new Event('input')); }")
        page.wait_for_function(f"document.querySelector('#results').dataset.ranking !== {appearance!r}")
        motion = page.get_attribute("#results", "data-ranking")
        assert motion != appearance, "moving the slider must change the ranking"
        # more like this / not like this refine the list in place
        before = page.get_attribute("#results", "data-ranking")
        ruled_out = page.locator("#results .card").nth(1).get_attribute("data-id")
        page.locator("#results .card").nth(1).get_by_role("button", name="Not like this").click()
        page.wait_for_function("document.querySelector('#examples').textContent.includes('1 ruled out')")
        page.wait_for_function(f"document.querySelector('#results').dataset.ranking !== {before!r}")
        assert ruled_out not in page.get_attribute("#results", "data-ranking").split(",")
        page.locator("#results .card").first.get_by_role("button", name="More like this").click()
        page.wait_for_function("document.querySelector('#examples').textContent.includes('2 example(s)')")
        page.click("#clear-examples")
        page.wait_for_function("document.querySelector('#examples').textContent === ''")
        page.wait_for_function(f"document.querySelector('#results').dataset.ranking === {motion!r}")
        page.locator("#results .card").first.click()
        page.wait_for_selector("#explain:not([hidden]) .barrow")
        first = page.locator("#results .card").first.get_attribute("data-id")
        assert page.locator("#results .card.explained").get_attribute("data-id") == first
        assert "red_right.mp4 and" in page.text_content("#explain-title")
        assert page.text_content("#explain-path").endswith(".mp4") and page.locator(".legend .ramp").count() == 1
        assert page.get_attribute("#open-video", "href") == f"/api/clips/{first}/video"
        # the map is drawn over the clip's middle frame: the canvas is not only map colours
        assert page.evaluate("document.querySelector('#map-candidate').toDataURL().length") > 5000
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "search-page.png"), full_page=True)
        assert not failed, f"requests that failed: {failed}"
        # "search with this" makes a result the query
        name = page.locator("#results .card .caption").first.get_attribute("title")
        page.locator("#results .card").first.get_by_role("button", name="Search with this").click()
        page.wait_for_function(f"document.querySelector('#query').textContent.includes({name!r})")
        # the map: every clip a dot, hover shows it, a click searches with it
        page.click("#show-map")
        page.wait_for_function("document.querySelector('#map').dataset.points === '6'")
        box = page.locator("#map").bounding_box()
        dots = page.evaluate("fetch('/api/map').then(r => r.json()).then(d => d.points)")
        target = dots[0]
        page.mouse.move(box["x"] + 6 + target["x"] * (box["width"] - 12), box["y"] + 6 + (1 - target["y"]) * (box["height"] - 12))
        page.wait_for_selector("#map-tip:not([hidden]) img")
        assert page.get_attribute("#map-tip", "data-id") == str(target["id"])
        page.mouse.click(box["x"] + 6 + target["x"] * (box["width"] - 12), box["y"] + 6 + (1 - target["y"]) * (box["height"] - 12))
        page.wait_for_function(f"document.querySelector('#query').textContent.includes({target['name']!r})")
        page.click("#show-map")
        # a new query clears the explanation of the old pair; keyboard works on cards
        page.fill("#filter", "blue")
        page.wait_for_function("document.querySelectorAll('#clips .card').length === 2")
        page.locator("#clips .card", has_text="blue_down").focus()
        page.keyboard.press("Enter")
        page.wait_for_function("document.querySelector('#query').textContent.includes('blue_down')")
        page.wait_for_selector("#explain[hidden]", state="attached")
        assert page.locator("#explain-bars .barrow").count() == 0
        # a filter that matches nothing says so
        page.fill("#filter", "no-such-clip")
        page.wait_for_function("document.querySelector('#more').textContent.includes('No clip matches')")
        # a narrow window stacks the panels instead of cutting the results off
        page.set_viewport_size({"width": 420, "height": 800})
        width = page.evaluate("document.querySelector('#results').getBoundingClientRect().right")
        assert width <= 420
    assert (ARTIFACTS / "search-page.png").stat().st_size > 10_000


def test_serve_command_reports_a_missing_index(tmp_path, capsys):
    from semantic_moments.cli import main

    assert main(["serve", "--index", str(tmp_path / "nope")]) == 1
    assert "no index here" in capsys.readouterr().err


def test_api_docs_work_offline(client):
    page = client.get("/docs")
    assert page.status_code == 200 and "/swagger/swagger-ui-bundle.js" in page.text
    assert "cdn" not in page.text.lower()
    for asset in ("/swagger/swagger-ui-bundle.js", "/swagger/swagger-ui.css"):
        assert client.get(asset).status_code == 200
    assert client.get("/openapi.json").json()["info"]["title"] == "semantic-moments"


def test_clips_browsers_cannot_play_are_served_as_h264_previews(tmp_path, monkeypatch):
    import av

    from semantic_moments.server import previews

    videos = tmp_path / "videos"
    videos.mkdir()
    write_video(videos / "old.avi", moving_square(12, 64, (200, 60, 60), "right"), codec="mpeg4")
    write_video(videos / "new.mp4", moving_square(12, 64, (60, 200, 60), "down"))
    with Index.open(tmp_path / "idx", create=True) as index:
        build_index(index, [videos], SemanticMoments("test-tiny", frames=8))
    made = []
    real = previews._transcode
    monkeypatch.setattr(previews, "_transcode", lambda source, target, cancelled: made.append(source) or real(source, target, cancelled))
    with api_client(tmp_path / "idx", tmp_path / "uploads") as client:
        ids = {clip["name"]: clip["id"] for clip in client.get("/api/clips").json()["clips"]}
        mp4 = client.get(f"/api/clips/{ids['new.mp4']}/video")
        assert mp4.content == (videos / "new.mp4").read_bytes()  # playable: the file itself
        avi = client.get(f"/api/clips/{ids['old.avi']}/video")
        assert avi.status_code == 200 and avi.headers["content-type"] == "video/mp4"
        preview = tmp_path / "preview.mp4"
        preview.write_bytes(avi.content)
        with av.open(str(preview)) as container:
            assert container.streams.video[0].codec_context.name == "h264"
            assert sum(1 for _ in container.decode(video=0)) == 12
        assert client.get(f"/api/clips/{ids['old.avi']}/video").content == avi.content
        assert made == [videos.resolve() / "old.avi"], "transcoded once, then served from the cache"
