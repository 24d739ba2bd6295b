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


@nb.njit(cache=True, inline="always")
def _tie_group_end(row: np.ndarray, order: np.ndarray, start: int) -> int:
    """One past the last position of the tie group that starts at ``start`` of ``row`` sorted by ``order``."""
    end = start + 1
    while end < order.size and row[order[end]] == row[order[start]]:
        end += 1
    return end


@nb.njit(cache=True, inline="always")
def _mark_passed(passed: np.ndarray, order: np.ndarray, start: int, end: int) -> None:
    """Add the elements order[start:end] (one tie group) to the bitset ``passed``."""
    for k in range(start, end):
        p = order[k]
        passed[p >> 6] |= np.uint64(1) << np.uint64(p & 63)


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
    for i in nb.prange(N):
        row = x[i]
        order = np.argsort(row)
        passed = np.zeros(W, np.uint64)
        s = np.zeros(A, np.int64)
        start = 0
        while start < n:
            end = _tie_group_end(row, order, start)
            for k in range(start, end):
                p = order[k]
                for a in range(A):
                    c = 0
                    for w in range(W):
                        bits = passed[w]
                        c += _popcount(bits & less[p, a, w])
                        c -= _popcount(bits & greater[p, a, w])
                    s[a] += c
            _mark_passed(passed, order, start, end)
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
        block = torch.as_tensor(x[start : start + rows], dtype=torch.float64, device=device)  # [c, n]
        diff = block[:, :, None] - block[:, None, :]  # [c, n, n]
        sx = torch.sign(diff).to(torch.float32).reshape(len(block), n * n)
        S[start : start + rows] = torch.round((sx @ sy.T) / 2).to(torch.int64).cpu().numpy()
        c = (diff == 0).sum(dim=2).to(torch.float64)  # [c, n]
        ties[start : start + rows, 0] = (c - 1).sum(1).cpu().numpy()
        ties[start : start + rows, 1] = ((c - 1) * (2 * c + 5)).sum(1).cpu().numpy()
        ties[start : start + rows, 2] = ((c - 1) * (c - 2)).sum(1).cpu().numpy()
    return S, ties


# --- Many targets at once: Kendall's S of every neuron against thousands of (permuted) attribute RDMs ---
#
# For a row x, let less_x[p] be the bitset of elements q with x_q < x_p. For a target y likewise
# less_y[p]. The concordant pairs are C = sum_p popcount(less_x[p] & less_y[p]): a binary matrix
# product over the (element, word) axis, the same for every target, so neurons x targets is one
# "bit GEMM" with no sorting per target. With Tx, Ty the pairs tied in x, in y, and Txy in both,
#   S = C - D = 2 C - (n0 - Tx) + (Ty - Txy),
# because the x-ordered pairs (n0 - Tx of them) are concordant, discordant or tied in y only.
# Txy is a second bit GEMM of equal-value bitsets, needed only for rows with ties in x.

TARGET_BLOCK = 64  # targets per register tile of the bit GEMM (8 AVX-512 words of 64-bit lanes)
NEURON_TILE = 2  # neurons sharing each loaded target word


@nb.njit(cache=True)
def _value_bitsets(values: np.ndarray, equal: bool) -> tuple[np.ndarray, np.ndarray]:
    """less[r, p] = {q: v_rq < v_rp} and, with ``equal``, eq[r, p] = {q < p: v_rq == v_rp}.
    [rows, n, words] each (eq empty without ``equal``)."""
    R, n = values.shape
    W = (n + 63) // 64
    less = np.zeros((R, n, W), np.uint64)
    eq = np.zeros((R, n, W) if equal else (0, n, W), np.uint64)
    one = np.uint64(1)
    for r in range(R):
        row = values[r]
        order = np.argsort(row, kind="mergesort")
        passed = np.zeros(W, np.uint64)
        start = 0
        while start < n:
            end = _tie_group_end(row, order, start)
            for k in range(start, end):
                less[r, order[k], :] = passed
            if equal and end - start > 1:
                for k in range(start, end):
                    p = order[k]
                    for k2 in range(start, end):
                        q = order[k2]
                        if q < p:
                            eq[r, p, q >> 6] |= one << np.uint64(q & 63)
            _mark_passed(passed, order, start, end)
            start = end
    return less, eq


@nb.njit(cache=True)
def _blocked_bitsets(values: np.ndarray, equal: bool) -> np.ndarray:
    """The kernel's layout of the targets' bitsets, built in place: [blocks, n * words, TARGET_BLOCK],
    with less[t, p] = {q: y_tq < y_tp}, or (``equal``) {q != p: y_tq == y_tp}; padding targets are empty."""
    T, n = values.shape
    W = (n + 63) // 64
    TB = TARGET_BLOCK
    out = np.zeros(((T + TB - 1) // TB, n * W, TB), np.uint64)
    one = np.uint64(1)
    for t in range(T):
        blk = t // TB
        lane = t % TB
        row = values[t]
        if equal:
            for p in range(n):
                for q in range(n):
                    if q != p and row[q] == row[p]:
                        out[blk, p * W + (q >> 6), lane] |= one << np.uint64(q & 63)
            continue
        order = np.argsort(row, kind="mergesort")
        passed = np.zeros(W, np.uint64)
        start = 0
        while start < n:
            end = _tie_group_end(row, order, start)
            for k in range(start, end):
                p = order[k]
                for w in range(W):
                    out[blk, p * W + w, lane] = passed[w]
            _mark_passed(passed, order, start, end)
            start = end
    return out


@nb.njit(parallel=True, cache=True)
def bit_gemm(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """C[i, t] = sum_k popcount(a[i, k] & b[t // TB, k, t % TB]). a: [rows, K] uint64 (rows even),
    b: [blocks, K, TB] uint64 -> [rows, blocks * TB] int32. Each target block stays in cache while
    all rows stream past it; two rows share every loaded target word."""
    N, K = a.shape
    blocks = b.shape[0]
    TB = TARGET_BLOCK
    out = np.zeros((N, blocks * TB), np.int32)
    groups = N // NEURON_TILE
    for blk in range(blocks):
        for g in nb.prange(groups):
            i0 = g * NEURON_TILE
            acc = np.zeros((NEURON_TILE, TB), np.int64)
            for k in range(K):
                for r in range(NEURON_TILE):
                    word = a[i0 + r, k]
                    if word == 0:
                        continue
                    for t in range(TB):
                        acc[r, t] += _popcount(word & b[blk, k, t])
            for r in range(NEURON_TILE):
                for t in range(TB):
                    out[i0 + r, blk * TB + t] = acc[r, t]
    return out


class TargetBitsets:
    """The bitsets of many targets (e.g. every attribute RDM under every permutation), built once."""

    def __init__(self, targets: np.ndarray, tied: np.ndarray | None = None):
        """``tied``: each target's tied pairs [T], when the caller knows them (else counted here)."""
        targets = np.ascontiguousarray(targets, dtype=np.float64)  # [T, n]
        self.count, self.n = targets.shape
        self.tied = tie_sums(targets)[:, 0] / 2.0 if tied is None else np.asarray(tied, dtype=np.float64)
        self.less = _blocked_bitsets(targets, False)
        # Equal-value bitsets only matter for targets with ties (for Txy with tied neurons).
        self.eq = _blocked_bitsets(targets, True) if self.tied.any() else None


def kendall_s_targets(x: np.ndarray, targets: TargetBitsets) -> tuple[np.ndarray, np.ndarray]:
    """Kendall's S of every row of x against every target, exactly, and x's tie sums.

    x: [rows, n] float64 (finite). Returns S [rows, targets] int64 and ties [rows, 3] as ``kendall_s``.
    """
    x = np.ascontiguousarray(x, dtype=np.float64)
    N, n = x.shape
    pad = N % NEURON_TILE
    xp = np.concatenate([x, np.zeros((pad, n))]) if pad else x
    less, eq = _value_bitsets(xp, True)
    K = n * less.shape[2]
    conc = bit_gemm(less.reshape(len(xp), K), targets.less)[:N, : targets.count].astype(np.int64)
    ties = tie_sums(x)
    tx = ties[:, 0] / 2.0
    n0 = n * (n - 1) // 2
    S = 2 * conc - (n0 - tx.astype(np.int64))[:, None] + targets.tied.astype(np.int64)[None, :]
    tied_rows = np.flatnonzero(tx > 0)
    if tied_rows.size and targets.eq is not None:
        rows = eq[tied_rows].reshape(tied_rows.size, K)
        if tied_rows.size % NEURON_TILE:
            rows = np.concatenate([rows, np.zeros((1, K), np.uint64)])
        both = bit_gemm(rows, targets.eq)[: tied_rows.size, : targets.count]
        S[tied_rows] -= both
    return S, ties


def kendall_s_targets_torch(x: np.ndarray, targets: TorchTargets) -> tuple[np.ndarray, np.ndarray]:
    """The same (S, ties) as ``kendall_s_targets``, as sign-matrix products over the n(n-1)/2 pairs
    of elements in float64 on ``targets.device`` (a GPU): sums of +-1 below 2^53 are exact, so the
    result equals the CPU kernel's bit for bit."""
    import torch

    block = torch.as_tensor(np.ascontiguousarray(x, dtype=np.float64), device=targets.device)  # [c, n]
    sx = torch.sign(block[:, targets.rows] - block[:, targets.cols])  # [c, pairs of elements]
    S = torch.empty((len(x), targets.count), dtype=torch.float64, device=targets.device)
    for start in range(0, targets.count, targets.step):
        S[:, start : start + targets.step] = sx @ targets.sign[start : start + targets.step].T
    return torch.round(S).to(torch.int64).cpu().numpy(), tie_sums(x)


class TorchTargets:
    """The sign vectors of many targets over all pairs of elements, on a torch device."""

    def __init__(self, targets: np.ndarray, device, chunk_bytes: int = 1 << 31):
        import torch

        self.device = device
        self.count, n = targets.shape
        rows, cols = np.triu_indices(n, 1)
        self.rows = torch.as_tensor(rows, device=device)
        self.cols = torch.as_tensor(cols, device=device)
        y = torch.as_tensor(np.ascontiguousarray(targets, dtype=np.float64), device=device)
        self.sign = torch.sign(y[:, self.rows] - y[:, self.cols])  # [T, pairs of elements]
        self.step = max(1, chunk_bytes // (8 * rows.size))
