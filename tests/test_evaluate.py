"""fastsal_tf.evaluation: ground truth, sources, protocols, reports and the `evaluate` command (tiny fixtures)."""

import csv
import json
import pathlib
import shutil
import zlib

import numpy as np
import pytest
from PIL import Image

from fastsal_tf import fixations as fx
from fastsal_tf import metrics
from fastsal_tf.data import SaliencyExample, read_dataset
from fastsal_tf.evaluation import (METRICS, REPORT_FILES, EvaluationWarning, FunctionSource, MapDirectory,
                                   describe_protocol, evaluate, evaluate_many, mean_density, run_evaluation,
                                   write_reports)
from fastsal_tf.evaluation import ground_truth as gt
from fastsal_tf.evaluation.reports import EvaluationReport
from fastsal_tf.evaluation.sources import FixedMap, ModelSource
from fastsal_tf.imaging import centered_gaussian

HERE = pathlib.Path(__file__).resolve().parent
FIXTURES = HERE / "data" / "evaluate"
DATASET = FIXTURES / "dataset"
MAPS = FIXTURES / "maps"
SIGMA = 2.0


@pytest.fixture(scope="module")
def examples():
    return read_dataset("folder", DATASET).examples


@pytest.fixture(scope="module")
def fixated(examples):
    return [e for e in examples if e.fixations is not None]


def _truth_fn(examples):
    """A 'perfect' predictor: the ground-truth density of each image."""
    by_path = {e.image_path: e for e in examples}

    def predict(path):
        return gt.image_ground_truth(by_path[path], SIGMA).density

    return predict


def _example(name, points, hw=(24, 32)):
    return SaliencyExample(name, DATASET / "images" / "a.png", hw[0], hw[1],
                           None if points is None else np.asarray(points, dtype=np.float64).reshape(-1, 2))


# --- ground truth ---------------------------------------------------------------------------------------------

def test_ground_truth_rasterises_all_fixations_at_image_size(fixated):
    example = fixated[0]
    truth = gt.image_ground_truth(example, SIGMA)
    assert truth.fixation_map.shape == (example.height, example.width) == truth.density.shape
    expected = fx.rasterize(example.fixations, (example.height, example.width))
    np.testing.assert_array_equal(truth.fixation_map, expected)
    np.testing.assert_allclose(truth.density, fx.density_map(expected, SIGMA))
    assert truth.density.sum() == pytest.approx(1.0)


def test_map_only_image_uses_dataset_map(examples):
    d = next(e for e in examples if e.id == "d")
    truth = gt.image_ground_truth(d, SIGMA)
    assert truth.fixation_map is None and truth.source == "map"
    np.testing.assert_array_equal(truth.density, np.asarray(Image.open(d.map_path).convert("L"), dtype=float))


def test_shuffled_negatives_are_other_images_fixations_at_each_size():
    a = _example("a", [[1, 1], [5, 5]], (10, 20))
    b = _example("b", [[2, 3]], (10, 20))
    c = _example("c", [[9, 4]], (5, 10))  # half the size: (9, 4) → ((9.5)·2 − 0.5, (4.5)·2 − 0.5) = (18.5, 8.5)
    negatives = gt.ShuffledNegatives([a, b, c])
    others_a = negatives.other_fixation_map(a)
    expected = fx.rasterize(np.array([[2, 3], [18.5, 8.5]]), (10, 20))
    np.testing.assert_array_equal(others_a, expected)
    others_c = negatives.other_fixation_map(c)  # a and b scaled into c's 5×10 frame
    points = np.concatenate([fx.scale_points(p, (10, 20), (5, 10)) for p in (a.fixations, b.fixations)])
    np.testing.assert_array_equal(others_c, fx.rasterize(points, (5, 10)))
    assert negatives.other_fixation_map(_example("m", None)) is None


def test_shared_pixel_with_another_image_stays_a_negative():
    a = _example("a", [[3, 3]])
    b = _example("b", [[3, 3], [7, 7]])
    negatives = gt.ShuffledNegatives([a, b])
    assert negatives.other_fixation_map(a)[3, 3] and negatives.other_fixation_map(a)[7, 7]
    others_b = negatives.other_fixation_map(b)  # a's (3, 3) is a negative for b although b fixated it too
    assert others_b[3, 3] and not others_b[7, 7] and others_b.sum() == 1


def test_mean_density_equals_the_mean_of_the_densities():
    train = [_example("a", [[1, 1], [20, 12], [21, 12]], (24, 32)), _example("b", [[30, 2]], (24, 32)),
             _example("c", [[5, 9]], (12, 16)), _example("e", np.zeros((0, 2)), (24, 32))]
    with pytest.warns(EvaluationWarning, match="1 training images without fixations"):
        values, info = mean_density(train, 3.0)
    assert info["size_hw"] == [24, 32] and info["images"] == 3 and info["left_out"] == 1
    direct = np.mean([fx.density_map(fx.rasterize(e.fixations, (24, 32), src_hw=(e.height, e.width)), 3.0)
                      for e in train[:3]], axis=0)
    np.testing.assert_allclose(values, direct / direct.sum(), rtol=1e-10, atol=1e-15)


def test_centered_gaussian_baseline():
    values = centered_gaussian((30, 40))
    assert values.sum() == pytest.approx(1.0)
    assert np.unravel_index(values.argmax(), values.shape) in {(14, 19), (14, 20), (15, 19), (15, 20)}
    np.testing.assert_allclose(values, values[::-1, ::-1])


# --- evaluate ---------------------------------------------------------------------------------------------------

def test_perfect_prediction_scores_cc_1_and_beats_center_bias(examples):
    results = evaluate_many({"perfect": _truth_fn(examples), "center": FixedMap(centered_gaussian((24, 32)))},
                            examples, sigma_px=SIGMA)
    perfect, center = results["perfect"].means(), results["center"].means()
    for values in results["perfect"].per_image.values():
        assert values["cc"] == pytest.approx(1.0, abs=1e-12)
        assert values["kld"] == pytest.approx(0.0, abs=1e-9)
        assert values["sim"] == pytest.approx(1.0, abs=1e-9)
    for name in METRICS:
        if name == "kld":
            assert perfect[name] < center[name]
        else:
            assert perfect[name] > center[name], name
    assert set(perfect) == set(METRICS)


def test_scores_match_score_image_with_the_documented_inputs(examples, fixated):
    scores = evaluate(MAPS, examples, sigma_px=SIGMA, baseline=centered_gaussian((24, 32)), seed=3)
    example = fixated[2]  # c: 40×30, other images' fixations scaled into its frame
    truth = gt.image_ground_truth(example, SIGMA)
    others = gt.ShuffledNegatives(examples).other_fixation_map(example)
    baseline = np.maximum(metrics.resize_map(centered_gaussian((24, 32)), (30, 40)), 0)
    expected = metrics.score_image(np.load(MAPS / "c_saliency.npy"), truth.fixation_map, truth.density,
                                   baseline_map=baseline / baseline.sum(), other_fixation_map=others,
                                   rng=np.random.default_rng([3, zlib.crc32(b"c")]))
    assert scores.per_image["c"] == pytest.approx(expected, rel=1e-12)


def test_map_directory_round_trip(tmp_path, examples):
    predict = _truth_fn(examples)
    direct = evaluate(predict, examples, sigma_px=SIGMA)
    for example in examples:  # .npy under <id>_saliency.npy, as `fastsal predict --npy` writes
        np.save(tmp_path / f"{example.id}_saliency.npy", predict(example.image_path))
    assert evaluate(tmp_path, examples, sigma_px=SIGMA).per_image == direct.per_image
    pngs = tmp_path / "png"
    pngs.mkdir()
    for example in examples:  # 8-bit PNGs: quantised, so close but not equal
        values = predict(example.image_path)
        Image.fromarray(np.round(255 * values / values.max()).astype(np.uint8)).save(pngs / f"{example.id}.png")
    quantised = evaluate(pngs, examples, sigma_px=SIGMA).means()
    assert quantised["cc"] > 0.999
    assert quantised["auc_judd"] == pytest.approx(direct.means()["auc_judd"], abs=0.01)


def test_map_directory_prefers_exact_stem_and_npy(tmp_path):
    for name in ("x.png", "x_saliency.npy", "y_saliency.png", "y_saliency.npy", "y.jpg", "z.txt"):
        (tmp_path / name).write_bytes(b"")
    folder = MapDirectory(tmp_path)
    assert folder.path_for("x").name == "x.png"
    assert folder.path_for("y").name == "y.jpg"
    assert folder.path_for("z") is None


def test_maps_of_another_size_are_resized_by_the_metric_rule(examples):
    def small(path):
        return centered_gaussian((12, 16))

    def full(path):
        return metrics.resize_map(centered_gaussian((12, 16)), (24, 32))

    two = [e for e in examples if (e.height, e.width) == (24, 32) and e.fixations is not None]
    a = evaluate(small, two, sigma_px=SIGMA).means()
    b = evaluate(full, two, sigma_px=SIGMA).means()
    for name in ("auc_judd", "nss", "cc", "sim"):
        assert a[name] == pytest.approx(b[name], abs=1e-9)


# --- bad input ------------------------------------------------------------------------------------------------

def _copy_maps(tmp_path):
    folder = tmp_path / "maps"
    shutil.copytree(MAPS, folder)
    return folder


def test_nan_map_is_an_error_naming_the_file(tmp_path, examples):
    folder = _copy_maps(tmp_path)
    bad = np.load(folder / "a.npy")
    bad[3, 4] = np.nan
    np.save(folder / "a.npy", bad)
    with pytest.raises(ValueError, match=r"a\.npy: map contains NaN or Inf"):
        evaluate(folder, examples, sigma_px=SIGMA)
    bad[3, 4] = np.inf
    np.save(folder / "a.npy", bad)
    with pytest.raises(ValueError, match=r"a\.npy: map contains NaN or Inf"):
        evaluate(folder, examples, sigma_px=SIGMA)


def test_missing_maps_are_listed(tmp_path, examples):
    folder = _copy_maps(tmp_path)
    (folder / "b.png").unlink()
    (folder / "c_saliency.npy").unlink()
    with pytest.raises(ValueError, match=r"no map for 2 of 4 images: b, c"):
        evaluate(folder, examples, sigma_px=SIGMA)


@pytest.mark.parametrize("content, message", [
    (np.zeros((2, 3, 4)), "2-D"), (-np.ones((24, 32)), "negative values"), (np.array([["a"]]), "real numbers")])
def test_bad_map_values_are_errors(tmp_path, examples, content, message):
    folder = _copy_maps(tmp_path)
    np.save(folder / "a.npy", content)
    with pytest.raises(ValueError, match=message):
        evaluate(folder, examples, sigma_px=SIGMA)


def test_function_returning_nan_is_an_error_naming_the_image(examples):
    with pytest.raises(ValueError, match=r"image 'a'.*NaN"):
        evaluate(lambda path: np.full((24, 32), np.nan), examples, sigma_px=SIGMA)


def test_empty_fixations_give_nan_with_a_warning_not_a_crash(examples):
    empty = _example("empty", np.zeros((0, 2)))
    subset = [e for e in examples if e.fixations is not None] + [empty]
    with pytest.warns(EvaluationWarning, match=r"image 'empty'.*no fixations"):
        scores = evaluate(lambda path: centered_gaussian((24, 32)), subset, sigma_px=SIGMA)
    assert all(np.isnan(v) for v in scores.per_image["empty"].values())
    assert scores.counts()["auc_judd"] == 3 and np.isfinite(scores.means()["auc_judd"])


def test_constant_map_scores_nan_where_undefined(fixated):
    with pytest.warns(EvaluationWarning, match="constant"):
        scores = evaluate(lambda path: np.ones((24, 32)), fixated[:2], sigma_px=SIGMA)
    assert np.isnan(scores.means()["cc"]) and np.isnan(scores.means()["nss"])
    assert scores.means()["auc_judd"] == pytest.approx(0.5, abs=0.2)  # MIT: jitter orders a flat map at random


def test_examples_without_ground_truth_or_sigma_are_errors(examples):
    with pytest.raises(ValueError, match="no ground truth"):
        evaluate(MAPS, [_example("a", None)], sigma_px=SIGMA)
    with pytest.raises(ValueError, match="sigma_px"):
        evaluate(MAPS, examples, sigma_px=None)
    with pytest.raises(ValueError, match="protocol"):
        evaluate(MAPS, examples, sigma_px=SIGMA, protocol="tuebingen")
    with pytest.raises(ValueError, match="only be scored with the authors"):
        evaluate(FunctionSource(lambda p: np.ones((4, 4)), kind="logits"), examples, sigma_px=SIGMA)


# --- models -----------------------------------------------------------------------------------------------------

class _FakePredictor:
    """Stands in for fastsal_tf.api.SaliencyPredictor (predict_map on the stored pixels)."""

    backend = None
    source = "fake.keras"

    def __init__(self):
        self.shapes = []

    def predict_map(self, image):
        self.shapes.append(image.shape)
        return centered_gaussian(image.shape[:2])

    def describe(self):
        return "fake"


def test_model_source_feeds_stored_pixels_and_scores_the_probability_map(examples):
    fake = _FakePredictor()
    scores = evaluate(fake, examples, sigma_px=SIGMA)
    assert fake.shapes == [(e.height, e.width, 3) for e in examples]
    baseline = evaluate(lambda path: centered_gaussian(Image.open(path).size[::-1]), examples, sigma_px=SIGMA)
    assert scores.per_image == baseline.per_image
    with pytest.raises(ValueError, match="logits"):
        ModelSource(fake, "authors")


# --- reports ----------------------------------------------------------------------------------------------------

def test_reports_are_written_and_parse(tmp_path, examples):
    report = run_evaluation(MAPS, "folder", DATASET, sigma_px=SIGMA)
    paths = write_reports(report, tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(REPORT_FILES)  # no temporary left
    text = paths["report.md"].read_text()
    assert "| Model | AUC-Judd ↑ | AUC-Borji ↑ | sAUC ↑ | NSS ↑ | CC ↑ | KLD ↓ | SIM ↑ | IG ↑ |" in text
    assert "| maps |" in text and "| center bias |" in text
    rows = list(csv.DictReader(paths["report.csv"].open()))
    assert [r["model"] for r in rows] == ["maps", "center bias"]
    assert float(rows[0]["cc"]) == pytest.approx(report.scores["maps"].means()["cc"])
    assert rows[0]["auc_judd_n"] == "3" and rows[0]["cc_n"] == "4"
    data = json.loads(paths["report.json"].read_text())
    protocol = data["protocol"]
    for key in ("dataset", "split", "images", "sigma_px", "prediction", "eps", "auc_judd", "sauc_negatives",
                "seed", "center_bias", "random"):
        assert key in protocol
    assert protocol["images"] == 4 and protocol["sigma_px"] == SIGMA
    assert data["models"]["center bias"]["means"]["information_gain"] == pytest.approx(0.0, abs=1e-12)
    per_image = list(csv.DictReader(paths["per_image.csv"].open()))
    assert len(per_image) == 8 and per_image[3]["image_id"] == "d" and per_image[3]["nss"] == "nan"


def test_report_json_has_no_nan_literals(tmp_path):
    scores = metrics.DatasetScores()
    scores.add("x", {"cc": float("nan"), "nss": 1.0})
    paths = write_reports(EvaluationReport({"m": scores}, describe_protocol("mit", sigma_px=None)), tmp_path)
    data = json.loads(paths["report.json"].read_text())  # strict: NaN would not be valid JSON
    assert data["models"]["m"]["means"]["cc"] is None


# --- the command --------------------------------------------------------------------------------------------

def _run_cli(argv):
    from fastsal_tf.cli import build_parser

    args = build_parser().parse_args(argv)
    return args.func(args)


def test_cli_evaluate_writes_reports(tmp_path, capsys):
    status = _run_cli(["evaluate", "--model", str(MAPS), "--dataset", "folder", "--data-dir", str(DATASET),
                       "--sigma", str(SIGMA), "--out", str(tmp_path / "out"), "--limit", "3"])
    assert status == 0
    out, err = capsys.readouterr()
    assert "| maps |" in out and "images/s" in err
    data = json.loads((tmp_path / "out" / "report.json").read_text())
    assert data["protocol"]["images"] == 3 and data["protocol"]["limit"] == 3


def test_cli_osie_split_with_train_center_bias(tmp_path, test_data, capsys):
    root = test_data / "datasets" / "osie"
    maps = tmp_path / "maps"
    maps.mkdir()
    for name in ("1010", "1024"):
        np.save(maps / f"{name}.npy", centered_gaussian((30, 40)))
    status = _run_cli(["evaluate", "--model", str(maps), "--dataset", "osie", "--data-dir", str(root), "--split",
                       "validation", "--split-file", str(root / "osie_split.json"), "--out", str(tmp_path / "out")])
    assert status == 0
    data = json.loads((tmp_path / "out" / "report.json").read_text())
    assert data["protocol"]["sigma_px"] == 24.0  # 1 degree in OSIE
    assert data["protocol"]["center_bias"]["split"] == "train" and data["protocol"]["center_bias"]["images"] == 2
    assert data["models"]["maps"]["images"] == 2


def test_cli_rejects_a_model_that_is_neither_a_folder_nor_a_model_file(tmp_path):
    with pytest.raises(ValueError, match="not a folder of maps, a model file"):
        _run_cli(["evaluate", "--model", str(tmp_path / "missing"), "--dataset", "folder", "--data-dir",
                  str(DATASET), "--sigma", "2", "--out", str(tmp_path)])


def test_blur_applies_to_a_model_under_protocol_mit_only(tmp_path):
    common = ["--dataset", "folder", "--data-dir", str(DATASET), "--sigma", "2", "--out", str(tmp_path)]
    with pytest.raises(ValueError, match="not to a folder of maps"):
        _run_cli(["evaluate", "--model", str(MAPS), "--blur", "4", *common])
    with pytest.raises(ValueError, match="not to protocol 'authors'"):
        _run_cli(["evaluate", "--model", "default", "--protocol", "authors", "--blur", "4", *common])
    with pytest.raises(ValueError, match="one model given by name or file"):
        run_evaluation({"m": MAPS}, "folder", DATASET, sigma_px=SIGMA, blur=4.0)
    with pytest.raises(SystemExit):
        _run_cli(["evaluate", "--model", "default", "--blur", "-1", *common])
    assert not (tmp_path / "report.json").exists()


def test_cli_needs_sigma_for_unknown_datasets(tmp_path):
    with pytest.raises(ValueError, match="--sigma"):
        _run_cli(["evaluate", "--model", str(MAPS), "--dataset", "folder", "--data-dir", str(DATASET),
                  "--out", str(tmp_path)])


def test_training_script_runs_the_same_code(tmp_path):
    import subprocess
    import sys

    out = tmp_path / "out"
    result = subprocess.run([sys.executable, str(HERE.parent / "training" / "evaluate.py"), f"--model={MAPS}",
                             "--dataset=folder", f"--data_dir={DATASET}", f"--sigma_px={SIGMA}", f"--out_dir={out}"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    via_script = json.loads((out / "report.json").read_text())
    direct = run_evaluation(MAPS, "folder", DATASET, sigma_px=SIGMA)
    assert via_script["models"]["maps"]["means"] == pytest.approx(direct.scores["maps"].means())
    assert "| maps |" in result.stdout


def test_sixteen_bit_png_maps_keep_their_precision(tmp_path):
    from fastsal_tf.evaluation import read_map_file

    values = centered_gaussian((24, 32))
    scaled = np.round(65535 * values / values.max()).astype(np.uint16)
    Image.fromarray(scaled).save(tmp_path / "a.png")
    read = read_map_file(tmp_path / "a.png")
    np.testing.assert_array_equal(read, scaled.astype(float))
    network = MapDirectory(tmp_path, "network")(_example("a", [[1, 1]]))
    assert network.kind == "sigmoid" and network.values.max() == 1.0
