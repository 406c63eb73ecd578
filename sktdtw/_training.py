"""The training engine: the epoch loop of a classifier's prototypes over a data source.

:class:`Trainer` owns the optimiser, the cosine schedule, the epoch loop, divergence checks,
the history, the choice of the kept epoch (:class:`BestEpoch`) and, through a
:class:`~sktdtw._checkpoint.Checkpoint`, saving and resuming; a strategy
(:mod:`sktdtw._strategy`) runs the same loop on one process or several. Everything a
resumed fit needs is :class:`TrainingState`, a ``state_dict`` of named entries.
"""

import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as nnf
from tqdm.auto import tqdm

from ._errors import InputError
from ._scoring import training_logits
from .dtw._packing import ParameterValueError

__all__ = [
    "BestEpoch", "Trainer", "TrainingSettings", "TrainingState", "Validation", "empty_history",
]


def empty_history(validation):
    """The per-epoch history of a fit, no epoch run yet (``validation``: with the held-out
    loss and accuracy)."""
    keys = ["loss", "train_accuracy", "learning_rate", "centroid_learning_rate", "seconds"]
    if validation:
        keys += ["validation_loss", "validation_accuracy"]
    return {key: [] for key in keys}


@dataclass(frozen=True)
class TrainingSettings:
    """The estimator's parameters that shape the loop (see DejaVidClassifier)."""

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

    @classmethod
    def of(cls, estimator, logit_scale):
        """The settings of a DejaVidClassifier whose ``"scaled"`` logits divide by
        ``logit_scale``."""
        lr = estimator.learning_rate
        return cls(
            learning_rate=lr,
            centroid_learning_rate=(
                lr / 3 if estimator.centroid_learning_rate is None
                else estimator.centroid_learning_rate
            ),
            weight_decay=estimator.weight_decay, max_epochs=estimator.max_epochs,
            batch_size=estimator.batch_size, path_update=estimator.path_update,
            logit_norm=estimator.logit_norm, logit_scale=logit_scale,
            verbose=estimator.verbose, name=type(estimator).__name__,
        )

    def logits(self, dist):
        return training_logits(dist, self.logit_norm, self.logit_scale)


@dataclass
class Validation:
    """Held-out samples ``index`` of a source with their class indices ``targets``."""

    source: object
    index: np.ndarray
    targets: np.ndarray
    chunk: int

    def score(self, scorer, centroids, weights, settings, strategy):
        """(loss, accuracy) under exact DTW; each rank scores its share and the sums are
        all-reduced."""
        index, targets = strategy.shard(self.index), strategy.shard(self.targets)
        totals = torch.zeros(2, dtype=torch.float64)
        if index.size:
            dist = scorer.source(self.source, index, centroids, weights, self.chunk)
            logits = settings.logits(torch.from_numpy(dist))
            totals[0] = nnf.cross_entropy(logits, torch.from_numpy(targets), reduction="sum")
            totals[1] = float(np.sum(dist.argmin(1) == targets))
        totals = strategy.all_reduce_sum(totals.to(centroids.device)).cpu()
        return float(totals[0]) / self.index.size, float(totals[1]) / self.index.size


class BestEpoch:
    """The epoch of the best validation score (accuracy, then lowest loss) and the learned
    ``(C', V')`` it ended with."""

    def __init__(self):
        self.score = self.epoch = self.C = self.V = None

    def update(self, score, epoch, prototypes):
        if self.score is None or score > self.score:
            self.score, self.epoch = score, epoch
            self.C, self.V = prototypes.C.detach().clone(), prototypes.V.detach().clone()

    def state_dict(self):
        return {"score": self.score, "epoch": self.epoch, "C": self.C, "V": self.V}

    def load_state_dict(self, state, device):
        self.score, self.epoch = state["score"], state["epoch"]
        self.C, self.V = (None if t is None else t.to(device) for t in (state["C"], state["V"]))


class TrainingState:
    """What a fit has done so far: the epochs run, the prototypes, the optimiser, the
    schedule, the shuffling generator, the history and the best epoch."""

    def __init__(self, prototypes, optimizer, schedule, generator, history, best):
        self.epoch = 0
        self.prototypes, self.optimizer, self.schedule = prototypes, optimizer, schedule
        self.generator, self.history, self.best = generator, history, best

    def state_dict(self):
        return {
            "epoch": self.epoch,
            "prototypes": self.prototypes.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "schedule": self.schedule.state_dict(),
            "generator": self.generator.get_state(),
            "history": self.history,
            "best": self.best.state_dict(),
        }

    def load_state_dict(self, state):
        """Continue from ``state`` (the prototypes are loaded by whoever made them)."""
        self.epoch = state["epoch"]
        self.optimizer.load_state_dict(state["optimizer"])
        self.schedule.load_state_dict(state["schedule"])
        self.generator.set_state(state["generator"])
        self.history = state["history"]
        self.best.load_state_dict(state["best"], self.prototypes.C.device)


def _diverged(epoch):
    return InputError(
        f"training diverged in epoch {epoch}: the loss or the parameters are no longer "
        "finite; lower learning_rate or centroid_learning_rate"
    )


class Trainer:
    """Train :class:`~sktdtw._parameters.LearnedPrototypes` by minibatch AdamW on the
    cross-entropy of the training logits, with a cosine schedule over the epochs.

    Parameters
    ----------
    settings : TrainingSettings
    scorer : ClassScorer
    strategy : SingleProcess or DataParallel
    validation : Validation, default=None
        Selects the kept epoch; without it, the last epoch is kept.
    checkpoint : Checkpoint, default=None
        Saved after every epoch, with ``extra`` entries (the fit's other state).
    """

    def __init__(self, settings, scorer, strategy, validation=None, checkpoint=None):
        self.settings, self.scorer, self.strategy = settings, scorer, strategy
        self.validation, self.checkpoint = validation, checkpoint

    def initial_state(self, prototypes, generator):
        s = self.settings
        groups = []
        if prototypes.V.requires_grad:
            groups.append({"params": [prototypes.V], "lr": s.learning_rate})
        if prototypes.C.requires_grad:
            groups.append({"params": [prototypes.C], "lr": s.centroid_learning_rate})
        optimizer = torch.optim.AdamW(groups, betas=(0.9, 0.999), weight_decay=s.weight_decay)
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(
            optimizer, T_max=s.max_epochs, eta_min=0.0
        )
        history = empty_history(self.validation is not None)
        return TrainingState(prototypes, optimizer, schedule, generator, history, BestEpoch())

    def fit(self, state, source, targets, extra):
        """Run the epochs from ``state.epoch`` to ``max_epochs`` on the SeriesSource
        ``source`` (class indices ``targets``); return the epoch kept and its learned
        ``(C', V')``. ``extra``: the fit's state saved beside the training state."""
        epochs = tqdm(
            range(state.epoch, self.settings.max_epochs), desc=self.settings.name,
            unit="epoch", initial=state.epoch, total=self.settings.max_epochs,
            disable=self.settings.verbose < 1 or not self.strategy.is_main,
        )
        targets = torch.from_numpy(targets).to(state.prototypes.C.device)
        for epoch in epochs:
            start = time.perf_counter()
            record = self._run_epoch(state, source, targets, epoch)
            if self.validation is not None:
                centroids, weights = state.prototypes.frozen()
                record["validation_loss"], record["validation_accuracy"] = (
                    self.validation.score(
                        self.scorer, centroids, weights, self.settings, self.strategy
                    )
                )
                state.best.update(
                    (record["validation_accuracy"], -record["validation_loss"]), epoch,
                    state.prototypes,
                )
            record["seconds"] = time.perf_counter() - start
            for key, value in record.items():
                state.history[key].append(value)
            epochs.set_postfix({"loss": record["loss"], "acc": record["train_accuracy"], **(
                {"val_acc": record["validation_accuracy"]} if self.validation else {}
            )})
            state.epoch = epoch + 1
            if self.checkpoint is not None:
                self.checkpoint.save({**state.state_dict(), **extra})
        if state.best.epoch is None:
            return self.settings.max_epochs - 1, state.prototypes.C, state.prototypes.V
        return state.best.epoch, state.best.C, state.best.V

    def _run_epoch(self, state, source, targets, epoch):
        """One pass over a permutation of the training samples; the epoch's record."""
        s, prototypes, optimizer = self.settings, state.prototypes, state.optimizer
        # The schedule scales both groups alike.
        lr_scale = optimizer.param_groups[0]["lr"] / optimizer.param_groups[0]["initial_lr"]
        frozen = {}
        if s.path_update == "epoch":  # FECW: paths of the parameters at the epoch's start
            centroids, weights = prototypes.frozen()
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
                    dist = self.scorer.batch(
                        source.read(index), prototypes.centroids(), prototypes.weights(),
                        check_input=False, **frozen,
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
