"""A bad-input corpus (issue 17), generated on the fly: bad model files through every command and the API,
bad flag values, bad images, interrupts and partial outputs. Each case checks the exit status, that no
traceback is printed, that the message names the file or flag, that no output is left for a failed item
and that the inputs are unchanged."""

from __future__ import annotations

import hashlib
import os
import pickle
import signal
import time
import warnings
import zipfile

import numpy as np
import pytest
from PIL import Image

from fastsal_tf.cli import main
from predict_helpers import HW, noise

# name → how to make it in a folder (None: the name is not created, e.g. a missing file).
BAD_MODELS = {
    "noconfig.keras": lambda p: zipfile.ZipFile(p, "w").writestr("model.weights.h5", b"x"),
    "random.keras": lambda p: p.write_bytes(np.random.default_rng(1).bytes(2000)),
    "empty.keras": lambda p: p.write_bytes(b""),
    "folder.keras": lambda p: p.mkdir(),
    "loop.keras": lambda p: p.symlink_to(p.name),
    "fifo.keras": lambda p: os.mkfifo(p),
    "missing.keras": None,
    "random.tflite": lambda p: p.write_bytes(np.random.default_rng(2).bytes(2000)),
    "empty.tflite": lambda p: p.write_bytes(b""),
    "text.tflite": lambda p: p.write_text("hello, not a model\n"),
    "emptydict.pth": lambda p: p.write_bytes(pickle.dumps({}, protocol=2)),
    "random.pth": lambda p: p.write_bytes(np.random.default_rng(3).bytes(2000)),
    "empty.pth": lambda p: p.write_bytes(b""),
    "notes.txt": lambda p: p.write_text("not a model"),
    "plainfolder": lambda p: p.mkdir(),
}


def _make_other_keras(path):
    """A valid Keras model that is not a FastSal (a Sequential saved before it was called)."""
    import keras

    keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Conv2D(1, 3, padding="same")]).save(path)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bad_models")
    for name, make in BAD_MODELS.items():
        if make is not None:
            make(folder / name)
    _make_other_keras(folder / "other.keras")
    Image.fromarray(noise(*HW)).save(folder / "image.png")
    return folder


def snapshot(folder):
    """{relative path: sha256} of the regular files below folder, and the names of the rest."""
    found = {}
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            path = os.path.join(root, name)
            rel = os.path.relpath(path, folder)
            if os.path.isfile(path) and not os.path.islink(path):
                with open(path, "rb") as stream:
                    found[rel] = hashlib.sha256(stream.read()).hexdigest()
            else:
                found[rel] = "other"
    return found


def cli(argv, capsys):
    """(exit status, stdout + stderr) of `fastsal ARGV` run in this process."""
    try:
        status = main([str(a) for a in argv])
    except SystemExit as exit_:  # argparse refusing a value
        status = exit_.code
    captured = capsys.readouterr()
    return status, captured.out + captured.err


def check_refused(status, text, named, expected=2):
    assert status == expected, text
    assert "Traceback" not in text
    assert named in text, text
    assert "error" in text


MODEL_NAMES = sorted(BAD_MODELS) + ["other.keras"]
COMMANDS = {
    "info": lambda model, out: ["info", model],
    "predict": lambda model, out: ["predict", model.parent / "image.png", "--model", model, "--out", out],
    "export": lambda model, out: ["export", model, "--out", out / "m.tflite"],
    "benchmark": lambda model, out: ["benchmark", model],
    "import-torch": lambda model, out: ["import-torch", model, "--out", out / "m.keras"],
    "crop": lambda model, out: ["crop", model.parent / "image.png", "--model", model, "--out", out],
    "center": lambda model, out: ["center", model.parent / "image.png", "--model", model],
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize("name", MODEL_NAMES)
def test_bad_model_file_through_every_command(corpus, tmp_path, capsys, command, name):
    before = snapshot(corpus)
    out = tmp_path / "out"
    status, text = cli(COMMANDS[command](corpus / name, out), capsys)
    check_refused(status, text, name)
    assert "File not found" not in text or name == "missing.keras"
    assert not out.exists() or not any(out.iterdir())
    assert snapshot(corpus) == before


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_bad_model_file_through_the_api(corpus, name):
    import fastsal_tf

    before = snapshot(corpus)
    with pytest.raises((ValueError, fastsal_tf.ModelNotFoundError)) as caught:
        fastsal_tf.load_model(corpus / name)
    assert name in str(caught.value)
    assert isinstance(caught.value, FileNotFoundError) == (name == "missing.keras")
    assert snapshot(corpus) == before


# (argv after the command's own arguments, the flag the message must name)
BAD_FLAGS = [
    ("predict", ["--blur", "inf"], "--blur"),
    ("predict", ["--blur", "nan"], "--blur"),
    ("predict", ["--blur", "-1"], "--blur"),
    ("predict", ["--blur", "1e12"], "--blur"),
    ("predict", ["--blur", "wide"], "--blur"),
    ("predict", ["--max-pixels", "-1"], "--max-pixels"),
    ("predict", ["--max-side", "-5"], "--max-side"),
    ("predict", ["--max-side", "1.5"], "--max-side"),
    ("predict", ["--batch-size", "0"], "--batch-size"),
    ("predict", ["--jobs", "0"], "--jobs"),
    ("predict", ["--center-bias", "2"], "--center-bias"),
    ("evaluate", ["--blur", "inf"], "--blur"),
    ("evaluate", ["--blur", "1e12"], "--blur"),
    ("evaluate", ["--sigma", "inf"], "--sigma"),
    ("evaluate", ["--limit", "0"], "--limit"),
    ("benchmark", ["--threads", "0"], "--threads"),
    ("benchmark", ["--runs", "0"], "--runs"),
    ("benchmark", ["--runs", "-3"], "--runs"),
    ("benchmark", ["--warmup", "-1"], "--warmup"),
    ("export", ["--threads", "0"], "--threads"),
    ("export", ["--num-validation", "0"], "--num-validation"),
    ("export", ["--num-representative", "0"], "--num-representative"),
    ("export", ["--num-representative", "many"], "--num-representative"),
]
BASE_ARGS = {
    "predict": lambda c, out: ["predict", c / "image.png", "--out", out],
    "evaluate": lambda c, out: ["evaluate", "--model", "default", "--dataset", "folder", "--data-dir", c,
                                "--out", out],
    "benchmark": lambda c, out: ["benchmark", "default-int8"],
    "export": lambda c, out: ["export", "default", "--out", out / "m.tflite"],
}


@pytest.mark.parametrize("command,flags,flag", BAD_FLAGS, ids=[f"{c}{' '.join(f)}" for c, f, _ in BAD_FLAGS])
def test_bad_flag_value_names_the_flag(corpus, tmp_path, capsys, command, flags, flag):
    out = tmp_path / "out"
    status, text = cli(BASE_ARGS[command](corpus, out) + flags, capsys)
    check_refused(status, text, f"argument {flag}")
    assert not out.exists()


def test_size_caps_mean_the_same_in_the_api(keras_predictor):
    from fastsal_tf.predict.predictor import SaliencyPredictor

    backend = keras_predictor.backend
    assert SaliencyPredictor(backend, max_side=0, max_pixels=0).max_side is None
    assert SaliencyPredictor(backend, max_side=None).max_side is None
    for value in (-1, 2.5):
        with pytest.raises(ValueError, match="max_side"):
            SaliencyPredictor(backend, max_side=value)
    with pytest.raises(ValueError, match="max_pixels"):
        SaliencyPredictor(backend, max_pixels=-1)
    for blur in (float("inf"), float("nan"), -1.0, 1e12):
        with pytest.raises(ValueError, match="blur"):
            SaliencyPredictor(backend, blur=blur)


def test_huge_blur_costs_no_more_than_a_small_one(keras_predictor):
    """Sigma 100000 on a tiny image: a bounded kernel, a finite map summing to 1."""
    from fastsal_tf.predict.predictor import SaliencyPredictor

    blurred = SaliencyPredictor(keras_predictor.backend, blur=100_000).predict_map(noise(5, 7))
    assert blurred.shape == (5, 7) and np.isfinite(blurred).all()
    assert blurred.sum() == pytest.approx(1.0)


# Bad images given to predict: (name, how to make it, words of the reason)
BAD_IMAGES = [
    ("empty.png", lambda p: p.write_bytes(b""), "not an image"),
    ("random.jpg", lambda p: p.write_bytes(np.random.default_rng(4).bytes(3000)), "not an image"),
    ("text.png", lambda p: p.write_text("not an image"), "not an image"),
    ("truncated.png", lambda p: p.write_bytes(_png_bytes()[:200]), "truncated"),
    ("fifo.png", lambda p: os.mkfifo(p), "not a regular file"),
    ("loop.png", lambda p: p.symlink_to(p.name), "looping symbolic link"),
    ("missing.png", None, "no such file"),
]


def _png_bytes():
    import io

    buffer = io.BytesIO()
    Image.fromarray(noise(40, 50, seed=5)).save(buffer, "PNG")
    return buffer.getvalue()


def test_bad_images_are_reported_and_leave_no_output(stub_tflite, tmp_path, capsys):
    """All the bad images in one run (one model load): each named with its reason, none with an output."""
    inputs = tmp_path / "in"
    inputs.mkdir()
    Image.fromarray(noise(*HW)).save(inputs / "good.png")
    for name, make, _ in BAD_IMAGES:
        if make is not None:
            make(inputs / name)
    before = snapshot(inputs)
    out = tmp_path / "out"
    argv = ["predict", inputs / "good.png", *(inputs / name for name, _, _ in BAD_IMAGES), "--model", stub_tflite,
            "--out", out]
    status, text = cli(argv, capsys)
    assert status == 1 and "Traceback" not in text
    assert f"{len(BAD_IMAGES)} of {len(BAD_IMAGES) + 1} images failed" in text
    for name, _, reason in BAD_IMAGES:
        assert f"{name} (" in text and reason in text.split(f"{name} (")[-1].split(")")[0], name
    assert sorted(p.name for p in out.iterdir()) == ["good_overlay.jpg", "good_saliency.png"]
    assert snapshot(inputs) == before


def test_an_image_failing_while_written_leaves_none_of_its_outputs(stub_tflite, tmp_path, capsys, monkeypatch):
    """A write error on the second output (e.g. a full disk) removes the first: the set or nothing."""
    from fastsal_tf.common import files

    real = files.atomic_path
    calls = []

    def failing(path):
        calls.append(path)
        if str(path).endswith("_overlay.jpg"):
            raise OSError(28, "No space left on device")
        return real(path)

    monkeypatch.setattr(files, "atomic_path", failing)
    Image.fromarray(noise(*HW)).save(tmp_path / "a.png")
    out = tmp_path / "out"
    status, text = cli(["predict", tmp_path / "a.png", "--model", stub_tflite, "--out", out, "--npy"], capsys)
    assert status == 1 and "No space left" in text and "Traceback" not in text
    assert len(calls) >= 2
    assert list(out.iterdir()) == []


def test_predict_reruns_into_the_input_folder(stub_tflite, tmp_path, capsys):
    Image.fromarray(noise(*HW)).save(tmp_path / "a.png")
    Image.fromarray(noise(20, 30)).save(tmp_path / "b_saliency.png")  # a user's image, not an output
    for _ in range(2):
        status, text = cli(["predict", tmp_path, "--model", stub_tflite, "--out", tmp_path], capsys)
        assert status == 0, text
        assert "2 images in" in text  # a.png and b_saliency.png, never the outputs
    assert {p.name for p in tmp_path.iterdir()} == {"a.png", "b_saliency.png", "a_saliency.png", "a_overlay.jpg",
                                                   "b_saliency_saliency.png", "b_saliency_overlay.jpg"}


def test_reruns_skip_jpeg_and_png_overlays_but_not_a_users_jpeg(stub_tflite, tmp_path, capsys):
    ramp = np.linspace(0, 255, HW[1])
    Image.fromarray(np.stack(np.broadcast_arrays(ramp[None], ramp[:, None] * 0.5, 128.0), -1).astype(np.uint8)
                    ).save(tmp_path / "a.png")  # smooth, as photographs are
    Image.fromarray(noise(*HW, 3)).save(tmp_path / "c_overlay.jpg", comment=b"holiday")  # a user's photo
    for extra in (["--overlay-format", "png"], [], []):
        status, text = cli(["predict", tmp_path, "--model", stub_tflite, "--out", tmp_path, *extra], capsys)
        assert status == 0 and "2 images in" in text, text  # a.png and c_overlay.jpg, never the outputs
    assert {p.name for p in tmp_path.iterdir()} == {
        "a.png", "c_overlay.jpg", "a_saliency.png", "a_overlay.png", "a_overlay.jpg", "c_overlay_saliency.png",
        "c_overlay_overlay.png", "c_overlay_overlay.jpg"}
    with Image.open(tmp_path / "a_overlay.jpg") as jpeg, Image.open(tmp_path / "a_overlay.png") as png:
        assert jpeg.format == "JPEG" and jpeg.info["comment"] == b"fastsal predict"
        assert png.format == "PNG" and png.size == jpeg.size
        error = np.asarray(jpeg, np.float64) - np.asarray(png, np.float64)
    assert 10 * np.log10(255 ** 2 / np.mean(error ** 2)) > 30  # PSNR of the quality-90 JPEG against the PNG


def test_inputs_with_the_same_name_are_renamed_with_a_note(stub_tflite, tmp_path, capsys):
    for name in ("a.jpg", "a.png", "A.JPG"):
        Image.fromarray(noise(*HW)).save(tmp_path / name, "PNG")
    out = tmp_path / "out"
    status, text = cli(["predict", tmp_path / "a.jpg", tmp_path / "a.png", tmp_path / "A.JPG", "--model", stub_tflite,
                        "--out", out, "--no-overlay"], capsys)
    assert status == 0, text
    assert sorted(p.name for p in out.iterdir()) == ["A_jpg_saliency.png", "a_png_saliency.png", "a_saliency.png"]
    assert "a.png is written as a_png_*" in text and "A.JPG is written as A_jpg_*" in text
    assert "a.jpg is written" not in text


def test_evaluate_authors_refuses_predict_pngs(stub_tflite, tmp_path, capsys):
    from fastsal_tf.evaluation import MapDirectory

    Image.fromarray(noise(*HW)).save(tmp_path / "a.png")
    out = tmp_path / "maps"
    assert cli(["predict", tmp_path / "a.png", "--model", stub_tflite, "--out", out, "--no-overlay"], capsys)[0] == 0
    with pytest.raises(ValueError, match="a_saliency.png: a `fastsal predict` map"):
        MapDirectory(out, "network")
    assert MapDirectory(out, "map").path_for("a") == out / "a_saliency.png"


def test_import_torch_into_a_folder_leaves_nothing(corpus, tmp_path, capsys):
    target = tmp_path / "m.keras"
    target.mkdir()
    status, text = cli(["import-torch", corpus / "emptydict.pth", "--out", target], capsys)
    check_refused(status, text, "m.keras")
    assert list(tmp_path.iterdir()) == [target] and list(target.iterdir()) == []


def test_atomic_writer_refuses_a_folder_in_the_way(tmp_path):
    from fastsal_tf.common.files import write_atomic

    (tmp_path / "x.bin").mkdir()
    with pytest.raises(IsADirectoryError, match="x.bin"):
        write_atomic(tmp_path / "x.bin", b"data")
    assert [p.name for p in tmp_path.iterdir()] == ["x.bin"]


@pytest.mark.parametrize("how,status,word", [("interrupt", 130, "interrupted"), ("sigterm", 143, "terminated")])
def test_interrupts_end_with_one_line(tmp_path, capsys, monkeypatch, how, status, word):
    """Ctrl-C and SIGTERM during a command: one line, the conventional status, no traceback, and a file
    being written is removed."""
    from fastsal_tf.cli import info
    from fastsal_tf.common.files import atomic_path

    target = tmp_path / "result.txt"

    def interrupted(args):
        with atomic_path(target) as temp:
            temp.write_text("half")
            if how == "interrupt":
                raise KeyboardInterrupt
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(10)  # the handler raises in this thread before the sleep ends
            raise AssertionError("SIGTERM did not stop the command")

    monkeypatch.setattr(info, "run", interrupted)
    got, text = cli(["info"], capsys)
    assert got == status and text.strip() == f"fastsal info: {word}"
    assert list(tmp_path.iterdir()) == []
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


def test_float_arrays_in_0_1_are_scaled(keras_predictor):
    image = noise(*HW, seed=7)
    expected = keras_predictor.predict_map(image)
    np.testing.assert_allclose(keras_predictor.predict_map(image / 255.0), expected, rtol=1e-6)
    np.testing.assert_allclose(keras_predictor.predict_map(image.astype(np.float32)), expected, rtol=1e-6)
    dark = keras_predictor.predict_map(np.full((*HW, 3), 1.5, np.float32))  # above 1: a 0-255 image
    np.testing.assert_allclose(dark, keras_predictor.predict_map(np.full((*HW, 3), 2, np.uint8)), rtol=1e-6)


def test_truncated_pil_image_is_an_image_error(keras_predictor, tmp_path):
    import fastsal_tf

    (tmp_path / "t.png").write_bytes(_png_bytes()[:300])
    with pytest.raises(fastsal_tf.ImageError, match="t.png"):
        keras_predictor.predict_map(Image.open(tmp_path / "t.png"))


def test_tflite_without_metadata_warns_naming_the_file(stub_tflite, tmp_path, capsys):
    import fastsal_tf

    with pytest.warns(fastsal_tf.SaliencyWarning, match=r"stub\.tflite: no FastSal metadata"):
        fastsal_tf.load_model(stub_tflite)
    Image.fromarray(noise(*HW)).save(tmp_path / "a.png")
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        status, text = cli(["predict", tmp_path / "a.png", "--model", stub_tflite, "--out", tmp_path / "o"], capsys)
    assert status == 0 and "fastsal predict: warning: " in text and "stub.tflite: no FastSal metadata" in text


def test_errors_are_importable_from_the_package():
    import fastsal_tf
    from fastsal_tf.predict import errors

    assert fastsal_tf.ImageError is errors.ImageError
    assert fastsal_tf.ModelNotFoundError is errors.ModelNotFoundError
    assert fastsal_tf.SaliencyWarning is errors.SaliencyWarning


@pytest.mark.slow
@pytest.mark.parametrize("signum,status", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_predict_stopped_by_a_signal_leaves_complete_sets(stub_tflite, tmp_path, signum, status):
    """A real `fastsal predict` process stopped mid-run: the status, one line, and every image's outputs
    complete or absent (no partial files)."""
    import subprocess
    import sys

    inputs = tmp_path / "in"
    inputs.mkdir()
    for index in range(400):
        Image.fromarray(noise(*HW, seed=index)).save(inputs / f"{index:03d}.png")
    out = tmp_path / "out"
    process = subprocess.Popen([sys.executable, "-m", "fastsal_tf", "predict", inputs, "--model", stub_tflite,
                                "--out", out, "--npy", "--jobs", "2"], stderr=subprocess.PIPE, text=True)
    for line in process.stderr:
        if "images ->" in line:
            break
    time.sleep(0.3)
    process.send_signal(signum)
    text = process.stderr.read()
    assert process.wait(timeout=60) == status, text
    assert "Traceback" not in text and ("terminated" if signum == signal.SIGTERM else "interrupted") in text
    names = {p.name for p in out.iterdir()} if out.exists() else set()
    assert not any(name.startswith(".") for name in names)
    stems = {name.split("_")[0] for name in names}
    for stem in stems:
        assert {f"{stem}_saliency.png", f"{stem}_overlay.jpg", f"{stem}_saliency.npy"} <= names, stem
    assert len(names) == 3 * len(stems) and len(stems) < 400


def test_absl_programs_end_on_ctrl_c_with_one_line(monkeypatch, capsys):
    """training/*.py and tflite/convert.py start through absl_flags.run: Ctrl-C → one line, status 130."""
    from fastsal_tf.cli import absl_flags

    def main(argv):
        raise KeyboardInterrupt

    monkeypatch.setattr("sys.argv", ["finetune.py"])
    with pytest.raises(SystemExit) as caught:
        absl_flags.run(main)
    assert caught.value.code == 130
    assert capsys.readouterr().err.strip() == "finetune.py: interrupted"


def test_multi_frame_image_says_the_first_frame_is_used(keras_predictor, tmp_path):
    import fastsal_tf

    frames = [Image.fromarray(noise(*HW, seed=s)) for s in range(3)]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    with pytest.warns(fastsal_tf.SaliencyWarning, match=r"anim\.gif: 3 frames: the first is used"):
        keras_predictor.predict_map(tmp_path / "anim.gif")
