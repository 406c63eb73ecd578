"""Data-parallel training over torch.distributed's default process group.

The estimators never create a process group: the caller does (``torchrun`` and
``torch.distributed.init_process_group``, NCCL on GPUs, Gloo on CPUs). When one is
initialised while ``DejaVidClassifier.fit`` runs, every rank draws the same permutation,
takes its share of every global batch, and the gradients are summed over the ranks before
the identical optimiser step on each of them, so all ranks hold the same parameters.
"""

import torch
import torch.distributed as dist

__all__ = ["ProcessGroup", "current_group"]


class ProcessGroup:
    """This process's place in the default process group, and the collectives training uses.

    Parameters
    ----------
    rank : int
    world_size : int
    """

    def __init__(self, rank, world_size):
        self.rank = rank
        self.world_size = world_size

    def broadcast(self, obj):
        """Rank 0's ``obj`` (any picklable object), on every rank."""
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def all_reduce_sum(self, tensor):
        """Sum ``tensor`` over the ranks, in place."""
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor

    def all_reduce_gradients(self, params):
        """Sum the gradients of ``params`` over the ranks, as one flat buffer.

        A parameter without a gradient (a rank with no sample in the last batch) takes part
        with zeros, so every rank joins the same collective.
        """
        flat = torch.cat([
            (p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1) for p in params
        ])
        self.all_reduce_sum(flat)
        for p, g in zip(params, torch.split(flat, [p.numel() for p in params])):
            p.grad = g.view_as(p)

    def barrier(self):
        dist.barrier()


def current_group():
    """The default process group if one is initialised with more than one rank, else None."""
    if not (dist.is_available() and dist.is_initialized()):
        return None
    if dist.get_world_size() == 1:
        return None
    return ProcessGroup(dist.get_rank(), dist.get_world_size())
