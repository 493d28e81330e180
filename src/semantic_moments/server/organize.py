"""Routes that organise the collection: the map (every clip placed by its motion, with its group)
and duplicates (copies, parts of long videos, or pairs of the same motion), each computed in the
bounded queue and kept per index generation."""

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request

from ..errors import SemanticMomentsError
from .dependencies import cached, get_state
from .state import ServerState

router = APIRouter()
DUPLICATES_SHOWN = 100


@router.get("/api/map", summary="every clip as a point in 2-D (UMAP or PCA of the motion vectors), with its group")
async def motion_map(request: Request, state: ServerState = Depends(get_state)) -> dict[str, Any]:
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

        return cached(state, "map", build)

    return await _in_queue(state, request, compute)


@router.get("/api/duplicates", summary="copies (the same footage; a clip that is a part of a long video, with its "
                                        "span), or pairs of clips that move alike (retakes, repeats)")
async def duplicates(request: Request,
                     kind: str = Query("copies", pattern="^(copies|same-motion)$",
                                       description="copies (verified frame by frame) or same-motion"),
                     state: ServerState = Depends(get_state)) -> dict[str, Any]:
    def compute(cancelled) -> dict[str, Any]:
        from .. import organize

        def build(index) -> dict[str, Any]:
            if kind == "copies":
                pairs, unread = organize.copies(index)
            else:
                pairs, unread = organize.duplicates(index, organize.DUPLICATE_SCORE), {}
            return {"kind": kind, "total": len(pairs), "unread": len(unread),
                    "pairs": [{"kind": pair.kind, "score": round(pair.score, 4),
                               "motion_score": round(pair.motion_score, 4) if pair.motion_score is not None else None,
                               "a": {"id": pair.a, "name": Path(pair.path_a).name,
                                     **({"start": pair.span_a[0], "end": pair.span_a[1]} if pair.span_a else {})},
                               "b": {"id": pair.b, "name": Path(pair.path_b).name,
                                     **({"start": pair.span_b[0], "end": pair.span_b[1]} if pair.span_b else {})}}
                              for pair in pairs[:DUPLICATES_SHOWN]]}

        return cached(state, f"duplicates-{kind}", build)

    return await _in_queue(state, request, compute)


async def _in_queue(state: ServerState, request: Request, compute) -> dict[str, Any]:
    """``compute`` in the bounded queue of slow work; a failure is a 422 with its reason."""
    try:
        return await state.thumbnails_queue.run(request, compute)
    except SemanticMomentsError as error:
        raise HTTPException(status_code=422, detail=str(error)) from None
