"""Browser-playable previews of clips the browser cannot play.

Browsers play H.264 in MP4 and VP8/VP9/AV1 in WebM (and MP4); an AVI with MPEG-4 Part 2, an MPEG-2
transport stream or a WMV shows a still frame and a media error. Such a clip is transcoded once, on
its first request, with PyAV into an H.264 MP4 (no audio, at most ``MAX_SIDE`` pixels on its longer
side), cached in the server's preview folder under the file's identity (path, size, mtime), and
served from there. Transcodes run through the server's bounded preview queue (``work.py``) and stop
at the next frame when their client goes away.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

from .work import Cancelled

PLAYABLE = {
    "mp4": {"h264", "vp9", "av1"},
    "webm": {"vp8", "vp9", "av1"},
}
MAX_SIDE = 960


def playable(path: Path) -> bool:
    """True when browsers can play the file as it is (container and video codec)."""
    import av

    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            stream = container.streams.video[0]
            formats = set(container.format.name.split(","))
            codec = stream.codec_context.name
    except (av.error.FFmpegError, IndexError, UnicodeDecodeError, ValueError):
        return False
    return any(name in formats and codec in codecs for name, codecs in PLAYABLE.items())


class Previews:
    """A folder of transcoded previews; ``get(path)`` returns the file to serve for ``path``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._lock = threading.Lock()  # one transcode of a file at a time

    def get(self, path: Path, cancelled: Callable[[], bool] = lambda: False) -> Path:
        """``path`` itself if browsers play it, else its cached H.264 preview (made now if missing).
        Raises SemanticMomentsError (VideoError) when the file cannot be decoded, ``work.Cancelled``
        once ``cancelled()`` turns true while transcoding (nothing is left behind)."""
        if playable(path):
            return path
        status = path.stat()
        key = hashlib.blake2b(f"{path}|{status.st_size}|{status.st_mtime_ns}".encode(), digest_size=12).hexdigest()
        target = self.folder / f"{key}.mp4"
        with self._lock:
            if not target.exists():
                self.folder.mkdir(parents=True, exist_ok=True)
                _transcode(path, target, cancelled)
        return target


def _transcode(source: Path, target: Path, cancelled: Callable[[], bool] = lambda: False) -> None:
    """Write ``source``'s video as H.264 MP4 (yuv420p, even sides, at most MAX_SIDE) atomically."""
    import av

    from ..errors import VideoError
    from ..video import describe_error

    handle, temporary = tempfile.mkstemp(dir=target.parent, suffix=".mp4.tmp")
    os.close(handle)
    try:
        with av.open(str(source), metadata_errors="ignore") as reader, \
                av.open(temporary, "w", format="mp4") as writer:
            stream = reader.streams.video[0]
            width, height = stream.codec_context.width, stream.codec_context.height
            scale = min(1.0, MAX_SIDE / max(width, height))
            out = writer.add_stream("libx264", rate=stream.average_rate or 25)
            out.width, out.height = max(2, int(width * scale) // 2 * 2), max(2, int(height * scale) // 2 * 2)
            out.pix_fmt = "yuv420p"
            out.options = {"preset": "veryfast", "crf": "23", "movflags": "+faststart"}
            for frame in reader.decode(stream):
                if cancelled():
                    raise Cancelled(f"{source}: preview abandoned")
                frame = frame.reformat(width=out.width, height=out.height, format="yuv420p")
                frame.pts = None
                for packet in out.encode(frame):
                    writer.mux(packet)
            for packet in out.encode():
                writer.mux(packet)
        os.replace(temporary, target)
    except (av.error.FFmpegError, IndexError, UnicodeDecodeError, ValueError) as error:
        raise VideoError(f"{source}: cannot make a browser preview ({describe_error(error)})") from None
    finally:
        Path(temporary).unlink(missing_ok=True)
