"""Frozen video encoders for :class:`~sktdtw.TSESlidingEncoder`.

:class:`RandomConv3dEncoder` ships with the package (no download);
:class:`HuggingFaceVideoEncoder` wraps a local transformers checkpoint of VideoMAE,
TimeSformer or ViViT (``pip install transformers pillow``).
"""

from ._huggingface import HuggingFaceVideoEncoder
from ._random_conv3d import RandomConv3dEncoder

__all__ = ["HuggingFaceVideoEncoder", "RandomConv3dEncoder"]
