"""One search request, resolved once: what the CLI's ``search`` and the server's ``/api/search`` run.

The edges turn what a user gave into ``Example``s (the CLI: ids, paths and files, ``resolve``; the
server: ids and uploads); ``Index.answer(SearchRequest)`` does the rest the same way for both: the
weights (alpha, or the motion knob, or the index's own), clips or segments, which clips the examples
leave out, the search itself and each hit's percentile (``SearchAnswer``). No I/O here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError, IndexStoreError
from .rows import NEGATIVE_WEIGHT
from .where import Where


@dataclass(frozen=True)
class Example:
    """One example of what is (or is not) wanted.

    Attributes:
        query: an indexed clip's id (its stored row is the query), an Embedding, or a raw row (D,).
        own: the indexed clip this example is (a file whose content is an indexed clip's is that
            clip), or None; its own results leave it out.
        span: (start, end) seconds of ``own`` the example is, for a segment of an indexed video.
    """

    query: Any
    own: int | None = None
    span: tuple[float, float] | None = None


@dataclass(frozen=True)
class SearchRequest:
    """A search: ``examples`` of the motion wanted (at least one), ``negatives`` of what is not.

    ``k`` results (segments of long videos when ``segments``; None: when the index holds windowed
    videos; at most ``per_video`` from one video); weights: ``alpha`` (with ``flow_weight``) when
    given, else the ``motion`` knob (0 appearance, 0.5 the index's own weights, 1 motion), else the
    index's. ``include_own`` keeps an example's own clip (for segments: all of its video but the
    span searched). ``where`` restricts the results.
    """

    examples: Sequence[Example]
    negatives: Sequence[Example] = ()
    k: int = 10
    per_video: int = 1
    segments: bool | None = None
    alpha: Sequence[float] | None = None
    flow_weight: float | None = None
    motion: float | None = None
    negative_weight: float = NEGATIVE_WEIGHT
    where: Where | None = None
    include_own: bool = False

    def __post_init__(self) -> None:
        if not self.examples:
            raise ConfigError("give at least one example to search with")

    def exclusions(self, segments: bool) -> dict[int, tuple[float, float] | None]:
        """{clip id: the span to leave out of the results, None: all of it} for the examples' own
        clips: all of each, unless ``include_own``, which (for segment results) leaves out only the
        span an example is. A negative's own clip is left out by the search itself."""
        if not self.include_own:
            return {example.own: None for example in self.examples if example.own is not None}
        if not segments:
            return {}
        return {example.own: example.span for example in self.examples
                if example.own is not None and example.span is not None}

    def cancelled(self) -> list[int]:
        """Clips given both as an example and as a negative (they cancel out)."""
        wanted = {example.own for example in self.examples if example.own is not None}
        return sorted(wanted & {example.own for example in self.negatives if example.own is not None})


@dataclass(frozen=True)
class SearchAnswer:
    """What a request found: ``hits`` (SearchHit, or SegmentHit for segments), best first, with the
    percentile of each score among the index's, the weights used (None: the index's) and whether
    the results are segments."""

    hits: list[Any]
    percentiles: list[float]
    segments: bool
    alpha: tuple[float, ...] | None
    flow_weight: float | None
    cancelled: list[int] = field(default_factory=list)


def resolve(index: Any, given: str | int, segment: tuple[float, float] | None,
            embed: Callable[[str, tuple[float, float] | None], Any], where: str = "the index") -> Example:
    """The Example a user's ``given`` names: an indexed clip by id or path is itself (its stored row);
    a segment of one is that part of its file, embedded; any other file is embedded, and is the
    indexed clip whose content it has, if any. ``embed(path, segment)`` makes an Embedding (called
    only when needed); ``index`` answers ``lookup`` and ``lookup_content``."""
    found = index.lookup(given)
    exists = Path(str(given)).exists()
    if found is not None and segment is None:
        return Example(found[0], own=found[0])
    if found is not None and not exists:  # a segment of an indexed video given by id or path
        return Example(embed(found[1], segment), own=found[0], span=segment)
    if str(given).isdigit() and not exists:
        raise IndexStoreError(f"no clip with id {given} in {where} (and no file of that name)")
    embedding = embed(str(given), segment)
    found = found or index.lookup_content(embedding.content_hash)
    return Example(embedding, own=found[0] if found else None, span=segment if found else None)
