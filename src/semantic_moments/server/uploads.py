"""Routes for query clips a browser uploads: each is embedded with the index's settings and kept
for the session (``ServerState.remember``)."""

import secrets
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, File, HTTPException, Request, UploadFile
from fastapi.responses import FileResponse

from ..collection import VIDEO_SUFFIXES
from ..errors import SemanticMomentsError
from .dependencies import get_state, served_video, upload_or_404
from .state import ServerState, Upload

router = APIRouter()


@router.post("/api/uploads", summary="upload a query clip; it is embedded with the index's settings")
async def upload(request: Request, file: UploadFile = File(...), state: ServerState = Depends(get_state)) -> dict[str, Any]:
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
                raise HTTPException(status_code=413, detail=f"{name}: larger than the {state.max_upload_mb:g} MB limit")
            output.write(chunk)
    try:
        embedding = await state.uploads_queue.run(request, lambda cancelled: state.embed(target))
    except SemanticMomentsError as error:
        target.unlink(missing_ok=True)
        raise HTTPException(status_code=400, detail=str(error).replace(str(target), name)) from None
    except BaseException:
        target.unlink(missing_ok=True)  # queue full, client gone: nothing is kept
        raise
    row = state.index().raw_of(embedding)
    state.remember(Upload(token, target, name, row, embedding.motion_map, embedding.duration_seconds))
    return {"token": token, "name": name, "duration_seconds": embedding.duration_seconds}


@router.get("/api/uploads/{token}/video", summary="an uploaded clip's video")
async def upload_video(request: Request, token: str, state: ServerState = Depends(get_state)) -> FileResponse:
    return await served_video(state, request, upload_or_404(state, token).path)
