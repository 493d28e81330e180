"""MediaPipe Pose and Hands (the Tasks API, CPU) as keypoint sources.

Coordinates come out in units of the frame's height, origin at the top left (x right, y down), so
distances are the same along both axes whatever the aspect ratio. A frame where nothing is found is
a row of NaN: the moments of keypoints (``kinematics.py``) use the frames where something was seen.
"""

from __future__ import annotations

import atexit
import threading
from pathlib import Path

import numpy as np

from ..errors import BackboneError
from .kinematics import LEFT_ELBOW, LEFT_WRIST, POSE_LANDMARKS, RIGHT_ELBOW, RIGHT_WRIST

MAX_SIDE = 640  # frames are scaled down to this long side first: MediaPipe's own inputs are 224-256 px


def _close_at_exit(source) -> None:
    """Close ``source`` while MediaPipe's dispatcher threads still run: they stop at the threading
    module's exit hooks (run last-registered first), before ``atexit``'s, and a landmarker closed
    later prints a traceback."""
    register = getattr(threading, "_register_atexit", None)
    try:
        (register or atexit.register)(source.close)
    except RuntimeError:  # already shutting down
        atexit.register(source.close)


def _image(frame: np.ndarray):
    import mediapipe as mp

    return mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(frame))


def _scaled(frames: np.ndarray) -> np.ndarray:
    """(N, H, W, 3) uint8 with the long side at most MAX_SIDE."""
    from ..video.clips import resize_frames

    height, width = frames.shape[1:3]
    scale = MAX_SIDE / max(height, width)
    if scale >= 1:
        return frames
    return resize_frames(frames, (max(1, round(height * scale)), max(1, round(width * scale))))


class MediaPipePose:
    """Body landmarks of the largest, most central person in each frame (one track)."""

    parts = 1

    def __init__(self, entry, model: Path) -> None:
        from mediapipe.tasks.python import BaseOptions, vision

        self.entry, self.model = entry, model
        options = vision.PoseLandmarkerOptions(base_options=BaseOptions(model_asset_path=str(model)),
                                               running_mode=vision.RunningMode.IMAGE, num_poses=2)
        try:
            self._landmarker = vision.PoseLandmarker.create_from_options(options)
        except Exception as error:  # noqa: BLE001 - MediaPipe raises RuntimeError/ValueError for bad files
            raise BackboneError(f"{model}: MediaPipe cannot load it ({error})") from None
        self._lock = threading.Lock()  # one graph: calls from several threads take turns
        _close_at_exit(self)

    def detect(self, frames: np.ndarray) -> np.ndarray:
        """(N, H, W, 3) uint8 RGB -> (N, 33, 3) float32: x, y (frame heights) and visibility of each
        landmark; NaN rows where no person is found. Several people: the one nearest the previous
        frame's choice, the first time the largest and most central."""
        frames = _scaled(frames)
        height, width = frames.shape[1:3]
        result = np.full((len(frames), POSE_LANDMARKS, 3), np.nan, dtype=np.float32)
        previous = None
        for index, frame in enumerate(frames):
            with self._lock:
                found = self._landmarker.detect(_image(frame)).pose_landmarks
            people = [np.array([[p.x * width / height, p.y, p.visibility or 0.0] for p in person], dtype=np.float32)
                      for person in found if len(person) == POSE_LANDMARKS]
            if not people:
                continue
            result[index] = people[_choose(people, previous, width / height)]
            previous = result[index]
        return result

    def close(self) -> None:
        if self._landmarker is not None:
            self._landmarker.close()
            self._landmarker = None


def _choose(people: list[np.ndarray], previous: np.ndarray | None, aspect: float) -> int:
    """Which person to follow: the nearest to the previous choice (hip centres), else the largest
    and most central."""
    hips = [person[[23, 24], :2].mean(axis=0) for person in people]
    if previous is not None:
        before = previous[[23, 24], :2].mean(axis=0)
        return int(np.argmin([np.linalg.norm(hip - before) for hip in hips]))
    centre = np.array([aspect / 2, 0.5])
    scores = [np.ptp(person[:, 0]) * np.ptp(person[:, 1]) / (1.0 + np.linalg.norm(hip - centre))
              for person, hip in zip(people, hips)]
    return int(np.argmax(scores))


class MediaPipeHands:
    """Hand landmarks, found on crops around the body's wrists (hands are found far more often there
    than on whole frames), in the body's left/right slots."""

    def __init__(self, entry, model: Path) -> None:
        from mediapipe.tasks.python import BaseOptions, vision

        self.entry, self.model = entry, model
        options = vision.HandLandmarkerOptions(base_options=BaseOptions(model_asset_path=str(model)),
                                               running_mode=vision.RunningMode.IMAGE, num_hands=1,
                                               min_hand_detection_confidence=0.3)
        try:
            self._landmarker = vision.HandLandmarker.create_from_options(options)
        except Exception as error:  # noqa: BLE001
            raise BackboneError(f"{model}: MediaPipe cannot load it ({error})") from None
        self._lock = threading.Lock()
        _close_at_exit(self)

    def detect(self, frames: np.ndarray, pose: np.ndarray) -> np.ndarray:
        """(N, H, W, 3) uint8 frames and their (N, 33, 3) pose -> (N, 2, 21, 3) float32: x, y (frame
        heights) and 1 of each hand landmark, slot 0 at the body's left wrist and 1 at its right; NaN
        where no hand is found (or no body, whose wrists place the crops)."""
        height, width = frames.shape[1:3]
        result = np.full((len(frames), 2, 21, 3), np.nan, dtype=np.float32)
        for index, frame in enumerate(frames):
            body = pose[index]
            if not np.isfinite(body[:, 0]).all():
                continue
            for slot, (wrist, elbow) in enumerate(((LEFT_WRIST, LEFT_ELBOW), (RIGHT_WRIST, RIGHT_ELBOW))):
                crop = _hand_crop(body[wrist, :2], body[elbow, :2], height, width)
                if crop is None:
                    continue
                top, left, side = crop
                patch = frame[top:top + side, left:left + side]
                with self._lock:
                    found = self._landmarker.detect(_image(patch)).hand_landmarks
                if found:
                    points = np.array([[p.x * side + left, p.y * side + top] for p in found[0]], dtype=np.float32)
                    result[index, slot, :, :2] = points / height
                    result[index, slot, :, 2] = 1.0
        return result

    def close(self) -> None:
        if self._landmarker is not None:
            self._landmarker.close()
            self._landmarker = None


def _hand_crop(wrist: np.ndarray, elbow: np.ndarray, height: int, width: int) -> tuple[int, int, int] | None:
    """(top, left, side) pixels of a square around the hand beyond ``wrist`` (frame-height units),
    sized by the forearm; None where it falls outside the frame."""
    forearm = wrist - elbow
    length = max(float(np.linalg.norm(forearm)), 0.05)
    centre = (wrist + 0.4 * forearm) * height
    side = int(round(min(max(1.6 * length * height, 48), min(height, width))))
    left = int(round(centre[0] - side / 2))
    top = int(round(centre[1] - side / 2))
    left, top = min(max(left, 0), width - side), min(max(top, 0), height - side)
    if not (0 <= centre[0] < width and 0 <= centre[1] < height):
        return None
    return top, left, side
