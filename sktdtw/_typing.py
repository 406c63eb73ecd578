"""Type aliases of the public API's annotations (for readers and type checkers; nothing
is checked at run time: inputs are validated where they enter)."""

import os
from collections.abc import Sequence

import numpy.typing as npt
import torch

__all__ = ["FrameSize", "PathLike", "SeriesLike", "VideosLike"]

#: A file path.
PathLike = str | os.PathLike
#: Series: a list of ``(T_i, F)`` or ``(T_i,)`` arrays or tensors, a 3-D ``(n, T, F)`` or
#: 2-D ``(n, T)`` array or tensor, or a lazy ``Sequence`` of arrays.
SeriesLike = npt.ArrayLike | torch.Tensor | Sequence[npt.ArrayLike | torch.Tensor]
#: Sequences for :class:`~sktdtw.TSESlidingEncoder`: series or videos as arrays, or video
#: files (paths or :class:`~sktdtw.video.VideoFile`).
VideosLike = SeriesLike | Sequence[object]
#: A resize target: the shorter edge, or ``(height, width)``.
FrameSize = int | tuple[int, int] | None
