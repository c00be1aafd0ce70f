"""Choosing a runtime (`--backend`, fastsal_tf.runtime.resolve.runtime_for) and the optional OpenVINO backend:
its maps against LiteRT's (skipped without the openvino package) and the message when it is missing."""

import sys

import numpy as np
import pytest

from fastsal_tf.runtime.resolve import ModelRef, load_backend, runtime_for
from predict_helpers import HW, noise, run_cli


@pytest.mark.parametrize("kind, backend, runtime", [
    ("litert", "auto", "litert"), ("litert", "litert", "litert"), ("litert", "openvino", "openvino"),
    ("keras", "auto", "keras"), ("keras", "keras", "keras"), ("torch", "auto", "keras"),
    ("savedmodel", "auto", "savedmodel")])
def test_runtime_for_each_kind_of_file(tmp_path, kind, backend, runtime):
    assert runtime_for(ModelRef(tmp_path / "m", kind), backend) == runtime


@pytest.mark.parametrize("kind, backend, says", [("litert", "keras", "a .keras model"),
                                                 ("keras", "openvino", "a .tflite file"),
                                                 ("torch", "litert", "a .tflite file"),
                                                 ("keras", "tensorrt", "unknown backend 'tensorrt'")])
def test_backend_that_cannot_run_the_file_is_refused(tmp_path, kind, backend, says):
    with pytest.raises(ValueError, match=says):
        runtime_for(ModelRef(tmp_path / "model.x", kind), backend)


def test_missing_openvino_is_one_clear_line(stub_tflite, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "openvino", None)  # import openvino raises ImportError
    from fastsal_tf.runtime.openvino import MissingBackendError

    with pytest.raises(MissingBackendError, match=r"pip install 'fastsal-tf\[openvino\]'"):
        load_backend(stub_tflite, backend="openvino")
    image = tmp_path / "photo.png"
    from PIL import Image
    Image.fromarray(noise(*HW)).save(image)
    status, err = run_cli([image, "--model", stub_tflite, "--backend", "openvino", "--out", tmp_path / "out"],
                          capsys)
    assert status == 2
    assert err.strip().splitlines()[-1].startswith("fastsal predict: error: the OpenVINO backend needs")
    assert "Traceback" not in err and not (tmp_path / "out").exists()


def test_cli_refuses_a_backend_for_the_wrong_file(tiny_keras, tmp_path, capsys):
    image = tmp_path / "photo.png"
    from PIL import Image
    Image.fromarray(noise(*HW)).save(image)
    status, err = run_cli([image, "--model", tiny_keras, "--backend", "litert", "--out", tmp_path / "out"], capsys)
    assert status == 2 and f"{tiny_keras}: backend 'litert' runs a .tflite file" in err


# --------------------------------------------------------------------------------------- OpenVINO itself

@pytest.fixture(scope="module")
def fp32_export(tmp_path_factory):
    """A random FastSal-A at 64x64 exported fp32 (outputs map, prob); skips without openvino."""
    pytest.importorskip("openvino")
    from fastsal_tf.export.litert import export_tflite
    from fastsal_tf.models import build_fastsal

    path = tmp_path_factory.mktemp("openvino") / "a_fp32.tflite"
    export_tflite(build_fastsal("A", (*HW, 3)), path, mode="fp32", input_size=HW, outputs=("map", "prob"))
    return path


def frames(count=3):
    return np.stack([noise(*HW, seed=seed) for seed in range(count)])


@pytest.mark.parametrize("wanted", ["probability_map", "saliency_map"])
def test_openvino_f32_matches_litert_on_a_float_export(fp32_export, wanted):
    reference, _ = load_backend(fp32_export, backend="litert", wanted=wanted)
    backend, _ = load_backend(fp32_export, backend="openvino", wanted=wanted)
    assert backend.kind == "openvino" and backend.input_hw == HW and backend.output_name == wanted
    expected, got = reference.raw(frames()), backend.raw(frames())
    assert got.shape == expected.shape == (3, *HW)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5 * np.abs(expected).max())
    probs = backend.run(frames())
    np.testing.assert_allclose(probs.reshape(3, -1).sum(axis=1), 1.0, rtol=1e-5)


def test_openvino_runs_an_int8_model_close_to_litert(stub_int8):
    pytest.importorskip("openvino")
    reference, _ = load_backend(stub_int8, backend="litert")
    backend, _ = load_backend(stub_int8, backend="openvino")
    assert backend.output_name == reference.output_name
    expected, got = reference.run(frames()), backend.run(frames())
    for a, b in zip(expected, got):
        assert np.corrcoef(a.ravel(), b.ravel())[0, 1] > 0.99


def test_openvino_predictor_through_the_api(fp32_export):
    from fastsal_tf.api import load_model

    predictor = load_model(fp32_export, backend="openvino")
    image = noise(48, 80, seed=4)
    expected = load_model(fp32_export, backend="litert").predict_map(image)
    got = predictor.predict_map(image)
    assert got.shape == (48, 80)
    np.testing.assert_allclose(got, expected, rtol=1e-3, atol=1e-6 * expected.max())
