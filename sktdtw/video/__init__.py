"""Video files in, temporal sequences of embeddings out (needs PyAV: ``pip install av``).

:class:`VideoReader` decodes each file once, in order, keeping only the frames of the
windows in flight (a ring buffer), resized on decode; :func:`encode_videos` (and the
``sktdtw encode`` command) batches each video's windows, decodes ahead of the model in
worker threads and streams the TSEs into an :mod:`sktdtw.io` store, resuming after an
interruption and reporting the files that fail.
"""

from ._decode import VideoDecodeError, VideoFile, VideoReader, read_video, write_video
from ._store import encode_videos

__all__ = ["VideoDecodeError", "VideoFile", "VideoReader", "encode_videos", "read_video",
           "write_video"]
