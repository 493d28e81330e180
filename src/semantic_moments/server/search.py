"""Routes that search: by example (``/api/search``, one ``SearchRequest`` as the CLI's), a query's
scores along one video (``/api/timeline``) and why two clips match (``/api/explain``)."""

from pathlib import Path
from typing import Any, Optional

from fastapi import APIRouter, Depends, HTTPException, Query

from ..errors import ConfigError, SemanticMomentsError
from ..index import SearchRequest, Where
from .dependencies import Pair, example_of, get_state, pair, upload_or_404
from .models import SearchBody
from .state import LARGEST_ID, ServerState

router = APIRouter()


@router.post("/api/search", summary="clips most like the query (and further examples), under query-time alpha")
def search(body: SearchBody, state: ServerState = Depends(get_state)) -> dict[str, Any]:
    try:
        where = Where(**body.where.model_dump()) if body.where is not None else None
    except ConfigError as error:  # e.g. min_duration above max_duration
        raise HTTPException(status_code=422, detail=str(error)) from None
    examples = [example_of(state, ref) for ref in [body.query, *body.more]]
    negatives = [example_of(state, ref) for ref in body.negatives]
    try:
        answer = state.index().answer(SearchRequest(
            examples, negatives, k=body.k, per_video=body.per_video, segments=body.segments, alpha=body.alpha,
            flow_weight=body.flow_weight, motion=body.motion, negative_weight=body.negative_weight, where=where,
            include_own=body.include_own))
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


@router.get("/api/timeline", summary="how the query matches along one video: the score of every window")
def timeline(pair: Pair = Depends(pair), state: ServerState = Depends(get_state)) -> dict[str, Any]:
    index = state.index()
    windows = index.timeline(pair.query, pair.clip_id, *pair.weights)
    duration = index.durations_of([pair.clip_id]).get(pair.clip_id, 0.0)
    return {"id": pair.clip_id, "duration_seconds": duration,
            "windows": [{"start": w_start, "end": w_end, "score": score} for w_start, w_end, score in windows]}


@router.get("/api/explain", summary="why two clips (or a query and a found segment) match: per-part similarity "
                                    "and motion-energy maps")
def explain(pair: Pair = Depends(pair),
            window: Optional[int] = Query(None, ge=0, le=LARGEST_ID,
                                          description="the window of b a segment result found: explain it"),
            state: ServerState = Depends(get_state)) -> dict[str, Any]:
    index = state.index()
    query, clip_id, ref = pair.query, pair.clip_id, pair.ref
    query_map = (index.motion_map_of(query) if isinstance(query, int) else
                 upload_or_404(state, ref.upload).motion_map if ref.upload is not None else index.motion_map_of(ref.id))
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
