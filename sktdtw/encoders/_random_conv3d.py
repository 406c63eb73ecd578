"""A small random 3-D CNN: a frozen video encoder that needs no download."""

from __future__ import annotations

import math

import torch
from torch import nn

from .._errors import InputError

__all__ = ["RandomConv3dEncoder"]


class RandomConv3dEncoder(nn.Module):
    """A small 3-D convolutional network with seeded random, frozen weights.

    A stand-in for a pretrained video encoder, so that the video pipeline runs offline.
    Two random space-time convolutions with ReLU compute local motion and shape
    detectors; their responses are averaged over a coarse grid of ``time_cells`` x
    ``space_cells`` x ``space_cells`` cells of the clip. Keeping the grid, rather than
    averaging over the whole clip, keeps *where* things are and *how* they move within
    it (what happens in the first part of the clip versus the last).

    Parameters
    ----------
    in_channels : int, default=3
        Colour channels of the clips ``(n, T, H, W, in_channels)``: 3 for the RGB frames
        that decoded video files give. Grayscale clips ``(n, T, H, W)`` (or with one
        channel) are taken as well: each gray frame is repeated into every channel, as a
        gray image is converted to colour.
    channels : int, default=8
        Output channels of the second convolution.
    time_cells : int, default=2
        Cells of the pooling grid along time.
    space_cells : int, default=2
        Cells of the pooling grid along height and along width.
    random_state : int, default=0
        Seed of the weights; the same seed gives the same encoder everywhere.
    frame_size : int, (int, int) or None, default=112
        Size video files are decoded to by :class:`~sktdtw.TSESlidingEncoder` (an int is
        the shorter edge, as in :class:`~sktdtw.video.VideoFile`): the network takes any
        size, but a 1080p frame holds 165 times the values of a 112-pixel one and costs
        that much more time and memory for a pooled grid of a few cells. None keeps the
        files' native size. In-memory arrays are taken as they are.

    Attributes
    ----------
    n_features : int
        Size of the embedding: ``channels * time_cells * space_cells ** 2``.

    Examples
    --------
    >>> import torch
    >>> from sktdtw.encoders import RandomConv3dEncoder
    >>> encoder = RandomConv3dEncoder()
    >>> encoder(torch.rand(5, 8, 32, 32)).shape
    torch.Size([5, 64])
    """

    def __init__(self, in_channels=3, channels=8, time_cells=2, space_cells=2, random_state=0,
                 frame_size=112):
        super().__init__()
        self.in_channels = in_channels
        self.frame_size = frame_size
        self.n_features = channels * time_cells * space_cells**2
        hidden = max(channels // 2, 1)
        self.features = nn.Sequential(
            nn.Conv3d(in_channels, hidden, kernel_size=(3, 5, 5), padding=(1, 2, 2),
                      stride=(1, 2, 2)),
            nn.ReLU(),
            nn.Conv3d(hidden, channels, kernel_size=3, padding=1, stride=(1, 2, 2)),
            nn.ReLU(),
            nn.AdaptiveAvgPool3d((time_cells, space_cells, space_cells)),
            nn.Flatten(),
        )
        generator = torch.Generator().manual_seed(random_state)
        with torch.no_grad():
            for conv in (self.features[0], self.features[2]):
                fan_in = math.prod(conv.weight.shape[1:])
                # He-scaled Gaussian weights keep the activations' scale through the ReLUs.
                conv.weight.copy_(
                    torch.randn(conv.weight.shape, generator=generator) * math.sqrt(2.0 / fan_in)
                )
                conv.bias.zero_()
        self.requires_grad_(False)
        self.eval()

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        """Embed a batch of clips.

        Parameters
        ----------
        clips : torch.Tensor of shape (n, T, H, W) or (n, T, H, W, in_channels)
            Any clip length ``T >= 1`` and frame size.

        Returns
        -------
        torch.Tensor of shape (n, n_features)
        """
        if clips.ndim == 4:
            clips = clips.unsqueeze(-1)
        if clips.ndim != 5:
            raise InputError(
                f"expected clips of shape (n, T, H, W) or (n, T, H, W, {self.in_channels}), "
                f"got {tuple(clips.shape)}"
            )
        if clips.shape[-1] == 1:
            clips = clips.expand(*clips.shape[:-1], self.in_channels)
        if clips.shape[-1] != self.in_channels:
            raise InputError(
                f"expected clips with {self.in_channels} channel(s) (or grayscale), got "
                f"{clips.shape[-1]} in clips of shape {tuple(clips.shape)}: set "
                f"RandomConv3dEncoder(in_channels={clips.shape[-1]})"
            )
        return self.features(clips.permute(0, 4, 1, 2, 3).float())
