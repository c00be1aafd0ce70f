"""`fastsal predict` and the Python API (fastsal_tf.load_model / SaliencyPredictor) on tiny models: a random
FastSal-A at 64×64 saved to .keras, and stub LiteRT files whose logits are the image brightness / 16 (so the
saliency peak is where the image is bright), converted here and run with ai_edge_litert."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from predict_helpers import HW, bright_spot, make_stub_tflite, noise, run_cli

from fastsal_tf import api
from fastsal_tf.imaging import centered_gaussian
from fastsal_tf.predict import images as pimages
from fastsal_tf.predict import postprocess


# ---------------------------------------------------------------------------------------- the main job


def test_cli_writes_maps_overlays_and_npy_at_original_size(tiny_keras, tmp_path, capsys):
    src = tmp_path / "photos"
    (src / "sub").mkdir(parents=True)
    Image.fromarray(noise(120, 160)).save(src / "a.jpg", quality=90)
    Image.fromarray(noise(50, 70, 1)).save(src / "sub" / "b.png")
    out = tmp_path / "out"
    code, err = run_cli([src, "--recursive", "--model", tiny_keras, "--out", out, "--npy", "--batch-size", 2], capsys)
    assert code == 0, err
    assert "2 images in" in err and "images/s" in err
    for stem, (h, w) in (("a", (120, 160)), ("sub/b", (50, 70))):
        gray = Image.open(out / f"{stem}_saliency.png")
        assert gray.mode == "L" and gray.size == (w, h)
        assert np.asarray(gray).max() == 255
        over = Image.open(out / f"{stem}_overlay.jpg")
        assert over.format == "JPEG" and over.mode == "RGB" and over.size == (w, h)
        prob = np.load(out / f"{stem}_saliency.npy")
        assert prob.dtype == np.float64 and prob.shape == (h, w)
        assert abs(prob.sum() - 1) < 1e-9 and prob.min() >= 0
        # The PNG is the probability map scaled to a maximum of 255 (not min-max).
        np.testing.assert_allclose(np.asarray(gray), np.round(prob / prob.max() * 255), atol=1)
    assert not list(out.rglob("*.tmp"))  # atomic writes leave no temporary files


def test_no_overlay_and_flat_inputs(stub_tflite, tmp_path, capsys):
    Image.fromarray(noise(40, 30)).save(tmp_path / "x.png")
    out = tmp_path / "o"
    code, err = run_cli([tmp_path / "x.png", "--model", stub_tflite, "--out", out, "--no-overlay"], capsys)
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == ["x_saliency.png"]


def test_python_api(keras_predictor, stub_int8, tmp_path):
    import fastsal_tf

    model = keras_predictor
    assert model.input_size == HW and model.backend.kind == "keras"
    image = noise(90, 130)
    Image.fromarray(image).save(tmp_path / "i.png")
    maps = [model.predict_map(image), model.predict_map(Image.fromarray(image)), model.predict_map(tmp_path / "i.png")]
    for prob in maps:
        assert prob.shape == (90, 130) and prob.dtype == np.float64 and abs(prob.sum() - 1) < 1e-12
    np.testing.assert_allclose(maps[0], maps[2], rtol=1e-5)
    shown = model.predict_display(image)
    assert shown.dtype == np.uint8 and shown.max() == 255 and shown.shape == (90, 130)
    overlay = model.predict_overlay(image)
    assert overlay.size == (130, 90) and overlay.mode == "RGB"
    lite = fastsal_tf.load_model(stub_int8, resize="letterbox")
    assert lite.backend.kind == "litert" and lite.predict_map(image).shape == (90, 130)
    assert fastsal_tf.load_model is api.load_model


def test_torch_checkpoint_is_imported_on_the_fly(test_data, tmp_path):
    from test_torch_import import random_state, write

    path = write(tmp_path / "fastsal_c.pth", random_state(test_data, "C"))
    model = api.load_model(path, input_size=HW)
    assert model.input_size == HW and "fastsal_C" in model.describe()
    assert abs(model.predict_map(noise(30, 50)).sum() - 1) < 1e-12


# ------------------------------------------------------------------------------- size and aspect handling


def test_letterbox_placement_matches_the_data_pipeline():
    from fastsal_tf.data.geometry import placement_tf  # the in-graph twin the data pipeline uses
    from fastsal_tf.imaging import Placement, placement

    for src in [(100, 200), (200, 100), (480, 640), (37, 1000), (64, 64), (1, 3)]:
        for dst in [(64, 64), (192, 256), (96, 32)]:
            ours = placement(src, dst, "letterbox")
            content_h, content_w, offset_y, offset_x = (int(v) for v in placement_tf(src[0], src[1], dst, "letterbox"))
            assert (ours.content_hw, ours.offset_yx) == ((content_h, content_w), (offset_y, offset_x))
    assert placement((100, 200), (64, 64), "stretch") == Placement((64, 64), (0, 0))


@pytest.mark.parametrize("src_hw,hot", [((100, 200), (20, 10)), ((100, 200), (31, 63)), ((300, 90), (5, 12))])
def test_letterbox_inverse_maps_a_hot_pixel_back(src_hw, hot):
    place = pimages.placement(src_hw, HW, "letterbox")
    (ch, cw), (oy, ox) = place.content_hw, place.offset_yx
    frame = np.zeros(HW, np.float32)
    i, j = min(hot[0], ch - 1), min(hot[1], cw - 1)
    frame[oy + i, ox + j] = 1.0
    prob = postprocess.probability_to_output(frame, place, src_hw)
    assert prob.shape == src_hw and abs(prob.sum(dtype=np.float64) - 1) < 1e-5
    # pixel centres: content pixel i covers original (i + 0.5)·H/ch − 0.5
    expected = ((i + 0.5) * src_hw[0] / ch - 0.5, (j + 0.5) * src_hw[1] / cw - 0.5)
    y, x = np.unravel_index(np.argmax(prob), prob.shape)
    centroid = (np.sum(prob * np.arange(src_hw[0])[:, None]), np.sum(prob * np.arange(src_hw[1])[None, :]))
    assert abs(y - expected[0]) <= src_hw[0] / ch and abs(x - expected[1]) <= src_hw[1] / cw
    assert abs(centroid[0] - expected[0]) < 1.0 and abs(centroid[1] - expected[1]) < 1.0


def test_probability_in_the_padding_only_gives_a_uniform_map():
    place = pimages.placement((100, 200), HW, "letterbox")
    frame = np.zeros(HW, np.float32)
    frame[0, 0] = 1.0  # in the top bar
    prob = postprocess.probability_to_output(frame, place, (100, 200))
    np.testing.assert_allclose(prob, 1 / prob.size)


@pytest.mark.parametrize("resize", ["stretch", "letterbox"])
def test_saliency_peak_lands_on_the_bright_spot(stub_tflite, resize):
    model = api.load_model(stub_tflite, resize=resize)
    image = bright_spot(100, 200, (60, 80, 150, 170))
    prob = model.predict_map(image)
    assert prob.shape == (100, 200)
    y, x = np.unravel_index(np.argmax(prob), prob.shape)
    assert 58 <= y < 82 and 148 <= x < 172
    assert prob[60:80, 150:170].sum() > 0.5


@pytest.mark.parametrize("outputs,int8", [(("probability_map",), False), (("logits",), False),
                                          (("saliency_map",), False), (("scores",), False),
                                          (("logits", "probability_map", "saliency_map"), True)])
def test_litert_outputs_are_read_by_name_and_dequantised(model_dir, outputs, int8):
    path = make_stub_tflite(model_dir / f"stub_{'_'.join(outputs)}_{int8}.tflite", outputs=outputs, int8=int8)
    model = api.load_model(path)
    if int8:  # an 8-bit probability map is too coarse: the logits are used
        assert model.backend.output_name == "logits"
    prob = model.predict_map(bright_spot(64, 64, (10, 20, 40, 50)))
    assert abs(prob.sum() - 1) < 1e-9
    assert prob[10:20, 40:50].sum() > 0.9


def test_saved_model_directory_runs_through_its_signature(stub_tflite):
    saved = stub_tflite.with_suffix(".savedmodel")  # the SavedModel the stub .tflite was converted from
    model = api.load_model(saved)
    assert model.backend.kind == "savedmodel" and model.backend.output_name == "probability_map"
    images = [bright_spot(64, 64, (10, 20, 40, 50)), bright_spot(64, 64, (40, 60, 5, 15))]
    maps = model.predict_maps(images)  # one batch of two through a batch-of-one signature
    for prob, (y0, y1, x0, x1) in zip(maps, [(10, 20, 40, 50), (40, 60, 5, 15)]):
        assert abs(prob.sum() - 1) < 1e-9 and prob[y0:y1, x0:x1].sum() > 0.9


def test_blur_and_center_bias(stub_tflite):
    image = bright_spot(60, 80, (5, 10, 5, 10))
    plain = api.load_model(stub_tflite).predict_map(image)
    blurred = api.load_model(stub_tflite, blur=6.0).predict_map(image)
    biased = api.load_model(stub_tflite, center_bias=1.0).predict_map(image)
    half = api.load_model(stub_tflite, center_bias=0.5).predict_map(image)
    for prob in (blurred, biased, half):
        assert abs(prob.sum() - 1) < 1e-12
    assert blurred.max() < plain.max() and blurred[5:10, 5:10].sum() < 0.9 * plain[5:10, 5:10].sum()
    gauss = centered_gaussian((60, 80), 0.25, np.float64)
    np.testing.assert_allclose(biased, gauss / gauss.sum(), rtol=1e-4)
    np.testing.assert_allclose(half, 0.5 * plain + 0.5 * biased, rtol=1e-3, atol=1e-9)
    y, x = np.unravel_index(np.argmax(biased), biased.shape)
    assert (y, x) in {(29, 39), (29, 40), (30, 39), (30, 40)}


def test_display_map_keeps_the_relative_level():
    shown = postprocess.display_map(np.array([[0.1, 0.2], [0.3, 0.4]]))
    np.testing.assert_array_equal(shown, [[64, 128], [191, 255]])  # not min-max: 0.1 stays above 0
    assert postprocess.display_map(np.full((3, 3), 1 / 9)).min() == 255
