"""How training runs over one process or several: a strategy object with the collectives.

The estimators never create a process group: the caller does (``torchrun`` and
``torch.distributed.init_process_group``, NCCL on GPUs, Gloo on CPUs). When a group of
more than one rank is initialised while ``DejaVidClassifier.fit`` runs, training is
data-parallel (:class:`DataParallel`): every rank draws the same permutation, takes its
share of every global batch, and the gradients are summed over the ranks before the
identical optimiser step on each of them, so all ranks hold the same parameters. Otherwise
the same code runs with :class:`SingleProcess`, whose collectives do nothing.
"""

import torch
import torch.distributed as dist

__all__ = ["DataParallel", "SingleProcess", "current_strategy"]


class SingleProcess:
    """One process: rank 0 of 1; every collective is the identity."""

    rank = 0
    world_size = 1

    @property
    def is_main(self):
        """Whether this rank writes files and shows progress."""
        return self.rank == 0

    def shard(self, items):
        """This rank's share of ``items`` (every ``world_size``-th, from ``rank``)."""
        return items[self.rank::self.world_size]

    def broadcast(self, obj):
        """Rank 0's ``obj`` (any picklable object), on every rank."""
        return obj

    def all_reduce_sum(self, tensor):
        """``tensor`` summed over the ranks, in place."""
        return tensor

    def all_reduce_gradients(self, params):
        """Sum the gradients of ``params`` over the ranks."""

    def on_main(self, function):
        """``function()`` run on rank 0 only; its result on every rank, or the exception it
        raised, raised on every rank (rather than leaving the others waiting)."""
        outcome = None
        if self.is_main:
            try:
                outcome = (True, function())
            except Exception as exc:
                outcome = (False, exc)
        succeeded, value = self.broadcast(outcome)
        if not succeeded:
            raise value
        return value


class DataParallel(SingleProcess):
    """This process's place in torch.distributed's default process group.

    Parameters
    ----------
    rank : int
    world_size : int
    """

    def __init__(self, rank, world_size):
        self.rank = rank
        self.world_size = world_size

    def broadcast(self, obj):
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def all_reduce_sum(self, tensor):
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor

    def all_reduce_gradients(self, params):
        # One flat buffer. A parameter without a gradient (a rank with no sample in the
        # last batch) takes part with zeros, so every rank joins the same collective.
        flat = torch.cat([
            (p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1) for p in params
        ])
        self.all_reduce_sum(flat)
        for p, g in zip(params, torch.split(flat, [p.numel() for p in params])):
            p.grad = g.view_as(p)


def current_strategy():
    """DataParallel over the default process group if one of more than one rank is
    initialised (a group of one rank is a single process), else SingleProcess."""
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        return DataParallel(dist.get_rank(), dist.get_world_size())
    return SingleProcess()
