"""`fastsal predict` and the Python API (fastsal_tf.load_model / SaliencyPredictor) on tiny models: a random
FastSal-A at 64×64 saved to .keras, and stub LiteRT files whose logits are the image brightness / 16 (so the
saliency peak is where the image is bright), converted here and run with ai_edge_litert."""

from __future__ import annotations

import io
import os
import pathlib
import warnings

import numpy as np
import pytest
from PIL import Image

from fastsal_tf import api
from fastsal_tf.cli import main
from fastsal_tf.predict import images as pimages
from fastsal_tf.predict import postprocess
from fastsal_tf.predict.errors import ImageError, ModelNotFoundError, SaliencyWarning
from fastsal_tf.imaging import centered_gaussian
from fastsal_tf.predict.runner import collect_inputs
from fastsal_tf.runtime import resolve as runtime_resolve

HW = (64, 64)


# ---------------------------------------------------------------------------------------------- fixtures


def make_stub_tflite(path, hw=HW, outputs=("logits", "probability_map", "saliency_map"), int8=False):
    """A LiteRT model whose logits are mean(RGB)/16 (float or full-int8), with named signature outputs."""
    import tensorflow as tf

    height, width = hw

    class Stub(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec((1, height, width, 3), tf.float32, name="image")])
        def serve(self, image):
            logits = tf.reduce_mean(image, -1, keepdims=True) / 16.0
            prob = tf.reshape(tf.nn.softmax(tf.reshape(logits, (1, -1))), (1, height, width, 1))
            heads = {"logits": logits, "probability_map": prob, "saliency_map": tf.sigmoid(logits)}
            return {name: heads.get(name, logits) for name in outputs}

    module = Stub()
    saved = pathlib.Path(path).with_suffix(".savedmodel")
    tf.saved_model.save(module, str(saved), signatures={"serving_default": module.serve})
    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved))
    if int8:
        rng = np.random.default_rng(0)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([rng.uniform(0, 255, (1, height, width, 3)).astype(np.float32)]
                                                     for _ in range(4))
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.uint8
        converter.inference_output_type = tf.uint8
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pathlib.Path(path).write_bytes(converter.convert())
    return pathlib.Path(path)


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
    return api.load_model(tiny_keras)


@pytest.fixture(scope="session")
def stub_tflite(model_dir):
    return make_stub_tflite(model_dir / "stub.tflite")


@pytest.fixture(scope="session")
def stub_int8(model_dir):
    return make_stub_tflite(model_dir / "stub_int8.tflite", int8=True)


def bright_spot(height, width, box, path=None, fmt="PNG"):
    """Black image with a white box (y0, y1, x0, x1)."""
    array = np.zeros((height, width, 3), np.uint8)
    y0, y1, x0, x1 = box
    array[y0:y1, x0:x1] = 255
    if path is not None:
        Image.fromarray(array).save(path, fmt)
    return array


def noise(height, width, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def flat_jpeg(width, height):
    """Bytes of a valid baseline grayscale JPEG of a flat grey, built without holding the pixels: one-symbol
    Huffman tables (DC diff 0 → '0', AC EOB → '0') make every 8×8 block two zero bits. Sides multiple of 8."""
    assert width % 8 == 0 and height % 8 == 0 and (width * height // 64) % 4 == 0

    def segment(marker, payload):
        return bytes([0xFF, marker]) + (len(payload) + 2).to_bytes(2, "big") + payload

    one_symbol = bytes([1] + [0] * 15) + b"\x00"
    header = b"\xff\xd8" + segment(0xDB, b"\x00" + bytes([1] * 64))
    header += segment(0xC0, b"\x08" + height.to_bytes(2, "big") + width.to_bytes(2, "big") + b"\x01\x01\x11\x00")
    header += segment(0xC4, b"\x00" + one_symbol) + segment(0xC4, b"\x10" + one_symbol)
    header += segment(0xDA, b"\x01\x01\x00\x00\x3f\x00")
    return header + bytes(width * height // 64 // 4) + b"\xff\xd9"


def run_cli(args, capsys):
    code = main(["predict", *map(str, args)])
    return code, capsys.readouterr().err


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
        over = Image.open(out / f"{stem}_overlay.png")
        assert over.mode == "RGB" and over.size == (w, h)
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
    from fastsal_tf.data.geometry import letterbox_params

    for src in [(100, 200), (200, 100), (480, 640), (37, 1000), (64, 64), (1, 3)]:
        for dst in [(64, 64), (192, 256), (96, 32)]:
            ours = pimages.placement(src, dst, "letterbox")
            theirs = letterbox_params(src, dst)
            assert (ours.content_hw, ours.offset_yx) == (tuple(theirs.content_hw), tuple(theirs.offset_yx))
    assert pimages.placement((100, 200), (64, 64), "stretch") == pimages.Placement((64, 64), (0, 0))


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


def test_size_cap_downscales_with_a_warning(stub_tflite, tmp_path, capsys):
    Image.fromarray(noise(150, 300)).save(tmp_path / "wide.png")
    model = api.load_model(stub_tflite, max_side=100)
    with pytest.warns(SaliencyWarning, match="size cap"):
        prob = model.predict_map(tmp_path / "wide.png")
    assert prob.shape == (50, 100)
    code, err = run_cli([tmp_path / "wide.png", "--model", stub_tflite, "--out", tmp_path / "o", "--max-side", 100],
                        capsys)
    assert code == 0 and "warning" in err and "size cap" in err
    assert Image.open(tmp_path / "o" / "wide_saliency.png").size == (100, 50)
    assert Image.open(tmp_path / "o" / "wide_overlay.png").size == (100, 50)


def test_huge_jpeg_is_decoded_at_reduced_scale(stub_tflite, tmp_path, capsys):
    path = tmp_path / "huge.jpg"
    path.write_bytes(flat_jpeg(20000, 20000))  # 400 Mpx, beyond PIL's decompression-bomb limit; 1.6 MB
    out = tmp_path / "o"
    code, err = run_cli([path, "--model", stub_tflite, "--out", out, "--max-side", 1000], capsys)
    assert code == 0, err
    assert "20000x20000 is above the 1000 px size cap" in err
    shown = Image.open(out / "huge_saliency.png")
    assert shown.size == (1000, 1000) and np.asarray(shown).min() == 255  # flat image → flat map
    assert Image.open(out / "huge_overlay.png").size == (1000, 1000)
    rgb, original = pimages.decode(path, lambda hw: (64, 64))
    assert original == (20000, 20000) and rgb.size == (2500, 2500)  # 1/8 DCT scaling


def test_non_jpeg_above_the_pixel_limit_is_refused(stub_tflite, tmp_path, capsys):
    Image.new("L", (2000, 1500)).save(tmp_path / "big.png")
    Image.new("L", (2000, 1504)).save(tmp_path / "large.jpg")
    code, err = run_cli([tmp_path / "big.png", tmp_path / "large.jpg", "--model", stub_tflite, "--out",
                         tmp_path / "o", "--max-pixels", 1_000_000, "--no-overlay"], capsys)
    assert code == 1
    assert "big.png: too large to decode in bounded memory" in err and "1 of 2 images failed" in err
    assert (tmp_path / "o" / "large_saliency.png").exists()  # the JPEG is decoded at 1/4 scale
    assert Image.open(tmp_path / "o" / "large_saliency.png").size == (2000, 1504)


@pytest.mark.parametrize("orientation,stored,upright", [(6, (64, 32), (32, 64)), (8, (400, 200), (200, 400)),
                                                         (3, (80, 48), (80, 48))])
def test_exif_orientation_is_respected(stub_tflite, tmp_path, capsys, orientation, stored, upright):
    width, height = stored
    array = bright_spot(height, width, (0, 8, 0, 8))  # bright top-left corner as stored
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(array).save(tmp_path / "r.jpg", exif=exif, quality=95)
    code, err = run_cli([tmp_path / "r.jpg", "--model", stub_tflite, "--out", tmp_path / "o"], capsys)
    assert code == 0, err
    shown = Image.open(tmp_path / "o" / "r_saliency.png")
    assert shown.size == upright and Image.open(tmp_path / "o" / "r_overlay.png").size == upright
    # the stored top-left corner is displayed top-right (6), bottom-left (8) or bottom-right (3)
    y, x = np.unravel_index(np.argmax(np.asarray(shown)), shown.size[::-1])
    corner = {6: (0, upright[0] - 1), 8: (upright[1] - 1, 0), 3: (upright[1] - 1, upright[0] - 1)}[orientation]
    assert abs(y - corner[0]) < upright[1] / 4 and abs(x - corner[1]) < upright[0] / 4


def test_image_modes_are_handled(stub_tflite, tmp_path, capsys):
    rgb = noise(30, 40)
    Image.fromarray(rgb).convert("L").save(tmp_path / "gray.png")
    Image.fromarray(np.dstack([rgb, np.full((30, 40), 128, np.uint8)])).save(tmp_path / "rgba.png")
    Image.fromarray(rgb).convert("CMYK").save(tmp_path / "cmyk.jpg")
    Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE).save(tmp_path / "palette.png", transparency=0)
    Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE).save(tmp_path / "anim.gif")
    Image.fromarray((np.arange(1200, dtype=np.uint16).reshape(30, 40) * 50)).save(tmp_path / "deep16.png")
    Image.fromarray(rgb).convert("1").save(tmp_path / "bits.bmp")
    Image.fromarray(rgb).save(tmp_path / "tiff.tif")
    assert Image.open(tmp_path / "deep16.png").mode.startswith("I")
    code, err = run_cli([tmp_path, "--model", stub_tflite, "--out", tmp_path / "o"], capsys)
    assert code == 0, err
    names = ["gray", "rgba", "cmyk", "palette", "anim", "deep16", "bits", "tiff"]
    for name in names:
        assert Image.open(tmp_path / "o" / f"{name}_saliency.png").size == (40, 30), name
    assert "8 images in" in err


def test_to_rgb_scales_16_bit_and_composites_alpha_over_white():
    deep = Image.fromarray(np.array([[0, 257, 65535]], np.uint16))
    np.testing.assert_array_equal(np.asarray(pimages.to_rgb(deep))[0, :, 0], [0, 1, 255])
    clear = Image.fromarray(np.zeros((2, 2, 4), np.uint8))  # fully transparent black
    assert np.asarray(pimages.to_rgb(clear)).min() == 255
    assert pimages.to_rgb(Image.new("CMYK", (2, 2), (0, 0, 0, 0))).getpixel((0, 0)) == (255, 255, 255)


# ---------------------------------------------------------------------------------------------- bad input


def test_bad_files_are_reported_and_skipped(stub_tflite, tmp_path, capsys):
    good = tmp_path / "in"
    good.mkdir()
    Image.fromarray(noise(48, 64)).save(good / "ok.jpg")
    jpeg = io.BytesIO()
    Image.fromarray(noise(200, 200)).save(jpeg, "JPEG", quality=95)
    (good / "truncated.jpg").write_bytes(jpeg.getvalue()[: len(jpeg.getvalue()) // 2])
    png = io.BytesIO()
    Image.fromarray(noise(200, 200)).save(png, "PNG")
    (good / "truncated.png").write_bytes(png.getvalue()[: len(png.getvalue()) // 2])
    corrupt = bytearray(png.getvalue())
    corrupt[200:260] = bytes(60)
    (good / "corrupt.png").write_bytes(bytes(corrupt))
    (good / "notes.jpg").write_text("not an image")
    (good / "empty.png").write_bytes(b"")
    (tmp_path / "readme.txt").write_text("hello")
    (good / "folder.png").mkdir()  # a folder with an image suffix is not listed
    args = [good, tmp_path / "readme.txt", tmp_path / "missing.jpg", str(tmp_path / "nothing-*.png")]
    code, err = run_cli([*args, "--model", stub_tflite, "--out", tmp_path / "o"], capsys)
    assert code == 1
    bad = ["truncated.jpg", "truncated.png", "corrupt.png", "notes.jpg", "empty.png", "readme.txt", "missing.jpg",
           "nothing-*.png"]
    for name in bad:
        assert f"{name}:" in err or f"{name} (" in err, name
    assert f"{len(bad)} of {len(bad) + 1} images failed:" in err
    assert (tmp_path / "o" / "ok_saliency.png").exists()
    assert not (tmp_path / "o" / "truncated_saliency.png").exists()


def test_nothing_to_do_and_out_is_a_file(stub_tflite, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    code, err = run_cli([tmp_path / "empty", "--model", stub_tflite, "--out", tmp_path / "o"], capsys)
    assert code == 1 and "no images to process" in err
    Image.fromarray(noise(20, 20)).save(tmp_path / "p.png")
    (tmp_path / "o.txt").write_text("")
    code, err = run_cli([tmp_path / "p.png", "--model", stub_tflite, "--out", tmp_path / "o.txt"], capsys)
    assert code == 2 and "is a file, not a folder" in err


def test_unreadable_file(stub_tflite, tmp_path, capsys):
    path = tmp_path / "locked.png"
    Image.fromarray(noise(20, 20)).save(path)
    path.chmod(0)
    try:
        if os.access(path, os.R_OK):
            pytest.skip("running as a user that can read any file")
        code, err = run_cli([path, "--model", stub_tflite, "--out", tmp_path / "o"], capsys)
    finally:
        path.chmod(0o644)
    assert code == 1 and "locked.png: cannot read the file" in err


def test_api_errors_name_the_image(stub_tflite, tmp_path):
    model = api.load_model(stub_tflite)
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(30))
    with pytest.raises(ImageError, match="bad.png"):
        model.predict_map(tmp_path / "bad.png")
    with pytest.raises(ImageError, match="file not found"):
        model.predict_map(tmp_path / "none.png")
    with pytest.raises(ValueError, match="image array"):
        model.predict_map(np.zeros((4, 4, 2), np.uint8))


# ------------------------------------------------------------------------------------- names and models


def test_names_mirror_inputs_and_collisions_are_disambiguated(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    for name in ("a/x.jpg", "a/x.png", "b/x.jpg", "a/y.jpg"):
        (tmp_path / name).write_bytes(b"")
    out = tmp_path / "out"
    items, missing = collect_inputs([tmp_path / "a", tmp_path / "b" / "x.jpg", str(tmp_path / "a" / "*.jpg")], out)
    names = [item.output("saliency").relative_to(out).as_posix() for item in items]
    assert names == ["x_saliency.png", "x_png_saliency.png", "y_saliency.png", "x_jpg_saliency.png"]
    assert not missing  # a/*.jpg matched files already listed: no duplicates
    items, _ = collect_inputs([tmp_path], out, recursive=True)
    assert sorted(i.output("overlay").relative_to(out).as_posix() for i in items) == [
        "a/x_overlay.png", "a/x_png_overlay.png", "a/y_overlay.png", "b/x_overlay.png"]


def test_outputs_never_overwrite_inputs(stub_tflite, tmp_path, capsys):
    Image.fromarray(noise(20, 20)).save(tmp_path / "p.png")
    Image.fromarray(noise(20, 20, 2)).save(tmp_path / "p_saliency.png")
    before = (tmp_path / "p_saliency.png").read_bytes()
    code, err = run_cli([tmp_path, "--model", stub_tflite, "--out", tmp_path], capsys)
    assert code == 2 and "refusing to run" in err and "overwrite an input" in err
    assert (tmp_path / "p_saliency.png").read_bytes() == before
    # the output folder inside an input folder is not read back as input
    code, err = run_cli([tmp_path / "p.png", "--model", stub_tflite, "--out", tmp_path / "s"], capsys)
    code, err = run_cli([tmp_path, "-r", "--model", stub_tflite, "--out", tmp_path / "s", "--no-overlay"], capsys)
    assert code == 0 and "2 images" in err


def test_missing_shipped_model_says_how_to_give_one(monkeypatch, tmp_path, capsys, tiny_keras):
    monkeypatch.setattr(runtime_resolve, "ASSETS_DIR", tmp_path / "assets")
    Image.fromarray(noise(20, 20)).save(tmp_path / "p.png")
    for spec in ("default", "default-c", "default-int8"):
        with pytest.raises(ModelNotFoundError) as error:
            api.load_model(spec)
        assert isinstance(error.value, FileNotFoundError)
    code, err = run_cli([tmp_path / "p.png", "--out", tmp_path / "o"], capsys)
    assert code == 2
    assert "not in this install" in err and "--model PATH" in err and ".tflite" in err and "import-torch" in err
    with pytest.raises(ModelNotFoundError, match="model file not found"):
        api.load_model(tmp_path / "nope.keras")
    with pytest.raises(ValueError, match="unsupported model"):
        api.load_model(tmp_path / "model.onnx")
    (tmp_path / "assets").mkdir()
    (tmp_path / "assets" / "fastsal_a.keras").write_bytes(tiny_keras.read_bytes())
    assert runtime_resolve.resolve("default") == (tmp_path / "assets" / "fastsal_a.keras", "keras")


def test_import_fastsal_tf_stays_light():
    import subprocess
    import sys

    code = "import sys, fastsal_tf; assert 'tensorflow' not in sys.modules; assert callable(fastsal_tf.load_model)"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


@pytest.mark.parametrize("which", ["keras", "litert"])
def test_memory_budget_serialises_images_without_deadlock(keras_predictor, stub_tflite, tmp_path, which):
    from fastsal_tf.predict import runner

    for i in range(5):
        Image.fromarray(noise(30 + i, 40, i)).save(tmp_path / f"m{i}.png")
    (tmp_path / "m9.png").write_bytes(b"broken")
    model = keras_predictor if which == "keras" else api.load_model(stub_tflite)
    items, _ = collect_inputs([tmp_path], tmp_path / "o")
    summary = runner.run(model, items, batch_size=2, jobs=2, memory_pixels=1)
    assert summary.done == 5 and [name.rsplit("/", 1)[-1] for name, _ in summary.failed] == ["m9.png"]
    assert len(list((tmp_path / "o").glob("*_saliency.png"))) == 5


# --------------------------------------------------------------------------------------------------- slow


@pytest.mark.slow
def test_int8_fastsal_tflite_end_to_end(tmp_path, capsys):
    """A real FastSal-A (random weights, 64x64) converted to full-int8 LiteRT with uint8 in/out."""
    import tensorflow as tf

    from fastsal_tf.models import build_fastsal

    converter = tf.lite.TFLiteConverter.from_keras_model(build_fastsal("A", (*HW, 3)))
    rng = np.random.default_rng(0)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([rng.uniform(0, 255, (1, *HW, 3)).astype(np.float32)] for _ in range(4))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.uint8
    converter.inference_output_type = tf.uint8
    model = tmp_path / "a_int8.tflite"
    model.write_bytes(converter.convert())
    Image.fromarray(noise(480, 640)).save(tmp_path / "p.jpg")
    code, err = run_cli([tmp_path / "p.jpg", "--model", model, "--out", tmp_path / "o", "--npy"], capsys)
    assert code == 0, err
    assert "output 'logits'" in err  # the quantised probability map is passed over for the logits
    assert Image.open(tmp_path / "o" / "p_saliency.png").size == (640, 480)
    assert abs(np.load(tmp_path / "o" / "p_saliency.npy").sum() - 1) < 1e-9


@pytest.mark.slow
def test_huge_jpeg_at_the_default_cap_stays_in_bounded_memory(stub_tflite, tmp_path):
    """20000x20000 JPEG, default 8192 px cap, overlay on: peak memory of a fresh process stays < 3 GB."""
    import subprocess
    import sys

    (tmp_path / "huge.jpg").write_bytes(flat_jpeg(20000, 20000))
    code = ("import resource, sys; from fastsal_tf.cli import main; "
            f"rc = main(['predict', {str(tmp_path / 'huge.jpg')!r}, '--model', {str(stub_tflite)!r}, "
            f"'--out', {str(tmp_path / 'o')!r}]); "
            "print('peak', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss); sys.exit(rc)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    peak_kb = int(done.stdout.split("peak")[-1])
    assert peak_kb < 3 * 1024 * 1024
    assert Image.open(tmp_path / "o" / "huge_saliency.png").size == (8192, 8192)
    assert Image.open(tmp_path / "o" / "huge_overlay.png").size == (8192, 8192)
