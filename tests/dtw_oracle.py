"""Brute-force NumPy oracle for weighted DTW: plain loops, float64, no shared code.

Written from docs/DESIGN.md section 1 only, independently of every backend.
"""

import numpy as np


def cost_matrix(x, c, w):
    """cost[i, j] = sum_f w[i, f] * |c[i, f] - x[j, f]| for one (sample, class) pair."""
    L, T = c.shape[0], x.shape[0]
    cost = np.empty((L, T))
    for i in range(L):
        for j in range(T):
            cost[i, j] = np.sum(w[i] * np.abs(c[i] - x[j]))
    return cost


def dtw(cost, diagonal=False):
    """Cumulative cost D (no diagonal moves unless asked) and the backtracked path."""
    L, T = cost.shape
    D = np.full((L, T), np.inf)
    for i in range(L):
        for j in range(T):
            if i == 0 and j == 0:
                D[i, j] = cost[i, j]
                continue
            prev = []
            if i > 0:
                prev.append(D[i - 1, j])
            if j > 0:
                prev.append(D[i, j - 1])
            if diagonal and i > 0 and j > 0:
                prev.append(D[i - 1, j - 1])
            D[i, j] = cost[i, j] + min(prev)
    cells = [(L - 1, T - 1)]
    i, j = L - 1, T - 1
    while (i, j) != (0, 0):
        up = D[i - 1, j] if i > 0 else np.inf
        left = D[i, j - 1] if j > 0 else np.inf
        diag = D[i - 1, j - 1] if i > 0 and j > 0 else np.inf
        if not diagonal:
            move = "up" if up < left else "left"
        elif up < left and up < diag:
            move = "up"
        elif left < diag:
            move = "left"
        else:
            move = "diag"
        i, j = {"up": (i - 1, j), "left": (i, j - 1), "diag": (i - 1, j - 1)}[move]
        cells.append((i, j))
    return D, cells[::-1]


def encode(cells, L):
    """List of (i, j) cells -> (L, 2) inclusive ranges of j per i."""
    path = np.zeros((L, 2), dtype=np.int64)
    for i in range(L):
        js = [j for (ii, j) in cells if ii == i]
        path[i] = (min(js), max(js))
    return path


def cells_of(path):
    return [(i, j) for i in range(len(path)) for j in range(path[i][0], path[i][1] + 1)]


def weighted_dtw_path(X, C, W, diagonal=False, path_C=None, path_W=None):
    """dist (B, K) and path (B, K, L, 2) for lists/arrays in float64."""
    C, W = np.asarray(C, np.float64), np.asarray(W, np.float64)
    K, L, _ = C.shape
    dist = np.zeros((len(X), K))
    path = np.zeros((len(X), K, L, 2), dtype=np.int64)
    for b, x in enumerate(X):
        x = np.asarray(x, np.float64)
        for k in range(K):
            pc, pw = (C[k], W[k]) if path_C is None else (path_C[k], path_W[k])
            D, cells = dtw(cost_matrix(x, pc, pw), diagonal)
            path[b, k] = encode(cells, L)
            cost = cost_matrix(x, C[k], W[k])
            dist[b, k] = sum(cost[i, j] for i, j in cells)
    return dist, path


def path_grads(X, C, W, path, G):
    """dC, dW, dX of sum(G * dist) with the paths held fixed (docs/DESIGN.md formulas)."""
    C, W = np.asarray(C, np.float64), np.asarray(W, np.float64)
    dC, dW = np.zeros_like(C), np.zeros_like(W)
    dX = [np.zeros(np.shape(x)) for x in X]
    for b, x in enumerate(X):
        x = np.asarray(x, np.float64)
        for k in range(C.shape[0]):
            for i, j in cells_of(path[b, k]):
                diff = C[k, i] - x[j]
                dW[k, i] += G[b, k] * np.abs(diff)
                dC[k, i] += G[b, k] * W[k, i] * np.sign(diff)
                dX[b][j] -= G[b, k] * W[k, i] * np.sign(diff)
    return dC, dW, dX
