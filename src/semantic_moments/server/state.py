"""What the server holds between requests (``ServerState``: the index, one connection per thread;
the model, made on the first upload; uploads, thumbnails and query segments remembered; the bounded
queues of slow work) and the limits it keeps."""

from __future__ import annotations

import io
import shutil
import tempfile
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np
from fastapi import HTTPException

from ..collection import is_within, model_for_index
from ..errors import ConfigError, SemanticMomentsError
from ..index import Index
from .previews import Previews
from .work import WorkQueue

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
    row: np.ndarray  # the raw row the index searches with (its parts)
    motion_map: Optional[np.ndarray]
    duration_seconds: float


class ServerState:
    """What the app holds between requests: the index, the model (made on first upload) and uploads."""

    def __init__(self, index_path: Path, upload_dir: Path | None, max_upload_mb: float, max_uploads: int) -> None:
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
        self.max_upload_mb = max_upload_mb
        self.max_upload_bytes = int(max_upload_mb * 2**20)
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

    def segment_embedding(self, clip_id: int, path: Path, segment: tuple[float, float]):
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


def thumbnail_jpeg(path: Path, seconds: Optional[float] = None) -> bytes:
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
