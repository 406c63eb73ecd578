"""Resolving the estimators' ``device`` parameter."""

import torch

from ._errors import InputError


def resolve_device(device):
    """The torch device for ``device`` ("auto": CUDA when available, else the CPU).

    Raises
    ------
    ValueError
        If ``device`` is not a valid torch device, is the data-less "meta" device, or is
        a CUDA device without CUDA.
    """
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError as exc:
        raise InputError(f"device={device!r} is not a valid torch device") from exc
    if resolved.type == "meta":
        raise InputError(f"device={device!r} holds no data; use 'cpu', 'cuda' or 'auto'")
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"device={device!r} but CUDA is not available")
    return resolved
