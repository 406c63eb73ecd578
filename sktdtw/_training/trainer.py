"""The training engine: the epoch loop of a classifier's prototypes over a data source.

:class:`Trainer` owns the optimiser, the cosine schedule, the epoch loop, divergence checks,
the history, the held-out distances recorded along the way
(:class:`~sktdtw._model.selection.HeldOutDistances`) and, through a
:class:`~sktdtw._training.checkpoint.Checkpoint`, saving and resuming; a strategy
(:mod:`sktdtw._training.distributed`) runs the same loop on one process or several. Everything a
resumed fit needs is :class:`TrainingState`, a ``state_dict`` of named entries.
"""

import time
from dataclasses import dataclass

import torch
import torch.nn.functional as nnf
from tqdm.auto import tqdm

from .._errors import InputError
from .._model import training_logits
from ..dtw import PackedBatch, ParameterValueError

__all__ = ["Trainer", "TrainingSettings", "TrainingState", "empty_history"]


def empty_history():
    """The per-epoch history of a fit, no epoch run yet."""
    keys = ["loss", "train_accuracy", "learning_rate", "centroid_learning_rate", "seconds"]
    return {key: [] for key in keys}


@dataclass(frozen=True)
class TrainingSettings:
    """What shapes the loop (see DejaVidClassifier's parameters of the same names;
    ``logit_scale``: the divisor of the ``"scaled"`` logits; ``name``: of the progress bar)."""

    learning_rate: float
    centroid_learning_rate: float
    weight_decay: float
    max_epochs: int
    batch_size: int
    path_update: str
    logit_norm: str
    logit_scale: float
    verbose: int = 0
    name: str = "DejaVidClassifier"

    def logits(self, dist):
        return training_logits(dist, self.logit_norm, self.logit_scale)


class TrainingState:
    """What a fit has done so far: the epochs run, the prototypes, the optimiser, the
    schedule, the shuffling generator, the history and the held-out distances recorded."""

    def __init__(self, prototypes, optimizer, schedule, generator, history, held_out):
        self.epoch = 0
        self.prototypes, self.optimizer, self.schedule = prototypes, optimizer, schedule
        self.generator, self.history, self.held_out = generator, history, held_out

    def state_dict(self):
        return {
            "epoch": self.epoch,
            "prototypes": self.prototypes.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "schedule": self.schedule.state_dict(),
            "generator": self.generator.get_state(),
            "history": self.history,
            "held_out": None if self.held_out is None else self.held_out.state_dict(),
        }

    def load_state_dict(self, state):
        """Continue from ``state`` (the prototypes are loaded by whoever made them)."""
        self.epoch = state["epoch"]
        self.optimizer.load_state_dict(state["optimizer"])
        self.schedule.load_state_dict(state["schedule"])
        self.generator.set_state(state["generator"])
        self.history = state["history"]
        if self.held_out is not None:
            self.held_out.load_state_dict(
                state["held_out"], self.prototypes.centroid_offsets.device
            )


def _in_units(batch, units):
    """A PackedBatch with its values multiplied by ``units`` (see
    :meth:`~sktdtw._model.parameters.Parametrization.units`; None: as it is)."""
    if units is None:
        return batch
    return PackedBatch(batch.values * units, batch.offsets)


def _diverged(epoch):
    return InputError(
        f"training diverged in epoch {epoch}: the loss or the parameters are no longer "
        "finite; lower learning_rate or centroid_learning_rate"
    )


class Trainer:
    """Train :class:`~sktdtw._model.parameters.LearnedPrototypes` by minibatch AdamW on the
    cross-entropy of the training logits, with a cosine schedule over the epochs.

    Parameters
    ----------
    settings : TrainingSettings
    scorer : ClassScorer
    strategy : SingleProcess or DataParallel
    held_out : HeldOutDistances, default=None
        Recorded after every epoch that is one of its candidates.
    checkpoint : Checkpoint, default=None
        Saved after every epoch, with ``extra`` entries (the fit's other state).
    """

    def __init__(self, settings, scorer, strategy, held_out=None, checkpoint=None):
        self.settings, self.scorer, self.strategy = settings, scorer, strategy
        self.held_out, self.checkpoint = held_out, checkpoint

    def initial_state(self, prototypes, generator):
        s = self.settings
        groups = []
        V, C = prototypes.log_weight_offsets, prototypes.centroid_offsets
        if V.requires_grad:
            groups.append({"params": [V], "lr": s.learning_rate})
        if C.requires_grad:
            groups.append({"params": [C], "lr": s.centroid_learning_rate})
        optimizer = torch.optim.AdamW(groups, betas=(0.9, 0.999), weight_decay=s.weight_decay)
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(
            optimizer, T_max=s.max_epochs, eta_min=0.0
        )
        return TrainingState(
            prototypes, optimizer, schedule, generator, empty_history(), self.held_out
        )

    def fit(self, state, source, targets, extra, stop_epoch):
        """Run the epochs from ``state.epoch`` to ``stop_epoch`` (at most ``max_epochs``,
        whose cosine the schedule follows) on the SeriesSource ``source`` (class indices
        ``targets``), leaving ``state.prototypes`` at their last values. ``extra``: the
        fit's state saved beside the training state."""
        epochs = tqdm(
            range(state.epoch, stop_epoch), desc=self.settings.name,
            unit="epoch", initial=state.epoch, total=stop_epoch,
            disable=self.settings.verbose < 1 or not self.strategy.is_main,
        )
        targets = torch.from_numpy(targets).to(state.prototypes.centroid_offsets.device)
        for epoch in epochs:
            start = time.perf_counter()
            record = self._run_epoch(state, source, targets, epoch)
            if self.held_out is not None:
                self.held_out.record(epoch + 1, self.scorer, state.prototypes, self.strategy)
            record["seconds"] = time.perf_counter() - start
            for key, value in record.items():
                state.history[key].append(value)
            epochs.set_postfix({"loss": record["loss"], "acc": record["train_accuracy"]})
            state.epoch = epoch + 1
            if self.checkpoint is not None:
                self.checkpoint.save({**state.state_dict(), **extra})

    def _run_epoch(self, state, source, targets, epoch):
        """One pass over a permutation of the training samples; the epoch's record."""
        s, prototypes, optimizer = self.settings, state.prototypes, state.optimizer
        # The schedule scales both groups alike.
        lr_scale = optimizer.param_groups[0]["lr"] / optimizer.param_groups[0]["initial_lr"]
        units = prototypes.parametrization.units()
        frozen = {}
        if s.path_update == "epoch":  # FECW: paths of the parameters at the epoch's start
            centroids, weights = prototypes.frozen(units)
            frozen = {"path_centroids": centroids.clone(), "path_weights": weights}
        params = [p for group in optimizer.param_groups for p in group["params"]]
        n_train = len(targets)
        order = torch.randperm(n_train, generator=state.generator)
        loss_sum = torch.zeros((), dtype=torch.float64, device=targets.device)
        n_correct = torch.zeros((), dtype=torch.int64, device=targets.device)
        for first in range(0, n_train, s.batch_size):
            index = order[first:first + s.batch_size]
            n_batch = len(index)
            # The same permutation everywhere; each rank takes its share.
            index = self.strategy.shard(index)
            optimizer.zero_grad()
            if len(index):
                try:
                    # The data were validated once (or as read); the op checks the
                    # parameters, which the last step may have made non-finite.
                    dist = self.scorer.batch_distances(
                        _in_units(source.read(index), units), prototypes.centroids(units),
                        prototypes.weights(units), check_input=False, **frozen,
                    )
                except ParameterValueError as exc:
                    raise _diverged(epoch) from exc
                batch_targets = targets[index.to(targets.device)]
                # Summed over the ranks, this is the global batch's mean loss.
                loss = nnf.cross_entropy(
                    s.logits(dist), batch_targets, reduction="sum"
                ) / n_batch
                loss.backward()
                loss_sum += loss.detach() * n_batch
                n_correct += (dist.detach().argmin(1) == batch_targets).sum()
            self.strategy.all_reduce_gradients(params)
            optimizer.step()
        state.schedule.step()
        self.strategy.all_reduce_sum(loss_sum)
        self.strategy.all_reduce_sum(n_correct)
        if not (torch.isfinite(loss_sum) and all(torch.isfinite(p).all() for p in params)):
            raise _diverged(epoch)
        return {
            "loss": float(loss_sum) / n_train,
            "train_accuracy": int(n_correct) / n_train,
            "learning_rate": s.learning_rate * lr_scale,
            "centroid_learning_rate": s.centroid_learning_rate * lr_scale,
        }
