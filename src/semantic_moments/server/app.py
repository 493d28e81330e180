"""A local web app over an index: browse clips, search by example, re-weight at query time, explain.

``create_app(index_path)`` returns a FastAPI app (OpenAPI docs at ``/docs``) serving one page and a
JSON API. Security model: it is meant for 127.0.0.1 (the CLI binds there unless told otherwise);
files are served only by index id or upload token, never by a path from the request, so nothing
outside the index can be read; uploads are limited in size and type, must decode as video, and are
written to a private temporary folder, never into the indexed folders.
"""

import io
import os
import secrets
import shutil
import tempfile
import threading
from collections import OrderedDict
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, Optional

import numpy as np
from fastapi import Depends, FastAPI, File, HTTPException, Query, Request, UploadFile
from fastapi import Path as PathParameter
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field

from ..collection import VIDEO_SUFFIXES, is_within, model_for_index
from ..errors import ConfigError, SemanticMomentsError, first_line
from ..index import Example, Index
from ..index.rows import MAX_NEGATIVE_WEIGHT, NEGATIVE_WEIGHT
from .guards import BODY_IDLE_SECONDS, LOCAL_HOSTS, RequestGuard
from .previews import Previews
from .work import WorkQueue

STATIC = Path(__file__).parent / "static"
THUMBNAIL_SIZE = (90, 160)  # height, width
THUMBNAIL_CACHE = 2048
THUMBNAIL_DECODES = 2  # thumbnails decoding at once
WAITING = 8  # requests of each kind of slow work allowed to wait; more get 503 with Retry-After
SEGMENT_CACHE = 64  # query segments embedded recently (the page asks a timeline per result with one segment)
UPLOADS_FOLDER = "semantic-moments-uploads"  # the server's own folder inside an --upload-dir
LARGEST_ID = 2**63 - 1  # SQLite's integer range


@dataclass
class Upload:
    token: str
    path: Path
    name: str
    moments: np.ndarray  # (K, d)
    motion_map: Optional[np.ndarray]
    duration_seconds: float


class ServerState:
    """What the app holds between requests: the index, the model (made on first upload) and uploads."""

    def __init__(self, index_path: Path, upload_dir: Path | None, max_upload_bytes: int, max_uploads: int) -> None:
        self.index_path = index_path
        with Index.open(index_path, create=False) as index:
            if len(index) == 0:
                raise SemanticMomentsError(f"{index_path}: the index is empty; build it first")
            folders = {str(Path(path).parent.resolve()) for path in index.builds.files()} if upload_dir is not None else set()
        if upload_dir is not None and is_within(str(upload_dir.resolve()), folders):  # before anything is created
            raise ConfigError(f"{upload_dir}: uploads must not go inside an indexed folder")
        if upload_dir is not None:  # our own folder inside it: emptied now (a stopped server's) and at stop
            self.upload_dir = upload_dir / UPLOADS_FOLDER
            shutil.rmtree(self.upload_dir, ignore_errors=True)
        else:
            self.upload_dir = Path(tempfile.mkdtemp(prefix="semantic-moments-uploads-"))
        self.upload_dir.mkdir(parents=True, exist_ok=True)
        self.previews = Previews(self.upload_dir / "previews")  # removed with the upload folder
        self.max_upload_bytes = max_upload_bytes
        self.max_uploads = max_uploads
        self.uploads: OrderedDict[str, Upload] = OrderedDict()
        self.thumbnails: OrderedDict[tuple[int, Optional[float]], bytes] = OrderedDict()
        self.cached: dict[str, tuple[int, Any]] = {}  # name -> (index generation, value): the map, the knob's range
        self._model = None
        self._lock = threading.Lock()
        self._model_lock = threading.Lock()  # one embedding at a time: a model (an OpenVINO request) is not shared
        self.segments: OrderedDict[tuple[int, float, float], Any] = OrderedDict()
        self._segment_work = 0  # segment embeddings running or waiting
        self._local = threading.local()
        self.previews_queue = WorkQueue("preview", running=1, waiting=WAITING)
        self.thumbnails_queue = WorkQueue("thumbnail", running=THUMBNAIL_DECODES, waiting=4 * WAITING)
        self.uploads_queue = WorkQueue("upload", running=1, waiting=WAITING)

    def index(self) -> Index:
        """One connection per server thread (SQLite connections are not shared across threads)."""
        if getattr(self._local, "index", None) is None:
            self._local.index = Index.open(self.index_path, create=False)
        return self._local.index

    def model(self):
        with self._lock:
            if self._model is None:
                self._model = model_for_index(self.index())
            return self._model

    def embed(self, path: Path, segment: Optional[tuple[float, float]] = None):
        """The shared model's embedding of ``path`` (a segment of it), one at a time."""
        model = self.model()
        with self._model_lock:
            return model.embed(path, segment=segment)

    def segment_moments(self, clip_id: int, path: Path, segment: tuple[float, float]):
        """The embedding of a segment of an indexed clip: from the recent ones, else embedded through a
        bounded line (one at a time, WAITING more; beyond: 503), so GETs cannot start unbounded work."""
        key = (clip_id, float(segment[0]), float(segment[1]))
        with self._lock:
            if key in self.segments:
                self.segments.move_to_end(key)
                return self.segments[key]
            if self._segment_work >= 1 + WAITING:
                raise HTTPException(status_code=503, detail="too many segment queries at once; try again shortly",
                                    headers={"Retry-After": "5"})
            self._segment_work += 1
        try:
            with self._model_lock:
                with self._lock:  # made meanwhile by a request for the same segment
                    if key in self.segments:
                        return self.segments[key]
                embedding = self.model().embed(path, segment=segment)
            with self._lock:
                self.segments[key] = embedding
                while len(self.segments) > SEGMENT_CACHE:
                    self.segments.popitem(last=False)
            return embedding
        finally:
            with self._lock:
                self._segment_work -= 1

    def remember_thumbnail(self, key, data: bytes) -> None:
        with self._lock:
            self.thumbnails[key] = data
            while len(self.thumbnails) > THUMBNAIL_CACHE:
                self.thumbnails.popitem(last=False)

    def remember(self, upload: Upload) -> None:
        with self._lock:
            self.uploads[upload.token] = upload
            while len(self.uploads) > self.max_uploads:
                _, old = self.uploads.popitem(last=False)
                old.path.unlink(missing_ok=True)


def _thumbnail(path: Path, seconds: Optional[float] = None) -> bytes:
    """A JPEG of the frame shown at ``seconds`` (None: the middle frame), decoded straight to
    thumbnail size (never a full-size frame in memory beyond the decoder's own)."""
    from PIL import Image

    from ..video import VideoReader

    with VideoReader(path, threads=1) as reader:
        height, width = reader.frame_size
        scale = min(THUMBNAIL_SIZE[0] * 2 / height, THUMBNAIL_SIZE[1] * 2 / width, 1.0)
        size = (max(2, round(height * scale)), max(2, round(width * scale)))
        times = reader.frame_times - reader.frame_times[0]
        index = reader.num_frames // 2 if seconds is None else \
            int(np.clip(np.searchsorted(times, seconds, side="right") - 1, 0, reader.num_frames - 1))
        frame = reader.get_frames_at([index], size=size)[0]
    image = Image.fromarray(frame)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=80)
    return buffer.getvalue()


def _serve_api_docs(app: FastAPI) -> None:
    """Swagger UI at /docs from the local ``swagger-ui-bundle`` package (the default page loads it from
    a CDN and stays blank offline); without the package, /docs says how to get it."""
    from fastapi.openapi.docs import get_swagger_ui_html

    try:
        import swagger_ui_bundle
    except ImportError:
        @app.get("/docs", include_in_schema=False)
        def docs_missing() -> HTMLResponse:
            return HTMLResponse("<p>API docs need <code>pip install swagger-ui-bundle</code>; the OpenAPI schema is "
                                "at <a href='/openapi.json'>/openapi.json</a>.</p>")
        return
    app.mount("/swagger", StaticFiles(directory=swagger_ui_bundle.swagger_ui_path), name="swagger")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title="semantic-moments API",
                                   swagger_js_url="/swagger/swagger-ui-bundle.js",
                                   swagger_css_url="/swagger/swagger-ui.css",
                                   swagger_favicon_url="/swagger/favicon-32x32.png")


class QueryRef(BaseModel):
    id: Optional[int] = Field(None, ge=0, le=LARGEST_ID, description="an indexed clip's id")
    upload: Optional[str] = Field(None, description="an upload token from POST /api/uploads")
    segment: Optional[tuple[float, float]] = Field(
        None, description="with id: only this part (start, end seconds) of the indexed video is the query")


class WhereFilter(BaseModel):
    model_config = ConfigDict(extra="forbid")  # an unknown key is refused, not silently ignored

    contains: Optional[str] = Field(None, max_length=200, description="the path contains this text (any case)")
    path: Optional[str] = Field(None, max_length=500, description="a glob on the path, e.g. */dogs/*")
    folder: Optional[str] = Field(None, max_length=500, description="the path starts with this folder")
    min_duration: Optional[float] = Field(None, ge=0.0, allow_inf_nan=False, description="seconds")
    max_duration: Optional[float] = Field(None, ge=0.0, allow_inf_nan=False, description="seconds")
    windowed: Optional[bool] = Field(None, description="only videos indexed with windows (true) or without (false)")


class Pair(NamedTuple):
    """A query held against one indexed clip (/api/timeline, /api/explain)."""

    ref: QueryRef
    query: Any  # an indexed clip's id or a raw row
    clip_id: int
    weights: tuple[Optional[tuple[float, ...]], Optional[float]]


class SearchBody(BaseModel):
    query: QueryRef
    more: list[QueryRef] = Field([], max_length=20, description="further examples of the motion wanted")
    negatives: list[QueryRef] = Field([], max_length=20, alias="not",
                                      description="examples of what is not wanted: a clip scores its mean cosine "
                                                  "with the examples minus negative_weight times its mean with these")
    negative_weight: float = Field(NEGATIVE_WEIGHT, ge=0.0, le=MAX_NEGATIVE_WEIGHT, allow_inf_nan=False)
    where: Optional[WhereFilter] = None
    include_own: bool = Field(False, description="keep an indexed query's own clip (video, for segments)")
    k: int = Field(12, ge=1, le=200)
    alpha: Optional[list[float]] = Field(None, description="one weight per moment; overrides motion")
    flow_weight: Optional[float] = Field(None, ge=0.0, allow_inf_nan=False,
                                         description="with alpha: the token flow's weight; default: the index's")
    motion: Optional[float] = Field(None, ge=0.0, le=1.0, allow_inf_nan=False,
                                    description="0 appearance only, 0.5 the index's own weights, 1 motion only")
    segments: Optional[bool] = Field(None, description="results as segments of long videos (start, end); default: "
                                                       "when the index holds windowed videos")
    per_video: int = Field(1, ge=1, le=50, description="with segments: at most this many from one video")


def create_app(
    index_path: str | os.PathLike[str],
    upload_dir: str | os.PathLike[str] | None = None,
    max_upload_mb: float = 200.0,
    max_uploads: int = 50,
    allowed_hosts: tuple[str, ...] = (),
    body_idle_seconds: float = BODY_IDLE_SECONDS,
):
    """The FastAPI app over the index at ``index_path``. Raises SemanticMomentsError if it is missing
    or empty, or if ``upload_dir`` lies inside an indexed folder. ``allowed_hosts``: host names
    answered besides 127.0.0.1, localhost and [::1]; ``body_idle_seconds``: how long a request body may
    send nothing (guards.py). Uploads live in a folder of the server's own (inside ``upload_dir``
    when given), emptied when it starts and when it stops."""
    state = ServerState(Path(index_path), Path(upload_dir) if upload_dir else None,
                        int(max_upload_mb * 2**20), max_uploads)

    @asynccontextmanager
    async def lifespan(_app):
        yield
        shutil.rmtree(state.upload_dir, ignore_errors=True)  # ours alone: uploads live as long as the server

    app = FastAPI(title="semantic-moments", description="Search a motion index by example.", version="1",
                  lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.semantic_moments = state
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    _serve_api_docs(app)
    app.add_middleware(RequestGuard, allowed_hosts=(*LOCAL_HOSTS, *allowed_hosts),
                       max_upload_bytes=state.max_upload_bytes + 64 * 1024,  # multipart headers on top of the file
                       body_idle_seconds=body_idle_seconds)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_request: Request, error: RequestValidationError) -> JSONResponse:
        """422 with where and why only: the offending input may not even be JSON (NaN, huge ints)."""
        detail = [{"loc": [str(part) for part in item.get("loc", ())], "msg": str(item.get("msg", "invalid"))}
                  for item in error.errors()]
        return JSONResponse(status_code=422, content={"detail": detail})

    def clip_or_404(clip_id: int) -> tuple[int, str]:
        found = state.index().lookup(int(clip_id))
        if found is None:
            raise HTTPException(status_code=404, detail=f"no clip {clip_id} in the index")
        return found

    def upload_or_404(token: str) -> Upload:
        upload = state.uploads.get(token)
        if upload is None:
            raise HTTPException(status_code=404, detail=f"no upload {token!r} (uploads are kept for this session only)")
        return upload

    def example_of(ref: QueryRef) -> Example:
        """The search example a query reference names: an indexed clip, a segment of one (embedded
        through the shared model, remembered), or an upload."""
        if (ref.id is None) == (ref.upload is None):
            raise HTTPException(status_code=422, detail="give exactly one of query.id or query.upload")
        if ref.segment is not None and ref.id is None:
            raise HTTPException(status_code=422, detail="query.segment needs query.id")
        if ref.id is not None:
            clip_id, _ = clip_or_404(ref.id)
            if ref.segment is None:
                return Example(clip_id, own=clip_id)
            start, end = ref.segment
            if not (0 <= start < end) or not np.isfinite(end):
                raise HTTPException(status_code=422, detail="query.segment must be 0 <= start < end seconds")
            path = indexed_file_or_410(clip_id)
            try:
                embedding = state.segment_moments(clip_id, path, (start, end))
            except SemanticMomentsError as error:
                raise HTTPException(status_code=422, detail=str(error)) from None
            return Example(state.index().raw_of(embedding), own=clip_id, span=(start, end))
        return Example(upload_or_404(ref.upload).moments)

    def query_segment(start: Optional[float], end: Optional[float]) -> Optional[tuple[float, float]]:
        """The query segment of the ``start``/``end`` query parameters: both or neither (422)."""
        if (start is None) != (end is None):
            raise HTTPException(status_code=422, detail="give both start and end for a query segment, or neither")
        return (start, end) if start is not None else None

    def weights_for(motion: Optional[float]) -> tuple[Optional[tuple[float, ...]], Optional[float]]:
        """(alpha, flow weight) of the motion knob; (None, None): the index's own weights."""
        if motion is None:
            return None, None
        return state.index().motion_weights(motion)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page() -> str:
        return (STATIC / "index.html").read_text()

    def cached(name: str, compute):
        """``compute(index)`` once per index generation (the map, the knob's range)."""
        index = state.index()
        generation = index.generation
        if name not in state.cached or state.cached[name][0] != generation:
            state.cached[name] = (generation, compute(index))
        return state.cached[name][1]

    @app.get("/api/info", summary="the index: size and settings")
    def info() -> dict[str, Any]:
        index = state.index()
        return {"clips": len(index), "features": index.feature_settings,
                "config": index.config.to_dict() if index.config else None,
                "windows": index.builds.window_plan, "window_rows": index.window_count(),
                "max_upload_mb": max_upload_mb, "video_suffixes": sorted(VIDEO_SUFFIXES),
                "motion_acts_up_to": cached("knob", lambda index: index.motion_knob_range())}

    @app.get("/api/map", summary="every clip as a point in 2-D (UMAP or PCA of the motion vectors), with its group")
    async def motion_map(request: Request) -> dict[str, Any]:
        def compute(cancelled) -> dict[str, Any]:
            from .. import organize

            def build(index) -> dict[str, Any]:
                ids, points, method, seconds = organize.map_2d(index)
                groups = organize.clusters(index) if len(ids) >= 3 else None
                labels = dict(zip(groups.ids.tolist(), groups.labels.tolist())) if groups else {}
                paths = index.paths()
                return {"method": method, "seconds": round(seconds, 2), "groups": groups.k if groups else 1,
                        "points": [{"id": int(clip_id), "x": round(float(x), 5), "y": round(float(y), 5),
                                    "group": int(labels.get(int(clip_id), 0)), "name": Path(paths[int(clip_id)]).name}
                                   for clip_id, (x, y) in zip(ids, points)]}

            return cached("map", build)

        try:
            return await state.thumbnails_queue.run(request, compute)
        except SemanticMomentsError as error:
            raise HTTPException(status_code=422, detail=str(error)) from None

    @app.get("/api/clips", summary="browse and filter the indexed clips")
    def clips(q: str = Query("", max_length=200, description="substring of the path"),
              offset: int = Query(0, ge=0, le=LARGEST_ID), limit: int = Query(60, ge=1, le=500)) -> dict[str, Any]:
        total, rows = state.index().browse(q, offset, limit)
        return {"total": total, "clips": [{"id": clip_id, "name": Path(path).name, "folder": Path(path).parent.name,
                                           "duration_seconds": duration} for clip_id, path, duration in rows]}

    def indexed_file_or_410(clip_id: int) -> Path:
        """The clip's file, only if it is still the regular file that was indexed: the path still leads
        to the same file (no link swapped in), with the same size and modification time."""
        _, path = clip_or_404(clip_id)
        recorded = state.index().builds.file_record(clip_id)
        try:
            status = os.stat(path)
        except OSError:
            raise HTTPException(status_code=410, detail=f"clip {clip_id}'s file is gone; rebuild the index") from None
        import stat as stat_module

        changed = (not stat_module.S_ISREG(status.st_mode) or recorded is None
                   or os.path.realpath(path) != recorded.real_path or status.st_size != recorded.size_bytes)
        if not changed and status.st_mtime != recorded.mtime:  # touched: the content decides
            from ..video import hash_file

            changed = hash_file(path) != recorded.content_hash
        if changed:
            raise HTTPException(status_code=410, detail=f"clip {clip_id}'s file changed since it was indexed "
                                                        "(replaced, moved or linked elsewhere); rebuild the index")
        return Path(path)

    def unprocessable(what: str, path: Path, error: BaseException) -> HTTPException:
        """422 naming the clip's file by its name only (a browser never sees where files live)."""
        reason = first_line(error).replace(str(path), path.name)
        return HTTPException(status_code=422, detail=f"cannot make a {what}: {reason}")

    async def served_video(request: Request, path: Path) -> FileResponse:
        """The file itself where browsers play it, else its preview (made in the bounded queue)."""
        def make(cancelled) -> Path:
            return state.previews.get(path, cancelled)

        try:
            served = await state.previews_queue.run(request, make)
        except SemanticMomentsError as error:
            raise unprocessable("browser preview", path, error) from None
        return FileResponse(served, media_type="video/mp4" if served != path else None)

    @app.get("/api/clips/{clip_id}/video",
             summary="the clip's video: the file itself, or an H.264 MP4 preview where browsers cannot play it")
    async def video(request: Request, clip_id: int = PathParameter(ge=0, le=LARGEST_ID)) -> FileResponse:
        return await served_video(request, indexed_file_or_410(clip_id))

    @app.get("/api/clips/{clip_id}/thumbnail", summary="a JPEG of the clip's middle frame (or of the frame at t)")
    async def thumbnail(request: Request, clip_id: int = PathParameter(ge=0, le=LARGEST_ID),
                        t: Optional[float] = Query(None, ge=0.0, le=1e7, allow_inf_nan=False,
                                                   description="seconds: the frame shown then (a segment's)")) -> Response:
        key = (clip_id, None if t is None else round(t, 1))
        if key not in state.thumbnails:
            path = indexed_file_or_410(clip_id)
            try:
                data = await state.thumbnails_queue.run(request, lambda cancelled: _thumbnail(path, key[1]))
            except SemanticMomentsError as error:
                raise unprocessable("thumbnail", path, error) from None
            state.remember_thumbnail(key, data)
        return Response(state.thumbnails[key], media_type="image/jpeg",
                        headers={"Cache-Control": "max-age=3600"})

    @app.post("/api/uploads", summary="upload a query clip; it is embedded with the index's settings")
    async def upload(request: Request, file: UploadFile = File(...)) -> dict[str, Any]:
        name = Path(file.filename or "upload").name
        suffix = Path(name).suffix.lower()
        if suffix not in VIDEO_SUFFIXES:
            raise HTTPException(status_code=415, detail=f"{name}: not a video type ({', '.join(sorted(VIDEO_SUFFIXES))})")
        token = secrets.token_urlsafe(12)
        target = state.upload_dir / f"{token}{suffix}"
        written = 0
        with open(target, "wb") as output:
            while chunk := await file.read(1 << 20):
                written += len(chunk)
                if written > state.max_upload_bytes:
                    output.close()
                    target.unlink(missing_ok=True)
                    raise HTTPException(status_code=413, detail=f"{name}: larger than the {max_upload_mb:g} MB limit")
                output.write(chunk)
        try:
            embedding = await state.uploads_queue.run(request, lambda cancelled: state.embed(target))
        except SemanticMomentsError as error:
            target.unlink(missing_ok=True)
            raise HTTPException(status_code=400, detail=str(error).replace(str(target), name)) from None
        except BaseException:
            target.unlink(missing_ok=True)  # queue full, client gone: nothing is kept
            raise
        moments = state.index().raw_of(embedding)
        state.remember(Upload(token, target, name, moments, embedding.motion_map, embedding.duration_seconds))
        return {"token": token, "name": name, "duration_seconds": embedding.duration_seconds}

    @app.get("/api/uploads/{token}/video", summary="an uploaded clip's video")
    async def upload_video(request: Request, token: str) -> FileResponse:
        return await served_video(request, upload_or_404(token).path)

    @app.post("/api/search", summary="clips most like the query (and further examples), under query-time alpha")
    def search(request: SearchBody) -> dict[str, Any]:
        from ..index import SearchRequest, Where

        try:
            where = Where(**request.where.model_dump()) if request.where is not None else None
        except ConfigError as error:  # e.g. min_duration above max_duration
            raise HTTPException(status_code=422, detail=str(error)) from None
        examples = [example_of(ref) for ref in [request.query, *request.more]]
        negatives = [example_of(ref) for ref in request.negatives]
        try:
            answer = state.index().answer(SearchRequest(
                examples, negatives, k=request.k, per_video=request.per_video, segments=request.segments,
                alpha=request.alpha, flow_weight=request.flow_weight, motion=request.motion,
                negative_weight=request.negative_weight, where=where, include_own=request.include_own))
        except SemanticMomentsError as error:
            raise HTTPException(status_code=422, detail=str(error)) from None
        segments = answer.segments
        return {"alpha": list(answer.alpha) if answer.alpha else None, "flow_weight": answer.flow_weight,
                "segments": segments,
                "results": [{"id": hit.id, "name": Path(hit.path).name, "path": hit.path, "score": hit.score,
                             "percentile": percentile,
                             **({"start": hit.start, "end": hit.end, "window": hit.window} if segments else {}),
                             "per_part": {str(k): v for k, v in hit.per_part.items()}}
                            for hit, percentile in zip(answer.hits, answer.percentiles)]}

    def pair(b: int = Query(ge=0, le=LARGEST_ID), a: Optional[int] = Query(None, ge=0, le=LARGEST_ID),
             upload: Optional[str] = Query(None, max_length=100),
             start: Optional[float] = Query(None, ge=0.0, allow_inf_nan=False, description="with a: query segment"),
             end: Optional[float] = Query(None, gt=0.0, allow_inf_nan=False, description="with a: query segment"),
             motion: Optional[float] = Query(None, ge=0.0, le=1.0, allow_inf_nan=False,
                                             description="as in /api/search")) -> Pair:
        """The query parameters /api/timeline and /api/explain share: the query (``a``, a segment of it,
        or ``upload``), the indexed clip ``b`` it is held against, and the weights."""
        ref = QueryRef(id=a, upload=upload, segment=query_segment(start, end))
        example = example_of(ref)
        clip_id, _ = clip_or_404(b)
        return Pair(ref, example.query, clip_id, weights_for(motion))

    @app.get("/api/timeline", summary="how the query matches along one video: the score of every window")
    def timeline(pair: Pair = Depends(pair)) -> dict[str, Any]:
        index = state.index()
        windows = index.timeline(pair.query, pair.clip_id, *pair.weights)
        duration = index.durations_of([pair.clip_id]).get(pair.clip_id, 0.0)
        return {"id": pair.clip_id, "duration_seconds": duration,
                "windows": [{"start": w_start, "end": w_end, "score": score} for w_start, w_end, score in windows]}

    @app.get("/api/explain", summary="why two clips (or a query and a found segment) match: per-part similarity "
                                     "and motion-energy maps")
    def explain(pair: Pair = Depends(pair),
                window: Optional[int] = Query(None, ge=0, le=LARGEST_ID,
                                              description="the window of b a segment result found: explain it")
                ) -> dict[str, Any]:
        index = state.index()
        query, clip_id, ref = pair.query, pair.clip_id, pair.ref
        query_map = (index.motion_map_of(query) if isinstance(query, int) else
                     upload_or_404(ref.upload).motion_map if ref.upload is not None else index.motion_map_of(ref.id))
        if window is not None:
            hit = index.score_window(query, window, *pair.weights)
            if hit is None or hit.id != clip_id:
                raise HTTPException(status_code=404, detail=f"no window {window} of clip {clip_id}")
        else:
            hit = index.score(query, clip_id, *pair.weights)
        candidate_map = index.motion_map_of(clip_id)
        return {"score": hit.score if hit else None,
                "segment": [hit.start, hit.end] if window is not None else None,
                "per_part": {str(k): v for k, v in hit.per_part.items()} if hit else {},
                "maps": {"query": query_map.tolist() if query_map is not None else None,
                         "candidate": candidate_map.tolist() if candidate_map is not None else None}}

    return app
