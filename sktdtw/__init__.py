"""sktdtw: DejaVid — learned weighted DTW over temporal sequences of embeddings."""

__version__ = "0.1.0"

from . import datasets, dtw, io
from ._classifier import DejaVidClassifier
from ._dba import DBAInitializer, dba_barycenter
from ._encoder import TSESlidingEncoder

__all__ = [
    "DBAInitializer",
    "DejaVidClassifier",
    "TSESlidingEncoder",
    "datasets",
    "dba_barycenter",
    "dtw",
    "io",
    "__version__",
]
