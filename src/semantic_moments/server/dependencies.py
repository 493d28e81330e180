"""What the routes share: the server's state, and the lookups every concern needs (an indexed clip,
an upload, an indexed file still as it was, a query example, the motion knob's weights, values
cached per index generation, a served video). FastAPI dependencies or plain functions of the state."""

import os
from pathlib import Path
from typing import Any, Callable, NamedTuple, Optional

import numpy as np
from fastapi import Depends, HTTPException, Query, Request
from fastapi.responses import FileResponse

from ..errors import SemanticMomentsError, first_line
from ..index import Example
from .models import QueryRef
from .state import LARGEST_ID, ServerState, Upload


def get_state(request: Request) -> ServerState:
    """The app's ServerState (``create_app`` puts it on ``app.state``)."""
    return request.app.state.semantic_moments


def clip_or_404(state: ServerState, clip_id: int) -> tuple[int, str]:
    found = state.index().lookup(int(clip_id))
    if found is None:
        raise HTTPException(status_code=404, detail=f"no clip {clip_id} in the index")
    return found


def upload_or_404(state: ServerState, token: str) -> Upload:
    upload = state.uploads.get(token)
    if upload is None:
        raise HTTPException(status_code=404, detail=f"no upload {token!r} (uploads are kept for this session only)")
    return upload


def indexed_file_or_410(state: ServerState, clip_id: int) -> Path:
    """The clip's file, only if it is still the regular file that was indexed: the path still leads
    to the same file (no link swapped in), with the same size and modification time."""
    import stat as stat_module

    _, path = clip_or_404(state, clip_id)
    recorded = state.index().builds.file_record(clip_id)
    try:
        status = os.stat(path)
    except OSError:
        raise HTTPException(status_code=410, detail=f"clip {clip_id}'s file is gone; rebuild the index") from None
    changed = (not stat_module.S_ISREG(status.st_mode) or recorded is None
               or os.path.realpath(path) != recorded.real_path or status.st_size != recorded.size_bytes)
    if not changed and status.st_mtime != recorded.mtime:  # touched: the content decides
        from ..video import hash_file

        changed = hash_file(path) != recorded.content_hash
    if changed:
        raise HTTPException(status_code=410, detail=f"clip {clip_id}'s file changed since it was indexed "
                                                    "(replaced, moved or linked elsewhere); rebuild the index")
    return Path(path)


def example_of(state: ServerState, ref: QueryRef) -> Example:
    """The search example a query reference names: an indexed clip, a segment of one (embedded
    through the shared model, remembered), or an upload."""
    if (ref.id is None) == (ref.upload is None):
        raise HTTPException(status_code=422, detail="give exactly one of query.id or query.upload")
    if ref.segment is not None and ref.id is None:
        raise HTTPException(status_code=422, detail="query.segment needs query.id")
    if ref.id is not None:
        clip_id, _ = clip_or_404(state, ref.id)
        if ref.segment is None:
            return Example(clip_id, own=clip_id)
        start, end = ref.segment
        if not (0 <= start < end) or not np.isfinite(end):
            raise HTTPException(status_code=422, detail="query.segment must be 0 <= start < end seconds")
        path = indexed_file_or_410(state, clip_id)
        try:
            embedding = state.segment_embedding(clip_id, path, (start, end))
        except SemanticMomentsError as error:
            raise HTTPException(status_code=422, detail=str(error)) from None
        return Example(state.index().raw_of(embedding), own=clip_id, span=(start, end))
    return Example(upload_or_404(state, ref.upload).row)


def weights_for(state: ServerState, motion: Optional[float]) -> tuple[Optional[tuple[float, ...]], Optional[float]]:
    """(alpha, flow weight) of the motion knob; (None, None): the index's own weights."""
    if motion is None:
        return None, None
    return state.index().motion_weights(motion)


def cached(state: ServerState, name: str, compute: Callable[[Any], Any]) -> Any:
    """``compute(index)`` once per index generation (the map, the knob's range)."""
    index = state.index()
    generation = index.generation
    if name not in state.cached or state.cached[name][0] != generation:
        state.cached[name] = (generation, compute(index))
    return state.cached[name][1]


def unprocessable(what: str, path: Path, error: BaseException) -> HTTPException:
    """422 naming the clip's file by its name only (a browser never sees where files live)."""
    reason = first_line(error).replace(str(path), path.name)
    return HTTPException(status_code=422, detail=f"cannot make a {what}: {reason}")


async def served_video(state: ServerState, request: Request, path: Path) -> FileResponse:
    """The file itself where browsers play it, else its preview (made in the bounded queue)."""
    def make(cancelled) -> Path:
        return state.previews.get(path, cancelled)

    try:
        served = await state.previews_queue.run(request, make)
    except SemanticMomentsError as error:
        raise unprocessable("browser preview", path, error) from None
    return FileResponse(served, media_type="video/mp4" if served != path else None)


class Pair(NamedTuple):
    """A query held against one indexed clip (/api/timeline, /api/explain)."""

    ref: QueryRef
    query: Any  # an indexed clip's id or a raw row
    clip_id: int
    weights: tuple[Optional[tuple[float, ...]], Optional[float]]


def pair(b: int = Query(ge=0, le=LARGEST_ID), a: Optional[int] = Query(None, ge=0, le=LARGEST_ID),
         upload: Optional[str] = Query(None, max_length=100),
         start: Optional[float] = Query(None, ge=0.0, allow_inf_nan=False, description="with a: query segment"),
         end: Optional[float] = Query(None, gt=0.0, allow_inf_nan=False, description="with a: query segment"),
         motion: Optional[float] = Query(None, ge=0.0, le=1.0, allow_inf_nan=False, description="as in /api/search"),
         state: ServerState = Depends(get_state)) -> Pair:
    """The query parameters /api/timeline and /api/explain share: the query (``a``, a segment of it,
    or ``upload``), the indexed clip ``b`` it is held against, and the weights."""
    if (start is None) != (end is None):
        raise HTTPException(status_code=422, detail="give both start and end for a query segment, or neither")
    ref = QueryRef(id=a, upload=upload, segment=(start, end) if start is not None else None)
    example = example_of(state, ref)
    clip_id, _ = clip_or_404(state, b)
    return Pair(ref, example.query, clip_id, weights_for(state, motion))
