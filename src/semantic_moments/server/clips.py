"""Routes over the indexed clips: the index's facts, browsing, each clip's video and thumbnail."""

from pathlib import Path
from typing import Any, Optional

from fastapi import APIRouter, Depends, Query, Request
from fastapi import Path as PathParameter
from fastapi.responses import FileResponse, Response

from ..collection import VIDEO_SUFFIXES
from ..errors import SemanticMomentsError
from .dependencies import cached, get_state, indexed_file_or_410, served_video, unprocessable
from .state import LARGEST_ID, ServerState, thumbnail_jpeg

router = APIRouter()


@router.get("/api/info", summary="the index: size and settings")
def info(state: ServerState = Depends(get_state)) -> dict[str, Any]:
    index = state.index()
    return {"clips": len(index), "features": index.feature_settings,
            "config": index.config.to_dict() if index.config else None,
            "windows": index.builds.window_plan, "window_rows": index.window_count(),
            "max_upload_mb": state.max_upload_mb, "video_suffixes": sorted(VIDEO_SUFFIXES),
            "motion_acts_up_to": cached(state, "knob", lambda index: index.motion_knob_range())}


@router.get("/api/clips", summary="browse and filter the indexed clips")
def clips(q: str = Query("", max_length=200, description="substring of the path"),
          offset: int = Query(0, ge=0, le=LARGEST_ID), limit: int = Query(60, ge=1, le=500),
          state: ServerState = Depends(get_state)) -> dict[str, Any]:
    total, rows = state.index().browse(q, offset, limit)
    return {"total": total, "clips": [{"id": clip_id, "name": Path(path).name, "folder": Path(path).parent.name,
                                       "duration_seconds": duration} for clip_id, path, duration in rows]}


@router.get("/api/clips/{clip_id}/video",
            summary="the clip's video: the file itself, or an H.264 MP4 preview where browsers cannot play it")
async def video(request: Request, clip_id: int = PathParameter(ge=0, le=LARGEST_ID),
                state: ServerState = Depends(get_state)) -> FileResponse:
    return await served_video(state, request, indexed_file_or_410(state, clip_id))


@router.get("/api/clips/{clip_id}/thumbnail", summary="a JPEG of the clip's middle frame (or of the frame at t)")
async def thumbnail(request: Request, clip_id: int = PathParameter(ge=0, le=LARGEST_ID),
                    t: Optional[float] = Query(None, ge=0.0, le=1e7, allow_inf_nan=False,
                                               description="seconds: the frame shown then (a segment's)"),
                    state: ServerState = Depends(get_state)) -> Response:
    key = (clip_id, None if t is None else round(t, 1))
    if key not in state.thumbnails:
        path = indexed_file_or_410(state, clip_id)
        try:
            data = await state.thumbnails_queue.run(request, lambda cancelled: thumbnail_jpeg(path, key[1]))
        except SemanticMomentsError as error:
            raise unprocessable("thumbnail", path, error) from None
        state.remember_thumbnail(key, data)
    return Response(state.thumbnails[key], media_type="image/jpeg", headers={"Cache-Control": "max-age=3600"})
