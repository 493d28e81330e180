"""Video in, frames out. No model code.

The rooms, each changeable alone (as torchcodec and decord keep sampling apart from decoding)::

    sample.py     the sampling rule: timestamps in, frame indices out (pure; tested without files)
    decode.py     VideoReader (PyAV): frames by index, decoding only what they need; write_video
    probe.py      a file's content hash and duration, without decoding
    clips.py      read_clip: T frames of a file, an image folder or an array (SampledClip)
    streams.py    a long video sampled at a fixed rate, decoded chunk by chunk (windows)
    readahead.py  reading in worker threads while the caller works
"""

from .clips import IMAGE_SUFFIXES, VIDEO_SUFFIXES, SampledClip, read_array, read_clip, read_image_folder, read_video, resize_frames
from .decode import MAX_FRAME_PIXELS, VideoReader, describe_error, write_video
from .probe import hash_file, hash_file_version, probe_duration
from .readahead import read_ahead
from .sample import require_motion, sample_frame_indices
from .streams import VideoSamples, sample_video, samples_of

__all__ = ["IMAGE_SUFFIXES", "VIDEO_SUFFIXES", "MAX_FRAME_PIXELS", "SampledClip", "VideoReader", "VideoSamples", "describe_error",
           "hash_file", "hash_file_version", "probe_duration", "read_ahead", "read_array", "read_clip",
           "read_image_folder", "read_video", "require_motion", "resize_frames", "sample_frame_indices",
           "sample_video", "samples_of", "write_video"]
