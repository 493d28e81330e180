"""One settings object: presets resolve to it, overrides go through replace/resolve, and the CLI,
the model, the bench's methods and the index's check are derived from it."""

from __future__ import annotations

import dataclasses

import pytest

from semantic_moments.bench.methods import PAPER_NAME, default_methods
from semantic_moments.cli import build_parser
from semantic_moments.errors import ConfigError
from semantic_moments.settings import FIELDS, PRESETS, Settings


def test_presets_resolve_to_settings_and_the_default_is_motion():
    assert Settings.preset() is PRESETS["motion"] == Settings()
    motion, slow, flow, paper = (Settings.preset(name) for name in ("motion", "slow", "flow", "paper"))
    assert (motion.frames, motion.min_rate, motion.flow_weight, motion.keypoints, motion.keypoint_weight) == \
        (16, 4.0, 16.0, ("pose", "hands"), 8.0)
    assert (slow.frames, slow.min_rate, slow.flow_weight, slow.keypoints) == (16, None, 16.0, ("pose", "hands"))
    assert flow == motion.replace(keypoints=())  # the previous default
    assert (paper.layer, paper.frames, paper.min_rate, paper.flow_weight, paper.keypoints) == \
        ("blocks.10", 32, None, 0.0, ())
    with pytest.raises(ConfigError, match="unknown preset 'fast'; known: motion, slow, flow, paper"):
        Settings.preset("fast")


def test_the_moments_config_is_derived_and_validated():
    config = Settings().config
    assert (config.num_frames, config.min_rate, config.flow_weight, config.alpha) == (16, 4.0, 16.0, (1.0, 8.0, 4.0))
    assert Settings(orders=(1, 2, 3, 4)).config.alpha == (1.0, 8.0, 4.0, 4.0)  # the paper's weight per order
    assert Settings(min_rate=0).min_rate is None  # 0: over the whole clip
    with pytest.raises(ConfigError, match="num_frames must be at least 2"):
        Settings(frames=1)
    with pytest.raises(ConfigError, match="unknown setting"):
        Settings().replace(frame=8)


def test_resolve_applies_partial_overrides_as_they_are_meant():
    other = Settings.resolve(None, backbone="tiny-test")
    assert other.backbone == "tiny-test" and other.layer is None  # the preset's layer is the preset backbone's
    assert Settings.resolve("paper", frames=8, flow_weight=2).flow_weight == 2.0
    assert Settings.resolve(None, granularity="frame").flow_weight == 0.0  # frame tokens cannot carry the flow
    assert Settings.resolve(Settings(alpha=(1, 2, 3)), orders=(1, 2)).config.alpha == (1.0, 8.0)
    assert Settings.resolve(None, frames=None) == Settings()  # None: not given


def test_every_settings_field_on_the_command_line_is_one_option_with_the_field_help():
    embed = build_parser().parse_args(["embed", "x.mp4", "-o", "out"])
    shown = [item.name for item in dataclasses.fields(Settings) if item.metadata.get("flag") != ""]
    assert all(getattr(embed, name) is None for name in shown)  # not given: the preset's (or the index's)
    parsed = build_parser().parse_args(["embed", "x.mp4", "-o", "out", "--frames", "8", "--min-rate", "0", "--random-weights",
                                        "--orders", "1,2", "--standardized"])
    assert (parsed.frames, parsed.min_rate, parsed.pretrained, parsed.orders, parsed.standardized) == \
        (8, 0.0, False, (1, 2), True)
    assert set(shown) <= set(FIELDS)


def test_bench_methods_are_settings():
    listed = default_methods(["efficientnet-lite0"])
    methods = {method.name: method for method in listed if method.group != "frames"}
    main = next(method for method in listed if method.group == "main")
    assert main.settings == Settings()
    assert main.key.endswith("[efficientnet-lite0:blocks.7 + pose+hands, T=16, at least 4/s]")
    assert methods["keypoints: none (the flow preset)"].settings == Settings.preset("flow")
    assert methods["keypoints: body + hands, weight 16"].settings.keypoint_weight == 16.0
    assert methods[PAPER_NAME].settings == Settings.preset("paper")
    standardized = methods["moments: paper convention, standardized"].settings
    assert (standardized.convention, standardized.standardized) == ("paper", True)
    flow_only = methods["token flow only"].settings
    assert flow_only.config.alpha == (0.0, 0.0, 0.0) and flow_only.flow_weight == 1.0


def test_an_index_refuses_a_preset_that_disagrees_naming_both(tmp_path, default_model):
    from conftest import moving_square

    from semantic_moments import Index
    from semantic_moments.collection import model_for_index

    with Index.open(tmp_path / "x.index", create=True) as index:
        index.add(default_model.embed(moving_square(24, 64, (230, 60, 40), "right")), path=str(tmp_path / "a.mp4"))
        assert model_for_index(index).settings == default_model.settings  # the index's own settings
        with pytest.raises(ConfigError, match=r"min_rate: index has 4\.0, --preset slow gives None"):
            model_for_index(index, "slow")
        with pytest.raises(ConfigError, match=r"frames: index has 16, the options given give 32"):
            model_for_index(index, frames=32)
