"""One exception family for everything the package raises on purpose.

Every message names the thing that failed (a file, an option, a backbone) and the cause, and where
possible the fix, on one line, so a batch job can print it next to the item it skipped.
"""

from __future__ import annotations


class SemanticMomentsError(Exception):
    """Base class of every error raised deliberately by semantic-moments."""


class VideoError(SemanticMomentsError):
    """A clip could not be opened, decoded or sampled (missing, corrupt, no video stream, too short)."""


class BackboneError(SemanticMomentsError):
    """A backbone is unknown, its weights are missing, or it cannot produce the requested tokens."""


class ConfigError(SemanticMomentsError, ValueError):
    """An option has an invalid value, or two results were made with incompatible settings."""


class EmbeddingFileError(SemanticMomentsError):
    """An embedding file is missing, malformed or was written by an incompatible version."""


class OutputError(SemanticMomentsError, OSError):
    """An output file could not be written (a missing folder, no permission, a full disk); nothing
    half-written is left behind."""


class IndexStoreError(SemanticMomentsError):
    """An index folder is missing or damaged, or a clip asked for is not in it."""


def first_line(error: BaseException, default: str | None = None) -> str:
    """The first line of an exception's message; ``default`` (else the exception's type name) where
    it has none. Library messages (FFmpeg, safetensors, transformers) run to many lines."""
    text = str(error).strip()
    return text.splitlines()[0] if text else (default if default is not None else type(error).__name__)


def one_line(text: object) -> str:
    """``text`` with control characters escaped (a newline in a file name becomes ``\\n``), so an
    error message naming a file stays one line."""
    return "".join(char if char.isprintable() else repr(char)[1:-1] for char in str(text))
