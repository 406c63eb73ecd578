"""On-disk stores of temporal sequences of embeddings (TSEs) for data that do not fit in memory.

A store is a directory of plain ``.npy`` files: all series one after another in a float32
``values.npy`` (memory-mapped, never loaded whole), their ``offsets``, ``ids``, and optional
``labels`` and ``splits``. :func:`write_store` streams series into one, :func:`build_store`
builds one from per-sample ``.npy`` / ``.pt`` files and a CSV manifest, and
:func:`open_store` opens one as a lazy, read-only :class:`TSEStore` sequence.
"""

from ._manifest import build_store
from ._store import TSEStore, open_store
from ._writer import write_store

__all__ = ["TSEStore", "build_store", "open_store", "write_store"]
