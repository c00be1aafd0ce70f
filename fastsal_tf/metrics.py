"""Saliency metrics with the MIT Saliency Benchmark definitions (numpy, float64).

Definitions follow Bylinskii et al., "What do different evaluation metrics tell us about saliency models?"
(TPAMI 2019) and the benchmark's MATLAB code (cvzoya/saliency, code_forMetrics/*.m).

Inputs (all (H, W) arrays):
- `saliency_map` (and `baseline_map`): the prediction, any finite real values. When its size differs from
  the ground truth it is resized to the ground-truth size with `resize_map` (MATLAB `imresize` defaults,
  as the MIT code does).
- `fixation_map`: binary map of fixated pixels: bool, or non-negative integer counts (e.g.
  `fixations.rasterize(..., counts=True)`); a pixel fixated several times counts once, as in the MIT code.
  Continuous values are rejected (ValueError), so NSS/AUC can never be computed on a blurred map by mistake.
- `density_map`: the continuous ground truth for CC, KLD and SIM (e.g. `fixations.density_map`).
Ground-truth maps of one image (fixation, density, other-fixation maps) must have equal shapes (ValueError).

Bad input and undefined results:
- NaN/Inf anywhere, a map that is not 2-D, or mismatched ground-truth shapes: ValueError naming the argument.
- Negative values: allowed where the MIT code normalises them away (AUCs and SIM/IG min-max normalise the
  prediction; NSS and CC standardise it). KLD needs non-negative maps and raises ValueError; KLD and SIM
  raise ValueError for a negative `density_map`.
- No fixations (or an all-zero density map): NaN with a `MetricWarning`. The MIT code returns NaN for the
  AUCs; for KLD and SIM it would return 0, which looks like a score, so we return NaN there too.
- Constant prediction: NaN with a `MetricWarning` wherever the MIT code divides by zero: AUC-Borji, sAUC
  (min-max), NSS, CC (std), SIM and IG (min-max). AUC-Judd with jitter (the default) scores a constant map
  like MIT: the jitter orders its pixels at random, giving about 0.5 (chance); without jitter it is NaN.
  KLD of a constant map is the KLD of the uniform density. An all-zero map scores SIM 0 and a large KLD
  (MIT keeps a zero map at zero).

Random sampling (AUC-Judd jitter, AUC-Borji and sAUC negatives) uses `rng` (a seed or a
`numpy.random.Generator`); the default seed 0 makes every number reproducible.

Where the Tübingen benchmark / pysaliency protocol differs (its numbers are not comparable one-to-one):
- AUC: pysaliency ranks every fixation (duplicates included) against all pixels (fixated ones included) with
  exact tie handling and no jitter; AUC-Judd here sweeps thresholds at fixated pixels against the
  non-fixated pixels, which differs by about 1/(2·N_fix). Its sAUC uses all fixations of the other images.
- NSS: pysaliency averages over fixations (duplicates weighted), divides by std with ddof=0 (a relative
  difference of 1/(2·H·W) from our ddof=1) and returns 0 for a constant map.
- CC: pysaliency returns 0 (not NaN) for a constant prediction.
- SIM: pysaliency only shifts negative maps to zero before sum-normalising; MIT also min-max normalises.
- KLD: pysaliency's `MIT_KLDiv` matches ours; its default image-based KL uses a 1e-20 floor instead of eps.
- IG, log-likelihood and the Tübingen "metric-specific saliency maps" are computed from probabilistic
  models (log-densities in bits), not from min-max-normalised maps.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Mapping

import numpy as np
from scipy import sparse

EPS = float(np.finfo(np.float64).eps)  # 2.2204e-16: MATLAB's eps, used by the MIT KLD and IG code
JITTER = 1e-7  # AUC-Judd tie-breaking noise: uniform in [0, JITTER), added before normalisation (MIT)


class MetricWarning(UserWarning):
    """A metric is undefined for its input and returned NaN."""


class _Undefined(Exception):
    """Raised inside a metric whose value is undefined for valid input; turned into NaN + MetricWarning."""


def _nan_if_undefined(metric):
    @functools.wraps(metric)
    def wrapper(*args, **kwargs):
        try:
            return metric(*args, **kwargs)
        except _Undefined as reason:
            warnings.warn(f"{metric.__name__}: {reason}; returning NaN", MetricWarning, stacklevel=2)
            return float("nan")
    return wrapper


def _check_map(values, name: str) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 2 or array.size == 0:
        raise ValueError(f"{name} must be a non-empty (H, W) array, got shape {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} contains NaN or Inf")
    return array


def _check_nonnegative(array: np.ndarray, name: str) -> np.ndarray:
    if (array < 0).any():
        raise ValueError(f"{name} has negative values; this metric needs a non-negative map")
    return array


def _fixations(values, name: str = "fixation_map") -> np.ndarray:
    """Validated bool (H, W) map of fixated pixels."""
    array = np.asarray(values)
    if array.dtype == bool:
        return _check_map(array, name) > 0
    array = _check_nonnegative(_check_map(array, name), name)
    if (array != np.round(array)).any():
        raise ValueError(f"{name} must be binary or hold fixation counts (non-negative integers), "
                         "not a continuous map")
    return array > 0


def _prediction(values, shape: tuple[int, ...], name: str = "saliency_map", nonnegative: bool = False
                ) -> np.ndarray:
    """Validated prediction resized to shape; clipped at 0 after resizing when it must be non-negative."""
    array = _check_map(values, name)
    if nonnegative:
        _check_nonnegative(array, name)
    if array.shape != tuple(shape):
        array = resize_map(array, shape)
        if nonnegative:
            array = np.maximum(array, 0.0)
    return array


def _require_fixations(fixated: np.ndarray) -> None:
    if not fixated.any():
        raise _Undefined("no fixations")


def _require_varying(array: np.ndarray, name: str) -> None:
    if array.max() == array.min():
        raise _Undefined(f"{name} is constant")


def _min_max(array: np.ndarray, name: str = "saliency_map") -> np.ndarray:
    _require_varying(array, name)
    low = array.min()
    return (array - low) / (array.max() - low)


def _generator(rng) -> np.random.Generator:
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


def _cubic(x: np.ndarray) -> np.ndarray:
    """Keys cubic convolution kernel with a = -0.5 (MATLAB imresize 'bicubic')."""
    ax = np.abs(x)
    return np.where(ax <= 1, (1.5 * ax - 2.5) * ax * ax + 1,
                    np.where(ax <= 2, ((-0.5 * ax + 2.5) * ax - 4) * ax + 2, 0.0))


@functools.lru_cache(maxsize=32)
def _resize_matrix(n_in: int, n_out: int) -> sparse.csr_matrix:
    """(n_out, n_in) matrix of MATLAB imresize's 1-D bicubic weights (antialiased, edges replicated)."""
    scale = n_out / n_in
    kernel_scale = min(scale, 1.0)  # widen the kernel when shrinking (antialiasing)
    width = 4.0 / kernel_scale
    centre = (np.arange(n_out) + 0.5) / scale - 0.5  # output pixel centres in 0-based input coordinates
    taps = np.floor(centre - width / 2)[:, None] + np.arange(int(np.ceil(width)) + 2)
    weights = kernel_scale * _cubic(kernel_scale * (centre[:, None] - taps))
    weights /= weights.sum(axis=1, keepdims=True)
    columns = np.clip(taps.astype(np.int64), 0, n_in - 1)  # out-of-range taps repeat the edge pixel
    rows = np.broadcast_to(np.arange(n_out)[:, None], columns.shape)
    return sparse.csr_matrix((weights.ravel(), (rows.ravel(), columns.ravel())), shape=(n_out, n_in))


def resize_map(values, out_hw: tuple[int, ...]) -> np.ndarray:
    """Resizes an (H, W) map to out_hw = (H', W') like MATLAB's `imresize(map, [H' W'])` on doubles:
    bicubic (Keys, a = -0.5), pixel centres aligned (output pixel i samples input coordinate
    (i + 0.5)/scale − 0.5), antialiased (kernel widened) when shrinking, edge pixels replicated (imresize
    clamps out-of-range taps). No clipping: bicubic may overshoot the input range."""
    array = np.asarray(values, dtype=np.float64)
    out_h, out_w = (int(n) for n in out_hw)
    rows = _resize_matrix(array.shape[0], out_h)
    cols = _resize_matrix(array.shape[1], out_w)
    return np.asarray(cols @ (rows @ array).T).T


def _auc_at_steps(positives: np.ndarray, negatives: np.ndarray, step: float) -> float:
    """Mean over splits of the trapezoid ROC area of positives (P,) against each row of negatives (S, M),
    thresholds 0, step, 2·step, … up to the largest value (MATLAB 0:step:max, swept from the top)."""
    top = max(positives.max(), negatives.max())
    thresholds = np.round(np.arange(int(np.floor(top / step + 1e-9)) + 1) * step, 12)[::-1]
    # Thresholds above a split's own maximum add (0, 0) points, which add no area: one grid serves all.
    tp = (positives[:, None] >= thresholds).mean(axis=0)
    fp = (negatives[:, :, None] >= thresholds).mean(axis=1)
    tp = np.concatenate([[0.0], tp, [1.0]])
    fp = np.pad(fp, ((0, 0), (1, 0)), constant_values=0.0)
    fp = np.pad(fp, ((0, 0), (0, 1)), constant_values=1.0)
    return float(np.trapezoid(np.broadcast_to(tp, fp.shape), fp, axis=1).mean())


@_nan_if_undefined
def auc_judd(saliency_map, fixation_map, *, jitter: bool = True, rng=0) -> float:
    """AUC-Judd (MIT AUC_Judd.m): ROC area of the fixated pixels against all other pixels.

    The map (jittered by uniform [0, 1e-7) noise unless jitter=False, then min-max normalised) is
    thresholded at each fixated value t_k, sorted descending: TP_k = k / N_fix and
    FP_k = (#{pixels ≥ t_k} − k) / (N_pixels − N_fix); the curve (0, 0) → … → (1, 1) is integrated by the
    trapezoid rule. O(P log N_fix). The jitter is absolute, as in MIT (it breaks ties of maps with flat
    regions, and can reorder values closer than 1e-7: pass jitter=False for tie-free continuous maps).
    Returns a float in [0, 1]; 0.5 is chance.
    """
    fixated = _fixations(fixation_map)
    values = _prediction(saliency_map, fixated.shape)
    _require_fixations(fixated)
    if jitter:
        values = values + _generator(rng).random(values.shape) * JITTER
    values = _min_max(values).ravel()
    thresholds = np.sort(values[fixated.ravel()])  # ascending
    n_fix, n_pixels = thresholds.size, values.size
    if n_fix == n_pixels:
        raise _Undefined("every pixel is fixated")
    # level[p] = number of thresholds ≤ value[p]; pixel p is at or above thresholds[j] iff level[p] > j.
    level = np.searchsorted(thresholds, values, side="right")
    above = (n_pixels - np.cumsum(np.bincount(level, minlength=n_fix + 1))[:n_fix])[::-1]
    k = np.arange(1, n_fix + 1)
    tp = np.concatenate([[0.0], k / n_fix, [1.0]])
    fp = np.concatenate([[0.0], (above - k) / (n_pixels - n_fix), [1.0]])
    return float(np.trapezoid(tp, fp))


@_nan_if_undefined
def auc_borji(saliency_map, fixation_map, *, n_splits: int = 100, step: float = 0.1, rng=0) -> float:
    """AUC-Borji (MIT AUC_Borji.m): ROC area of the fixated pixels against random pixels.

    The min-max normalised map is sampled at N_fix pixels drawn uniformly with replacement from the whole
    image (fixated pixels included), n_splits times; per split, TP and FP are the fractions of fixated and
    sampled values ≥ t for t = 0, step, … ≤ max, integrated by the trapezoid rule; returns the mean over
    splits, a float in [0, 1] (0.5 is chance).
    """
    fixated = _fixations(fixation_map)
    values = _prediction(saliency_map, fixated.shape)
    _require_fixations(fixated)
    values = _min_max(values).ravel()
    positives = values[fixated.ravel()]
    picks = _generator(rng).integers(0, values.size, size=(n_splits, positives.size))
    return _auc_at_steps(positives, values[picks], step)


@_nan_if_undefined
def auc_shuffled(saliency_map, fixation_map, other_fixation_map, *, n_splits: int = 100, step: float = 0.1,
                 rng=0) -> float:
    """Shuffled AUC (MIT AUC_shuffled.m): ROC area of the fixated pixels against fixations of other images.

    other_fixation_map: binary (H, W) map, the same shape as fixation_map, of fixations pooled from other
    images of the dataset (e.g. the authors' shuffledMap.npy). Per split, min(N_fix, N_other) of its
    pixels are drawn without replacement as negatives; otherwise as `auc_borji`. Scores center bias at
    about 0.5. NaN (with a warning) when other_fixation_map is empty.
    """
    fixated = _fixations(fixation_map)
    others = _fixations(other_fixation_map, "other_fixation_map")
    if others.shape != fixated.shape:
        raise ValueError(f"other_fixation_map has shape {others.shape}, fixation_map {fixated.shape}")
    values = _prediction(saliency_map, fixated.shape)
    _require_fixations(fixated)
    candidates = np.flatnonzero(others)
    if candidates.size == 0:
        raise _Undefined("other_fixation_map has no fixations")
    values = _min_max(values).ravel()
    positives = values[fixated.ravel()]
    n_negatives = min(positives.size, candidates.size)
    generator = _generator(rng)
    picks = np.stack([candidates[generator.choice(candidates.size, n_negatives, replace=False)]
                      for _ in range(n_splits)])
    return _auc_at_steps(positives, values[picks], step)


@_nan_if_undefined
def nss(saliency_map, fixation_map) -> float:
    """Normalized Scanpath Saliency (MIT NSS.m): mean over fixated pixels of (s − mean(s)) / std(s).

    std uses ddof=1 (MATLAB's std, as the MIT code), i.e. divides by H·W − 1. Each fixated pixel counts
    once. Unitless (standard deviations above the map mean); 0 is chance.
    """
    fixated = _fixations(fixation_map)
    values = _prediction(saliency_map, fixated.shape)
    _require_fixations(fixated)
    _require_varying(values, "saliency_map")
    return float((values[fixated].mean() - values.mean()) / values.std(ddof=1))


def pearson(a, b) -> float:
    """Pearson's linear correlation of two arrays of the same size (in float64): Σ(a − ā)(b − b̄) /
    sqrt(Σ(a − ā)² · Σ(b − b̄)²); 1.0 for two constant arrays, 0.0 when only one is constant (`cc` calls
    that case undefined before it gets here)."""
    a = np.asarray(a, np.float64).ravel()
    b = np.asarray(b, np.float64).ravel()
    a = a - a.mean()
    b = b - b.mean()
    denominator = np.sqrt((a * a).sum() * (b * b).sum())
    if denominator == 0:
        return 1.0 if np.allclose(a, b) else 0.0
    return float((a * b).sum() / denominator)


@_nan_if_undefined
def cc(saliency_map, density_map) -> float:
    """Pearson's linear correlation coefficient (MIT CC.m) between the prediction and the density map:
    Σ(s − s̄)(g − ḡ) / sqrt(Σ(s − s̄)² · Σ(g − ḡ)²), in [−1, 1]. Symmetric; any finite values."""
    truth = _check_map(density_map, "density_map")
    values = _prediction(saliency_map, truth.shape)
    _require_varying(truth, "density_map")
    _require_varying(values, "saliency_map")
    return pearson(values, truth)


@_nan_if_undefined
def kld(saliency_map, density_map) -> float:
    """KL divergence KL(G || P) (MIT KLdiv.m), in nats: Σ G · log(eps + G / (P + eps)).

    G = density_map / its sum (the fixation density), P = saliency_map / its sum (left at zero if it is
    all zero), eps = 2.2204e-16. Both maps must be non-negative; a resized prediction is clipped at 0
    (bicubic overshoot). ≥ 0, lower is better.
    """
    truth = _check_nonnegative(_check_map(density_map, "density_map"), "density_map")
    values = _prediction(saliency_map, truth.shape, nonnegative=True)
    if not truth.any():
        raise _Undefined("density_map is all zero (no fixations)")
    g = truth / truth.sum()
    p = values / values.sum() if values.any() else values
    return float(np.sum(g * np.log(EPS + g / (p + EPS))))


def _range_distribution(array: np.ndarray, name: str) -> np.ndarray:
    """MIT SIM normalisation: min-max to [0, 1], then divide by the sum; an all-zero map stays zero."""
    if not array.any():
        return array
    array = _min_max(array, name)
    return array / array.sum()


@_nan_if_undefined
def sim(saliency_map, density_map) -> float:
    """Similarity / histogram intersection (MIT similarity.m): Σ min(P, G) in [0, 1], where both maps
    are min-max normalised and then divided by their sums. density_map must be non-negative; the
    prediction may hold any values (min-max removes the offset)."""
    truth = _check_nonnegative(_check_map(density_map, "density_map"), "density_map")
    values = _prediction(saliency_map, truth.shape)
    if not truth.any():
        raise _Undefined("density_map is all zero (no fixations)")
    return float(np.minimum(_range_distribution(values, "saliency_map"),
                            _range_distribution(truth, "density_map")).sum())


@_nan_if_undefined
def information_gain(saliency_map, fixation_map, baseline_map) -> float:
    """Information gain over a baseline (MIT InfoGain.m), in bits per fixated pixel:
    mean over fixated pixels of log2(eps + P) − log2(eps + B), where P and B are the prediction and the
    baseline (e.g. a center bias), each min-max normalised then divided by its sum, and eps = 2.2204e-16.
    > 0 means the prediction beats the baseline."""
    fixated = _fixations(fixation_map)
    values = _prediction(saliency_map, fixated.shape)
    baseline = _prediction(baseline_map, fixated.shape, "baseline_map")
    _require_fixations(fixated)
    p = _min_max(values)
    b = _min_max(baseline, "baseline_map")
    p, b = p / p.sum(), b / b.sum()
    return float(np.mean(np.log2(EPS + p[fixated]) - np.log2(EPS + b[fixated])))


def score_image(saliency_map, fixation_map=None, density_map=None, *, baseline_map=None,
                other_fixation_map=None, rng=0) -> dict[str, float]:
    """All metrics one image's ground truth allows, as {name: value}.

    fixation_map gives auc_judd, auc_borji and nss, plus auc_shuffled with other_fixation_map and
    information_gain with baseline_map; density_map gives cc, kld and sim. The prediction is resized to
    the ground-truth size by each metric; both ground-truth maps must have the same shape. One generator
    seeded by rng drives the jitter and the random negatives.
    """
    if fixation_map is None and density_map is None:
        raise ValueError("score_image needs a fixation_map, a density_map or both")
    if fixation_map is not None and density_map is not None and np.shape(fixation_map) != np.shape(density_map):
        raise ValueError(f"fixation_map has shape {np.shape(fixation_map)}, density_map {np.shape(density_map)}")
    generator = _generator(rng)
    scores = {}
    if fixation_map is not None:
        scores["auc_judd"] = auc_judd(saliency_map, fixation_map, rng=generator)
        scores["auc_borji"] = auc_borji(saliency_map, fixation_map, rng=generator)
        if other_fixation_map is not None:
            scores["auc_shuffled"] = auc_shuffled(saliency_map, fixation_map, other_fixation_map, rng=generator)
        scores["nss"] = nss(saliency_map, fixation_map)
        if baseline_map is not None:
            scores["information_gain"] = information_gain(saliency_map, fixation_map, baseline_map)
    if density_map is not None:
        scores["cc"] = cc(saliency_map, density_map)
        scores["kld"] = kld(saliency_map, density_map)
        scores["sim"] = sim(saliency_map, density_map)
    return scores


class DatasetScores:
    """Per-image metric values and their dataset means.

    `add(image_id, scores)` stores one image's {metric: value} (e.g. from `score_image`); `per_image` keeps
    them by id in insertion order. `means()` averages each metric over the images where it is finite (NaN
    marks an undefined value, e.g. an image without fixations) and `counts()` says how many images each
    mean used, so excluded images are visible.
    """

    def __init__(self) -> None:
        self.per_image: dict[str, dict[str, float]] = {}

    def add(self, image_id: str, scores: Mapping[str, float]) -> None:
        if image_id in self.per_image:
            raise ValueError(f"image {image_id!r} was already added")
        self.per_image[image_id] = {name: float(value) for name, value in scores.items()}

    def _columns(self) -> dict[str, np.ndarray]:
        names = dict.fromkeys(name for scores in self.per_image.values() for name in scores)
        return {name: np.array([scores.get(name, np.nan) for scores in self.per_image.values()])
                for name in names}

    def counts(self) -> dict[str, int]:
        return {name: int(np.isfinite(column).sum()) for name, column in self._columns().items()}

    def means(self) -> dict[str, float]:
        return {name: float(column[np.isfinite(column)].mean()) if np.isfinite(column).any() else float("nan")
                for name, column in self._columns().items()}
