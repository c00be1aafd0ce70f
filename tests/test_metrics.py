"""fastsal_tf.metrics against plain references written from the MIT definitions (loops, no shared code)."""

import math

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from fastsal_tf import fixations, metrics
from fastsal_tf.metrics import MetricWarning

H, W = 48, 64
MATLAB_EPS = 2.220446049250313e-16  # MATLAB eps (displayed as 2.2204e-16)


# ---------- plain references, straight from the MIT MATLAB code ----------

def trapezoid(x, y):
    return sum((x[i] - x[i - 1]) * (y[i] + y[i - 1]) / 2 for i in range(1, len(x)))


def ref_min_max(s):
    return (s - s.min()) / (s.max() - s.min())


def ref_auc_judd(s, fix):
    s = ref_min_max(s).ravel()
    f = fix.ravel()
    thresholds = sorted(s[f], reverse=True)
    n_fix, n_pix = len(thresholds), s.size
    tp, fp = [0.0], [0.0]
    for i, t in enumerate(thresholds, start=1):
        above = sum(1 for v in s if v >= t)
        tp.append(i / n_fix)
        fp.append((above - i) / (n_pix - n_fix))
    return trapezoid(fp + [1.0], tp + [1.0])


def ref_auc_sampled(s_norm, fix, negative_index_sets, step=0.1):
    """AUC_Borji.m / AUC_shuffled.m given the (already drawn) negative pixel indices of each split."""
    s = s_norm.ravel()
    positives = s[fix.ravel()]
    aucs = []
    for picks in negative_index_sets:
        negatives = s[picks]
        top = max(positives.max(), negatives.max())
        thresholds = [k * step for k in range(int(top / step + 1e-9) + 1)][::-1]
        tp, fp = [0.0], [0.0]
        for t in thresholds:
            tp.append(sum(1 for v in positives if v >= t) / len(positives))
            fp.append(sum(1 for v in negatives if v >= t) / len(negatives))
        aucs.append(trapezoid(fp + [1.0], tp + [1.0]))
    return sum(aucs) / len(aucs)


def ref_nss(s, fix):
    n = s.size
    mean = s.sum() / n
    std = math.sqrt(((s - mean) ** 2).sum() / (n - 1))  # MATLAB std
    values = [(s[r, c] - mean) / std for r, c in zip(*np.nonzero(fix))]
    return sum(values) / len(values)


def ref_kld(s, g):
    eps = MATLAB_EPS
    p, q = s / s.sum(), g / g.sum()
    return sum(qi * math.log(eps + qi / (pi + eps)) for pi, qi in zip(p.ravel(), q.ravel()))


def ref_sim(s, g):
    p, q = ref_min_max(s), ref_min_max(g)
    p, q = p / p.sum(), q / q.sum()
    return sum(min(a, b) for a, b in zip(p.ravel(), q.ravel()))


def ref_ig(s, fix, b):
    eps = MATLAB_EPS
    p, base = ref_min_max(s), ref_min_max(b)
    p, base = p / p.sum(), base / base.sum()
    values = [math.log2(eps + p[r, c]) - math.log2(eps + base[r, c]) for r, c in zip(*np.nonzero(fix))]
    return sum(values) / len(values)


# ---------- inputs ----------

def random_case(seed, n_points=30):
    """A smooth tie-free map, random fixations, their density, a center-bias baseline, other fixations."""
    rng = np.random.default_rng(seed)
    saliency = ndimage.gaussian_filter(rng.random((H, W)), 3) + 1e-3 * rng.random((H, W))
    points = rng.uniform([0, 0], [W - 1, H - 1], size=(n_points, 2))
    fix = fixations.rasterize(points, (H, W))
    density = fixations.density_map(fix, 4.0)
    others = fixations.rasterize(rng.uniform([0, 0], [W - 1, H - 1], size=(200, 2)), (H, W))
    return saliency, fix, density, center_bias(), others


def center_bias(shape=(H, W)):
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]]
    return np.exp(-(((xx - shape[1] / 2) / (shape[1] / 4)) ** 2 + ((yy - shape[0] / 2) / (shape[0] / 4)) ** 2) / 2)


SEEDS = [0, 1, 2]


# ---------- agreement with the references ----------

@pytest.mark.parametrize("seed", SEEDS)
def test_deterministic_metrics_match_formula_reference(seed):
    s, fix, density, baseline, _ = random_case(seed)
    assert metrics.auc_judd(s, fix, jitter=False) == pytest.approx(ref_auc_judd(s, fix), abs=1e-6)
    assert metrics.nss(s, fix) == pytest.approx(ref_nss(s, fix), abs=1e-6)
    assert metrics.cc(s, density) == pytest.approx(np.corrcoef(s.ravel(), density.ravel())[0, 1], abs=1e-6)
    assert metrics.kld(s, density) == pytest.approx(ref_kld(s, density), abs=1e-6)
    assert metrics.sim(s, density) == pytest.approx(ref_sim(s, density), abs=1e-6)
    assert metrics.information_gain(s, fix, baseline) == pytest.approx(ref_ig(s, fix, baseline), abs=1e-6)


def test_auc_judd_jitter_is_seeded_and_matches_reference_on_the_jittered_map():
    s, fix, *_ = random_case(3)
    s = np.round(s, 2)  # many ties
    jittered = s + np.random.default_rng(7).random(s.shape) * 1e-7
    assert metrics.auc_judd(s, fix, rng=7) == pytest.approx(ref_auc_judd(jittered, fix), abs=1e-6)
    assert metrics.auc_judd(s, fix, rng=7) == metrics.auc_judd(s, fix, rng=7)


@pytest.mark.parametrize("seed", SEEDS)
def test_auc_borji_matches_reference_on_the_same_random_pixels(seed):
    s, fix, *_ = random_case(seed)
    picks = np.random.default_rng(seed).integers(0, s.size, size=(20, int(fix.sum())))
    expected = ref_auc_sampled(ref_min_max(s), fix, picks)
    assert metrics.auc_borji(s, fix, n_splits=20, rng=seed) == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize("seed", SEEDS)
def test_auc_shuffled_matches_reference_on_the_same_other_fixations(seed):
    s, fix, _, _, others = random_case(seed)
    candidates = np.flatnonzero(others)
    generator = np.random.default_rng(seed)
    picks = [candidates[generator.choice(candidates.size, int(fix.sum()), replace=False)] for _ in range(20)]
    expected = ref_auc_sampled(ref_min_max(s), fix, picks)
    assert metrics.auc_shuffled(s, fix, others, n_splits=20, rng=seed) == pytest.approx(expected, abs=1e-9)


def expected_sampled_auc(s, fix, negative_pool, step=0.1):
    """The expectation of AUC-Borji/sAUC over random splits: the trapezoid area is linear in the FP rates,
    so it equals the area computed with FP = fraction of the whole negative pool above each threshold."""
    s = ref_min_max(s)
    return ref_auc_sampled(s, fix, [negative_pool], step)


@pytest.mark.parametrize("seed", SEEDS)
def test_sampled_aucs_agree_with_their_expectation_within_sampling_error(seed):
    s, fix, _, _, others = random_case(seed)
    n_splits = 400
    for value, pool, sampler in [
        (metrics.auc_borji(s, fix, n_splits=n_splits, rng=seed + 100), np.arange(s.size), "borji"),
        (metrics.auc_shuffled(s, fix, others, n_splits=n_splits, rng=seed + 100), np.flatnonzero(others), "sauc"),
    ]:
        expected = expected_sampled_auc(s, fix, pool)
        # split-to-split std of a ~30-negative AUC is < 0.06, so the mean's error is < 0.06/sqrt(400) = 0.003
        assert abs(value - expected) < 0.012, sampler


def test_sauc_discounts_center_bias_with_the_authors_shuffled_map(shared_dir):
    others = np.load(shared_dir / "data" / "coco_examples" / "shuffledMap.npy")
    rng = np.random.default_rng(0)
    picks = rng.choice(np.flatnonzero(others), 60, replace=False)
    fix = np.zeros(others.shape, bool)
    fix.ravel()[picks] = True  # fixations with the dataset's own center bias
    bias = center_bias(others.shape)
    assert metrics.auc_borji(bias, fix) > 0.7
    assert metrics.auc_shuffled(bias, fix, others) == pytest.approx(0.5, abs=0.06)


# ---------- invariances ----------

@pytest.mark.parametrize("a, b", [(3.0, -2.0), (0.01, 5.0)])
def test_cc_and_nss_are_invariant_to_affine_changes(a, b):
    s, fix, density, *_ = random_case(4)
    assert metrics.cc(a * s + b, density) == pytest.approx(metrics.cc(s, density), abs=1e-12)
    assert metrics.nss(a * s + b, fix) == pytest.approx(metrics.nss(s, fix), abs=1e-10)
    assert metrics.cc(-s, density) == pytest.approx(-metrics.cc(s, density), abs=1e-12)


@pytest.mark.parametrize("k", [1e-4, 7.0])
def test_kld_and_sim_are_invariant_to_scaling(k):
    s, _, density, *_ = random_case(5)
    assert metrics.kld(k * s, density) == pytest.approx(metrics.kld(s, density), abs=1e-10)
    assert metrics.kld(s, k * density) == pytest.approx(metrics.kld(s, density), abs=1e-10)
    assert metrics.sim(k * s, k * density) == pytest.approx(metrics.sim(s, density), abs=1e-12)


@pytest.mark.parametrize("transform", [np.exp, lambda x: x ** 3, lambda x: np.log(x + 1e-3) - 4])
def test_auc_judd_is_invariant_to_monotonic_transforms(transform):
    s, fix, *_ = random_case(6)
    assert metrics.auc_judd(transform(s), fix, jitter=False) == pytest.approx(
        metrics.auc_judd(s, fix, jitter=False), abs=1e-12)


def test_metrics_rank_a_good_map_above_chance_and_a_bad_one_below():
    _, fix, density, baseline, _ = random_case(8)
    good = density / density.max()
    bad = 1 - good
    assert metrics.auc_judd(good, fix) > 0.8 > 0.5 > metrics.auc_judd(bad, fix)
    assert metrics.nss(good, fix) > 1 > 0 > metrics.nss(bad, fix)
    assert metrics.cc(good, density) == pytest.approx(1.0, abs=1e-6)
    assert metrics.sim(density, density) == pytest.approx(1.0, abs=1e-12)
    assert metrics.kld(density, density) == pytest.approx(0.0, abs=1e-9)
    assert metrics.information_gain(baseline, fix, baseline) == pytest.approx(0.0, abs=1e-12)


# ---------- edge cases ----------

ALL_METRICS = {
    "auc_judd": lambda s, fix, dens, base, oth: metrics.auc_judd(s, fix),
    "auc_borji": lambda s, fix, dens, base, oth: metrics.auc_borji(s, fix),
    "auc_shuffled": lambda s, fix, dens, base, oth: metrics.auc_shuffled(s, fix, oth),
    "nss": lambda s, fix, dens, base, oth: metrics.nss(s, fix),
    "information_gain": lambda s, fix, dens, base, oth: metrics.information_gain(s, fix, base),
    "cc": lambda s, fix, dens, base, oth: metrics.cc(s, dens),
    "kld": lambda s, fix, dens, base, oth: metrics.kld(s, dens),
    "sim": lambda s, fix, dens, base, oth: metrics.sim(s, dens),
}


@pytest.mark.parametrize("name", ALL_METRICS)
def test_no_fixations_gives_nan_with_a_warning(name):
    s, _, _, base, oth = random_case(9)
    empty = fixations.rasterize(np.zeros((0, 2)), (H, W))
    with pytest.warns(MetricWarning, match=name):
        value = ALL_METRICS[name](s, empty, fixations.density_map(empty, 4.0), base, oth)
    assert math.isnan(value)


@pytest.mark.parametrize("name", ["auc_borji", "auc_shuffled", "nss", "information_gain", "cc", "sim"])
def test_constant_map_gives_nan_with_a_warning(name):
    _, fix, dens, base, oth = random_case(10)
    with pytest.warns(MetricWarning, match="constant"):
        assert math.isnan(ALL_METRICS[name](np.full((H, W), 0.3), fix, dens, base, oth))


def test_constant_map_auc_judd_kld_and_zero_map_follow_mit():
    _, fix, density, *_ = random_case(11, n_points=300)
    constant = np.full((H, W), 0.3)
    assert metrics.auc_judd(constant, fix) == pytest.approx(0.5, abs=0.06)  # jitter orders it at random
    with pytest.warns(MetricWarning, match="constant"):
        assert math.isnan(metrics.auc_judd(constant, fix, jitter=False))
    uniform = np.full((H, W), 1.0 / (H * W))
    assert metrics.kld(constant, density) == pytest.approx(ref_kld(uniform, density), abs=1e-9)
    zero = np.zeros((H, W))
    assert metrics.sim(zero, density) == 0.0
    g = density / density.sum()  # a zero map stays zero: KLD = Σ g·log(eps + g/eps), large
    assert metrics.kld(zero, density) == pytest.approx(np.sum(g * np.log(MATLAB_EPS + g / MATLAB_EPS)), rel=1e-9)


def test_fixations_on_the_border_are_scored():
    s, *_ = random_case(12)
    corners_and_edges = np.array([[0, 0], [W - 1, 0], [0, H - 1], [W - 1, H - 1], [W / 2, 0], [0, H / 2],
                                  [-0.4, 10.2], [W - 0.6, 20.0]])
    fix = fixations.rasterize(corners_and_edges, (H, W))
    assert fix[0, 0] and fix[H - 1, W - 1] and fix[10, 0] and fix[20, W - 1]
    assert metrics.auc_judd(s, fix, jitter=False) == pytest.approx(ref_auc_judd(s, fix), abs=1e-9)
    assert metrics.nss(s, fix) == pytest.approx(ref_nss(s, fix), abs=1e-9)


def test_duplicate_fixations_count_once():
    s, _, _, base, _ = random_case(13)
    points = np.random.default_rng(13).uniform([0, 0], [W - 1, H - 1], size=(25, 2))
    once = fixations.rasterize(points, (H, W))
    twice = fixations.rasterize(np.concatenate([points, points, points[:5]]), (H, W), counts=True)
    assert twice.max() == 3
    for metric in (lambda f: metrics.auc_judd(s, f), lambda f: metrics.nss(s, f),
                   lambda f: metrics.auc_borji(s, f), lambda f: metrics.information_gain(s, f, base)):
        assert metric(twice) == metric(once)


def test_matlab_imresize_reference_values():
    # MATLAB: imresize([0 0 1 1 0], [1 10]) (bicubic default; edges replicated)
    matlab = [0, -0.0234, -0.0703, 0.2031, 0.7969, 1.0938, 1.0938, 0.7969, 0.2031, -0.0703]
    np.testing.assert_allclose(metrics.resize_map([[0, 0, 1, 1, 0]], (1, 10))[0], matlab, atol=5e-5)


@pytest.mark.parametrize("out_hw", [(120, 160), (20, 30), (97, 33)])
def test_resize_matches_pil_bicubic_away_from_the_edges(out_hw):
    # PIL's antialiased bicubic uses the same kernel and pixel-centre alignment; only its edges differ.
    a = np.random.default_rng(0).random((H, W))
    pil = Image.fromarray(a.astype(np.float32), "F").resize(out_hw[::-1], Image.Resampling.BICUBIC)
    ours = metrics.resize_map(a, out_hw)
    np.testing.assert_allclose(ours[8:-8, 8:-8], np.asarray(pil)[8:-8, 8:-8], atol=1e-6)


def test_a_map_of_another_size_is_resized_to_the_fixation_map():
    s, fix, density, base, oth = random_case(14)
    small = s[::2, ::2]
    resized = metrics.resize_map(small, (H, W))
    for name, metric in ALL_METRICS.items():
        assert metric(small, fix, density, base, oth) == metric(resized, fix, density, base, oth), name
    assert metrics.cc(small, density) == pytest.approx(metrics.cc(s, density), abs=0.05)


# ---------- bad input ----------

@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_or_inf_raise_value_error_naming_the_argument(bad):
    s, fix, density, base, oth = random_case(15)

    def spoil(a):
        a = np.array(a, dtype=np.float64)
        a[3, 4] = bad
        return a

    cases = [
        ("saliency_map", lambda: metrics.auc_judd(spoil(s), fix)),
        ("saliency_map", lambda: metrics.cc(spoil(s), density)),
        ("fixation_map", lambda: metrics.nss(s, spoil(fix))),
        ("density_map", lambda: metrics.kld(s, spoil(density))),
        ("density_map", lambda: metrics.sim(s, spoil(density))),
        ("baseline_map", lambda: metrics.information_gain(s, fix, spoil(base))),
        ("other_fixation_map", lambda: metrics.auc_shuffled(s, fix, spoil(oth))),
    ]
    for name, call in cases:
        with pytest.raises(ValueError, match=name):
            call()


def test_negative_values():
    s, fix, density, *_ = random_case(16)
    shifted = s - 10.0  # all negative
    # Min-max (AUC, SIM) and standardisation (NSS, CC) remove the offset, as in the MIT code.
    assert metrics.auc_judd(shifted, fix, jitter=False) == pytest.approx(metrics.auc_judd(s, fix, jitter=False))
    assert metrics.auc_borji(shifted, fix) == pytest.approx(metrics.auc_borji(s, fix), abs=1e-12)
    assert metrics.nss(shifted, fix) == pytest.approx(metrics.nss(s, fix), abs=1e-9)
    assert metrics.sim(shifted, density) == pytest.approx(metrics.sim(s, density), abs=1e-9)
    # KLD needs densities.
    with pytest.raises(ValueError, match="saliency_map has negative values"):
        metrics.kld(shifted, density)
    for metric in (metrics.kld, metrics.sim):
        with pytest.raises(ValueError, match="density_map has negative values"):
            metric(s, density - density.mean())


def test_upsampled_nonnegative_map_is_clipped_for_kld():
    _, _, density, *_ = random_case(17)
    spiky = np.zeros((H // 4, W // 4))
    spiky[5, 5] = 1.0  # bicubic upsampling overshoots below zero around the spike
    assert metrics.resize_map(spiky, (H, W)).min() < 0
    assert np.isfinite(metrics.kld(spiky, density))


def test_mismatched_and_malformed_inputs_raise():
    s, fix, density, _, oth = random_case(18)
    with pytest.raises(ValueError, match="other_fixation_map has shape"):
        metrics.auc_shuffled(s, fix, oth[:-1])
    with pytest.raises(ValueError, match="shape"):
        metrics.score_image(s, fix, density[:, :-1])
    with pytest.raises(ValueError, match="continuous map"):
        metrics.nss(s, density)  # NSS on a blurred map is a classic mistake
    with pytest.raises(ValueError, match=r"\(H, W\)"):
        metrics.cc(s[None], density)
    with pytest.raises(ValueError, match="needs a fixation_map"):
        metrics.score_image(s)


# ---------- per-image helper and dataset means ----------

def test_score_image_computes_every_metric_like_the_single_functions():
    s, fix, density, base, oth = random_case(19)
    scores = metrics.score_image(s, fix, density, baseline_map=base, other_fixation_map=oth, rng=5)
    generator = np.random.default_rng(5)
    expected = {
        "auc_judd": metrics.auc_judd(s, fix, rng=generator),
        "auc_borji": metrics.auc_borji(s, fix, rng=generator),
        "auc_shuffled": metrics.auc_shuffled(s, fix, oth, rng=generator),
        "nss": metrics.nss(s, fix),
        "information_gain": metrics.information_gain(s, fix, base),
        "cc": metrics.cc(s, density),
        "kld": metrics.kld(s, density),
        "sim": metrics.sim(s, density),
    }
    assert scores == expected
    assert set(metrics.score_image(s, fix)) == {"auc_judd", "auc_borji", "nss"}


def test_dataset_scores_keep_per_image_values_and_skip_undefined_ones():
    table = metrics.DatasetScores()
    table.add("a", {"nss": 1.0, "cc": 0.5})
    table.add("b", {"nss": float("nan"), "cc": 0.7})
    table.add("c", {"nss": 2.0})
    assert list(table.per_image) == ["a", "b", "c"]
    assert math.isnan(table.per_image["b"]["nss"]) and table.per_image["b"]["cc"] == 0.7
    assert table.means() == {"nss": pytest.approx(1.5), "cc": pytest.approx(0.6)}
    assert table.counts() == {"nss": 2, "cc": 2}
    with pytest.raises(ValueError, match="already"):
        table.add("a", {"nss": 0.0})
    empty = metrics.DatasetScores()
    empty.add("x", {"nss": float("nan")})
    assert math.isnan(empty.means()["nss"]) and empty.counts() == {"nss": 0}


# ---------- optional: pysaliency (Tübingen / MIT-compatible reference implementation) ----------

def test_agrees_with_pysaliency_where_definitions_coincide(monkeypatch):
    pytest.importorskip("pysaliency")
    from pysaliency import metrics as pm
    from pysaliency.roc import general_roc
    monkeypatch.setattr(np, "trapz", np.trapezoid, raising=False)  # pysaliency 0.2.22 on numpy ≥ 2.4
    s, fix, density, *_ = random_case(20)
    assert metrics.cc(s, density) == pytest.approx(pm.CC(s, density), abs=1e-6)
    assert metrics.kld(s, density) == pytest.approx(pm.MIT_KLDiv(s, density), abs=1e-6)
    s0, d0 = s - s.min(), density - density.min()  # pysaliency's SIM skips MIT's min-max step
    assert metrics.sim(s0, d0) == pytest.approx(pm.SIM(s0, d0), abs=1e-6)
    ys, xs = np.nonzero(fix)
    ddof_factor = math.sqrt((s.size - 1) / s.size)  # pysaliency divides by std with ddof=0
    assert metrics.nss(s, fix) == pytest.approx(np.mean(pm.NSS(s, xs, ys)) * ddof_factor, abs=1e-6)
    # Thresholds at fixated values against non-fixated pixels = MIT AUC-Judd on a tie-free map.
    assert metrics.auc_judd(s, fix, jitter=False) == pytest.approx(general_roc(s[fix], s[~fix], judd=1)[0],
                                                                   abs=1e-6)
    # pysaliency's rank-based AUC against all pixels differs by about 1/(2·N_fix).
    rank_based = general_roc(s[fix], s.ravel())[0]
    assert abs(metrics.auc_judd(s, fix, jitter=False) - rank_based) < 1.5 / fix.sum()
