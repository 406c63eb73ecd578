"""A frozen Hugging Face video classifier (VideoMAE, TimeSformer, ViViT) as a window encoder."""

from __future__ import annotations

import hashlib
import os
import pickle

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from .._errors import InputError

__all__ = ["HuggingFaceVideoEncoder"]

# Model types whose position embeddings are fixed to config.num_frames and
# config.image_size; TimeSformer interpolates its own to any clip length and size.
_FIXED_INPUT = {"videomae": "VideoMAE", "vivit": "ViViT"}
_SUPPORTED = {**_FIXED_INPUT, "timesformer": "TimeSformer"}
_OUTPUTS = ("both", "embedding", "logits")


def _import_transformers():
    try:
        import transformers
    except ImportError as exc:
        raise ImportError("HuggingFaceVideoEncoder needs transformers: pip install "
                          "transformers pillow") from exc
    return transformers


def _resize_target(processor):
    """What the processor resizes frames to: an int shorter edge, (height, width) or None."""
    size = getattr(processor, "size", None) if getattr(processor, "do_resize", False) else None
    if not size:
        return None
    if "shortest_edge" in size:
        return int(size["shortest_edge"])
    return int(size["height"]), int(size["width"])


def _looks_like_a_path(text):
    """Whether ``text`` reads as a path (a separator in it, or a leading ``.`` or ``~``)
    rather than as a bare model id."""
    return (os.sep in text or bool(os.altsep and os.altsep in text)
            or text.startswith((".", "~")))


def _check_checkpoint_folder(path):
    """Raise, saying so, when the existing ``path`` is not a checkpoint folder."""
    if not os.path.isdir(path):
        raise InputError(f"{path} is a file, not a Hugging Face checkpoint folder (the folder "
                         "save_pretrained writes)")
    if not os.path.isfile(os.path.join(path, "config.json")):
        raise InputError(f"{path} is not a Hugging Face checkpoint folder: it has no "
                         "config.json (save_pretrained writes config.json, the weights and "
                         "preprocessor_config.json)")


class HuggingFaceVideoEncoder(nn.Module):
    """A local transformers video classification checkpoint as a frozen window encoder.

    Loads ``AutoModelForVideoClassification`` and ``AutoImageProcessor`` from a checkpoint
    directory with ``local_files_only=True`` (nothing is downloaded) and returns, per clip,
    the pooled embedding (the input of ``model.classifier``) followed by the logits, as in
    the DejaVid supplement (``n_features = hidden_size + num_labels``), or either alone.
    Clips are preprocessed exactly as the checkpoint's ``preprocessor_config.json`` says,
    by its own image processor.

    Parameters
    ----------
    path : str or path-like
        Checkpoint directory (``save_pretrained`` output: ``config.json``, the weights and
        ``preprocessor_config.json``) of a VideoMAE, TimeSformer or ViViT classifier. A
        path that does not exist, a file, or a folder without ``config.json`` is an
        error saying so.
    output : {"both", "embedding", "logits"}, default="both"
        What each clip is encoded into.

    Attributes
    ----------
    model : transformers.PreTrainedModel
        The frozen classifier, in eval mode.
    processor : transformers.BaseImageProcessor
        The checkpoint's image processor.
    num_frames : int
        ``config.num_frames``: the clip length VideoMAE and ViViT require (use it as the
        ``clip_length`` of :class:`~sktdtw.TSESlidingEncoder`).
    frame_size : int, (int, int) or None
        The processor's resize target (shorter edge, or ``(height, width)``), which video
        files are resized to on decode.
    n_features : int
        Features per clip.

    Notes
    -----
    VideoMAE V2 (the paper's encoder) is not part of transformers; any ``torch.nn.Module``
    mapping ``(n, T, H, W, 3)`` clips to ``(n, n_features)`` can be passed to
    :class:`~sktdtw.TSESlidingEncoder` instead. A module with a ``preprocess(clips)``
    method and an ``embed(batch)`` method, like this one, has its preprocessing run in the
    decoding threads of :func:`sktdtw.video.encode_videos`, ahead of the model.

    Examples
    --------
    >>> import tempfile
    >>> import numpy as np
    >>> from transformers import (VideoMAEConfig, VideoMAEForVideoClassification,
    ...                           VideoMAEImageProcessorPil)
    >>> from sktdtw.encoders import HuggingFaceVideoEncoder
    >>> path = tempfile.mkdtemp()
    >>> config = VideoMAEConfig(image_size=32, patch_size=16, num_frames=4, hidden_size=24,
    ...                         num_hidden_layers=1, num_attention_heads=2,
    ...                         intermediate_size=32, num_labels=3)
    >>> VideoMAEForVideoClassification(config).save_pretrained(path)
    >>> _ = VideoMAEImageProcessorPil(size={"shortest_edge": 32},
    ...                               crop_size={"height": 32, "width": 32}).save_pretrained(path)
    >>> encoder = HuggingFaceVideoEncoder(path)
    >>> encoder(np.zeros((2, 4, 32, 40, 3), dtype=np.uint8)).shape
    torch.Size([2, 27])
    """

    def __init__(self, path, output="both"):
        super().__init__()
        if output not in _OUTPUTS:
            raise InputError(f"output must be one of {', '.join(_OUTPUTS)}, got {output!r}")
        transformers = _import_transformers()
        path = os.fspath(path)
        if os.path.exists(path):
            _check_checkpoint_folder(path)
        try:
            config = transformers.AutoConfig.from_pretrained(path, local_files_only=True)
        except (OSError, ValueError) as exc:
            # transformers reads a missing folder as a Hub model id (looked up in its cache:
            # nothing is downloaded), and its errors then talk of repo ids and connections.
            if not os.path.exists(path):
                hub = "" if _looks_like_a_path(path) else (
                    ", and no model of that id is in the Hugging Face cache")
                raise InputError(f"checkpoint folder {path} does not exist{hub}") from exc
            raise InputError(f"no transformers checkpoint can be read from {path}: {exc}") from exc
        if config.model_type not in _SUPPORTED:
            raise InputError(f"checkpoint {path} is a {config.model_type!r} model; supported: "
                             f"{', '.join(_SUPPORTED.values())}")
        self.path = path
        self.output = output
        try:
            model = transformers.AutoModelForVideoClassification.from_pretrained(
                path, local_files_only=True)
        except pickle.UnpicklingError as exc:  # torch.load(weights_only=True) refused it
            raise InputError(
                f"checkpoint {path}: its weights are a PyTorch pickle (pytorch_model.bin) "
                "holding objects other than tensors, refused because unpickling them could "
                "run code. Use a checkpoint saved as safetensors (model.safetensors, what "
                "save_pretrained writes), converted from a copy you trust. PyTorch says: "
                f"{str(exc).splitlines()[0]}"
            ) from exc
        self.model = model.eval().requires_grad_(False)
        self.processor = transformers.AutoImageProcessor.from_pretrained(
            path, local_files_only=True)
        self.num_frames = int(config.num_frames)
        self.frame_size = _resize_target(self.processor)
        hidden = self.model.classifier.in_features
        self.n_features = {"both": hidden + config.num_labels, "embedding": hidden,
                           "logits": config.num_labels}[output]
        self._pooled = None
        self.model.classifier.register_forward_pre_hook(self._keep_pooled)

    def extra_repr(self) -> str:
        # Part of the identity sktdtw.video.encode_videos records to check a resumed run.
        processor = hashlib.sha256(self.processor.to_json_string().encode()).hexdigest()
        return (f"output={self.output!r}, num_frames={self.num_frames}, "
                f"frame_size={self.frame_size!r}, processor_sha256={processor[:16]!r}")

    def _keep_pooled(self, module, inputs):
        self._pooled = inputs[0]

    def _check_clips(self, clips):
        name = _SUPPORTED[self.model.config.model_type]
        if clips.ndim != 5 or clips.shape[-1] != 3:
            raise InputError(f"{name} encoder: expected RGB clips of shape (n, T, H, W, 3), "
                             f"got {tuple(clips.shape)}")
        if self.model.config.model_type in _FIXED_INPUT and clips.shape[1] != self.num_frames:
            raise InputError(
                f"{name} checkpoint {self.path} needs clips of exactly config.num_frames="
                f"{self.num_frames} frames, got {clips.shape[1]}; set clip_length="
                f"{self.num_frames}"
            )

    def preprocess(self, clips: npt.ArrayLike | torch.Tensor) -> torch.Tensor:
        """Clips to the model's ``pixel_values``, by the checkpoint's image processor.

        Parameters
        ----------
        clips : array-like or torch.Tensor of shape (n, T, H, W, 3)
            RGB frames, uint8 or integer values in [0, 255] of another dtype.

        Returns
        -------
        pixel_values : torch.Tensor of shape (n, T, 3, height, width), float32
        """
        if isinstance(clips, torch.Tensor):
            clips = clips.detach().cpu().numpy()
        clips = np.asarray(clips)
        self._check_clips(clips)
        if clips.dtype != np.uint8:
            if not (np.isfinite(clips).all() and (clips == np.rint(clips)).all()
                    and clips.min(initial=0) >= 0 and clips.max(initial=0) <= 255):
                raise InputError("the encoder expects RGB frames with integer values in "
                                 "[0, 255] (as decoded); got other values")
            clips = clips.astype(np.uint8)
        pixels = self.processor([list(clip) for clip in clips],
                                return_tensors="pt")["pixel_values"]
        size = self.model.config.image_size
        if (self.model.config.model_type in _FIXED_INPUT
                and tuple(pixels.shape[-2:]) != (size, size)):
            raise InputError(
                f"{_SUPPORTED[self.model.config.model_type]} checkpoint {self.path} needs "
                f"frames of config.image_size={size}, but its preprocessor_config.json gives "
                f"{tuple(pixels.shape[-2:])}"
            )
        return pixels

    def embed(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """Encode preprocessed clips (the output of :meth:`preprocess`).

        Parameters
        ----------
        pixel_values : torch.Tensor of shape (n, T, 3, height, width)

        Returns
        -------
        torch.Tensor of shape (n, n_features)
        """
        device = next(self.model.parameters()).device
        logits = self.model(pixel_values=pixel_values.to(device)).logits
        pooled, self._pooled = self._pooled, None
        parts = {"both": (pooled, logits), "embedding": (pooled,), "logits": (logits,)}
        return torch.cat([p.float() for p in parts[self.output]], dim=1)

    def forward(self, clips: npt.ArrayLike | torch.Tensor) -> torch.Tensor:
        """Encode a batch of RGB clips ``(n, T, H, W, 3)`` into ``(n, n_features)``."""
        return self.embed(self.preprocess(clips))
