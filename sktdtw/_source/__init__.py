"""The data source: every accepted form of ``X`` becomes a :class:`SeriesSource` once, at
the estimators' boundary (:func:`as_source`), validated by the rules of
:mod:`~sktdtw._source.validation`, which name the sample."""

from .derivatives import DerivativeSource, packed_gradient
from .source import LazySource, PackedSource, SeriesSource, as_source, split_batch
from .validation import (
    check_lazy_series,
    check_series_list,
    check_targets,
    is_lazy,
    read_series_batch,
    tensor_as_numpy,
)

__all__ = [
    "DerivativeSource", "LazySource", "PackedSource", "SeriesSource", "as_source",
    "check_lazy_series", "check_series_list", "check_targets", "is_lazy", "packed_gradient",
    "read_series_batch", "split_batch", "tensor_as_numpy",
]
