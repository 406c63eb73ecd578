"""The reference backend, in plain PyTorch.

Readable rather than fast: the cost matrix by broadcasting (column-chunked so that no
``B x K x L x F`` tensor is ever built), the DP as the paper's anti-diagonal min-pooling
recurrence vectorised over all (sample, class) pairs, and a vectorised backtrack. Every
other backend is tested against this one.
"""

import torch

from ._cells import path_cells

# Bound on the elements of any (rows x features) temporary, ~64 MB of float32.
_CHUNK_ELEMENTS = 1 << 24


def _cost_matrix(values, C2, W2):
    """cost[r, n] = sum_f W2[r, f] * |C2[r, f] - values[n, f]|, shape (K*L, N)."""
    R, F = C2.shape
    N = values.shape[0]
    cost = values.new_empty((R, N))
    step = max(1, _CHUNK_ELEMENTS // max(1, R * F))
    for start in range(0, N, step):
        x = values[start:start + step]
        diff = (C2[:, None, :] - x[None, :, :]).abs_()
        cost[:, start:start + step] = (diff * W2[:, None, :]).sum(-1)
    return cost


def _ragged_to_padded(cost, offsets, K, L):
    """(K*L, N) -> (B, K, L, T_max), columns past a sample's end repeat its last step."""
    lengths = offsets[1:] - offsets[:-1]
    t_max = int(lengths.max())
    j = torch.arange(t_max, device=cost.device)
    cols = offsets[:-1, None] + torch.minimum(j[None, :], lengths[:, None] - 1)  # (B, T_max)
    padded = cost.view(K, L, -1)[:, :, cols]  # (K, L, B, T_max)
    return padded.permute(2, 0, 1, 3).contiguous(), lengths


def _accumulate(cost, diagonal):
    """Cumulative cost D over anti-diagonals d = i + j (the paper's min-pooling form).

    Diagonal d, indexed by i, needs only diagonal d-1 (for up (i-1, j) and left (i, j-1))
    and d-2 (for the diagonal move): a min-pool of width 2 over the previous diagonal.
    """
    B, K, L, T = cost.shape
    inf = torch.tensor(float("inf"), dtype=cost.dtype, device=cost.device)
    D = torch.full_like(cost, float("inf"))
    i = torch.arange(L, device=cost.device)
    prev = torch.full((B, K, L), float("inf"), dtype=cost.dtype, device=cost.device)
    prev2 = prev.clone()
    for d in range(L + T - 1):
        j = d - i
        valid = (j >= 0) & (j < T)
        c = cost.gather(3, j.clamp(0, T - 1).view(1, 1, L, 1).expand(B, K, L, 1))[..., 0]
        if d == 0:
            best = torch.where(i == 0, torch.zeros_like(inf), inf).expand(B, K, L)
        else:
            up = torch.cat([inf.expand(B, K, 1), prev[..., :-1]], dim=2)  # D[i-1, j]
            best = torch.minimum(up, prev)  # prev[i] is D[i, j-1]
            if diagonal:
                best = torch.minimum(best, torch.cat([inf.expand(B, K, 1), prev2[..., :-1]], dim=2))
        new = torch.where(valid, c + best, inf)
        D[:, :, i[valid], j[valid]] = new[:, :, valid]
        prev2, prev = prev, new
    return D


def _backtrack(D, lengths, diagonal):
    """Vectorised backtrack with the tie rules of weighted_dtw_path; returns (B, K, L, 2) int32."""
    B, K, L, T = D.shape
    dev = D.device
    flat = D.reshape(B * K, L * T)
    end_j = lengths.repeat_interleave(K)  # (B*K,)
    i = torch.full((B * K,), L - 1, dtype=torch.int64, device=dev)
    j = end_j - 1
    lo = torch.zeros((B * K, L), dtype=torch.int64, device=dev)
    hi = torch.zeros((B * K, L), dtype=torch.int64, device=dev)
    hi[:, L - 1] = j
    rows = torch.arange(B * K, device=dev)
    inf = torch.tensor(float("inf"), dtype=D.dtype, device=dev)

    def at(ii, jj):
        ok = (ii >= 0) & (jj >= 0)
        return torch.where(ok, flat[rows, (ii.clamp(min=0) * T + jj.clamp(min=0))], inf)

    for _ in range(L + T - 2):
        active = (i > 0) | (j > 0)
        up, left = at(i - 1, j), at(i, j - 1)
        if diagonal:
            diag = at(i - 1, j - 1)
            go_up = (up < left) & (up < diag)
            go_left = ~go_up & (left < diag)
            go_diag = ~go_up & ~go_left
        else:
            go_up = up < left
            go_left = ~go_up
            go_diag = torch.zeros_like(go_up)
        go_up &= active
        go_left &= active
        go_diag &= active
        leaves_row = go_up | go_diag
        # Leaving row i at column j: row i starts at j, row i-1 ends at j (up) or j-1 (diag).
        lo[rows[leaves_row], i[leaves_row]] = j[leaves_row]
        hi[rows[leaves_row], i[leaves_row] - 1] = j[leaves_row] - go_diag[leaves_row].long()
        i = i - leaves_row.long()
        j = j - (go_left | go_diag).long()
    lo[:, 0] = 0
    return torch.stack([lo, hi], dim=-1).view(B, K, L, 2).to(torch.int32)


class TorchBackend:
    """Pure-PyTorch implementation of the three primitives (any device, any float dtype)."""

    name = "torch"

    @staticmethod
    def feature_width(n_features, dtype):
        return n_features  # broadcasting has no use for padding

    @staticmethod
    def path(values, offsets, C, W, diagonal, with_path=True):
        K, L, F = C.shape
        cost = _cost_matrix(values, C.reshape(K * L, F), W.reshape(K * L, F))
        padded, lengths = _ragged_to_padded(cost, offsets, K, L)
        D = _accumulate(padded, diagonal)
        B = lengths.numel()
        last = (lengths - 1).view(B, 1, 1).expand(B, K, 1)
        dist = D[:, :, L - 1, :].gather(2, last)[..., 0]
        return dist, _backtrack(D, lengths, diagonal) if with_path else None

    @staticmethod
    def path_cost(values, offsets, C, W, path, trusted_path=False):  # indexing checks paths
        K, L, F = C.shape
        B = offsets.numel() - 1
        C2, W2 = C.reshape(K * L, F), W.reshape(K * L, F)
        dist = values.new_zeros(B * K)
        for pair, row, col in path_cells(path, offsets, _CHUNK_ELEMENTS // F):
            terms = (W2[row] * (C2[row] - values[col]).abs()).sum(-1)
            dist.index_add_(0, pair, terms)
        return dist.view(B, K)

    @staticmethod
    def path_grad(values, offsets, C, W, path, grad_dist, need_values_grad):
        K, L, F = C.shape
        C2, W2 = C.reshape(K * L, F), W.reshape(K * L, F)
        dC, dW = torch.zeros_like(C2), torch.zeros_like(W2)
        dX = torch.zeros_like(values) if need_values_grad else None
        g_pairs = grad_dist.reshape(-1)
        for pair, row, col in path_cells(path, offsets, _CHUNK_ELEMENTS // F):
            g = g_pairs[pair][:, None]
            diff = C2[row] - values[col]
            dW.index_add_(0, row, g * diff.abs())
            g_sign = g * W2[row] * torch.sign(diff)
            dC.index_add_(0, row, g_sign)
            if dX is not None:
                dX.index_add_(0, col, -g_sign)
        return dC.view(K, L, F), dW.view(K, L, F), dX
