"""What a file is, without decoding it: its content hash (remembered per file version) and, through
the packet scan of ``decode.VideoReader``, its duration."""

from __future__ import annotations

import functools
import hashlib
import os


def hash_file(path: str | os.PathLike[str]) -> str:
    """BLAKE2b-128 hex digest of a file's bytes.

    Remembered per version of the file (path, size, mtime, ctime, inode: any write changes ctime),
    so a file looked at twice in one run (an index build compares it, then embeds it) is read once.
    """
    stat = os.stat(path)
    return hash_file_version(os.path.abspath(path), stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino)


@functools.lru_cache(maxsize=4096)
def hash_file_version(path: str, size: int, mtime_ns: int, ctime_ns: int, inode: int) -> str:
    digest = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def probe_duration(path: str | os.PathLike[str]) -> float:
    """A video file's duration in seconds, from its packets (no decoding)."""
    from .decode import VideoReader

    with VideoReader(path, threads=1) as reader:
        return reader.duration_seconds
