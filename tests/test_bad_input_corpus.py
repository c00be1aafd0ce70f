"""The bad-input corpus (issue 17): every case of tests/bad_input_cases.py (bad model files through every
command and the API, bad flag values, bad images, outputs in the way of inputs, reruns; the table
benchmarks/bad_input_battery.py runs too) as one test each, checking the exit status, that no traceback
is printed, that the message names the file or flag, that no output is left for a failed item, that the
inputs are unchanged and that no output is silently wrong. Then what a table case cannot express: failing
writes, signals, the API's size caps."""

from __future__ import annotations

import os
import signal
import time
import warnings

import numpy as np
import pytest
from PIL import Image

from bad_input_cases import Env, all_cases, make_shared, run_case
from fastsal_tf.cli import main
from predict_helpers import HW, noise

CASES = all_cases()


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    return make_shared(tmp_path_factory.mktemp("bad_inputs"))


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input_case(case, shared, tmp_path, stub_tflite, tiny_keras):
    outcome = run_case(case, Env(shared, tmp_path, stub_tflite, tiny_keras))
    assert outcome.problems == [], f"{outcome.result}: {outcome.message}"


def cli(argv, capsys):
    """(exit status, stdout + stderr) of `fastsal ARGV` run in this process."""
    try:
        status = main([str(a) for a in argv])
    except SystemExit as exit_:  # argparse refusing a value
        status = exit_.code
    captured = capsys.readouterr()
    return status, captured.out + captured.err


def test_size_caps_mean_the_same_in_the_api(keras_predictor):
    """0 and None mean "no cap" in the API as 0 does for --max-side / --max-pixels (refusals: table cases)."""
    from fastsal_tf.predict.predictor import SaliencyPredictor

    backend = keras_predictor.backend
    assert SaliencyPredictor(backend, max_side=0, max_pixels=0).max_side is None
    assert SaliencyPredictor(backend, max_side=None).max_side is None


def test_huge_blur_costs_no_more_than_a_small_one(keras_predictor):
    """Sigma 100000 on a tiny image: a bounded kernel, a finite map summing to 1."""
    from fastsal_tf.predict.predictor import SaliencyPredictor

    blurred = SaliencyPredictor(keras_predictor.backend, blur=100_000).predict_map(noise(5, 7))
    assert blurred.shape == (5, 7) and np.isfinite(blurred).all()
    assert blurred.sum() == pytest.approx(1.0)


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


SETS = {"predict": (["--npy"], ("_saliency.png", "_overlay.jpg", "_saliency.npy")),
        "crop": (["--aspect", "1:1,16:9"], ("_crop_1x1.png", "_crop_16x9.png"))}


@pytest.mark.slow
@pytest.mark.parametrize("command", sorted(SETS))
@pytest.mark.parametrize("signum,status", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_command_stopped_by_a_signal_leaves_complete_sets(stub_tflite, tmp_path, command, signum, status):
    """A real `fastsal predict` / `fastsal crop --out` process stopped once its first outputs are there: the
    status, one line, and every image's outputs complete or absent (no partial files)."""
    import subprocess
    import sys

    inputs = tmp_path / "in"
    inputs.mkdir()
    for index in range(400):
        Image.fromarray(noise(*HW, seed=index)).save(inputs / f"{index:03d}.png")
    out = tmp_path / "out"
    flags, suffixes = SETS[command]
    # a shell that starts jobs in the background (CI) leaves SIGINT ignored in its children, and Python
    # then keeps it ignored: give the child the default disposition a terminal's Ctrl-C meets
    process = subprocess.Popen([sys.executable, "-m", "fastsal_tf", command, inputs, "--model", stub_tflite,
                                "--out", out, "--jobs", "2", *flags], stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 120
    while not (out.exists() and any(out.iterdir())) and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)
    process.send_signal(signum)
    text = process.stderr.read()
    assert process.wait(timeout=60) == status, text
    assert "Traceback" not in text and ("terminated" if signum == signal.SIGTERM else "interrupted") in text
    names = {p.name for p in out.iterdir()}
    assert not any(name.startswith(".") for name in names)
    stems = {name.split("_")[0] for name in names}
    for stem in stems:
        assert {stem + suffix for suffix in suffixes} <= names, stem
    assert len(names) == len(suffixes) * len(stems) and 0 < len(stems) < 400


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


@pytest.mark.slow
def test_battery_counts_its_cases(tmp_path):
    """benchmarks/bad_input_battery.py on a few table cases: the JSON counts add up, status 0 when all pass."""
    import json
    import pathlib
    import subprocess
    import sys

    battery = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "bad_input_battery.py"
    only = "info --size"
    expected = [case.id for case in CASES if only in case.id]
    run = subprocess.run([sys.executable, battery, "--only", only, "--json",
                          "--work", tmp_path / "work"], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert [case["id"] for case in report["cases"]] == expected
    assert report["counts"]["all"]["cases"] == report["counts"]["all"]["exit 2"] == len(expected) == 2
    assert report["counts"]["all"]["failed"] == 0 and all(not case["problems"] for case in report["cases"])
