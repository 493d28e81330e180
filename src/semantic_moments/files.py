"""Writing files so that a crash, a full disk or an interrupted run never leaves a half-written one,
and never replaces what it must not. One place for the temporary-file-then-rename dance."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from .errors import ConfigError, OutputError


def write_atomically(path: str | os.PathLike[str], write: Callable[[str], None], mode: int | None = None) -> Path:
    """Call ``write(temporary_path)``, then rename the temporary file (beside ``path``) onto ``path``;
    on any failure the temporary file is removed and ``path`` is untouched. ``mode``: the file's
    permission bits (default: what the umask gives a new file). Raises OutputError naming ``path``
    and the cause for a folder that is missing or cannot be written, or a full disk."""
    target = Path(path)
    try:
        handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    except FileNotFoundError:
        raise OutputError(f"{target}: no such folder {target.parent}") from None
    except OSError as error:
        raise OutputError(f"{target}: cannot write here ({error.strerror or error})") from None
    os.close(handle)
    try:
        os.chmod(temporary, mode if mode is not None else 0o666 & ~current_umask())
        write(temporary)
        os.replace(temporary, target)
    except OSError as error:
        Path(temporary).unlink(missing_ok=True)
        raise OutputError(f"{target}: cannot write ({error.strerror or error})") from None
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return target


def current_umask() -> int:
    """The process umask (read without changing it where /proc allows)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    current = os.umask(0)
    os.umask(current)
    return current


def require_new_output(path: str | os.PathLike[str], is_ours: Callable[[Path], bool], overwrite: bool = False,
                       what: str = "file") -> Path:
    """Refuse, with a ConfigError naming ``path``, an output target that must not be replaced: anything
    that is not a regular file (a folder, a device, a FIFO, a link), anything inside an index folder,
    and an existing file that ``is_ours`` does not recognise as an earlier output unless ``overwrite``.
    Returns the path."""
    target = Path(path)
    if target.is_symlink() or (target.exists() and not target.is_file()):
        raise ConfigError(f"{target}: exists and is not a regular file; give a new file name for the {what}")
    absolute = Path(os.path.abspath(target))
    if any((folder / "index.sqlite").exists() for folder in absolute.parents):
        raise ConfigError(f"{target}: inside an index folder; write the {what} elsewhere")
    if not absolute.parent.is_dir():
        raise ConfigError(f"{target}: no such folder {target.parent}")
    if target.exists() and not overwrite and not is_ours(target):
        raise ConfigError(f"{target}: exists and is not an earlier {what}; give another name, or --overwrite "
                          "to replace it")
    return target


def read_csv_rows(path: str | os.PathLike[str], required: tuple[str, ...], what: str = "labels file") -> list[dict[str, str]]:
    """The rows of a UTF-8 CSV file with a header holding every column of ``required``; ConfigError
    naming the file and the cause (missing, not UTF-8, not CSV, no rows, a missing column)."""
    import csv

    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            rows = list(csv.DictReader(handle))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such {what}") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: a folder, not a {what}") from None
    except UnicodeDecodeError as error:
        raise ConfigError(f"{path}: not UTF-8 text (byte {error.start}); save the {what} as UTF-8 CSV") from None
    except (csv.Error, OSError) as error:
        raise ConfigError(f"{path}: cannot read the {what} ({error})") from None
    if not rows:
        raise ConfigError(f"{path}: no rows")
    missing = [column for column in required if column not in rows[0]]
    if missing:
        raise ConfigError(f"{path}: needs columns {','.join(required)} (missing {', '.join(missing)})")
    return rows
