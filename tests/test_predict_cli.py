"""`fastsal predict` on files: size caps, EXIF orientation, image modes, bad and unreadable files, output
names, shipped-model errors, the memory budget; the tiny models are conftest's (stub LiteRT files whose
logits are the image brightness / 16, a random FastSal-A at 64×64)."""

from __future__ import annotations

import io
import os

import numpy as np
import pytest
from PIL import Image

from predict_helpers import HW, bright_spot, flat_jpeg, noise, run_cli

from fastsal_tf import api
from fastsal_tf.predict import images as pimages
from fastsal_tf.predict.errors import ImageError, ModelNotFoundError, SaliencyWarning
from fastsal_tf.predict.runner import collect_inputs
from fastsal_tf.runtime import resolve as runtime_resolve



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
    assert Image.open(tmp_path / "o" / "wide_overlay.jpg").size == (100, 50)


def test_huge_jpeg_is_decoded_at_reduced_scale(stub_tflite, tmp_path, capsys):
    path = tmp_path / "huge.jpg"
    path.write_bytes(flat_jpeg(20000, 20000))  # 400 Mpx, beyond PIL's decompression-bomb limit; 1.6 MB
    out = tmp_path / "o"
    code, err = run_cli([path, "--model", stub_tflite, "--out", out, "--max-side", 1000], capsys)
    assert code == 0, err
    assert "20000x20000 is above the 1000 px size cap" in err
    shown = Image.open(out / "huge_saliency.png")
    assert shown.size == (1000, 1000) and np.asarray(shown).min() == 255  # flat image → flat map
    assert Image.open(out / "huge_overlay.jpg").size == (1000, 1000)
    rgb, original, frames = pimages.decode(path, lambda hw: (64, 64))
    assert original == (20000, 20000) and rgb.size == (2500, 2500) and frames == 1  # 1/8 DCT scaling


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
    assert shown.size == upright and Image.open(tmp_path / "o" / "r_overlay.jpg").size == upright
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
        "a/x_overlay.jpg", "a/x_png_overlay.jpg", "a/y_overlay.jpg", "b/x_overlay.jpg"]


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
    for spec in ("default", "default-keras", "default-c", "default-int8"):
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
    (tmp_path / "assets" / "fastsal_a_352x480.keras").write_bytes(tiny_keras.read_bytes())
    assert runtime_resolve.resolve("default-keras") == (tmp_path / "assets" / "fastsal_a_352x480.keras", "keras")
    with pytest.raises(ModelNotFoundError):  # the default's .tflite is still missing, not silently replaced
        runtime_resolve.resolve("default")


@pytest.mark.parametrize("family", ["default", "fast"])
def test_shipped_litert_names_export_from_their_keras_model(family):
    keras_ref = runtime_resolve.resolve(f"{family}-keras")
    for spec in (family, f"{family}-int8"):
        assert runtime_resolve.resolve(spec).kind == "litert"
        assert runtime_resolve.resolve_keras(spec) == keras_ref
    assert runtime_resolve.resolve_keras("default-c") == runtime_resolve.resolve("default-c")


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
    # The peak is the process's own VmHWM (kB): getrusage's ru_maxrss survives exec on Linux and can report
    # the forking parent's (the test runner's) peak instead.
    code = ("import re, sys; from fastsal_tf.cli import main; "
            f"rc = main(['predict', {str(tmp_path / 'huge.jpg')!r}, '--model', {str(stub_tflite)!r}, "
            f"'--out', {str(tmp_path / 'o')!r}]); "
            "status = open('/proc/self/status').read(); "
            "print('peak', re.search(r'VmHWM:\\s+(\\d+) kB', status).group(1)); sys.exit(rc)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    peak_kb = int(done.stdout.split("peak")[-1])
    assert peak_kb < 3 * 1024 * 1024
    assert Image.open(tmp_path / "o" / "huge_saliency.png").size == (8192, 8192)
    assert Image.open(tmp_path / "o" / "huge_overlay.jpg").size == (8192, 8192)
