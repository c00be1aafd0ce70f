"""The evaluate command with real models (TensorFlow; slow): an authors' checkpoint from ../shared."""

import json
import pathlib

import numpy as np
import pytest
from PIL import Image

from fastsal_tf.data import SaliencyExample, read_dataset
from fastsal_tf.evaluation import authors_map, evaluate, run_evaluation, write_reports

pytestmark = pytest.mark.slow
DATASET = pathlib.Path(__file__).resolve().parent / "data" / "evaluate" / "dataset"
PHOTOS = {2: "COCO_val2014_000000000810.jpg", 3: "COCO_val2014_000000443602.jpg"}


@pytest.fixture(scope="module")
def predictor(shared_dir):
    from fastsal_tf.api import load_model

    return load_model(shared_dir / "reference" / "random_A.pth")


def test_authors_protocol_reproduces_eval_py_from_the_photo(shared_dir, predictor):
    from fastsal_tf.evaluation.sources import ModelSource

    vectors = np.load(shared_dir / "reference" / "vectors_A.npz")
    source = ModelSource(predictor, "authors")
    for row, name in PHOTOS.items():
        example = SaliencyExample(name, shared_dir / "data" / "coco_examples" / name, 480, 640, np.zeros((0, 2)))
        prediction = source(example)
        assert prediction.kind == "logits"
        np.testing.assert_allclose(prediction.values, vectors["logits"][row, 0], atol=2e-3)
        ours = authors_map(prediction.values, (480, 640))
        reference = vectors[f"evalpy_map_{row}"]
        assert np.corrcoef(ours.ravel(), reference.ravel())[0, 1] >= 0.999
        assert np.abs(ours - reference).max() < 1e-3


def test_model_evaluation_under_both_protocols(tmp_path, shared_dir, predictor):
    examples = read_dataset("folder", DATASET).examples
    mit = evaluate(predictor, examples, sigma_px=2.0)
    expected = evaluate(lambda path: predictor.predict_map(np.asarray(Image.open(path).convert("RGB"))), examples,
                        sigma_px=2.0)
    assert mit.per_image == expected.per_image
    authors = evaluate(predictor, examples, protocol="authors", sigma_px=2.0)
    assert np.isfinite(authors.means()["cc"]) and authors.means().keys() == mit.means().keys()
    report = run_evaluation(shared_dir / "reference" / "random_A.pth", "folder", DATASET, sigma_px=2.0,
                            protocol="authors", limit=2)
    paths = write_reports(report, tmp_path)
    data = json.loads(paths["report.json"].read_text())
    assert list(data["models"]) == ["random_A.pth", "center bias"] and data["protocol"]["protocol"] == "authors"


def test_blur_scores_the_predictors_blurred_maps():
    """--blur evaluates exactly what `load_model(..., blur=σ)` predicts, and that is not the unblurred map."""
    from fastsal_tf.api import load_model

    blurred = run_evaluation("default", "folder", DATASET, sigma_px=2.0, blur=6.0, limit=3)
    same = run_evaluation({"default": load_model("default", blur=6.0)}, "folder", DATASET, sigma_px=2.0, limit=3)
    plain = run_evaluation("default", "folder", DATASET, sigma_px=2.0, limit=3)
    assert blurred.scores["default"].per_image == same.scores["default"].per_image
    cc = [[row["cc"] for row in report.scores["default"].per_image.values()] for report in (blurred, plain)]
    assert len(cc[0]) == 3 and max(abs(a - b) for a, b in zip(*cc)) > 1e-3
    assert blurred.descriptions["default"].endswith("blur sigma 6 px")
