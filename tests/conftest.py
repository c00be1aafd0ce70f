import os
import pathlib

import pytest
from predict_helpers import HW, make_stub_tflite

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = pathlib.Path(__file__).resolve().parents[1]
TEST_DATA = ROOT / "tests" / "data"
SHARED = ROOT.parent / "shared"


@pytest.fixture(scope="session")
def test_data() -> pathlib.Path:
    return TEST_DATA


@pytest.fixture(scope="session")
def shared_dir() -> pathlib.Path:
    """../shared beside the project root; tests using it skip when it is absent."""
    if not SHARED.is_dir():
        pytest.skip("../shared is not present")
    return SHARED


@pytest.fixture(scope="session")
def random_fastsal():
    """make(settings, images, size=(64, 64)) → {"A": model, "C": model}: FastSal-A and -C built with the
    settings (TF_NATIVE / TORCH_COMPATIBLE) and given well-conditioned random weights
    (fastsal_tf.export.random_weights, seeds 0 and 1) scaled on `images`."""

    def make(settings, images, size=(64, 64)):
        from fastsal_tf.export.random_weights import randomize_weights
        from fastsal_tf.models import build_fastsal

        return {variant: randomize_weights(build_fastsal(variant, (*size, 3), **settings), images, seed=seed)
                for seed, variant in enumerate("AC")}

    return make


# ------------------------------------------------------------- tiny models shared by the prediction tests
# (a random FastSal-A at 64×64 saved to .keras, stub LiteRT files: see predict_helpers.make_stub_tflite)

@pytest.fixture(scope="session")
def model_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def tiny_keras(model_dir):
    from fastsal_tf.models import build_fastsal

    path = model_dir / "tiny_a.keras"
    build_fastsal("A", (*HW, 3)).save(path)
    return path


@pytest.fixture(scope="session")
def keras_predictor(tiny_keras):
    from fastsal_tf.api import load_model

    return load_model(tiny_keras)


@pytest.fixture(scope="session")
def stub_tflite(model_dir):
    return make_stub_tflite(model_dir / "stub.tflite")


@pytest.fixture(scope="session")
def stub_int8(model_dir):
    return make_stub_tflite(model_dir / "stub_int8.tflite", int8=True)
