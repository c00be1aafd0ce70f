"""The authors' metric pipeline (FastSal eval.py) in numpy, and the "authors" evaluation protocol."""

import pathlib

import numpy as np
import pytest
from PIL import Image

from fastsal_tf import metrics
from fastsal_tf.data import read_dataset
from fastsal_tf.evaluation import EvaluationWarning, authors_map, blur_5x5, evaluate, resize_area
from fastsal_tf.evaluation import ground_truth as gt
from fastsal_tf.evaluation.authors import sigmoid
from fastsal_tf.imaging import centered_gaussian

DATASET = pathlib.Path(__file__).resolve().parent / "data" / "evaluate" / "dataset"


def _weights(n_src, n_dst, other_src=1, other_dst=1, axis=1):
    """Matrix of resize_area along one axis, read off with impulses (other axis: other_src → other_dst)."""
    columns = []
    for k in range(n_src):
        impulse = np.zeros((other_src, n_src) if axis == 1 else (n_src, other_src))
        if axis == 1:
            impulse[:, k] = 1
            columns.append(resize_area(impulse, (other_dst, n_dst))[0])
        else:
            impulse[k, :] = 1
            columns.append(resize_area(impulse, (n_dst, other_dst))[:, 0])
    return np.array(columns).T


def test_area_downscale_averages_covered_source_pixels():
    np.testing.assert_allclose(_weights(4, 2), [[0.5, 0.5, 0, 0], [0, 0, 0.5, 0.5]])
    np.testing.assert_allclose(_weights(5, 2), [[0.4, 0.4, 0.2, 0, 0], [0, 0, 0.2, 0.4, 0.4]])


def test_area_upscale_is_exact_area_sampling_like_opencv():
    # 2 → 5 (scale 0.4): output pixels 0, 1 lie in source 0, pixel 2 straddles the boundary, 3 and 4 in source 1.
    np.testing.assert_allclose(_weights(2, 5), [[1, 0], [1, 0], [0.5, 0.5], [0, 1], [0, 1]])
    # 36 → 44: OpenCV computes floor(33 · (1 / (44 / 36))) = 26 in double precision (not 27).
    np.testing.assert_allclose(_weights(36, 44)[33], np.eye(36)[26])


def test_area_mixed_scaling_uses_opencvs_linear_area_coefficients_on_both_axes():
    # Width 7 → 3 while the height grows: OpenCV (measured) gives 2-tap weights, not a 7/3-wide box.
    expected = [[3 / 7, 4 / 7, 0, 0, 0, 0, 0], [0, 0, 2 / 7, 5 / 7, 0, 0, 0], [0, 0, 0, 0, 1 / 7, 6 / 7, 0]]
    np.testing.assert_allclose(_weights(7, 3, other_src=2, other_dst=5), expected, atol=1e-6)
    # Both axes shrinking: true area averaging instead.
    np.testing.assert_allclose(_weights(7, 3, other_src=5, other_dst=2), [[3 / 7, 3 / 7, 1 / 7, 0, 0, 0, 0],
                                                                         [0, 0, 2 / 7, 3 / 7, 2 / 7, 0, 0],
                                                                         [0, 0, 0, 0, 1 / 7, 3 / 7, 3 / 7]])


def test_blur_is_opencvs_fixed_5x5_binomial_kernel_with_reflect_101():
    impulse = np.zeros((7, 7))
    impulse[3, 3] = 1
    kernel = np.array([1, 4, 6, 4, 1]) / 16
    np.testing.assert_allclose(blur_5x5(impulse)[1:6, 1:6], np.outer(kernel, kernel))
    corner = np.zeros((5, 5))
    corner[0, 0] = 1  # reflect-101 mirrors about the edge pixel: column 0 gets 6/16, 1 gets 4/16, 2 gets 1/16
    np.testing.assert_allclose(blur_5x5(corner)[0, :3], np.array([6, 4, 1]) * 6 / 256)
    assert blur_5x5(np.full((3, 4), 2.5)) == pytest.approx(np.full((3, 4), 2.5))


def test_authors_map_steps():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(6, 8))
    out = authors_map(logits, (15, 20))
    resized = resize_area(sigmoid(logits), (15, 20))
    expected = np.clip(blur_5x5((resized - resized.min()) / (resized.max() - resized.min())), 0, 1)
    np.testing.assert_allclose(out, expected)
    np.testing.assert_allclose(authors_map(sigmoid(logits), (15, 20), kind="sigmoid"), out)
    assert authors_map(np.zeros((6, 8)), (15, 20)).max() == 0  # constant: all zeros (eval.py would divide by 0)
    with pytest.raises(ValueError, match="NaN"):
        authors_map(np.full((6, 8), np.nan), (15, 20))


@pytest.mark.parametrize("variant", ["A", "C"])
@pytest.mark.parametrize("row", [2, 3])
def test_authors_pipeline_matches_eval_py_reference(shared_dir, variant, row):
    vectors = np.load(shared_dir / "reference" / f"vectors_{variant}.npz")
    width, height = vectors["original_size_wh"][row]
    reference = vectors[f"evalpy_map_{row}"].astype(np.float64)
    for values, kind in ((vectors["sigmoid"][row, 0], "sigmoid"), (vectors["logits"][row, 0], "logits")):
        ours = authors_map(values, (int(height), int(width)), kind=kind)
        assert ours.shape == reference.shape
        assert np.corrcoef(ours.ravel(), reference.ravel())[0, 1] >= 0.999
        assert np.abs(ours - reference).max() < 1e-5


def test_authors_protocol_scores_network_logits_from_a_folder(tmp_path):
    examples = read_dataset("folder", DATASET).examples
    rng = np.random.default_rng(1)
    logits = {e.id: rng.normal(size=(6, 8)) for e in examples}
    for name, values in logits.items():
        np.save(tmp_path / f"{name}.npy", values)
    baseline = centered_gaussian((24, 32))
    scores = evaluate(tmp_path, examples, protocol="authors", sigma_px=2.0, baseline=baseline)
    example = examples[0]
    truth = gt.image_ground_truth(example, 2.0)
    others = gt.ShuffledNegatives(examples).other_fixation_map(example)
    from fastsal_tf.evaluation.core import image_rng

    expected = metrics.score_image(authors_map(logits[example.id], (example.height, example.width)),
                                   truth.fixation_map, truth.density, baseline_map=baseline,
                                   other_fixation_map=others, rng=image_rng(0, example.id))
    assert scores.per_image[example.id] == pytest.approx(expected, rel=1e-12)
    pngs = tmp_path / "png"  # 8-bit sigmoid maps: the sigmoid step is skipped
    pngs.mkdir()
    for name, values in logits.items():
        Image.fromarray(np.round(255 * sigmoid(values)).astype(np.uint8)).save(pngs / f"{name}.png")
    from_png = evaluate(pngs, examples, protocol="authors", sigma_px=2.0, baseline=baseline).means()
    assert from_png["cc"] == pytest.approx(scores.means()["cc"], abs=0.01)


def test_authors_protocol_constant_logits_are_nan_with_a_warning():
    examples = read_dataset("folder", DATASET).examples[:2]
    with pytest.warns(EvaluationWarning, match="constant"):
        scores = evaluate(lambda path: np.zeros((6, 8)), examples, protocol="authors", sigma_px=2.0)
    assert np.isnan(scores.means()["cc"])
