"""The training engine: the epoch loop over a data source
(:mod:`~sktdtw._training.trainer`), run on one process or several
(:mod:`~sktdtw._training.distributed`), saved and resumed through checkpoints
(:mod:`~sktdtw._training.checkpoint`)."""

from .checkpoint import Checkpoint, fit_fingerprint, read_checkpoint, save_checkpoint
from .distributed import DataParallel, SingleProcess, current_strategy
from .trainer import Trainer, TrainingSettings, TrainingState, empty_history

__all__ = [
    "Checkpoint", "DataParallel", "SingleProcess", "Trainer", "TrainingSettings",
    "TrainingState", "current_strategy", "empty_history", "fit_fingerprint",
    "read_checkpoint", "save_checkpoint",
]
