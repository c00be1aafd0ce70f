"""`fastsal center`, `fastsal crop` and SaliencyPredictor.predict_center / predict_crops, on a stub LiteRT model
whose logits are the image brightness / 16 (predict_helpers.make_stub_tflite): the salient part is where the
image is bright, so where the crops and the centre must go is known."""

from __future__ import annotations

import json
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image, ImageOps, JpegImagePlugin

from fastsal_tf import api
from fastsal_tf.cli import main
from fastsal_tf.predict.errors import ImageError
from predict_helpers import make_stub_tflite

ASPECTS = ["1:1", "16:9", "9:16", "4:3", "1:3"]


@pytest.fixture(scope="module")
def stub(tmp_path_factory):
    return make_stub_tflite(tmp_path_factory.mktemp("models") / "stub.tflite")


def spot_image(height=96, width=128, spot=(60, 76, 14, 30), seed=0):
    """Dim noise with one bright square spot (y0, y1, x0, x1)."""
    array = np.random.default_rng(seed).integers(0, 40, (height, width, 3), dtype=np.uint8)
    y0, y1, x0, x1 = spot
    array[y0:y1, x0:x1] = 255
    return array


def run(command, args, capsys):
    code = main([command, *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def test_center_json_text_and_api_agree(stub, tmp_path, capsys):
    path = tmp_path / "spot.png"
    Image.fromarray(spot_image()).save(path)
    code, out, _ = run("center", [path, "--model", stub, "--json"], capsys)
    assert code == 0
    (result,) = json.loads(out)
    assert set(result) == {"image", "width", "height", "center"}
    assert (result["image"], result["width"], result["height"]) == (str(path), 128, 96)
    x, y = result["center"]
    assert isinstance(x, float) and isinstance(y, float)
    assert np.hypot(x - 21.5, y - 67.5) <= 0.1 * np.hypot(96, 128)  # within the hit radius of the spot's middle
    assert api.load_model(stub).predict_center(path) == (x, y)
    code, out, _ = run("center", [path, "--model", stub], capsys)
    assert out == f"{path}: center {x:.1f} {y:.1f} (128x96)\n"


def test_center_follows_exif_orientation(stub, tmp_path, capsys):
    upright = spot_image(128, 96, spot=(10, 26, 60, 76))
    stored = np.rot90(upright, 1)  # orientation 6: the viewer turns it 90° clockwise to show `upright`
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "turned.jpg"
    Image.fromarray(np.ascontiguousarray(stored)).save(path, quality=95, exif=exif)
    code, out, _ = run("center", [path, "--model", stub, "--json"], capsys)
    (result,) = json.loads(out)
    assert (result["width"], result["height"]) == (96, 128)
    x, y = result["center"]
    assert abs(x - 67.5) <= 8 and abs(y - 17.5) <= 8


def test_cjxl_flags(stub, tmp_path, capsys):
    path = tmp_path / "spot.png"
    Image.fromarray(spot_image()).save(path)
    _, out, _ = run("center", [path, "--model", stub, "--json", "--cjxl"], capsys)
    (result,) = json.loads(out)
    x, y = result["center"]
    flags = ["--group_order", "1", "--center_x", str(round(x)), "--center_y", str(round(y))]
    assert result["cjxl"] == flags
    _, out, _ = run("center", [path, "--model", stub, "--cjxl"], capsys)
    assert out == f"{path}: {' '.join(flags)}\n"


@pytest.mark.skipif(shutil.which("cjxl") is None, reason="cjxl not installed (Debian package libjxl-tools)")
def test_cjxl_accepts_the_flags(stub, tmp_path, capsys):
    path = tmp_path / "spot.png"
    Image.fromarray(spot_image(300, 400, spot=(200, 240, 20, 60))).save(path)
    _, out, _ = run("center", [path, "--model", stub, "--cjxl"], capsys)
    flags = out.strip().split(": ", 1)[1].split()
    done = subprocess.run(["cjxl", str(path), str(tmp_path / "spot.jxl"), *flags], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "spot.jxl").stat().st_size > 0
    bad = subprocess.run(["cjxl", str(path), str(tmp_path / "bad.jxl"), "--group_order", "1", "--center_x", "400"],
                         capture_output=True, text=True)
    assert bad.returncode != 0  # cjxl checks the range: the flags above were really read


def check_boxes(result, width, height):
    assert [crop["aspect"] for crop in result["crops"]] == ASPECTS
    for crop in result["crops"]:
        x0, y0, x1, y1 = crop["box"]
        assert all(isinstance(v, int) for v in crop["box"])
        assert 0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height
        aspect_w, aspect_h = (float(v) for v in crop["aspect"].split(":"))
        ratio = aspect_w / aspect_h
        assert abs((x1 - x0) - (y1 - y0) * ratio) <= 1 or abs((y1 - y0) - (x1 - x0) / ratio) <= 1
        assert x1 - x0 == width or y1 - y0 == height  # the largest box of the ratio


def test_crop_json_boxes_hold_the_spot_and_match_the_api(stub, tmp_path, capsys):
    path = tmp_path / "spot.png"
    Image.fromarray(spot_image()).save(path)
    code, out, _ = run("crop", [path, "--model", stub, "--json", "--aspect", ",".join(ASPECTS)], capsys)
    assert code == 0
    (result,) = json.loads(out)
    assert set(result) == {"image", "width", "height", "crops"}
    assert all(set(crop) == {"aspect", "box"} for crop in result["crops"])
    check_boxes(result, 128, 96)
    for crop in result["crops"]:
        x0, y0, x1, y1 = crop["box"]
        assert x0 <= 14 and 30 <= x1 and y0 <= 60 and 76 <= y1, crop  # the spot is inside
    boxes = api.load_model(stub).predict_crops(path, ASPECTS)
    assert [list(box) for box in boxes] == [crop["box"] for crop in result["crops"]]


def test_crop_scale_and_text_output(stub, tmp_path, capsys):
    path = tmp_path / "spot.png"
    Image.fromarray(spot_image()).save(path)
    code, out, _ = run("crop", [path, "--model", stub, "--aspect", "1:1", "--scale", "0.5"], capsys)
    assert code == 0
    x0, y0, x1, y1 = api.load_model(stub).predict_crops(path, ["1:1"], scale=0.5)[0]
    assert (x1 - x0, y1 - y0) == (48, 48)
    assert out == f"{path} (128x96): 1:1 [{x0}, {y0}, {x1}, {y1}]\n"


def test_crop_out_writes_crops_at_original_quality(stub, tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    source = spot_image(seed=1)
    Image.fromarray(source).save(folder / "photo.jpg", quality=60, subsampling=2)
    rgba = np.dstack([spot_image(seed=2), np.full((96, 128), 200, np.uint8)])
    Image.fromarray(rgba).save(folder / "graphic.png")
    out = tmp_path / "out"
    code, text, _ = run("crop", [folder, "--model", stub, "--json", "--out", out, "--aspect", "1:1,9:16"], capsys)
    assert code == 0
    results = {pathlib_name(r["image"]): r for r in json.loads(text)}
    assert sorted(p.name for p in out.iterdir()) == ["graphic_crop_1x1.png", "graphic_crop_9x16.png",
                                                     "photo_crop_1x1.jpg", "photo_crop_9x16.jpg"]
    with Image.open(folder / "photo.jpg") as original:
        tables, sampling = original.quantization, JpegImagePlugin.get_sampling(original)
        decoded = np.asarray(original.convert("RGB"), np.float64)
    for crop in results["photo.jpg"]["crops"]:
        x0, y0, x1, y1 = crop["box"]
        with Image.open(out / f"photo_crop_{crop['aspect'].replace(':', 'x')}.jpg") as written:
            assert written.size == (x1 - x0, y1 - y0)
            assert written.quantization == tables and JpegImagePlugin.get_sampling(written) == sampling
            difference = np.abs(np.asarray(written.convert("RGB"), np.float64) - decoded[y0:y1, x0:x1])
            assert difference.mean() < 4
    for crop in results["graphic.png"]["crops"]:
        x0, y0, x1, y1 = crop["box"]
        with Image.open(out / f"graphic_crop_{crop['aspect'].replace(':', 'x')}.png") as written:
            assert written.mode == "RGBA"
            assert np.array_equal(np.asarray(written), rgba[y0:y1, x0:x1])  # lossless, alpha kept


def pathlib_name(text):
    return text.replace("\\", "/").rsplit("/", 1)[-1]


@pytest.mark.parametrize("flag, value", [("--aspect", "0:1"), ("--aspect", "abc"), ("--aspect", "16:0"),
                                         ("--aspect", "1:1,,16:9"), ("--aspect", "-4:3"), ("--scale", "0"),
                                         ("--scale", "1.5"), ("--scale", "-0.2"), ("--scale", "abc"),
                                         ("--scale", "nan")])
def test_bad_flags_name_the_flag_and_write_nothing(stub, tmp_path, capsys, flag, value):
    path = tmp_path / "spot.png"
    Image.fromarray(spot_image()).save(path)
    with pytest.raises(SystemExit) as exit_info:
        main(["crop", str(path), "--model", str(stub), "--out", str(tmp_path / "out"), f"{flag}={value}"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {flag}:" in err and value.split(",")[0] in err
    assert not (tmp_path / "out").exists()


def test_bad_images_are_named_skipped_and_leave_nothing(stub, tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    Image.fromarray(spot_image()).save(folder / "good.png")
    Image.fromarray(spot_image(1, 3)).save(folder / "thin.png")  # 3x1: no 1:9 box of one pixel or more
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    out = tmp_path / "out"
    code, text, err = run("crop", [folder, "--model", stub, "--json", "--out", out, "--aspect", "1:1,1:9"], capsys)
    assert code == 1
    assert [pathlib_name(r["image"]) for r in json.loads(text)] == ["good.png"]
    assert f"skipped {folder / 'thin.png'}: a 3x1 image is too small for a 1:9 crop" in err
    assert f"skipped {folder / 'broken.jpg'}:" in err
    assert "2 of 3 images failed" in err
    assert sorted(p.name for p in out.iterdir()) == ["good_crop_1x1.png", "good_crop_1x9.png"]
    code, _, err = run("center", [folder / "broken.jpg", folder / "good.png", "--model", stub], capsys)
    assert code == 1 and f"skipped {folder / 'broken.jpg'}:" in err


def test_api_errors(stub, tmp_path):
    path = tmp_path / "thin.png"
    Image.fromarray(spot_image(1, 3)).save(path)
    model = api.load_model(stub)
    with pytest.raises(ImageError, match=r"thin.png: a 3x1 image is too small for a 1:9 crop"):
        model.predict_crops(path, ["1:9"])
    with pytest.raises(ValueError, match="aspect ratio '16:0'"):
        model.predict_crops(path, ["16:0"])
    with pytest.raises(ValueError, match="scale"):
        model.predict_crops(path, ["1:1"], scale=0)


def test_crops_never_overwrite_inputs(stub, tmp_path, capsys):
    Image.fromarray(spot_image()).save(tmp_path / "a.png")
    Image.fromarray(spot_image()).save(tmp_path / "a_crop_1x1.png")
    code, _, err = run("crop", [tmp_path, "--model", stub, "--out", tmp_path, "--aspect", "1:1"], capsys)
    assert code == 2 and "would overwrite an input image" in err
    (tmp_path / "file").write_text("x")
    code, _, err = run("crop", [tmp_path / "a.png", "--model", stub, "--out", tmp_path / "file"], capsys)
    assert code == 2 and "is a file, not a folder" in err


def test_crops_of_a_turned_jpeg_are_cut_upright(stub, tmp_path, capsys):
    upright = spot_image(128, 96, spot=(10, 26, 60, 76))
    exif = Image.Exif()
    exif[0x0112] = 6  # stored turned: the viewer rotates it 90° clockwise
    exif[0x010F] = "TestCam"  # other EXIF survives
    Image.fromarray(np.ascontiguousarray(np.rot90(upright, 1))).save(tmp_path / "turned.jpg", quality=95, exif=exif)
    code, text, _ = run("crop", [tmp_path / "turned.jpg", "--model", stub, "--json", "--out", tmp_path / "out",
                                 "--aspect", "1:1"], capsys)
    (result,) = json.loads(text)
    assert code == 0 and (result["width"], result["height"]) == (96, 128)
    x0, y0, x1, y1 = result["crops"][0]["box"]
    assert (x1 - x0, y1 - y0) == (96, 96) and y0 <= 10  # the spot (rows 10-26) is in the upright crop
    with Image.open(tmp_path / "out" / "turned_crop_1x1.jpg") as written:
        assert written.size == (96, 96)
        assert written.getexif().get(0x0112, 1) == 1 and written.getexif().get(0x010F) == "TestCam"
        pixels = np.asarray(written.convert("RGB"), np.float64)
    with Image.open(tmp_path / "turned.jpg") as source:
        shown = np.asarray(ImageOps.exif_transpose(source).convert("RGB"), np.float64)
    assert np.abs(pixels - shown[y0:y1, x0:x1]).mean() < 3  # the same pixels, re-encoded once


def test_keras_batches_keep_the_input_order(tmp_path, capsys):
    from fastsal_tf.models import build_fastsal

    model_path = tmp_path / "tiny.keras"
    build_fastsal("A", (64, 64, 3)).save(model_path)
    names = [f"img{i}.png" for i in range(5)]
    for i, name in enumerate(names):
        Image.fromarray(spot_image(40 + 8 * i, 64, spot=(2, 10, 2, 10))).save(tmp_path / name)
    code, out, _ = run("crop", [*(tmp_path / n for n in names), "--model", model_path, "--json", "--batch-size", "2",
                                "--aspect", "1:1"], capsys)
    results = json.loads(out)
    assert code == 0 and [pathlib_name(r["image"]) for r in results] == names
    assert [r["height"] for r in results] == [40, 48, 56, 64, 72]
    for result in results:
        x0, y0, x1, y1 = result["crops"][0]["box"]
        side = min(result["width"], result["height"])
        assert (x1 - x0, y1 - y0) == (side, side) and 0 <= x0 and x1 <= 64 and 0 <= y0 and y1 <= result["height"]
