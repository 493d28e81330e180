"""Token flow (flow.py): direction, order, chunking, and an independent NumPy reference."""

import numpy as np
import pytest
import torch

from semantic_moments.errors import ConfigError
from semantic_moments.flow import TokenFlow, cell_bounds, flow_vectors, step_flow

RIGHT, LEFT, DOWN, UP = range(4)


def moving_tokens(frames=9, size=12, channels=6, dx=0.5, dy=0.0, seed=0):
    """Tokens of a smooth random field translating by (dx, dy) patches per frame: (T, P, d)."""
    rng = np.random.default_rng(seed)
    waves = rng.normal(size=(channels, 3, 4))  # per channel: 3 sinusoids (kx, ky, phase, amplitude)
    rows, columns = np.mgrid[0:size, 0:size].astype(np.float64)
    out = np.zeros((frames, size, size, channels))
    for t in range(frames):
        x, y = columns - dx * t, rows - dy * t
        for c in range(channels):
            for kx, ky, phase, amplitude in waves[c]:
                out[t, :, :, c] += amplitude * np.sin(0.35 * kx * x + 0.35 * ky * y + phase)
    return torch.from_numpy(out.reshape(frames, size * size, channels))


def numpy_reference(tokens, rows, columns):
    """Lucas-Kanade over channels per patch, written out independently with np.linalg.lstsq."""
    x = tokens.numpy().reshape(tokens.shape[0], rows, columns, -1)
    maps = []
    for a, b in zip(x[:-1], x[1:]):
        middle = (a + b) / 2
        gx, gy = np.zeros_like(middle), np.zeros_like(middle)
        gx[:, 1:-1] = (middle[:, 2:] - middle[:, :-2]) / 2
        gy[1:-1] = (middle[2:] - middle[:-2]) / 2
        out = np.zeros((4, rows, columns))
        for r in range(rows):
            for c in range(columns):
                system = np.stack([gx[r, c], gy[r, c]], axis=1)
                change = b[r, c] - a[r, c]
                normal = system.T @ system + 1e-6 * (np.trace(system.T @ system) + 1e-9) * np.eye(2) * 0
                if abs(np.linalg.det(normal)) < 1e-12:
                    continue
                u, v = np.clip(np.linalg.solve(normal, -system.T @ change), -3, 3)
                energy = np.linalg.norm(change)
                out[:, r, c] = [max(u * energy, 0), max(-u * energy, 0), max(v * energy, 0), max(-v * energy, 0)]
        maps.append(out)
    return np.stack(maps)


def test_step_flow_matches_an_independent_least_squares_solution():
    tokens = moving_tokens(frames=3, dx=0.4, dy=-0.3)
    ours = step_flow(tokens.reshape(3, 12, 12, -1)[:-1], tokens.reshape(3, 12, 12, -1)[1:]).numpy()
    reference = numpy_reference(tokens, 12, 12)
    # the ridge term is 1e-6 of the trace: negligible for textured patches
    np.testing.assert_allclose(ours, reference, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("dx, dy, expected", [(0.5, 0, RIGHT), (-0.5, 0, LEFT), (0, 0.5, DOWN), (0, -0.5, UP)])
def test_translation_lands_in_its_direction(dx, dy, expected):
    flow = TokenFlow((12, 12), total_steps=8, segments=1)
    flow.update(moving_tokens(dx=dx, dy=dy))
    totals = flow.sums[0].sum(dim=(1, 2))
    assert int(totals.argmax()) == expected
    assert totals[expected] > 5 * totals[[i for i in range(4) if i != expected]].max()


def test_still_tokens_give_zero_flow_whatever_their_texture():
    still = moving_tokens(dx=0.0, dy=0.0)
    flow = TokenFlow((12, 12), total_steps=8, segments=2)
    flow.update(still)
    assert torch.count_nonzero(flow.sums) == 0
    assert all(torch.count_nonzero(vector) == 0 for vector in flow_vectors(flow, (2, 4)).values())


def test_chunking_does_not_change_the_result():
    tokens = moving_tokens(frames=11, dx=0.3, dy=0.2)
    whole = TokenFlow((12, 12), total_steps=10, segments=2)
    whole.update(tokens)
    chunked = TokenFlow((12, 12), total_steps=10, segments=2)
    for start in (0, 1, 4, 9):
        chunked.update(tokens[start:{0: 1, 1: 4, 4: 9, 9: 11}[start]])
    for cells in (1, 2, 3):
        torch.testing.assert_close(flow_vectors(whole, (cells,))[cells], flow_vectors(chunked, (cells,))[cells])


def test_segments_tell_a_motion_from_its_reverse_and_the_mean_does_not():
    forward = moving_tokens(frames=9, dx=0.5)
    there_and_back = torch.cat([forward, forward.flip(0)[1:]])  # right, then left
    back_and_there = torch.cat([forward.flip(0), forward[1:]])  # left, then right
    vectors = []
    for tokens in (there_and_back, back_and_there):
        flow = TokenFlow((12, 12), total_steps=len(tokens) - 1, segments=2)
        flow.update(tokens)
        vectors.append(flow_vectors(flow, (1,))[1].numpy())
    # one segment: same amounts of left and right in both; two segments: opposite orders
    assert np.allclose(vectors[0].reshape(2, 4).sum(0), vectors[1].reshape(2, 4).sum(0), rtol=1e-6)
    first = vectors[0].reshape(2, 4)
    assert first[0, RIGHT] > first[0, LEFT] and first[1, LEFT] > first[1, RIGHT]
    cosine = vectors[0] @ vectors[1] / np.linalg.norm(vectors[0]) / np.linalg.norm(vectors[1])
    assert cosine < 0.2


def test_mirroring_the_clip_swaps_left_and_right():
    tokens = moving_tokens(dx=0.4, dy=0.1)
    mirrored = tokens.reshape(9, 12, 12, -1).flip(2).reshape(9, 144, -1)
    results = []
    for clip in (tokens, mirrored):
        flow = TokenFlow((12, 12), total_steps=8, segments=1)
        flow.update(clip)
        results.append(flow.sums[0])
    torch.testing.assert_close(results[1][RIGHT].flip(-1), results[0][LEFT], rtol=1e-6, atol=1e-9)
    torch.testing.assert_close(results[1][DOWN].flip(-1), results[0][DOWN], rtol=1e-6, atol=1e-9)


def test_pyramid_sizes_and_cells():
    flow = TokenFlow((14, 14), total_steps=15, segments=2)
    flow.update(moving_tokens(frames=16, size=14))
    vectors = flow_vectors(flow, (2, 4))
    assert vectors[2].shape == (2 * 4 * 4,) and vectors[4].shape == (2 * 4 * 16,)
    assert cell_bounds(14, 4) == [(0, 4), (4, 8), (8, 11), (11, 14)]
    assert flow.counts.tolist() == [8.0, 7.0]
    with pytest.raises(ConfigError, match="does not fit"):
        flow_vectors(flow, (15,))


def test_bad_input_is_refused():
    with pytest.raises(ConfigError, match="at least 2 frames"):
        TokenFlow((4, 4), total_steps=0)
    flow = TokenFlow((4, 4), total_steps=3)
    with pytest.raises(ConfigError, match="shape"):
        flow.update(torch.zeros(2, 15, 3))


def test_candidate_descriptors_of_token_flow():
    """HOF and MBH of the token flow (bench candidates): orientation histograms against NumPy, and MBH
    blind to motion the whole frame shares."""
    from semantic_moments.flow import orientation_histograms, spatial_gradient

    rng = np.random.default_rng(0)
    dx, dy, weight = (torch.from_numpy(rng.normal(size=(2, 5, 6))) for _ in range(3))
    histograms = orientation_histograms(dx, dy, weight.abs(), bins=8).numpy()
    angle = np.mod(np.arctan2(dy.numpy(), dx.numpy()), 2 * np.pi) / (2 * np.pi) * 8
    length = np.hypot(dx.numpy(), dy.numpy()) * weight.abs().numpy()
    expected = np.zeros((2, 8, 5, 6))
    for index in np.ndindex(2, 5, 6):
        low = int(np.floor(angle[index]))
        share = angle[index] - low
        expected[index[0], low % 8, index[1], index[2]] += length[index] * (1 - share)
        expected[index[0], (low + 1) % 8, index[1], index[2]] += length[index] * share
    np.testing.assert_allclose(histograms, expected, atol=1e-12)
    uniform = torch.full((1, 6, 6), 1.5, dtype=torch.float64)  # the whole view moves together
    assert all(float(g.abs().sum()) == 0.0 for g in spatial_gradient(uniform))  # so its motion boundaries are empty
