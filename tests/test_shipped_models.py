"""The shipped default models (fastsal_tf/assets): they load, predict a proper probability map, agree with
each other where they should, and (with ../shared) score well above the center bias on OSIE validation."""

import pathlib

import numpy as np
import pytest
from PIL import Image

from fastsal_tf import api
from fastsal_tf.metrics import cc

ROOT = pathlib.Path(__file__).resolve().parents[1]
PHOTO = ROOT / "docs" / "example" / "1010_overlay.png"  # an 800×600 street scene (with an overlay)
SHIPPED = ("default", "default-c", "default-int8")


@pytest.fixture(scope="module")
def photo():
    with Image.open(PHOTO) as image:
        return np.asarray(image.convert("RGB"))


@pytest.fixture(scope="module")
def maps(photo):
    return {spec: api.load_model(spec).predict_map(photo) for spec in SHIPPED}


@pytest.mark.parametrize("spec", SHIPPED)
def test_shipped_model_predicts_a_probability_map(maps, photo, spec):
    values = maps[spec]
    assert values.shape == photo.shape[:2]
    assert np.isfinite(values).all() and (values >= 0).all()
    np.testing.assert_allclose(values.sum(), 1.0, rtol=1e-6)
    assert values.max() > 5 * values.mean()  # peaked, not a flat map


def test_int8_model_matches_its_keras_model(maps):
    assert cc(maps["default-int8"], maps["default"]) > 0.99


def test_a_and_c_agree_on_where_people_look(maps):
    assert cc(maps["default"], maps["default-c"]) > 0.8


@pytest.mark.parametrize("spec", ["default", "default-c"])
def test_shipped_model_beats_center_bias_on_osie(shared_dir, spec):
    from fastsal_tf.evaluation import run_evaluation

    osie = shared_dir / "data" / "osie"
    if not osie.is_dir():
        pytest.skip("../shared/data/osie is not present")
    report = run_evaluation(spec, "osie", osie, split="validation", limit=20)
    model, center = (scores.means() for scores in report.scores.values())
    assert model["cc"] > 0.7 and model["nss"] > 2.5 and model["auc_judd"] > 0.88 and model["kld"] < 0.6
    assert model["cc"] > center["cc"] + 0.3 and model["nss"] > center["nss"] + 1.5
