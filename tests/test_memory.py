"""The allocator tuning (memory.py): applied once, optional, and results unchanged."""

import numpy as np
import pytest
from conftest import moving_square

from semantic_moments import SemanticMoments, memory


def test_buffers_are_kept_by_default_and_embeddings_do_not_change(monkeypatch):
    frames = moving_square(12, 64, (200, 30, 30), "right")
    tuned = SemanticMoments("test-tiny", frames=8).embed(frames)
    assert memory._applied is True or not memory.ctypes.util.find_library("c")
    monkeypatch.setattr(memory, "_applied", None)
    monkeypatch.setenv("SEMANTIC_MOMENTS_KEEP_BUFFERS", "0")
    assert memory.keep_large_buffers() is False
    plain = SemanticMoments("test-tiny", frames=8).embed(frames)
    np.testing.assert_array_equal(tuned.vector(), plain.vector())


def test_tuning_happens_once(monkeypatch):
    monkeypatch.setattr(memory, "_applied", True)
    monkeypatch.setattr(memory.ctypes, "CDLL", lambda *a, **k: pytest.fail("tuned twice"))
    assert memory.keep_large_buffers() is True
