"""Enumerating the cells of encoded warping paths (shared by the pure-PyTorch code)."""

import torch


def path_cells(path, offsets, max_cells):
    """Yield ``(pair, row, col)`` index tensors for every cell of every path, in chunks.

    ``pair`` is ``b * K + k``, ``row`` the centroid row ``k * L + i``, ``col`` the packed
    sample row ``offsets[b] + j``. Chunks never split a (pair, row) range and hold at most
    ``max(max_cells, T_max)`` cells.
    """
    B, K, L, _ = path.shape
    dev = path.device
    lo = path[..., 0].long().reshape(-1)
    counts = (path[..., 1].long() - path[..., 0].long() + 1).reshape(-1)  # (B*K*L,)
    seg = torch.arange(B * K * L, device=dev)
    b = seg // (K * L)
    row = seg % (K * L)
    pair = seg // L
    ends = torch.cumsum(counts, 0)
    max_cells = max(1, int(max_cells))
    start_seg = 0
    while start_seg < seg.numel():
        base = int(ends[start_seg - 1]) if start_seg else 0
        limit = torch.tensor(base + max_cells, device=dev)
        stop_seg = int(torch.searchsorted(ends, limit, right=True))
        stop_seg = max(stop_seg, start_seg + 1)
        sl = slice(start_seg, stop_seg)
        c = counts[sl]
        within = torch.arange(int(c.sum()), device=dev) - torch.repeat_interleave(
            torch.cumsum(c, 0) - c, c
        )
        yield (
            torch.repeat_interleave(pair[sl], c),
            torch.repeat_interleave(row[sl], c),
            torch.repeat_interleave(offsets[b[sl]] + lo[sl], c) + within,
        )
        start_seg = stop_seg
