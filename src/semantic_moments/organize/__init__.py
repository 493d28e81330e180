"""Organising a collection by motion: near-duplicates and repeats, groups, a 2-D map.

All three work on the index's fused vectors at query-time weights (``fused_vectors``: one unit
vector per clip whose inner products are the exact cosines ``search`` ranks by), so "near" means the
same here as in search.

* ``copies`` (``footage.py``): pairs of clips that are the same footage (re-encoded, resized, trimmed, mildly
  cropped): candidates from the motion vectors as ``duplicates`` finds them, each verified by its
  frames' signatures under the best time alignment (``copies.py``), so a retake of the same action
  (the same person, the same room) is not a copy.
* ``duplicates``: pairs of clips whose motion is nearly the same, from each clip's nearest
  neighbours by FAISS (exact inner-product search up to ``ann.APPROXIMATE_FROM`` clips, an HNSW
  graph beyond), never all pairs in Python; ``groups`` joins connected pairs into sets. In an index
  with windows, ``duplicate_segments`` does the same for windows: the same motion at two places of
  one or two videos.
* ``clusters``: k-means (scikit-learn) on the fused vectors, or HDBSCAN; ``choose_k`` picks k by the
  silhouette; each group is named by its most central clip; ``purity`` scores groups against labels.
* ``map_2d``: every clip as a point, UMAP (umap-learn, cosine) or PCA where UMAP is not installed or
  the collection is tiny.

The parts depend one way: ``motion.py`` (duplicates, groups, clusters, the map) <- ``footage.py``
(copies and parts, verified frame by frame).
"""

from .footage import (APPEARANCE_CANDIDATES, COPY_CANDIDATES, COPY_MOTION_FLOOR, PART_CANDIDATES,
                      PART_MOTION_FLOOR, PART_OF, copies)
from .motion import (DUPLICATE_SCORE, NEIGHBOURS, Clustering, DuplicatePair, choose_k, clusters, duplicate_segments,
                     duplicates, fused_vectors, groups, hdbscan_labels, map_2d, nearest_neighbours, purity)

__all__ = ["APPEARANCE_CANDIDATES", "COPY_CANDIDATES", "COPY_MOTION_FLOOR", "DUPLICATE_SCORE", "NEIGHBOURS",
           "PART_CANDIDATES", "PART_MOTION_FLOOR", "PART_OF", "Clustering", "DuplicatePair", "choose_k", "clusters",
           "copies", "duplicate_segments", "duplicates", "fused_vectors", "groups", "hdbscan_labels", "map_2d",
           "nearest_neighbours", "purity"]
