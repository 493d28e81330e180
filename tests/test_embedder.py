"""The pipeline video -> frames -> tokens -> moments -> Embedding, and the Embedding file format."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import moving_square, write_video

from semantic_moments import Embedding, SemanticMoments, create_backbone, moment_similarities, similarity
from semantic_moments.bench.synthetic import Motion, Scene, render
from semantic_moments.errors import ConfigError, EmbeddingFileError, VideoError
from semantic_moments.flow import TokenFlow, flow_vectors
from semantic_moments.moments import fuse, moments


def test_same_motion_beats_same_appearance_on_synthetic_clips(default_model, tmp_path):
    # A real photo (the cat) on a brick wall moving right, the same motion by another object
    # (the coffee cup) on grass, and the cat on the same wall spinning in place.
    cat_on_brick = Scene("brick", (0.9, 0.6, 0.5), "chelsea", 1, start=(0.3, 0.5))
    cup_on_grass = Scene("grass", (0.5, 0.9, 0.5), "coffee", 2, start=(0.3, 0.5))
    right = Motion("line", direction=0.0, amount=0.4)
    spin = Motion("spin", cycles=1.0)
    reference = write_video(tmp_path / "ref.mp4", render(cat_on_brick, right, 32, 224))
    positive = write_video(tmp_path / "pos.mp4", render(cup_on_grass, right, 32, 224))
    negative = write_video(tmp_path / "neg.mp4", render(cat_on_brick, spin, 32, 224))
    ref, pos, neg = default_model.embed([reference, positive, negative])
    assert similarity(ref, pos) > similarity(ref, neg)
    # ...and appearance alone (M(1), no flow) ranks them the other way: the motion parts do the work.
    assert similarity(ref, pos, alpha=(1, 0, 0), flow_weight=0) < similarity(ref, neg, alpha=(1, 0, 0), flow_weight=0)
    # the token flow ranks them right on its own (the moments of blocks.7 alone do not, here)
    assert moment_similarities(ref, pos)["flow"] > moment_similarities(ref, neg)["flow"]


def test_embedding_shapes_metadata_and_motion_map(default_model, tmp_path):
    path = write_video(tmp_path / "clip.mp4", moving_square(40, 96, (250, 200, 0), "right"), fps=20)
    embedding = default_model.embed(path)
    assert set(embedding.moments) == {1, 2, 3} and embedding.dim == 80
    assert sorted(embedding.flow) == [2, 4] and embedding.flow[2].shape == (32,) and embedding.flow[4].shape == (128,)
    assert sorted(embedding.keypoints) == ["hands", "pose"] and not embedding.keypoints["pose"].any()  # no person
    assert embedding.vector().shape == (3 * 80 + 32 + 128 + 152 + 104,) and embedding.vector().dtype == np.float32
    assert np.linalg.norm(embedding.vector()) == pytest.approx(1.0, abs=1e-5)
    assert embedding.num_source_frames == 40 and embedding.fps == pytest.approx(20.0)
    assert embedding.duration_seconds == pytest.approx(2.0, abs=0.06)
    assert len(embedding.pts_seconds) == 16 and embedding.source == str(path)
    assert embedding.backbone["name"] == "efficientnet-lite0" and embedding.backbone["layer"] == "blocks.7"
    assert embedding.motion_map.shape == (14, 14)
    # the square moves along one band of rows: motion energy concentrates there
    band = embedding.motion_map[4:9].mean()
    elsewhere = np.concatenate([embedding.motion_map[:2], embedding.motion_map[-2:]]).mean()
    assert band > 2 * elsewhere


def test_the_pipeline_equals_moments_of_the_tokens_computed_directly(tiny_model, tmp_path):
    frames = moving_square(8, 64, (200, 30, 30), "down")
    embedding = tiny_model.embed(frames)
    backbone = tiny_model.backbone
    with torch.inference_mode():
        tokens = backbone.forward_tokens(backbone.preprocess(torch.from_numpy(frames))).patch
    expected = moments(tokens, (1, 2, 3), "reference")
    for order in (1, 2, 3):
        np.testing.assert_allclose(embedding.moments[order], expected[order].float().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(embedding.vector(flow_weight=0, keypoint_weight=0),
                               fuse(expected, (1, 2, 3), (1, 8, 4)).float().numpy(), atol=1e-6)
    flow = TokenFlow((8, 8), total_steps=7, segments=2)
    flow.update(tokens)
    expected_flow = flow_vectors(flow, (2, 4))
    for cells in (2, 4):
        np.testing.assert_allclose(embedding.flow[cells], expected_flow[cells].float().numpy(), rtol=1e-5, atol=1e-7)
    parts = {**expected, "flow.2": expected_flow[2], "flow.4": expected_flow[4]}
    np.testing.assert_allclose(embedding.vector(keypoint_weight=0),
                               fuse(parts, (1, 2, 3, "flow.2", "flow.4"), (1, 8, 4, 16, 16)).float().numpy(), atol=1e-6)
    # no person in a moving square: the keypoint parts are zeros and add nothing but their length
    assert not any(part.any() for part in embedding.keypoints.values())
    np.testing.assert_allclose(embedding.vector()[:-(152 + 104)], embedding.vector(keypoint_weight=0), atol=1e-6)


def test_a_tensor_clip_is_one_clip(tiny_model):
    frames = moving_square(12, 64, (200, 30, 30), "right")
    from_tensor = tiny_model.embed(torch.from_numpy(frames))
    assert isinstance(from_tensor, Embedding)
    np.testing.assert_array_equal(from_tensor.vector(), tiny_model.embed(frames).vector())


def test_batch_size_does_not_change_the_result(tmp_path):
    frames = moving_square(24, 64, (200, 30, 30), "right")
    one_pass = SemanticMoments("test-tiny", frames=16, batch_size=64).embed(frames)
    many_passes = SemanticMoments("test-tiny", frames=16, batch_size=3).embed(frames)
    for order in (1, 2, 3):
        np.testing.assert_allclose(one_pass.moments[order], many_passes.moments[order], rtol=1e-5, atol=1e-6)


def test_clips_share_backbone_batches_without_changing_results(videos):
    # batch of 12 frames, 8 per clip: batches hold 1.5 clips, so clips are split across batches
    sources = [moving_square(10 + i, 64, (40 * i, 200, 90), "right" if i % 2 else "down") for i in range(5)]
    sources.insert(2, videos / "text.mp4")
    sources.append(videos / "good.mp4")
    shared = list(SemanticMoments("test-tiny", frames=8, batch_size=12).iter_embed(sources))
    alone = SemanticMoments("test-tiny", frames=8, batch_size=8)
    assert [r.source for r in shared] == ["<array>"] * 2 + [str(videos / "text.mp4")] + ["<array>"] * 3 + [str(videos / "good.mp4")]
    assert shared[2].error is not None and "not a readable video" in str(shared[2].error)
    for result, source in zip(shared, sources):
        if result.error is None:
            expected = alone.embed(source)
            for order in (1, 2, 3):
                np.testing.assert_allclose(result.embedding.moments[order], expected.moments[order], rtol=1e-5, atol=1e-6)


def test_changing_alpha_later_equals_embedding_with_that_alpha(tmp_path):
    frames = moving_square(16, 64, (30, 200, 30), "right")
    default = SemanticMoments("test-tiny", frames=8).embed(frames)
    direct = SemanticMoments("test-tiny", frames=8, alpha=(2, 1, 0.5)).embed(frames)
    np.testing.assert_allclose(default.vector(alpha=(2, 1, 0.5)), direct.vector(), atol=1e-6)
    appearance = default.vector(alpha=(1, 0, 0), flow_weight=0)
    np.testing.assert_allclose(appearance[:24], default.moments[1] / np.linalg.norm(default.moments[1]), atol=1e-6)
    assert np.abs(appearance[24:]).max() == 0


@pytest.mark.parametrize(
    ("options", "dim"),
    [
        ({"fusion": "add"}, 24),  # no token flow: its size differs from the moments'
        ({"granularity": "frame"}, 72),  # no token flow: one token per frame has no grid
        ({"orders": (1, 2, 3, 4)}, 96 + 32 + 128),
        ({"orders": (2,)}, 24 + 32 + 128),
        ({"convention": "paper", "standardized": True}, 72 + 32 + 128),
        ({"flow_weight": 0}, 72),
        ({"flow_grids": (1, 2, 4), "flow_segments": 3}, 72 + 3 * 4 * (1 + 4 + 16)),
    ],
)
def test_ablation_options_are_one_implementation(options, dim):
    frames = moving_square(16, 64, (30, 30, 200), "down")
    embedding = SemanticMoments("test-tiny", frames=8, keypoints=(), **options).embed(frames)
    assert embedding.vector().shape == (dim,)
    assert np.isfinite(embedding.vector()).all()
    if options.get("granularity") == "frame":
        assert embedding.motion_map is None


def test_static_clip_has_no_motion_part(tiny_model):
    still = np.repeat(moving_square(1, 64, (120, 90, 30), "right"), 8, axis=0)
    still[::2, 0, 0] += 1  # two distinct frames, else the clip is refused as motionless
    embedding = tiny_model.embed(still)
    assert np.abs(embedding.moments[2]).max() < 0.05 * np.abs(embedding.moments[1]).max()


def test_a_global_brightness_change_is_appearance_not_motion(paper_model):
    # Documented behaviour (docs/options.md, "What the moments see"): brightening a whole clip uniformly is
    # an appearance change: it moves M(1) more than the motion moment M(2), so the fused
    # similarity of the clip to its brightened copy is higher than the appearance-only one.
    frames = moving_square(32, 128, (220, 60, 40), "right", background=70).astype(np.float32)
    brighter = np.clip(frames * 1.35 + 25, 0, 255)
    a, b = paper_model.embed([frames.astype(np.uint8), brighter.astype(np.uint8)])
    per_part = moment_similarities(a, b)
    assert per_part[2] > per_part[1] + 0.03
    assert similarity(a, b) > similarity(a, b, alpha=(1, 0, 0)) + 0.03


def test_a_brightness_fade_over_time_is_seen_as_temporal_change(default_model):
    # Documented limitation: the moments see change of the features over time, not motion as
    # such. A still scene fading in has clearly non-zero M(2); a still scene has M(2) = 0.
    still = np.repeat(moving_square(1, 128, (220, 60, 40), "right", background=70), 32, axis=0).astype(np.float32)
    fade = (still * np.linspace(0.4, 1.0, 32)[:, None, None, None]).astype(np.uint8)
    still = still.astype(np.uint8)
    still[1::2, 0, 0] += 1  # a 1-pixel flicker: two distinct frames, nothing else changes
    faded, static = default_model.embed([fade, still])
    assert np.abs(faded.moments[2]).mean() > 10 * np.abs(static.moments[2]).mean()


def test_save_and_load_round_trip(tiny_model, tmp_path):
    embedding = tiny_model.embed(moving_square(16, 64, (10, 250, 250), "right"))
    path = embedding.save(tmp_path / "sub" / "clip.moments.safetensors")
    loaded = Embedding.load(path)
    for order in embedding.moments:
        np.testing.assert_array_equal(loaded.moments[order], embedding.moments[order])
    assert loaded.config == embedding.config and loaded.backbone == embedding.backbone
    np.testing.assert_array_equal(loaded.pts_seconds, embedding.pts_seconds)
    np.testing.assert_array_equal(loaded.motion_map, embedding.motion_map)
    assert loaded.content_hash == embedding.content_hash
    np.testing.assert_array_equal(loaded.vector(), embedding.vector())
    assert not list((tmp_path / "sub").glob("*.tmp")), "atomic write leaves no temporary file"


def test_loading_bad_embedding_files(tmp_path):
    with pytest.raises(EmbeddingFileError, match="no such embedding file"):
        Embedding.load(tmp_path / "missing.moments.safetensors")
    garbage = tmp_path / "garbage.moments.safetensors"
    garbage.write_bytes(b"\x00\x01not safetensors")
    with pytest.raises(EmbeddingFileError, match="garbage.moments.safetensors: not a safetensors embedding file"):
        Embedding.load(garbage)
    from safetensors.numpy import save_file

    other = tmp_path / "other.safetensors"
    save_file({"x": np.zeros(3, dtype=np.float32)}, str(other))
    with pytest.raises(EmbeddingFileError, match="not a semantic-moments embedding"):
        Embedding.load(other)


def test_comparing_embeddings_from_different_settings_is_refused(tiny_model):
    frames = moving_square(16, 64, (10, 250, 250), "right")
    a = tiny_model.embed(frames)
    b = SemanticMoments("test-tiny", frames=8, granularity="frame").embed(frames)
    with pytest.raises(ConfigError, match=r"cannot compare <array> with <array>.*granularity: patch vs frame"):
        similarity(a, b)


def test_iter_embed_reports_bad_items_and_goes_on(tiny_model, videos):
    sources = [videos / "good.mp4", videos / "text.mp4", videos / "missing.mp4", videos / "also good.mp4",
               videos / "audio_only.m4a", videos / "one_frame.mp4", videos / "empty.mp4", videos / "truncated.mp4"]
    results = list(tiny_model.iter_embed(sources))
    assert [result.embedding is not None for result in results] == [True, False, False, True, False, False, False, False]
    for result in results:
        if result.error is not None:
            assert isinstance(result.error, VideoError)
            assert str(result.source) in str(result.error) or result.source.split("/")[-1] in str(result.error)
    with pytest.raises(VideoError, match="text.mp4"):
        tiny_model.embed(sources[:2])


def test_segment_and_frame_count_options(tiny_model, tmp_path):
    path = write_video(tmp_path / "long.mp4", moving_square(64, 64, (250, 250, 0), "right"), fps=16)
    part = tiny_model.embed(path, segment=(1.0, 2.0))
    assert part.segment == (1.0, 2.0)
    assert part.pts_seconds.min() >= 1.0 - 1e-6 and part.pts_seconds.max() < 2.0
    with pytest.raises(ConfigError, match="at least 2"):
        SemanticMoments("test-tiny", frames=1)
    with pytest.raises(ConfigError, match="batch_size"):
        SemanticMoments("test-tiny", batch_size=0)


def test_decoders_share_the_cores_and_threads_do_not_change_results(videos, monkeypatch):
    import semantic_moments.embedder as embedder

    monkeypatch.setattr(embedder, "available_cores", lambda: 4)
    model = SemanticMoments("test-tiny", frames=8)
    assert model.decode_workers == 2  # on the CPU the backbone needs the cores
    assert model._threads_per_decoder(clips=10) == 2  # 4 cores, 2 clips decoding at once
    assert model._threads_per_decoder(clips=1) == 4  # a lone clip gets every core
    assert SemanticMoments("test-tiny", frames=8, decode_workers=4)._threads_per_decoder(clips=10) == 1
    assert SemanticMoments("test-tiny", frames=8, decode_threads=3)._threads_per_decoder(clips=10) == 3
    on_gpu = create_backbone("test-tiny")
    on_gpu.device = torch.device("cuda")  # only the device type is read when the model is made
    assert SemanticMoments(on_gpu, frames=8).decode_workers == 3  # decoding feeds the GPU: every core but one
    sources = [videos / "good.mp4", videos / "good.mp4"]
    single = [r.embedding for r in SemanticMoments("test-tiny", frames=8, decode_threads=1).iter_embed(sources)]
    shared = [r.embedding for r in model.iter_embed(sources)]
    for a, b in zip(single, shared):
        np.testing.assert_array_equal(a.vector(), b.vector())
    for option in ("decode_workers", "decode_threads"):
        with pytest.raises(ConfigError, match=f"{option} must be at least 1"):
            SemanticMoments("test-tiny", **{option: 0})


def test_video_backbone_frame_count_must_fit_its_clips():
    options = {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 64,
               "image_size": 64, "num_frames": 4}
    with pytest.raises(ConfigError, match="multiple of 4"):
        SemanticMoments("videomae-base", frames=10, pretrained=False, config_overrides=options)
    model = SemanticMoments("videomae-base", frames=8, pretrained=False, config_overrides=options)
    embedding = model.embed(moving_square(20, 64, (255, 0, 0), "right"))
    # 8 frames: 4 tubelet steps of 4 x 4 patches; the flow moves between steps
    assert embedding.vector(keypoint_weight=0).shape == (96 + 32 + 128,) and embedding.flow[4].shape == (2 * 4 * 16,)


def _still_h264(path, frame, count=40, crf=28):
    """A still clip as a camera file has it: one frame, H.264-encoded (codec noise only)."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=24)
        stream.width, stream.height, stream.pix_fmt = frame.shape[1], frame.shape[0], "yuv420p"
        stream.options = {"crf": str(crf)}
        for _ in range(count):
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


@pytest.mark.parametrize("preset", ["motion", "paper"])
def test_a_still_h264_clip_embeds_as_static(preset, default_model, paper_model, tmp_path):
    # docs/options.md, "What the moments see": codec noise is not motion. The still clip's motion level
    # (0.017 measured for Lite0 blocks.7) is below the floor; the moving clip's is far above it.
    model = default_model if preset == "motion" else paper_model
    photo = render(Scene("brick", (0.9, 0.6, 0.5), "chelsea", 1, start=(0.4, 0.5)), Motion("line", amount=0.3), 24, 160)
    still = _still_h264(tmp_path / "still.mp4", photo[0])
    moving = write_video(tmp_path / "moving.mp4", photo)
    other_still = _still_h264(tmp_path / "other.mp4", photo[-1])
    a, b, c = model.embed([still, moving, other_still])
    assert a.motion_level < model.config.motion_floor < b.motion_level
    assert all(np.count_nonzero(a.moments[order]) == 0 for order in (2, 3))
    assert all(np.count_nonzero(vector) == 0 for vector in a.flow.values())
    assert np.count_nonzero(b.moments[2]) > 0
    # two still clips of one scene match by appearance; a still clip is far from the moving one
    assert similarity(a, c) > 0.9 > similarity(a, b)
    # the floor is a documented option: 0 turns it off and the noise becomes "motion"
    noisy = SemanticMoments(preset=preset, frames=16, motion_floor=0.0).embed(still)
    assert np.count_nonzero(noisy.moments[2]) > 0


def test_presets_choose_backbone_layer_frames_and_flow():
    default = SemanticMoments("test-tiny")
    assert default.config.num_frames == 16 and default.config.flow_weight == 16.0 and default.config.min_rate == 4.0
    paper = SemanticMoments(preset="paper")
    assert paper.backbone.layer == "blocks.10" and paper.config.num_frames == 32 and paper.config.flow_weight == 0
    assert paper.config.min_rate is None  # the paper samples the whole clip
    slow = SemanticMoments("test-tiny", preset="slow")
    assert (slow.config.num_frames, slow.config.min_rate, slow.config.flow_weight) == (16, None, 16.0)
    motion = SemanticMoments()
    assert motion.backbone.name == "efficientnet-lite0" and motion.backbone.layer == "blocks.7"
    assert SemanticMoments(preset="paper", frames=8, flow_weight=2).config.flow_weight == 2.0  # options override
    with pytest.raises(ConfigError, match="unknown preset 'fast'"):
        SemanticMoments(preset="fast")
    with pytest.raises(ConfigError, match="flow_weight must be finite"):
        SemanticMoments("test-tiny", flow_weight=float("nan"))
    with pytest.raises(ConfigError, match="needs fusion='concat'"):
        SemanticMoments("test-tiny", fusion="add", flow_weight=1)
