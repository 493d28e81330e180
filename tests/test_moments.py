"""The paper's math against independent NumPy/SciPy references."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats
import torch

from semantic_moments.config import MomentsConfig
from semantic_moments.errors import ConfigError
from semantic_moments.moments import TemporalMoments, finalize_moments, fuse, moments, patch_average


def reference_paper(tokens: np.ndarray, standardized: bool = False) -> dict[int, np.ndarray]:
    """Two-pass NumPy/SciPy: raw central moments (or scipy's biased skewness/kurtosis) per patch."""
    per_patch = {
        1: tokens.mean(axis=0),
        2: tokens.var(axis=0),
        3: scipy.stats.moment(tokens, moment=3, axis=0),
        4: scipy.stats.moment(tokens, moment=4, axis=0),
    }
    if standardized:
        per_patch[3] = scipy.stats.skew(tokens, axis=0, bias=True)
        per_patch[4] = scipy.stats.kurtosis(tokens, axis=0, fisher=False, bias=True)
    return {order: value.mean(axis=0) for order, value in per_patch.items()}


def reference_authors(tokens: np.ndarray) -> dict[int, np.ndarray]:
    """The authors' released-code formulas, written out independently in NumPy."""
    mean = tokens.mean(axis=0)
    std = tokens.std(axis=0, ddof=1)
    centred = tokens - mean
    skew = (centred**3).mean(axis=0) / (std**3 + 1e-6)
    kurt = (centred**4).mean(axis=0) / (std**4 + 1e-6)
    return {1: mean.mean(0), 2: std.mean(0), 3: skew.mean(0), 4: kurt.mean(0)}


@pytest.fixture
def tokens() -> np.ndarray:
    rng = np.random.default_rng(0)
    # skewed, offset, differently scaled channels: a fair test of the central moments
    return (rng.gamma(2.0, 1.5, size=(37, 11, 6)) * rng.uniform(0.5, 3, size=6) + 5.0).astype(np.float64)


@pytest.mark.parametrize("chunks", [1, 2, 5, 37])
def test_paper_parts_match_scipy_in_any_number_of_chunks(tokens, chunks):
    expected = reference_paper(tokens)
    pieces = [torch.from_numpy(piece) for piece in np.array_split(tokens, chunks)]
    got = moments(pieces, orders=(1, 2, 3, 4), convention="paper")
    for order in (1, 2, 3, 4):
        np.testing.assert_allclose(got[order].numpy(), expected[order], rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("chunks", [1, 3, 37])
def test_paper_standardized_matches_scipy_skew_and_kurtosis(tokens, chunks):
    expected = reference_paper(tokens, standardized=True)
    pieces = [torch.from_numpy(piece) for piece in np.array_split(tokens, chunks)]
    got = moments(pieces, orders=(1, 2, 3, 4), convention="paper", standardized=True)
    for order in (3, 4):
        np.testing.assert_allclose(got[order].numpy(), expected[order], rtol=1e-5)


@pytest.mark.parametrize("chunks", [1, 4])
def test_reference_convention_matches_the_authors_formulas(tokens, chunks):
    expected = reference_authors(tokens)
    pieces = [torch.from_numpy(piece) for piece in np.array_split(tokens, chunks)]
    got = moments(pieces, orders=(1, 2, 3, 4), convention="reference")
    for order in (1, 2, 3, 4):
        np.testing.assert_allclose(got[order].numpy(), expected[order], rtol=1e-9)


def test_streaming_is_stable_for_long_clips_with_large_magnitudes():
    rng = np.random.default_rng(1)
    # 4096 frames with a mean of 1e6 and spread of 1: raw power sums would lose everything
    tokens = 1e6 + rng.normal(size=(4096, 3, 4))
    expected = reference_paper(tokens)
    pieces = [torch.from_numpy(piece) for piece in np.array_split(tokens, 64)]
    got = moments(pieces, orders=(1, 2, 3), convention="paper")
    np.testing.assert_allclose(got[2].numpy(), expected[2], rtol=1e-6)
    np.testing.assert_allclose(got[3].numpy(), expected[3], atol=1e-6)


def test_accumulator_memory_does_not_depend_on_the_number_of_frames():
    accumulator = TemporalMoments(max_order=3)
    for _ in range(50):
        accumulator.update(torch.randn(8, 5, 7))
    held = [accumulator.mean] + list(accumulator.central_sums.values())
    assert accumulator.count == 400
    assert all(tensor.shape == (5, 7) for tensor in held)


@pytest.mark.parametrize("convention", ["paper", "reference"])
def test_static_video_has_zero_second_and_third_moments(convention):
    frame = torch.randn(1, 9, 5) * 3
    static = frame.repeat(16, 1, 1)
    got = moments(static, orders=(1, 2, 3), convention=convention)
    assert torch.allclose(got[1], frame[0].mean(0).double(), atol=1e-6)
    assert torch.count_nonzero(got[2]) == 0 or got[2].abs().max() < 1e-6
    assert got[3].abs().max() < 1e-6
    fused = fuse(got, (1, 2, 3), (1, 8, 4), "concat", convention)
    assert fused[5:].abs().max() < 1e-6, "the motion part of a static clip's embedding must be zero"


@pytest.mark.parametrize("convention", ["paper", "reference"])
def test_reversing_time_changes_no_moment(tokens, convention):
    # Temporal moments are statistics of the *set* of frames: playing a clip backwards gives the
    # same M(1), M(2) and M(3). (The issue text expected M(3) to flip sign; it cannot. See docs/options.md.)
    forward = moments(torch.from_numpy(tokens), orders=(1, 2, 3), convention=convention)
    backward = moments(torch.from_numpy(tokens[::-1].copy()), orders=(1, 2, 3), convention=convention)
    for order in (1, 2, 3):
        torch.testing.assert_close(forward[order], backward[order])


@pytest.mark.parametrize("convention", ["paper", "reference"])
def test_reflecting_the_feature_trajectory_keeps_m2_and_negates_m3(convention):
    # What M(3) does encode: the asymmetry of change. A brief burst away from a resting state
    # (positive skew) versus a brief dip (its reflection, negative skew) have equal M(2).
    profile = np.zeros(32)
    profile[12:16] = [0.5, 1.0, 1.0, 0.5]
    burst = torch.from_numpy(profile[:, None, None] * np.ones((1, 2, 3)))
    dip = torch.from_numpy((1.0 - profile)[:, None, None] * np.ones((1, 2, 3)))
    a = moments(burst, orders=(2, 3), convention=convention)
    b = moments(dip, orders=(2, 3), convention=convention)
    torch.testing.assert_close(a[2], b[2])
    torch.testing.assert_close(a[3], -b[3])
    assert a[3].min() > 0.01, "a burst has clearly positive asymmetry"


def test_permuting_patches_changes_nothing(tokens):
    permuted = tokens[:, np.random.default_rng(2).permutation(tokens.shape[1])]
    for convention in ("paper", "reference"):
        a = moments(torch.from_numpy(tokens), orders=(1, 2, 3, 4), convention=convention)
        b = moments(torch.from_numpy(permuted), orders=(1, 2, 3, 4), convention=convention)
        for order in a:
            torch.testing.assert_close(a[order], b[order])


def test_a_constant_feature_offset_changes_only_the_first_moment(tokens):
    # Documented: a change that shifts every frame's features equally (e.g. a clip-wide brightness
    # change that the backbone maps to an offset) is appearance: only M(1) moves.
    a = moments(torch.from_numpy(tokens), orders=(1, 2, 3), convention="paper")
    b = moments(torch.from_numpy(tokens + 2.5), orders=(1, 2, 3), convention="paper")
    torch.testing.assert_close(b[1], a[1] + 2.5)
    torch.testing.assert_close(a[2], b[2])
    torch.testing.assert_close(a[3], b[3])


def test_scaling_features_leaves_the_reference_embedding_unchanged(tokens):
    a = moments(torch.from_numpy(tokens), orders=(1, 2, 3), convention="reference")
    b = moments(torch.from_numpy(tokens * 7.0), orders=(1, 2, 3), convention="reference")
    torch.testing.assert_close(fuse(a, (1, 2, 3), (1, 8, 4)), fuse(b, (1, 2, 3), (1, 8, 4)), rtol=1e-6, atol=1e-7)


def test_fusion_shapes_weights_and_normalisation():
    moment_vectors = {1: torch.tensor([3.0, 4.0]), 2: torch.tensor([0.0, 2.0]), 3: torch.tensor([1.0, 0.0])}
    concat = fuse(moment_vectors, (1, 2, 3), (1, 8, 4), "concat", "paper")
    torch.testing.assert_close(concat, torch.tensor([3.0, 4.0, 0.0, 16.0, 4.0, 0.0]))
    added = fuse(moment_vectors, (1, 2, 3), (1, 8, 4), "add", "paper")
    torch.testing.assert_close(added, torch.tensor([7.0, 20.0]))
    reference = fuse(moment_vectors, (1, 2, 3), (1, 8, 4), "concat", "reference")
    expected = torch.tensor([0.6, 0.8, 0.0, 8.0, 4.0, 0.0])
    torch.testing.assert_close(reference, expected / expected.norm())


def test_patch_average_and_finalize_agree_with_the_one_call_api(tokens):
    accumulator = TemporalMoments(max_order=3)
    accumulator.update(torch.from_numpy(tokens))
    by_parts = patch_average(finalize_moments(accumulator, (1, 2, 3), "reference"))
    at_once = moments(torch.from_numpy(tokens), (1, 2, 3), "reference")
    for order in (1, 2, 3):
        torch.testing.assert_close(by_parts[order], at_once[order])


def test_bad_arguments_raise_clear_errors():
    with pytest.raises(ConfigError, match="shape"):
        TemporalMoments().update(torch.zeros(4, 5))
    with pytest.raises(ConfigError, match="does not match"):
        accumulator = TemporalMoments()
        accumulator.update(torch.zeros(2, 3, 4))
        accumulator.update(torch.zeros(2, 3, 5))
    with pytest.raises(ConfigError, match="one weight per order"):
        MomentsConfig(orders=(1, 2, 3), alpha=(1, 8))
    with pytest.raises(ConfigError, match="subset"):
        MomentsConfig(orders=(1, 5), alpha=(1, 1))
    with pytest.raises(ConfigError, match="at least 2"):
        MomentsConfig(num_frames=1)
    with pytest.raises(ConfigError, match="at least 2 frames"):
        moments(torch.zeros(1, 2, 3), (1, 2), "reference")
