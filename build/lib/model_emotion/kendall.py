"""Kendall's S for many neurons against a few attribute RDMs: an exact bitset/popcount kernel.

For one neuron RDM x (n pair distances) and one attribute RDM y, Kendall's S = concordant minus
discordant pairs of pairs. Each attribute's order is precomputed once as two bitsets per element
p: the elements with a strictly smaller y, and those with a strictly larger y. Walking a neuron's
elements in increasing x (tie groups together) while keeping the bitset B of elements already
passed (strictly smaller x), element p adds popcount(B & less_y[p]) - popcount(B & greater_y[p]).
That is O(n^2 / 64) word operations per (neuron, attribute) with no sorting per attribute, and
ties in x or y are exact by construction. It compiles with numba (the only compiled dependency of
the toolkit; the alternative, an all-pairs sign matrix in numpy, is 5-10x slower and needs GBs).
"""

from __future__ import annotations

import numba as nb
import numpy as np
from numba.core import types
from numba.extending import intrinsic


@intrinsic
def _popcount(typingctx, value):
    """LLVM's ctpop: one POPCNT instruction where the CPU has it."""
    sig = types.uint64(types.uint64)

    def codegen(context, builder, signature, args):
        return builder.ctpop(args[0])

    return sig, codegen


@nb.njit(cache=True)
def order_bitsets(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each attribute a and element p, bitsets of the elements q with y_q < y_p and y_q > y_p.

    y: [attributes, n]. Returns two uint64 arrays [n, attributes, words] (layout chosen so the
    kernel reads all attributes of one element contiguously).
    """
    A, n = y.shape
    W = (n + 63) // 64
    less = np.zeros((n, A, W), np.uint64)
    greater = np.zeros((n, A, W), np.uint64)
    one = np.uint64(1)
    for a in range(A):
        for p in range(n):
            for q in range(n):
                bit = one << np.uint64(q & 63)
                if y[a, q] < y[a, p]:
                    less[p, a, q >> 6] |= bit
                elif y[a, q] > y[a, p]:
                    greater[p, a, q >> 6] |= bit
    return less, greater


@nb.njit(parallel=True, cache=True)
def kendall_s(x: np.ndarray, less: np.ndarray, greater: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Kendall's S of every row of x against every attribute, plus x's tie sums.

    x: [neurons, n] float64 (finite). Returns S [neurons, attributes] int64 and ties
    [neurons, 3] float64 = (sum t(t-1), sum t(t-1)(2t+5), sum t(t-1)(t-2)) over x's tie groups.
    """
    N, n = x.shape
    A = less.shape[1]
    W = less.shape[2]
    S = np.zeros((N, A), np.int64)
    ties = np.zeros((N, 3), np.float64)
    one = np.uint64(1)
    for i in nb.prange(N):
        row = x[i]
        order = np.argsort(row)
        passed = np.zeros(W, np.uint64)
        s = np.zeros(A, np.int64)
        start = 0
        while start < n:
            end = start + 1
            value = row[order[start]]
            while end < n and row[order[end]] == value:
                end += 1
            for k in range(start, end):
                p = order[k]
                for a in range(A):
                    c = 0
                    for w in range(W):
                        bits = passed[w]
                        c += _popcount(bits & less[p, a, w])
                        c -= _popcount(bits & greater[p, a, w])
                    s[a] += c
            for k in range(start, end):
                p = order[k]
                passed[p >> 6] |= one << np.uint64(p & 63)
            t = float(end - start)
            ties[i, 0] += t * (t - 1.0)
            ties[i, 1] += t * (t - 1.0) * (2.0 * t + 5.0)
            ties[i, 2] += t * (t - 1.0) * (t - 2.0)
            start = end
        for a in range(A):
            S[i, a] = s[a]
    return S, ties


def tie_sums(y: np.ndarray) -> np.ndarray:
    """(sum t(t-1), sum t(t-1)(2t+5), sum t(t-1)(t-2)) over the tie groups of each row. [rows, 3]"""
    out = np.zeros((y.shape[0], 3))
    for a, row in enumerate(y):
        _, counts = np.unique(row, return_counts=True)
        t = counts.astype(float)
        out[a] = [(t * (t - 1)).sum(), (t * (t - 1) * (2 * t + 5)).sum(), (t * (t - 1) * (t - 2)).sum()]
    return out


def kendall_s_torch(x: np.ndarray, y: np.ndarray, device, chunk_bytes: int = 1 << 30) -> tuple[np.ndarray, np.ndarray]:
    """The same (S, ties) as ``kendall_s``, as sign-matrix products in torch, for GPUs.

    S = 1/2 sum_{p,q} sign(x_p - x_q) sign(y_p - y_q): one matrix product per chunk of neurons
    ([chunk, n*n] @ [n*n, attributes]). The sums are integers below 2^24, so float32 is exact.
    Tie sums come from c_p = how many elements equal x_p (itself included): summing f(c_p) / c_p
    over elements equals summing f(t) over tie groups of size t.
    """
    import torch

    N, n = x.shape
    sy = torch.as_tensor(y, dtype=torch.float64, device=device)
    sy = torch.sign(sy[:, :, None] - sy[:, None, :]).to(torch.float32).reshape(len(y), n * n)  # [A, n*n]
    rows = max(1, chunk_bytes // (4 * n * n))
    S = np.empty((N, len(y)), np.int64)
    ties = np.empty((N, 3), np.float64)
    for start in range(0, N, rows):
        block = torch.as_tensor(x[start:start + rows], dtype=torch.float64, device=device)  # [c, n]
        diff = block[:, :, None] - block[:, None, :]  # [c, n, n]
        sx = torch.sign(diff).to(torch.float32).reshape(len(block), n * n)
        S[start:start + rows] = torch.round((sx @ sy.T) / 2).to(torch.int64).cpu().numpy()
        c = (diff == 0).sum(dim=2).to(torch.float64)  # [c, n]
        ties[start:start + rows, 0] = (c - 1).sum(1).cpu().numpy()
        ties[start:start + rows, 1] = ((c - 1) * (2 * c + 5)).sum(1).cpu().numpy()
        ties[start:start + rows, 2] = ((c - 1) * (c - 2)).sum(1).cpu().numpy()
    return S, ties
