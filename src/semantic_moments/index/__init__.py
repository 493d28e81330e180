"""Persistent motion search over a collection (``core.Index`` is the façade).

The parts depend one way, and none imports ``Index``::

    store.py        RowStore: the SQLite file (schema, settings, transactions, row decoding)
    rows.py         the row layout's math: unit blocks, the exact weighted cosine (pure NumPy)
    layout.py       RowLayout: parts, orders, config; query weights; fused vectors
    matrix.py       ClipMatrix: every clip's row as arrays, per generation
    ann.py          the FAISS HNSW file
    calibration.py  percentiles and the motion knob, from a ClipMatrix
    segments.py     windows of long videos scored and merged into segments
    where.py        Where: which clips a search may return (path, folder, duration, windowed), as SQL
    search.py       clip search: ANN or exact candidates, exact re-scoring of one or several examples
    request.py      SearchRequest: one search resolved once (examples, weights, own clips), for CLI and server
    records.py      writing clip and window rows; failures and removals builds read
    maintenance.py  check, repair, Parquet export
    core.py         Index: the façade over all of them
"""

from .calibration import motion_alpha
from .core import Index
from .records import Failure
from .request import Example, SearchAnswer, SearchRequest, resolve
from .search import SearchHit
from .segments import SegmentHit
from .where import Where

__all__ = ["Example", "Failure", "Index", "SearchAnswer", "SearchHit", "SearchRequest", "SegmentHit", "Where",
           "motion_alpha", "resolve"]
