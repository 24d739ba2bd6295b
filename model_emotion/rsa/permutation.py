"""Condition-label randomisation test for every neuron, with family-wise error control (max-T).

The parametric test of the searchlight treats the n(n-1)/2 emotion pairs of an RDM as independent
observations. They are not (each emotion enters n - 1 pairs), and neuron RDMs are dominated by
per-emotion effects, so its p-values are far too small. The exact alternative (Mantel; Nili et al.
2014, the RSA toolbox's condition-label randomisation test) permutes the emotion labels of one RDM:

- One set of B permutations of the emotions, shared by every neuron and attribute. The attribute
  RDMs are permuted (the same null as permuting the activations, and cheap: 14 x B small vectors).
- The statistic is the searchlight's own (``method``), so the two tests rank neurons identically.
- Per test, p = (1 + #{b: T_b >= T}) / (1 + B) (``greater``; ``less`` mirrored, ``two-sided`` on |T|).
- Family-wise error by the maximum statistic (Westfall-Young single-step max-T; Nichols & Holmes
  2002): p_FWER(n, a) = (1 + #{b: max_n' T_b(n', a) >= T(n, a)}) / (1 + B) within each attribute,
  and the same with the maximum over all attributes ("global").
- Studentized max-T (``studentize``): max-T is balanced only across tests whose nulls have the same
  spread (Westfall & Young 1993; Winkler et al. 2014). Each test's statistic, observed and permuted,
  is standardized by the mean and SD of its own B + 1 values (the observed one included: a symmetric
  function of the values, so the standardized values stay exchangeable under the null and the test
  stays exact), and the maxima are taken over the standardized values: ``across`` (the default) for
  the correction over all attributes, ``both`` within each attribute too, ``none`` raw everywhere.
  All four adjusted p (raw and studentized, within and across) are computed in every run.
- Every count comes with its null: the number of significant neurons that each permutation would
  give, for the parametric test (its FDR at the same alpha) and for the chosen test.
- Resolution beyond 1/(B + 1) (``tails``): a generalized Pareto fit to the tail of the max-T null,
  with PALM's threshold search and Anderson-Darling check, for the FWER p, and a three-moment (Pearson
  type III) fit of each test's own null for the per-test p; neither reports a p outside its support.

Kendall's S of all neurons against all permuted targets is one bit GEMM (``kendall.kendall_s_targets``):
every neuron's order is walked once for all B x attributes targets. Neurons are processed in chunks
so that memory stays bounded; per chunk only running maxima, exceedance counts, moments and the
candidates for the null counts are kept.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from model_emotion.data.ratings import pair_index
from model_emotion.errors import ToolkitError
from model_emotion.rsa.fdr import fdr
from model_emotion.rsa.kendall import TargetBitsets, kendall_s_targets
from model_emotion.rsa.tails import GPD_MIN_EXCEEDANCES, beyond_support, fit_gpd_tail, gpd_p, moment_p

logger = logging.getLogger(__name__)

TESTS = ("permutation", "parametric")
CORRECTIONS = ("maxt", "maxt_global", "fdr")
TAILS = ("empirical", "gpd", "moments")
STUDENTIZE = ("across", "both", "none")  # which max-T corrections take the studentized statistic
MAX_PERMUTATIONS = 1_000_000  # a bound on memory ([B, emotions] and [attributes, B] arrays), not a statistical one
CHUNK_BYTES = 96 * 2**20  # one chunk's [neurons, B, attributes] float64 block; a handful of them are alive at once
TARGET_BYTES = 1 * 2**30  # the permuted targets of one block of attributes, prepared for the kernel
# The parametric test's null counts (what the paper's test calls significant under each permutation) come
# from the first this-many permutations: its invalid p are below alpha for about 19,000 tests per
# permutation on the paper's data, so keeping them for B = 10,000 would take gigabytes, and 1000
# permutations describe that null well (its mean, 95th percentile and count p to 1/1001).
PARAMETRIC_NULL_PERMUTATIONS = 1000
VARIANTS = ("raw_within", "raw_across", "studentized_within", "studentized_across")


def distinct_permutations(n_emotions: int) -> float:
    return float(math.factorial(n_emotions)) if n_emotions < 171 else math.inf


def check_permutations(B, n_emotions: int) -> int:
    """B as an integer within [1, n!] (and a memory bound), or one plain error line."""
    if isinstance(B, bool) or not isinstance(B, (int, np.integer)):
        raise ToolkitError(f"{{--permutations}} must be an integer, got {B!r}")
    B = int(B)
    if B < 1:
        raise ToolkitError(f"{{--permutations}} must be at least 1, got {B}")
    if B > MAX_PERMUTATIONS:
        raise ToolkitError(f"{{--permutations}} {B} is above the limit of {MAX_PERMUTATIONS:,}")
    if B > distinct_permutations(n_emotions):
        raise ToolkitError(
            f"{{--permutations}} {B} is more than the {math.factorial(n_emotions)} distinct "
            f"permutations of {n_emotions} emotions; pass fewer, or {{--test}} parametric (the "
            f"paper's test) for so few emotions"
        )
    return B


def smallest_alpha(B: int) -> float:
    """The smallest level an empirical permutation p can reach: p >= 1 / (B + 1)."""
    return 1.0 / (B + 1)


def check_alpha(alpha: float, B: int, tail: str) -> None:
    if tail == "empirical" and alpha < smallest_alpha(B):
        raise ToolkitError(
            f"{{--alpha}} {alpha:g} cannot be reached with {B} permutations: the smallest "
            f"permutation p is 1/(B+1) = {smallest_alpha(B):.3g}; raise {{--permutations}} or "
            f"use {{--tail}} gpd"
        )


def draw_permutations(n_emotions: int, B: int, seed: int) -> np.ndarray:
    """B random permutations of the emotions (with replacement, the identity allowed). [B, emotions]"""
    rng = np.random.default_rng(seed)
    return np.stack([rng.permutation(n_emotions) for _ in range(B)]).astype(np.int64)


def pair_permutations(perms: np.ndarray) -> np.ndarray:
    """For each emotion permutation pi, the pair order it induces: y_pi[p] = y[index[p]], where pair
    p = (i, j) maps to pair (pi(i), pi(j)). [B, pairs]"""
    n = perms.shape[1]
    rows, cols = pair_index(n)
    lookup = np.full((n, n), -1, np.int64)
    lookup[rows, cols] = np.arange(rows.size)
    lookup[cols, rows] = np.arange(rows.size)
    return lookup[perms[:, rows], perms[:, cols]]


def permuted_targets(attribute_rdms: np.ndarray, perms: np.ndarray) -> np.ndarray:
    """Row b * A + a is attribute a under permutation b, with b = 0 the observed order. [(B+1) * A, pairs]"""
    index = np.concatenate([np.arange(attribute_rdms.shape[1])[None, :], pair_permutations(perms)])  # [B+1, P]
    return attribute_rdms[:, index].transpose(1, 0, 2).reshape(-1, attribute_rdms.shape[1])


def _signed(stat: np.ndarray, alternative: str) -> np.ndarray:
    """The statistic whose large values are evidence (greater: T; less: -T; two-sided: |T|)."""
    if alternative == "greater":
        return stat
    if alternative == "less":
        return -stat
    return np.abs(stat)


def _masked_signed(raw: np.ndarray, ok: np.ndarray, alternative: str) -> np.ndarray:
    """The signed statistics [c, B, A] with undefined tests at -inf (they never reach anything)."""
    signed = _signed(raw, alternative)
    signed[~np.broadcast_to(ok[:, None, :], signed.shape)] = -np.inf
    return signed


@dataclass
class PermutationResult:
    """Everything the permutation test gives; [neurons, attributes] arrays unless said otherwise."""

    perm_p: np.ndarray  # per-test permutation p (or its moment fit under tail='moments')
    fwer_p: np.ndarray  # max-T adjusted within each attribute (studentized under studentize='both')
    fwer_global_p: np.ndarray  # max-T adjusted over all attributes (studentized unless studentize='none')
    null_max: np.ndarray  # [attributes, B] max statistic over neurons per permutation
    null_counts: pd.DataFrame  # attribute, test, observed, null_mean, null_p95, null_max, count_p
    permutations: np.ndarray  # [B, emotions]
    B: int
    seed: int
    correction: str
    tail: str
    empirical_perm_p: np.ndarray = field(repr=False, default=None)  # (1 + #) / (1 + B), whatever the tail
    count_draws: dict = field(repr=False, default_factory=dict)  # test -> [B, A] significant counts per permutation
    permuted_stat: np.ndarray | None = field(repr=False, default=None)  # [kept perms, neurons, A] statistics
    studentize: str = "across"
    z: np.ndarray | None = field(repr=False, default=None)  # the studentized observed statistic (signed)
    null_max_z: np.ndarray | None = field(repr=False, default=None)  # [attributes, B] max studentized statistic
    variants: dict = field(repr=False, default_factory=dict)  # VARIANTS -> [neurons, A] max-T adjusted p
    tail_fits: list = field(repr=False, default_factory=list)  # one record per fitted max-T null (tail='gpd')

    def survivors(self, levels=(0.05, 0.01)) -> pd.DataFrame:
        """Per attribute: the neurons each max-T variant keeps at each level (adjusted p <= level)."""
        rows = []
        for a, name in enumerate(self.names):
            row = {"attribute": name}
            for variant in VARIANTS:
                for level in levels:
                    row[f"{variant}_{level:g}"] = int(
                        (np.nan_to_num(self.variants[variant][:, a], nan=1.0) <= level).sum()
                    )
            rows.append(row)
        return pd.DataFrame(rows)

    names: list = field(repr=False, default_factory=list)


class _Streams:
    """Per-chunk accumulators: exceedance counts, maxima, moments, null-count candidates."""

    def __init__(self, N: int, A: int, B: int, alpha: float, store_moments: bool, count_z: bool):
        self.exceed = np.zeros((N, A), np.int64)
        self.null_max = np.full((A, B), -np.inf)
        self.null_max_z = np.full((A, B), -np.inf)
        self.z_obs = np.full((N, A), np.nan)
        self.count_z = count_z  # the null counts' candidates are studentized values
        self.moments = np.zeros((3, N, A)) if store_moments else None
        self.candidates = [[] for _ in range(A)]  # per attribute: (b indices, values) above the running bound
        self.parametric = []  # (b, a, p) with parametric p < alpha under permutation b
        self.k_allowed = int(math.floor(alpha * (B + 1) - 1 + 1e-9))  # null maxima allowed >= T
        # FDR of the permutation p under each permutation: every p is c / (B + 1) with c = how many of
        # the B + 1 values (observed included) reach it, so a histogram of small c per permutation and
        # attribute holds all that the FDR can use (only p <= alpha can be significant).
        self.c_max = max(1, int(math.floor(alpha * (B + 1) + 1e-9)))
        self.rank_hist = None
        self.B, self.A = B, A

    def add_rank_histogram(self, cols, obs: np.ndarray, signed: np.ndarray, ok: np.ndarray) -> None:
        """Per permutation b, attribute a (of ``cols``) and count c <= c_max: the tests whose value under b
        is reached by exactly c of the B + 1 values."""
        if self.rank_hist is None:
            self.rank_hist = np.zeros((self.B, self.A, self.c_max + 1), np.int64)
        values = np.concatenate([obs[:, None, :], signed], axis=1)  # [c, B + 1, A]
        reached = values.shape[1] - stats.rankdata(values, axis=1, method="min")[:, 1:, :] + 1  # [c, B, A]
        small = (reached <= self.c_max) & ok[:, None, :]
        _, b, a = np.nonzero(small)
        np.add.at(self.rank_hist, (b, cols[a], reached[small].astype(np.int64)), 1)

    def add_chunk(self, rows, cols, raw, observed, ok, *, alternative: str, tolerance: float) -> None:
        """One chunk's permuted statistics [c, B, a] and observed ones [c, a] of the attributes ``cols``:
        exceedances, maxima of the raw and the studentized statistic, moments, count candidates."""
        at = (rows[:, None], cols[None, :])
        signed = _masked_signed(raw, ok, alternative)
        obs = _signed(observed, alternative)
        self.exceed[at] = (signed >= obs[:, None, :] - tolerance).sum(axis=1)
        self.null_max[cols] = np.maximum(self.null_max[cols], signed.max(axis=0).T)
        z_obs, z = studentized(raw, observed, ok)
        self.z_obs[at] = np.where(ok, _signed(z_obs, alternative), np.nan)
        z = _masked_signed(z, ok, alternative)
        self.null_max_z[cols] = np.maximum(self.null_max_z[cols], z.max(axis=0).T)
        if self.count_z:
            signed = z
        if self.moments is not None:
            s = np.where(ok[:, None, :], raw, 0.0)
            for power in range(3):
                self.moments[(power, *at)] = (s ** (power + 1)).sum(1)
        for i, a in enumerate(cols):
            low = self.bound(a)
            hit = np.nonzero(signed[:, :, i] > low)
            if hit[0].size:
                self.candidates[a].append((hit[1].astype(np.int32), signed[:, :, i][hit]))

    def bound(self, a: int) -> float:
        """A lower bound of the final max-T threshold of attribute a (the partial maxima only grow; the
        global maxima are at least the attribute's)."""
        if self.k_allowed < 0:
            return np.inf
        m = np.sort((self.null_max_z if self.count_z else self.null_max)[a])[::-1]
        return m[min(self.k_allowed, m.size - 1)]


def studentized(raw: np.ndarray, observed: np.ndarray, ok: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Observed [c, A] and permuted [c, B, A] statistics standardized by the mean and SD of each test's
    B + 1 values (observed included: the same transformation for every value, so the test stays exact).
    A test whose values have no spread gets 0 throughout."""
    values = np.where(ok[:, None, :], raw, 0.0)
    obs = np.where(ok, observed, 0.0)
    n = raw.shape[1] + 1.0
    mean = (obs + values.sum(axis=1)) / n  # [c, A]
    var = np.maximum((obs * obs + (values * values).sum(axis=1)) / n - mean * mean, 0.0)
    sd = np.sqrt(var)
    scale = np.where(sd > 1e-12 * np.maximum(np.abs(mean), 1.0), sd, np.inf)
    return (obs - mean) / scale, (values - mean[:, None, :]) / scale[:, None, :]


def permutation_test(
    x: np.ndarray,
    attribute_rdms: np.ndarray,
    names: list[str],
    n_emotions: int,
    *,
    stat_fn,
    observed: np.ndarray,
    parametric_null_hits,
    observed_p: np.ndarray,
    valid: np.ndarray,
    permutations: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
    correction: str = "maxt",
    fdr_method: str = "bh",
    parametric_fdr_method: str = "bh",
    parametric_alpha: float | None = None,
    alternative: str = "greater",
    tail: str = "empirical",
    chunk: int = 1024,
    keep_permuted: int = 20,
    studentize: str = "across",
) -> PermutationResult:
    """The randomisation test. x: [neurons, pairs] neuron RDMs; attribute_rdms: [A, pairs].

    ``stat_fn(x_chunk, rows, targets)`` returns the statistic [chunk, (B+1) * A] for the chunk's
    neurons against every target (observed first), ``observed`` is the statistic [neurons, A] (the
    same numbers as the targets' first block), ``parametric_null_hits(rows, stat, alpha)`` the
    (permutation, attribute, p) of the statistics [chunk, B, A] of those rows whose parametric p is
    below alpha (for the parametric test's null counts), ``observed_p`` the parametric p of the
    observed statistics, ``valid`` marks tests with a defined statistic [neurons, A]. Chunks hold at
    most ``chunk`` neurons and CHUNK_BYTES of statistics.
    """
    # correction and tail were checked by the caller (searchlight); B depends on the data: checked here
    B = check_permutations(permutations, n_emotions)
    check_alpha(alpha, B, tail)
    N, A = observed.shape
    perms = draw_permutations(n_emotions, B, seed)
    obs = _signed(observed, alternative)  # [N, A]
    streams = _Streams(N, A, B, alpha, tail == "moments", _counts_studentized(correction, studentize))
    par_alpha = alpha if parametric_alpha is None else parametric_alpha
    keep = min(max(keep_permuted, 0), B)
    permuted_stat = np.full((keep, N, A), np.nan, np.float32)
    for cols in attribute_blocks(A, B, x.shape[1]):
        # the permuted targets of a few attributes at a time bound the memory of their prepared form
        prepared = stat_fn.prepare(permuted_targets(attribute_rdms[cols], perms), len(cols))  # [(B+1) * a, pairs]
        _stream_block(
            streams, cols, prepared, x=x, observed=observed, valid=valid, stat_fn=stat_fn, chunk=chunk,
            permuted_stat=permuted_stat,
            null_hits=lambda rows, raw: parametric_null_hits(rows, raw[:, :PARAMETRIC_NULL_PERMUTATIONS], par_alpha),
            alternative=alternative, rank_histogram=correction == "fdr",
        )  # fmt: skip
        del prepared
        logger.debug("permutation test: attributes %s done", list(cols))

    return _finish(
        streams,
        names,
        valid,
        obs=obs,
        observed=observed,
        observed_p=observed_p,
        perms=perms,
        seed=seed,
        alpha=alpha,
        par_alpha=par_alpha,
        correction=correction,
        fdr_method=fdr_method,
        parametric_fdr_method=parametric_fdr_method,
        tail=tail,
        alternative=alternative,
        permuted_stat=permuted_stat,
        studentize=studentize,
    )


def _stream_block(
    streams: _Streams,
    cols,
    prepared,
    *,
    x,
    observed,
    valid,
    stat_fn,
    chunk,
    permuted_stat,
    null_hits,
    alternative,
    rank_histogram: bool,
) -> None:
    """The statistics of every neuron, chunk by chunk, against one block of attributes' permuted targets,
    into the streams (and the kept permuted statistics)."""
    B, keep = streams.B, permuted_stat.shape[0]
    step = max(1, min(chunk, CHUNK_BYTES // (8 * (B + 1) * len(cols))))
    for start in range(0, len(x), step):
        rows = np.arange(start, min(len(x), start + step))
        raw = stat_fn(x[rows], rows, prepared).reshape(rows.size, B + 1, len(cols))[:, 1:, :]  # [c, B, a]
        ok = valid[rows][:, cols]
        permuted_stat[:, rows[:, None], cols[None, :]] = np.where(ok[None], raw[:, :keep].transpose(1, 0, 2), np.nan)
        streams.add_chunk(
            rows, cols, raw, observed[rows][:, cols], ok, alternative=alternative, tolerance=stat_fn.tolerance
        )
        b_hit, a_hit, p_hit = null_hits(rows, raw)
        if b_hit.size:
            streams.parametric.append((b_hit.astype(np.int32), cols[a_hit].astype(np.int16), p_hit))
        if rank_histogram:
            signed = _masked_signed(raw, ok, alternative)
            streams.add_rank_histogram(cols, _signed(observed[rows][:, cols], alternative), signed, ok)
        del raw


def attribute_blocks(A: int, B: int, n_pairs: int) -> list[np.ndarray]:
    """The attributes in blocks whose B + 1 permuted targets, in the kernel's bitset form (two bitsets of
    n_pairs x n_pairs bits per target), fit TARGET_BYTES: all at once for B = 1000 and the paper's 351
    pairs, about 3 at a time for B = 10,000."""
    per_attribute = 2 * (B + 1) * n_pairs * 8 * math.ceil(n_pairs / 64)
    size = max(1, min(A, TARGET_BYTES // per_attribute))
    return [np.arange(start, min(A, start + size)) for start in range(0, A, size)]


def _counts_studentized(correction: str, studentize: str) -> bool:
    """Whether the chosen correction's maxima (and so its null counts) are of the studentized statistic."""
    if correction == "maxt":
        return studentize == "both"
    return correction == "maxt_global" and studentize != "none"


def _finish(
    streams: _Streams,
    names,
    valid,
    *,
    obs,
    observed,
    observed_p,
    perms,
    seed,
    alpha,
    par_alpha,
    correction,
    fdr_method,
    parametric_fdr_method,
    tail,
    alternative,
    permuted_stat,
    studentize,
) -> PermutationResult:
    """The p values, max-T adjusted p (within and across attributes) and null counts from the streams."""
    B = streams.B
    empirical = (1.0 + streams.exceed) / (1.0 + B)
    empirical[~valid] = np.nan
    perm_p = empirical
    if tail == "moments":
        perm_p = moment_p(streams.moments, B, observed, alternative, empirical)
        perm_p[~valid] = np.nan
    variants, fits = _max_t_variants(streams, names, np.where(valid, obs, np.nan), tail)
    within = "studentized" if studentize == "both" else "raw"
    across = "raw" if studentize == "none" else "studentized"
    fwer, fwer_global = variants[f"{within}_within"], variants[f"{across}_across"]
    global_max = (streams.null_max_z if streams.count_z else streams.null_max).max(axis=0)  # [B]

    counts, draws = _null_counts(
        streams,
        names,
        B,
        valid,
        empirical=empirical,
        fwer=fwer,
        fwer_global=fwer_global,
        observed_p=observed_p,
        alpha=alpha,
        par_alpha=par_alpha,
        correction=correction,
        fdr_method=fdr_method,
        parametric_fdr_method=parametric_fdr_method,
        tail=tail,
        global_max=global_max,
    )
    return PermutationResult(
        perm_p=perm_p,
        fwer_p=fwer,
        fwer_global_p=fwer_global,
        null_max=streams.null_max,
        null_counts=counts,
        permutations=perms,
        B=B,
        seed=seed,
        correction=correction,
        tail=tail,
        empirical_perm_p=empirical,
        count_draws=draws,
        permuted_stat=permuted_stat,
        studentize=studentize,
        z=streams.z_obs,
        null_max_z=streams.null_max_z,
        variants=variants,
        tail_fits=fits,
        names=list(names),
    )


def _max_t_variants(streams: _Streams, names, valid_obs: np.ndarray, tail: str) -> tuple[dict, list]:
    """The four max-T adjusted p (raw or studentized, within each attribute or across all), and the
    record of every tail fit (tail='gpd')."""
    N, A = valid_obs.shape
    out, fits = {}, []
    for kind, stat, null_max in (
        ("raw", valid_obs, streams.null_max),
        ("studentized", streams.z_obs, streams.null_max_z),
    ):
        within = np.full((N, A), np.nan)
        for a in range(A):
            within[:, a], fit = _max_t_p(stat[:, a], null_max[a], tail)
            fits.append(_fit_record(kind, "within", names[a], stat[:, a], fit, tail))
        flat, fit = _max_t_p(stat.ravel(), null_max.max(axis=0), tail)
        fits.append(_fit_record(kind, "across", "all", stat, fit, tail))
        out[f"{kind}_within"], out[f"{kind}_across"] = within, flat.reshape(N, A)
    return out, [f for f in fits if f is not None]


def _fit_record(kind: str, scope: str, attribute: str, stat: np.ndarray, fit, tail: str) -> dict | None:
    if tail != "gpd":
        return None
    record = {"statistic": kind, "scope": scope, "attribute": attribute, "fitted": fit is not None}
    if fit is not None:
        record.update(fit.record(), beyond_support=beyond_support(stat, fit))
    return record


def _max_t_p(stat: np.ndarray, null_max: np.ndarray, tail: str):
    """(1 + #{b: M_b >= T}) / (1 + B), and the GPD fit where fewer than 10 maxima reach T (tail='gpd'),
    within the fit's support; the fit (None if none passed or tail is not gpd)."""
    B = null_max.size
    finite = np.isfinite(null_max)
    srt = np.sort(null_max[finite])
    count = srt.size - np.searchsorted(srt, stat, side="left")  # #{M >= T}
    p = (1.0 + count) / (1.0 + B)
    fit = fit_gpd_tail(null_max) if tail == "gpd" else None
    p = gpd_p(stat, count, p, fit)
    return np.where(np.isfinite(stat), p, np.nan), fit


def _fdr_count(p_sorted: np.ndarray, m: int, alpha: float, method: str) -> np.ndarray:
    """Which of the smallest p-values (sorted ascending, all below alpha) have q < alpha among m tests."""
    k = p_sorted.size
    if k == 0:
        return np.zeros(0, bool)
    if method == "bh":
        ranks = np.arange(1, k + 1)
        below = np.nonzero(p_sorted * m / ranks < alpha)[0]
        out = np.zeros(k, bool)
        if below.size:
            out[: below[-1] + 1] = True
        return out
    ranks = stats.rankdata(p_sorted)  # the paper's q = p * m / rank(p), ties averaged
    return p_sorted * m / ranks < alpha


def fdr_significant_counts(
    b: np.ndarray, a: np.ndarray, p: np.ndarray, B: int, A: int, m: int, alpha: float, method: str
) -> np.ndarray:
    """Per permutation and attribute, the number of tests with FDR q < alpha, from the tests whose p is
    below alpha (the only ones that can be significant). [B, A]"""
    out = np.zeros((B, A), np.int64)
    if b.size == 0:
        return out
    order = np.argsort(b, kind="stable")
    bounds = np.searchsorted(b[order], np.arange(B + 1))
    for perm in range(B):
        part = order[bounds[perm] : bounds[perm + 1]]
        if part.size:
            by_p = part[np.argsort(p[part], kind="stable")]
            sig = _fdr_count(p[by_p], m, alpha, method)
            out[perm] = np.bincount(a[by_p][sig], minlength=A)
    return out


def discrete_fdr_counts(hist: np.ndarray, B: int, m: int, alpha: float, method: str) -> np.ndarray:
    """The FDR counts of permutation p-values c / (B + 1) from their histogram [perms, A, c]. [perms, A]"""
    out = np.zeros(hist.shape[:2], np.int64)
    p_of_c = np.arange(hist.shape[2]) / (B + 1.0)
    for perm in range(hist.shape[0]):
        per_c = hist[perm].sum(axis=0)  # tests at each p value
        rank_hi = np.cumsum(per_c)  # rank of the last test with that p
        present = per_c > 0
        if method == "bh":
            ok = present & (p_of_c * m / np.maximum(rank_hi, 1) < alpha)
            if ok.any():
                out[perm] = hist[perm, :, : np.flatnonzero(ok)[-1] + 1].sum(axis=1)
        else:  # the paper's q = p m / rank, ties given their average rank
            rank_avg = rank_hi - (per_c - 1) / 2.0
            ok = present & (p_of_c * m / np.maximum(rank_avg, 1) < alpha)
            out[perm] = hist[perm][:, ok].sum(axis=1)
    return out


def _row(name: str, test: str, observed: int, null: np.ndarray) -> dict:
    """One count beside its null. A max-T count has no count p: by construction a permutation's count is
    above zero only where its maximum passes the threshold (at most alpha of them), so that p would only
    restate the family-wise decision."""
    B = null.size
    count_p = np.nan if "maxt" in test else float((1 + (null >= observed).sum()) / (1 + B))
    return {
        "attribute": name,
        "test": test,
        "observed": int(observed),
        "null_mean": float(null.mean()),
        "null_p95": float(np.percentile(null, 95)),
        "null_max": int(null.max()),
        "count_p": count_p,
    }


def _null_counts(
    streams: _Streams,
    names,
    B,
    valid,
    *,
    empirical,
    fwer,
    fwer_global,
    observed_p,
    alpha,
    par_alpha,
    correction,
    fdr_method,
    parametric_fdr_method,
    tail,
    global_max,
) -> pd.DataFrame:
    """Observed and per-permutation significant counts, for the parametric test and the chosen one."""

    A = len(names)
    m = int(valid.sum())
    # The parametric test (its FDR over all tests), observed and under every permutation.
    if streams.parametric:
        b, a, p = (np.concatenate(parts) for parts in zip(*streams.parametric))
        streams.parametric = []
    else:
        b, a, p = np.zeros(0, np.int32), np.zeros(0, np.int16), np.zeros(0)
    null_par = fdr_significant_counts(
        b, a, p, min(B, PARAMETRIC_NULL_PERMUTATIONS), A, m, par_alpha, parametric_fdr_method
    )
    del b, a, p
    observed_par = (
        np.nan_to_num(fdr(np.where(valid, observed_p, np.nan), parametric_fdr_method), nan=1.0) < par_alpha
    ).sum(axis=0)
    # The chosen permutation test: max-T thresholds, or FDR over the per-test permutation p.
    if correction in ("maxt", "maxt_global"):
        null_perm = np.zeros((B, A), np.int64)
        for i in range(A):
            within = streams.null_max_z[i] if streams.count_z else streams.null_max[i]
            threshold = _threshold(
                global_max if correction == "maxt_global" else within, streams.k_allowed, alpha, tail
            )
            for bs, values in streams.candidates[i]:
                null_perm[:, i] += np.bincount(bs[values > threshold], minlength=B)
        adjusted = fwer_global if correction == "maxt_global" else fwer
        observed_perm = (np.nan_to_num(adjusted, nan=1.0) <= alpha).sum(axis=0)
    else:  # on the empirical p (the null's p are empirical too)
        null_perm = discrete_fdr_counts(streams.rank_hist, B, m, alpha, fdr_method)
        observed_perm = (np.nan_to_num(fdr(empirical, fdr_method), nan=1.0) < alpha).sum(axis=0)
    test_par, test_perm = f"parametric_{parametric_fdr_method}", f"permutation_{correction}"
    rows = []
    for i, name in enumerate(names):
        rows.append(_row(name, test_par, observed_par[i], null_par[:, i]))
        rows.append(_row(name, test_perm, observed_perm[i], null_perm[:, i]))
    rows.append(_row("all", test_par, observed_par.sum(), null_par.sum(axis=1)))
    rows.append(_row("all", test_perm, observed_perm.sum(), null_perm.sum(axis=1)))
    return pd.DataFrame(rows), {test_par: null_par, test_perm: null_perm}


def _threshold(null_max: np.ndarray, k_allowed: int, alpha: float, tail: str) -> float:
    """The statistic above which the max-T adjusted p is <= alpha."""
    srt = np.sort(null_max)[::-1]
    empirical = srt[min(max(k_allowed, 0), srt.size - 1)] if k_allowed >= 0 else np.inf
    if tail == "gpd":
        fit = fit_gpd_tail(null_max)
        if fit is not None and alpha < GPD_MIN_EXCEEDANCES / (null_max.size + 1.0) and alpha < fit.share:
            return min(empirical, fit.isf(alpha)) if np.isfinite(empirical) else fit.isf(alpha)
    return empirical


def mantel_p(
    x: np.ndarray, y: np.ndarray, n_emotions: int, permutations: int = 1000, seed: int = 0, alternative: str = "greater"
) -> np.ndarray:
    """Permutation p of Kendall tau-b between every row of x and every row of y (both [rows, pairs] over
    the same emotions), permuting y's emotions. With n! <= permutations every permutation is used once
    (p = share of all n! orders at least as extreme, the observed one included): an exact test. [x rows, y rows]"""
    import itertools

    if distinct_permutations(n_emotions) <= permutations:
        perms = np.array(list(itertools.permutations(range(n_emotions))), dtype=np.int64)
    else:
        perms = draw_permutations(n_emotions, permutations, seed)
    S, ties = kendall_s_targets(x, TargetBitsets(permuted_targets(y, perms)))
    B = perms.shape[0]
    # S orders a test's permutations as tau-b does (a permutation keeps both RDMs' ties)
    S = _signed(S.reshape(x.shape[0], B + 1, y.shape[0]).astype(np.float64), alternative)
    exceed = (S[:, 1:, :] >= S[:, :1, :]).sum(axis=1)
    exact = distinct_permutations(n_emotions) <= permutations
    p = exceed / B if exact else (1.0 + exceed) / (1.0 + B)
    constant = ties[:, 0] / 2.0 >= x.shape[1] * (x.shape[1] - 1) / 2.0
    p[constant] = np.nan
    return p
