"""Which clips a search may return: a path glob or folder, a duration range, windowed or whole clips.
Turned into SQL over the ``clips`` table (no Python loop over clips)."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError

MAX_TEXT = 1000


@dataclass(frozen=True)
class Where:
    """A filter on search results; every given field must hold.

    Attributes:
        path: a glob on the clip's path (``*`` any run of characters, ``?`` one; case-sensitive),
            e.g. ``*/dogs/*`` or ``*.mp4``; several (a tuple): every one must match.
        folder: the clip's path starts with this folder (made absolute); several: all must hold.
        contains: the path contains this text, in any case (the page's filter box); several: all.
        Texts are at most MAX_TEXT characters (a longer glob is no filter anyone means, and SQLite
        refuses it).
        min_duration, max_duration: seconds.
        windowed: True: only videos indexed with windows; False: only clips without.
    """

    path: str | tuple[str, ...] | None = None
    folder: str | tuple[str, ...] | None = None
    contains: str | tuple[str, ...] | None = None
    min_duration: float | None = None
    max_duration: float | None = None
    windowed: bool | None = None

    def __post_init__(self) -> None:
        for name in ("path", "folder", "contains"):
            value = getattr(self, name)
            values = (value,) if isinstance(value, str) else tuple(value or ())
            if any(not isinstance(text, str) or len(text) > MAX_TEXT or "\x00" in text for text in values):
                raise ConfigError(f"where {name} must be text of at most {MAX_TEXT} characters")
            object.__setattr__(self, name, values or None)
        for name in ("min_duration", "max_duration"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise ConfigError(f"{name} must be a finite, non-negative number of seconds, got {value!r}")
        if self.min_duration is not None and self.max_duration is not None and self.min_duration > self.max_duration:
            raise ConfigError(f"min_duration {self.min_duration:g} s is above max_duration {self.max_duration:g} s")

    @property
    def empty(self) -> bool:
        return all(getattr(self, name) is None for name in ("path", "folder", "contains", "min_duration",
                                                            "max_duration", "windowed"))

    def sql(self) -> tuple[str, list[Any]]:
        """(condition, parameters) for ``SELECT ... FROM clips WHERE condition``."""
        clauses, parameters = ["1"], []
        for glob in self.path or ():
            clauses.append("path GLOB ?")
            parameters.append(glob)
        for given in self.folder or ():
            folder = os.path.join(os.path.abspath(given), "")
            clauses.append("substr(path, 1, ?) = ?")
            parameters += [len(folder), folder]
        for text in self.contains or ():
            if text:
                clauses.append("instr(lower(path), lower(?)) > 0")
                parameters.append(text)
        if self.min_duration is not None:
            clauses.append("COALESCE(duration_seconds, 0) >= ?")
            parameters.append(float(self.min_duration))
        if self.max_duration is not None:
            clauses.append("COALESCE(duration_seconds, 0) <= ?")
            parameters.append(float(self.max_duration))
        if self.windowed is not None:
            clauses.append(("" if self.windowed else "NOT ") + "EXISTS (SELECT 1 FROM windows w WHERE w.clip_id = clips.id)")
        return " AND ".join(clauses), parameters

    @classmethod
    def parse(cls, terms: list[str]) -> Where:
        """A filter from ``KEY=VALUE`` terms (the CLI's ``--where``): ``path=GLOB``, ``folder=DIR``,
        ``contains=TEXT``, ``duration=A-B`` (seconds; ``A-`` or ``-B`` open), ``windowed=yes|no``."""
        fields: dict[str, Any] = {}
        for term in terms:
            key, separator, value = term.partition("=")
            key = key.strip().lower()
            if not separator or not value:
                raise ConfigError(f"--where takes KEY=VALUE (path, folder, contains, duration, windowed), got {term!r}")
            if key in ("path", "folder", "contains"):  # repeated: every one must hold
                fields[key] = (*fields.get(key, ()), value)
            elif key == "duration":
                low, dash, high = value.partition("-")
                try:
                    fields["min_duration"] = float(low) if low.strip() else None
                    fields["max_duration"] = float(high) if high.strip() else None
                except ValueError:
                    raise ConfigError(f"--where duration=A-B takes seconds like 2-10, 5- or -30, got {value!r}") from None
                if not dash:
                    raise ConfigError(f"--where duration=A-B takes a range like 2-10, 5- or -30, got {value!r}")
            elif key == "windowed":
                if value.lower() not in ("yes", "no", "true", "false"):
                    raise ConfigError(f"--where windowed= takes yes or no, got {value!r}")
                fields["windowed"] = value.lower() in ("yes", "true")
            else:
                raise ConfigError(f"--where: unknown key {key!r} (path, folder, contains, duration, windowed)")
        return cls(**fields)
