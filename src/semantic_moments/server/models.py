"""The JSON bodies the API accepts (Pydantic models: what FastAPI validates and documents)."""

from typing import Optional

from pydantic import BaseModel, ConfigDict, Field

from ..index.rows import MAX_NEGATIVE_WEIGHT, NEGATIVE_WEIGHT
from .state import LARGEST_ID


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
