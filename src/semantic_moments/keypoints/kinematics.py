"""Moments of keypoints: the paper's temporal mean, spread and asymmetry, applied to what a body and
its hands do instead of to patch tokens. Pure NumPy, no I/O.

Token flow sees where features move in the frame; filmed from another side or distance, the same
exercise moves other patches. Keypoints say what the body does. Per frame (landmarks in frame-height
units, ``mediapipe.py``):

* **body** (33 MediaPipe landmarks): positions relative to the hip centre in torso lengths (mid-hip
  to mid-shoulder), so distance and framing drop out; the spine's inclination (lying, bending,
  standing); the elbow, shoulder, hip and knee angles. Left and right joints enter as their sum and
  the absolute difference, and horizontal positions as |x|, so a mirror image (or the same motion
  on the other side) gives the same features.
* **hands** (21 landmarks each): fingertip distances to the wrist and finger bend angles in hand
  sizes (wrist to middle knuckle), the thumb-index gap and the hand's tilt; both hands as sum and
  absolute difference.

Over the frames where something was found, each feature's temporal mean, standard deviation and
skewness (orders 1-3), plus the mean speed of the body's joints and of the angles (a slow and a fast
performance of one pose differ there): each group of features is its own unit-length block, and the
blocks are concatenated. A clip where fewer than ``MIN_FRAMES`` frames show a body (or hands) gets a
zero vector: the part saw nothing, and the index leaves it out of that pair's similarity.
"""

from __future__ import annotations

import numpy as np

POSE_LANDMARKS = 33
NOSE, LEFT_SHOULDER, RIGHT_SHOULDER, LEFT_ELBOW, RIGHT_ELBOW, LEFT_WRIST, RIGHT_WRIST = 0, 11, 12, 13, 14, 15, 16
LEFT_HIP, RIGHT_HIP, LEFT_KNEE, RIGHT_KNEE, LEFT_ANKLE, RIGHT_ANKLE = 23, 24, 25, 26, 27, 28
# left/right pairs of joints whose positions and speeds are features
PAIRS = ((LEFT_SHOULDER, RIGHT_SHOULDER), (LEFT_ELBOW, RIGHT_ELBOW), (LEFT_WRIST, RIGHT_WRIST), (LEFT_HIP, RIGHT_HIP),
         (LEFT_KNEE, RIGHT_KNEE), (LEFT_ANKLE, RIGHT_ANKLE))
# joint angles (a, b, c: the angle at b), left then right
ANGLES = (((LEFT_SHOULDER, LEFT_ELBOW, LEFT_WRIST), (RIGHT_SHOULDER, RIGHT_ELBOW, RIGHT_WRIST)),
          ((LEFT_HIP, LEFT_SHOULDER, LEFT_ELBOW), (RIGHT_HIP, RIGHT_SHOULDER, RIGHT_ELBOW)),
          ((LEFT_SHOULDER, LEFT_HIP, LEFT_KNEE), (RIGHT_SHOULDER, RIGHT_HIP, RIGHT_KNEE)),
          ((LEFT_HIP, LEFT_KNEE, LEFT_ANKLE), (RIGHT_HIP, RIGHT_KNEE, RIGHT_ANKLE)))
FINGERTIPS = (4, 8, 12, 16, 20)
FINGER_BENDS = ((2, 3, 4), (5, 6, 8), (9, 10, 12), (13, 14, 16), (17, 18, 20))  # angle at the middle joint
MIN_FRAMES = 3  # fewer frames with a detection: the part saw nothing
KEYPOINT_PARTS = ("pose", "hands")


def _angle(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """(N,) the angle at b of a-b-c, radians / pi (0..1); a, b, c: (N, 2)."""
    first, second = a - b, c - b
    cosine = (first * second).sum(-1) / np.maximum(np.linalg.norm(first, axis=-1) * np.linalg.norm(second, axis=-1),
                                                  1e-9)
    return np.arccos(np.clip(cosine, -1.0, 1.0)) / np.pi


def _symmetric(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Left and right as their sum and absolute difference (the same for a mirror image)."""
    return np.concatenate([left + right, np.abs(left - right)], axis=-1)


def body_features(pose: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(positions (N, 28), angles (N, 8)) per frame of (N, 33, >=2) landmarks (x, y in frame
    heights); NaN rows where the frame shows no body."""
    xy = np.asarray(pose, dtype=np.float64)[:, :, :2]
    hips = (xy[:, LEFT_HIP] + xy[:, RIGHT_HIP]) / 2
    shoulders = (xy[:, LEFT_SHOULDER] + xy[:, RIGHT_SHOULDER]) / 2
    spine = shoulders - hips
    torso = np.maximum(np.linalg.norm(spine, axis=-1), 1e-3)
    relative = (xy - hips[:, None]) / torso[:, None, None]
    columns = []
    for left, right in PAIRS:
        horizontal = _symmetric(np.abs(relative[:, left, :1]), np.abs(relative[:, right, :1]))
        vertical = _symmetric(relative[:, left, 1:], relative[:, right, 1:])
        columns += [horizontal, vertical]
    columns.append(np.abs(relative[:, NOSE, :1]))
    columns.append(relative[:, NOSE, 1:])
    # the spine's inclination: cosine to image-up (1 standing, 0 lying) and |sine| (which side: mirrored away)
    columns.append(np.stack([-spine[:, 1] / torso, np.abs(spine[:, 0]) / torso], axis=-1))
    positions = np.concatenate(columns, axis=-1)
    angles = np.concatenate([_symmetric(_angle(*(xy[:, j] for j in left))[:, None],
                                        _angle(*(xy[:, j] for j in right))[:, None]) for left, right in ANGLES], axis=-1)
    return positions, angles


def hand_features(hands: np.ndarray) -> np.ndarray:
    """(N, 26) per frame of (N, 2, 21, >=2) hand landmarks (slot 0 the left hand, 1 the right); a
    frame with one hand uses it for both sides, NaN rows where no hand was found."""
    xy = np.asarray(hands, dtype=np.float64)[..., :2]
    per_hand = []
    for slot in range(2):
        points = xy[:, slot]
        wrist = points[:, 0]
        size = np.maximum(np.linalg.norm(points[:, 9] - wrist, axis=-1), 1e-3)
        reach = np.stack([np.linalg.norm(points[:, tip] - wrist, axis=-1) / size for tip in FINGERTIPS], axis=-1)
        bends = np.stack([_angle(points[:, a], points[:, b], points[:, c]) for a, b, c in FINGER_BENDS], axis=-1)
        pinch = (np.linalg.norm(points[:, 4] - points[:, 8], axis=-1) / size)[:, None]
        direction = (points[:, 9] - wrist) / size[:, None]
        tilt = np.stack([-direction[:, 1], np.abs(direction[:, 0])], axis=-1)
        per_hand.append(np.concatenate([reach, bends, pinch, tilt], axis=-1))
    left, right = per_hand
    left_seen, right_seen = np.isfinite(left).all(-1), np.isfinite(right).all(-1)
    left = np.where(left_seen[:, None], left, right)
    right = np.where(right_seen[:, None], right, left)
    return _symmetric(left, right)


def _moments(values: np.ndarray) -> np.ndarray:
    """Temporal mean, standard deviation and skewness of (N, F) rows: (3F,)."""
    mean = values.mean(axis=0)
    centred = values - mean
    spread = np.sqrt((centred ** 2).mean(axis=0))
    skew = (centred ** 3).mean(axis=0) / np.maximum(spread, 1e-6) ** 3
    skew = np.where(spread > 1e-6, skew, 0.0)
    return np.concatenate([mean, spread, skew])


def _speeds(values: np.ndarray, times: np.ndarray) -> np.ndarray:
    """(N-1, F) absolute change per second between consecutive rows."""
    steps = np.maximum(np.diff(times), 1e-3)
    return np.abs(np.diff(values, axis=0)) / steps[:, None]


def _unit(block: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(block))
    return block / norm if norm > 1e-12 else np.zeros_like(block)


def _blocks(blocks: list[np.ndarray]) -> np.ndarray:
    return np.concatenate([_unit(np.nan_to_num(block)) for block in blocks]).astype(np.float32)


POSE_DIM = 3 * 28 + 3 * 8 + 8 + 3 * 12
HANDS_DIM = 3 * 26 + 26


def pose_moments(pose: np.ndarray, times: np.ndarray) -> np.ndarray:
    """(POSE_DIM,) float32 moments of a clip's body (module doc) from (N, 33, >=2) landmarks at
    ``times`` (N,) seconds; zeros where fewer than MIN_FRAMES frames show a body."""
    positions, angles = body_features(pose)
    seen = np.isfinite(positions).all(-1) & np.isfinite(angles).all(-1)
    if seen.sum() < MIN_FRAMES:
        return np.zeros(POSE_DIM, dtype=np.float32)
    positions, angles, at = positions[seen], angles[seen], np.asarray(times, dtype=np.float64)[seen]
    xy = np.asarray(pose, dtype=np.float64)[seen][:, :, :2]
    hips = (xy[:, LEFT_HIP] + xy[:, RIGHT_HIP]) / 2
    torso = np.maximum(np.linalg.norm((xy[:, LEFT_SHOULDER] + xy[:, RIGHT_SHOULDER]) / 2 - hips, axis=-1), 1e-3)
    relative = (xy - hips[:, None]) / torso[:, None, None]
    joint_speed = np.linalg.norm(np.diff(relative, axis=0), axis=-1) / np.maximum(np.diff(at), 1e-3)[:, None]
    speeds = np.concatenate([_symmetric(joint_speed[:, [left]], joint_speed[:, [right]]) for left, right in PAIRS],
                            axis=-1)
    return _blocks([_moments(positions), np.concatenate([_moments(angles), _speeds(angles, at).mean(axis=0)]),
                    _moments(speeds)])


def hand_moments(hands: np.ndarray, times: np.ndarray) -> np.ndarray:
    """(HANDS_DIM,) float32 moments of a clip's hands (module doc) from (N, 2, 21, >=2) landmarks at
    ``times`` (N,) seconds; zeros where fewer than MIN_FRAMES frames show a hand."""
    features = hand_features(hands)
    seen = np.isfinite(features).all(-1)
    if seen.sum() < MIN_FRAMES:
        return np.zeros(HANDS_DIM, dtype=np.float32)
    features, at = features[seen], np.asarray(times, dtype=np.float64)[seen]
    return _blocks([_moments(features), _speeds(features, at).mean(axis=0)])
